"""The banner ``make run`` prints: endpoints, demo keys, queues and the copy-paste flows."""

from __future__ import annotations

from pathlib import Path

from local.runtime.functions import ALIAS
from local.stack import LoopbackStack
from local.tools.api_keys import API_KEY_HEADER

README_API = "http://127.0.0.1:3000"
README_KEY_LINE = (
    """KEY=$(jq -er '."tenant-a"' .state/api-keys.json) ||"""
    """ echo "no tenant-a key in .state/: run this where make run runs" >&2"""
)
# The README's "Run it locally" flow, to the letter (tests/local/test_readme_flows.py runs
# that README block and checks it is this text); the banner prints it with the real API URL
# and tenant-a's key filled in. Every wait has a time limit and says why it stopped.
CURL_FLOW = f"API={README_API}\n{README_KEY_LINE}\n" + r"""# curl options for tenant-a: errors shown, 10 s at most a request, its headers
C=(-sS --max-time 10 -H 'x-tenant-id: tenant-a' -H "x-api-key: $KEY" -H 'content-type: application/json')
# print workflow $WF once its status is none of $1 (a 404 reads as null); 60 s at most
status_after() {
  [[ -n $WF ]] || { echo "no workflow id: the start failed" >&2; return 1; }
  local answer= deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    answer=$(curl "${C[@]}" "$API/workflow/$WF") && [[ ! $(jq -r .status <<<"$answer") =~ ^($1)$ ]] &&
      { echo "$answer"; return; }
    sleep 1
  done
  echo "gave up after 60 s; last answer: ${answer:-none}" >&2; return 1
}

# 1. start: 202 {"workflowId": "...", "status": "STARTED"}
START=$(curl "${C[@]}" -X POST "$API/workflow" -d '{"amount": 120, "currency": "EUR", "description": "order 42"}')
WF=$(jq -er '.workflowId // empty' <<<"${START:-null}") ||
  echo "not started: ${START:-no answer from $API (locally: is make run running?)}" >&2
# 2. status: wait until it has left STARTED (a 404 for the first moment): WAITING_FOR_CALLBACK names
#    the callbackUrl the external system answers at (also sent to tenant-a's queue); REJECTED says why
STATUS=$(status_after 'null|STARTED') && echo "$STATUS"
CALLBACK_URL=$(jq -er '.callbackUrl // empty' <<<"${STATUS:-null}") || echo "no callbackUrl to answer (see above)" >&2
# 3. the external system answers with the URL alone: no API key, no tenant header
[[ -n $CALLBACK_URL ]] && curl -sS --max-time 10 -X POST "$CALLBACK_URL" -H 'content-type: application/json' \
      -d '{"payload": {"approved": true}}' && echo
# 4. status again: wait until it has left WAITING_FOR_CALLBACK: COMPLETED, with the result
#    (which environment ran it, cache hits)
status_after 'null|STARTED|WAITING_FOR_CALLBACK'
"""
README_LAMBDA = "http://127.0.0.1:3001"
# The README's AWS CLI flow against the local Lambda endpoint (run after CURL_FLOW: it uses
# status_after, C and API). fileb:// hands the CLI the JSON bytes as they are, with CLI v1
# and v2 alike (v2 reads a plain blob argument as base64: the decoding error of a bare string).
CLI_FLOW = f"LAMBDA={README_LAMBDA}\n" + r"""export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1
# 1. start: an asynchronous invoke of tenant-a's durable execution, named as its workflow id
WF=cli-$(date +%s)
aws lambda invoke --endpoint-url "$LAMBDA" --function-name tenant-durable-workflow:live \
    --tenant-id tenant-a --invocation-type Event --durable-execution-name "$WF" \
    --payload fileb://<(printf '{"workflowId": "%s", "request": {"amount": 10, "currency": "USD"}}' "$WF") /dev/stdout
# 2. wait (60 s at most) for its callbackId, 3. answer it, 4. wait for the final status
CB=$(status_after 'null|STARTED' | jq -er '.callbackId // empty') || echo "no callbackId to answer" >&2
[[ -n $CB ]] && aws lambda send-durable-execution-callback-success --endpoint-url "$LAMBDA" \
    --callback-id "$CB" --result fileb://<(printf '{"approved": true}')
status_after 'null|STARTED|WAITING_FOR_CALLBACK'
"""


def throttle_banner(stack: LoopbackStack) -> str:
    """The usage plans and a curl loop that shows tenant-b's 429 (empty without plans)."""
    if stack.usage_plans is None or stack.gateway.method_throttle is None:
        return "\nUsage plans are off (--throttle off): no tenant and no route is throttled.\n"
    plans = "\n".join(f"  {line}" for line in stack.usage_plans.describe())
    token_route = f"  {'POST /callbacks/{callbackToken}':<32} {stack.gateway.method_throttle.describe()}, shared by all callers"
    key_b = stack.api_keys.get("tenant-b", "<tenant-b's key>")
    return f"""
Usage plans (src/shared/demo_tenants.json, as deployed; over its limit a tenant alone gets
429 {{"message": "Too Many Requests"}} with Retry-After; --throttle off disables them):
{plans}
The token route's method throttle (the stage's default in variables.tf, as deployed):
{token_route}
  # 30 quick reads as tenant-b: 404s (no such workflow) until its burst is spent, then 429s
  for i in $(seq 30); do curl -s -o /dev/null -w '%{{http_code}} ' {stack.api_url}/workflow/none \\
        -H 'x-tenant-id: tenant-b' -H '{API_KEY_HEADER}: {key_b}'; done; echo
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
    flow = CURL_FLOW.replace(f"API={README_API}\n", f"API={api}\n").replace(
        README_KEY_LINE, f"KEY='{stack.api_keys['tenant-a']}'   # tenant-a's API key (also in {keys_file})")
    cli_flow = CLI_FLOW.replace(f"LAMBDA={README_LAMBDA}\n", f"LAMBDA={lam}\n").replace(
        "AWS_DEFAULT_REGION=us-east-1", f"AWS_DEFAULT_REGION={stack.config.region}").replace(
        "tenant-durable-workflow:live", f"{workflow}:{ALIAS}")
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
  Workers (debug)      {lam}/_local/workers{faults_line}
  Unknown route or method: 404 {{"message": "Not Found"}} (main.tf's MISSING_AUTHENTICATION_TOKEN response).

Demo API keys (local only; every request needs x-tenant-id and that tenant's x-api-key):
{demo_keys}
{throttle_banner(stack)}
Callback queues: each tenant's 'Workflow Waiting For Callback' events {{tenantId, workflowId, callbackUrl,
expiresAt}}, and no other tenant's (a rule on {notifications.bus_name} per tenant). moto keeps them in memory:
the bus, rules and queues are recreated at every start and queued messages are lost (tokens stay valid).
{queues}

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

{cli_flow}
aws sqs receive-message --endpoint-url {moto} --queue-url {queue_a}

Walk it all for two tenants (a confirmer per tenant answers from its queue): make demo
"""
