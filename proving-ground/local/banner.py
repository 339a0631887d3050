"""The banner ``make run`` prints: endpoints, demo keys, queues and the copy-paste flows."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from local import REPO_ROOT
from local.runtime.functions import ALIAS
from local.stack import LoopbackStack
from local.services.queue_entry import router_dead_letter_queue_url
from local.tools.api_keys import API_KEY_HEADER

# The copy-paste flows are written once, in the documentation a reader follows: the curl
# flow in the README's "Try it" (after the lines that point the shell at the local stack),
# the AWS CLI flow in docs/local.md. Each is the ```bash block after an HTML comment naming
# it; the banner prints them with this stack's URLs, tenant-a's key, region and function.
README = REPO_ROOT / "README.md"
LOCAL_DOC = REPO_ROOT / "docs" / "local.md"
LOCAL_SETUP_MARKER = "try-it-local"
CURL_FLOW_MARKER = "curl-flow"
CLI_FLOW_MARKER = "aws-cli-flow"


class FlowNotFound(LookupError):
    """A documented flow is not where, or not as, the banner expects it."""


def marked_block(path: Path, marker: str) -> str:
    """The ```bash block right after the line ``<!-- marker ... -->`` in ``path``, without its fences.

    Raises:
        FlowNotFound: when there is not exactly one such block.
    """
    found = re.findall(rf"^<!-- {re.escape(marker)}\b[^\n]*-->\n```bash\n(.*?)^```$", path.read_text(), re.M | re.S)
    if len(found) != 1:
        raise FlowNotFound(f"{path.name}: expected one ```bash block after <!-- {marker} ... -->, found {len(found)}")
    return found[0]


def replace_once(block: str, old: str, new: str) -> str:
    """``block`` with its one ``old`` (a whole line when ``old`` ends in ``=``: that assignment) made ``new``."""
    pattern = re.compile(rf"^{re.escape(old)}.*$", re.M) if old.endswith("=") else re.compile(re.escape(old))
    if len(pattern.findall(block)) != 1:
        raise FlowNotFound(f"expected one {old!r} in the flow, found {len(pattern.findall(block))}")
    return pattern.sub(lambda _: new, block)


def curl_flow(api_url: str, api_key: str, keys_file: Path) -> str:
    """The README's local setup lines with this stack's URL and tenant-a's key, then its curl flow."""
    setup = replace_once(marked_block(README, LOCAL_SETUP_MARKER), "API=", f"API={api_url}")
    setup = replace_once(setup, "KEY=", f"KEY='{api_key}'   # tenant-a's API key (also in {keys_file})")
    return setup + marked_block(README, CURL_FLOW_MARKER)


def cli_flow(lambda_url: str, region: str, function: str) -> str:
    """docs/local.md's AWS CLI flow against this stack's Lambda endpoint, region and function."""
    flow = replace_once(marked_block(LOCAL_DOC, CLI_FLOW_MARKER), "LAMBDA=", f"LAMBDA={lambda_url}")
    flow = replace_once(flow, "AWS_DEFAULT_REGION=us-east-1", f"AWS_DEFAULT_REGION={region}")
    return replace_once(flow, "tenant-durable-workflow:live", function)


def flow_or_note(flow: Callable[[], str], where: str) -> str:
    """``flow()``, or one line saying why it is not printed and where to read it instead.

    The stack runs whatever the documentation says; a flow that cannot be read is not
    a reason to stop it.
    """
    try:
        return flow()
    except (FlowNotFound, OSError) as error:
        return f"# (not printed: {error}; the flow is in {where})\n"


def throttle_banner(stack: LoopbackStack) -> str:
    """The usage plans and a curl loop that shows tenant-b's 429 (empty without plans)."""
    if stack.usage_plans is None or stack.gateway.method_throttle is None:
        return "\nUsage plans are off (--throttle off): no tenant and no route is throttled.\n"
    plans = "\n".join(f"  {line}" for line in stack.usage_plans.describe())
    token_route = f"  {'POST /callbacks/{callbackToken}':<32} {stack.gateway.method_throttle.describe()}, shared by all callers"
    key_b = stack.api_keys.get("tenant-b", "<tenant-b's key>")
    return f"""
Usage plans, one per tier (src/shared/tiers.json, as deployed; over its limit a tenant alone gets
429 {{"message": "Too Many Requests"}} with Retry-After; --throttle off disables them):
{plans}
The token route's method throttle (the stage's default in variables.tf, as deployed):
{token_route}
  # 30 quick reads as tenant-b: 404s (no such workflow) until its burst is spent, then 429s
  for i in $(seq 30); do curl -s -o /dev/null -w '%{{http_code}} ' {stack.api_url}/workflow/none \\
        -H 'x-tenant-id: tenant-b' -H '{API_KEY_HEADER}: {key_b}'; done; echo
"""


def start_queue_banner(stack: LoopbackStack) -> str:
    """Each tenant's start queue and how to start a workflow from it (docs/queue-entry.md)."""
    moto, region = stack.dynamodb.url, stack.config.region
    urls = stack.start_queue_urls
    rows = "\n".join(f"  {tenant:<18} {url}" for tenant, url in urls.items()) or "  (none yet)"
    url_a = urls.get("tenant-a", "<tenant-a's start queue URL>")
    dlq = router_dead_letter_queue_url(moto, stack.config.name_prefix)
    return f"""
Start queues: a message on a tenant's queue starts a workflow for that tenant (the queue decides the tenant,
never the body); what cannot start goes to {dlq}
with a Reason attribute (docs/queue-entry.md):
{rows}
  # start one for tenant-a; a retry with the same IdempotencyKey starts nothing new
  .venv/bin/python -c 'import boto3; boto3.client("sqs", endpoint_url="{moto}", region_name="{region}",
      aws_access_key_id="local", aws_secret_access_key="local").send_message(QueueUrl="{url_a}",
      MessageBody="{{\\"amount\\": 25, \\"currency\\": \\"EUR\\"}}",
      MessageAttributes={{"IdempotencyKey": {{"DataType": "String", "StringValue": "order-1"}}}})'
  # the same with the AWS CLI
  aws sqs send-message --endpoint-url {moto} --queue-url {url_a} \\
      --message-body '{{"amount": 25, "currency": "EUR"}}' \\
      --message-attributes 'IdempotencyKey={{DataType=String,StringValue=order-1}}'
"""


def banner(stack: LoopbackStack) -> str:
    """Endpoints and copy-paste commands for the whole flow."""
    api, lam, moto = stack.api_url, stack.lambda_url, stack.dynamodb.url
    workflow = stack.names.workflow_function
    notifications = stack.notifications
    keys_file = Path(stack.config.state_dir) / "api-keys.json"
    faults_line = f"\n  Fault injection      {stack.faults.url}/_faults" if stack.faults else ""
    demo_keys = "\n".join(f"  {tenant:<18} {api_key}" for tenant, api_key in stack.api_keys.items())
    queues = "\n".join(f"  {tenant:<18} {url}" for tenant, url in notifications.queue_urls.items())
    flow = flow_or_note(lambda: curl_flow(api, stack.api_keys["tenant-a"], keys_file), "README.md, Try it")
    aws_cli = flow_or_note(lambda: cli_flow(lam, stack.config.region, f"{workflow}:{ALIAS}"), "docs/local.md")
    queue_a = notifications.queue_urls.get("tenant-a", "<tenant-a's queue URL>")
    return f"""
Tenant-isolated durable workflow: local stack is up (Ctrl-C stops it)

  REST API             {api}   POST /workflow  GET /workflow/{{workflowId}}  POST /callback
                       POST /callbacks/{{callbackToken}} (no authorizer: the token is the credential)
  Lambda endpoint      {lam}   Invoke + durable-execution APIs (boto3 / AWS CLI)
  Durable emulator     {stack.emulator.url}   sqlite store in {stack.config.state_dir}/
  AWS services (moto)  {moto}   DynamoDB: {stack.names.tenants_table}, {stack.names.workflows_table}
                       Secrets Manager: {notifications.secret_name} (key kept in {stack.config.state_dir}/)
                       EventBridge: {notifications.bus_name}; SQS: one callback queue per tenant
  Admin API            {api}/tenants   AWS_IAM: SigV4 (service execute-api) with the credentials in
                       {Path(stack.config.state_dir) / "admin-credentials.json"}; .venv/bin/python -m tenantctl --local --help
  API Gateway keys     {stack.apigateway.url}   the provisioner's metering keys in the tiers' usage plans
  Workers (debug)      {lam}/_local/workers{faults_line}
  Unknown route or method: 404 {{"message": "Not Found"}} (api.tf's MISSING_AUTHENTICATION_TOKEN response).

Demo API keys (local only; every request needs x-tenant-id and that tenant's x-api-key):
{demo_keys}
{throttle_banner(stack)}
Callback queues: each tenant's 'Workflow Waiting For Callback' events {{tenantId, workflowId, callbackUrl,
expiresAt}}, and no other tenant's (a rule on {notifications.bus_name} per tenant). moto keeps them in memory:
the bus, rules and queues are recreated at every start and queued messages are lost (tokens stay valid).
{queues}
{start_queue_banner(stack)}
The full flow for tenant-a (the demo tenants are tenant-a and tenant-b; needs bash, curl and jq):

{flow}
# 3, as the tenant itself (instead of the callbackUrl): POST /callback with its key and the callbackId
CB=$(jq -er '.callbackId // empty' <<<"${{STATUS:-null}}") &&
  curl "${{C[@]}}" -X POST "$API/callback" -d "{{\\"callbackId\\": \\"$CB\\", \\"payload\\": {{\\"approved\\": true}}}}"
# 3, as an external system told when to answer: read tenant-a's queue and answer every waiting event
.venv/bin/python -m local.tools.confirmer --endpoint-url {moto} --api-url {api} \\
      --queue-url {queue_a}

The same with the AWS CLI (v1 1.44.1+ or v2 from December 2025; run after the flow above, which
defines status_after):

{aws_cli}
aws sqs receive-message --endpoint-url {moto} --queue-url {queue_a}

Walk it all for two tenants (a confirmer per tenant answers from its queue): make demo
"""
