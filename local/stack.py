"""Run the whole pattern on loopback: ``make run`` (``python -m local.stack``).

Starts, in this process:

* DynamoDB (moto's server) with the tenants table (seeded from
  ``src/shared/demo_tenants.json``) and the workflow registry, snapshotted to the
  state directory so both survive a restart;
* on the same moto server, the callback tokens' signing secret (its key kept in
  the state directory), the EventBridge bus and each demo tenant's rule and SQS
  queue for 'Workflow Waiting For Callback' events (local/notifications.py);
* the durable emulator (``WebRunner``) with its sqlite store in the state directory;
* the local Lambda service: Lambda's Invoke API, one worker process per tenant, and
  the durable-execution APIs forwarded to the emulator;
* the local REST gateway serving the routes of ``src/shared/api_contract.json``.

Ctrl-C or SIGTERM stops everything: workers are stopped and the state is written.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path

from local.api_keys import API_KEY_HEADER, ensure_api_keys, with_key_hashes
from local.contract import load_contract
from local.durable import DurableBackendClient, DurableEmulator
from local.dynamodb import LocalDynamoDB, demo_tenants, pattern_tables
from local.functions import (
    ALIAS,
    DEFAULT_EXECUTION_TIMEOUT_SECONDS,
    DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    DEFAULT_NAME_PREFIX,
    DEFAULT_REGION,
    Names,
    pattern_functions,
)
from local.faults import DynamoDBFaultProxy, FaultPlan, FaultyDurableClient
from local.gateway import LambdaApiInvoker, LocalGateway
from local.http_base import DEFAULT_HOST, Request, Response, free_port
from local.lambda_service import LocalLambdaService
from local.notifications import LocalNotifications
from local.throttle import MethodThrottle, UsagePlans
from local.workers import WorkerPools
from shared.callback_tokens import CALLBACKS_PATH
from shared.contract import TENANT_HEADER

logger = logging.getLogger("local.stack")
# One line per gateway request: method, path, status, tenant header, milliseconds.
access_logger = logging.getLogger("local.access")

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

DEFAULT_API_PORT = 3000
DEFAULT_LAMBDA_PORT = 3001
DEFAULT_EMULATOR_PORT = 3002
DEFAULT_DYNAMODB_PORT = 3003
DEFAULT_STATE_DIR = ".state"


@dataclass(frozen=True)
class StackConfig:
    """Everything ``make run`` can be told; the defaults are the documented ones."""

    host: str = DEFAULT_HOST
    api_port: int = DEFAULT_API_PORT
    lambda_port: int = DEFAULT_LAMBDA_PORT
    emulator_port: int = DEFAULT_EMULATOR_PORT
    dynamodb_port: int = DEFAULT_DYNAMODB_PORT
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    region: str = DEFAULT_REGION
    name_prefix: str = DEFAULT_NAME_PREFIX
    idle_timeout: float = 300.0
    max_workers_per_tenant: int = 4
    tenant_cache_ttl: int = 300
    function_timeout: int = DEFAULT_FUNCTION_TIMEOUT_SECONDS
    execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT_SECONDS
    snapshot_interval: float = 1.0
    function_log_level: str = "WARNING"
    fault_injection: bool = False
    fault_port: int = 0
    # Each demo tenant's usage plan (rate, burst, daily quota from demo_tenants.json),
    # enforced by the gateway as API Gateway does (local/throttle.py).
    throttle: bool = True
    # The token route's method throttle: None is the stage's default, as main.tf's
    # callback_throttling_rate_limit / callback_throttling_burst_limit = null.
    callback_throttling_rate_limit: float | None = None
    callback_throttling_burst_limit: int | None = None


class LoopbackStack:
    """The local services (gateway, Lambda, emulator, DynamoDB), started and stopped in order."""

    def __init__(self, config: StackConfig) -> None:
        # Only the REST gateway (which authenticates every request) listens on
        # --host; the Lambda endpoint, the emulator and moto trust their callers
        # and stay on loopback whatever --host says.
        host = DEFAULT_HOST
        self.config = config
        self.ports = {
            name: port or free_port(config.host if name == "api" else host)
            for name, port in (
                ("api", config.api_port),
                ("lambda", config.lambda_port),
                ("emulator", config.emulator_port),
                ("dynamodb", config.dynamodb_port),
                *((("faults", config.fault_port),) if config.fault_injection else ()),
            )
        }
        self.api_url = f"http://{config.host}:{self.ports['api']}"
        # The callback URLs the functions hand out: the gateway, as a caller on this
        # machine reaches it (a wildcard bind address is no address to call).
        reachable_host = DEFAULT_HOST if config.host in ("0.0.0.0", "::", "") else config.host  # noqa: S104
        self.callback_base_url = f"http://{reachable_host}:{self.ports['api']}"
        self.lambda_url = f"http://{host}:{self.ports['lambda']}"
        self.names = Names(config.name_prefix)
        state_dir = Path(config.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        self._tmp_root = Path(tempfile.mkdtemp(prefix=f"{config.name_prefix}-workers-"))

        self.dynamodb = LocalDynamoDB(
            host=host,
            port=self.ports["dynamodb"],
            state_dir=state_dir,
            tables=pattern_tables(self.names),
            region=config.region,
            snapshot_interval=config.snapshot_interval,
        )
        self.emulator = DurableEmulator(
            host=host,
            port=self.ports["emulator"],
            lambda_endpoint=self.lambda_url,
            state_dir=state_dir,
            region=config.region,
            invocation_timeout_seconds=config.function_timeout,
        )
        durable_client = DurableBackendClient(self.emulator.url)
        # With --fault-injection the functions reach DynamoDB through a proxy, and the
        # Lambda service forwards their durable API calls, both under one fault plan
        # that tests arm to fail, stall or cut chosen calls (local/faults.py).
        fault_plan = FaultPlan(kill_environment=lambda environment_id: self.workers.kill_environment(environment_id),
                               function_of=lambda environment_id: self.workers.function_of_environment(environment_id))
        self.faults = (
            DynamoDBFaultProxy(self.dynamodb.url, self.restart_emulator, fault_plan, host, self.ports["faults"])
            if config.fault_injection else None
        )
        functions_dynamodb_url = self.faults.url if self.faults else self.dynamodb.url
        tenants = demo_tenants()
        # The signing secret, the event bus and each tenant's rule and queue live on
        # moto's server too (it answers every AWS service on the DynamoDB port);
        # secrets go straight to it, and with --fault-injection the functions'
        # events go through the fault proxy, as their DynamoDB calls do.
        self.notifications = LocalNotifications(
            endpoint_url=self.dynamodb.url,
            region=config.region,
            prefix=config.name_prefix,
            tenant_ids=[t["tenantId"] for t in tenants],
            state_dir=state_dir,
            api_url=self.api_url,
        )
        self.functions = pattern_functions(
            self.names,
            common_environment={
                "AWS_ENDPOINT_URL_LAMBDA": self.lambda_url,
                "AWS_ENDPOINT_URL_DYNAMODB": functions_dynamodb_url,
                **self.notifications.function_environment(self.callback_base_url),
                **({"AWS_ENDPOINT_URL_EVENTBRIDGE": self.faults.url} if self.faults else {}),
                "POWERTOOLS_LOG_LEVEL": config.function_log_level,
            },
            tenant_cache_ttl_seconds=config.tenant_cache_ttl,
            function_timeout_seconds=config.function_timeout,
            execution_timeout_seconds=config.execution_timeout,
        )
        self.workers = WorkerPools(
            region=config.region,
            tmp_root=self._tmp_root,
            idle_timeout=config.idle_timeout,
            max_workers_per_pool=config.max_workers_per_tenant,
        )
        self.lambda_service = LocalLambdaService(
            functions=self.functions,
            runner=self.workers,
            durable=FaultyDurableClient(durable_client, fault_plan) if self.faults else durable_client,
            region=config.region,
            host=host,
            port=self.ports["lambda"],
            health_checks={"durableEmulator": durable_client.healthy, "dynamodb": self.dynamodb.healthy},
        )
        self.api_keys = ensure_api_keys(state_dir, [t["tenantId"] for t in tenants])
        self.tenants = with_key_hashes(tenants, self.api_keys)
        self.gateway = AccessLoggedGateway(
            contract=load_contract(),
            invoker=LambdaApiInvoker(self.lambda_url, config.region),
            workflow_function=self.names.workflow_function,
            api_function=self.names.api_function,
            authorizer_function=self.names.authorizer_function,
            region=config.region,
            host=config.host,
            port=self.ports["api"],
        )
        self.usage_plans = UsagePlans.from_tenants(tenants, self.api_keys) if config.throttle else None
        self.gateway.usage_plans = self.usage_plans
        self.gateway.method_throttle = MethodThrottle.from_variables(
            rate=config.callback_throttling_rate_limit, burst=config.callback_throttling_burst_limit,
        ) if config.throttle else None

    def check_ports(self) -> None:
        """Fail early and clearly when a port is taken (moto would only print and hang)."""
        for name, port in self.ports.items():
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
                address = self.config.host if name == "api" else DEFAULT_HOST
                try:
                    probe.bind((address, port))
                except OSError as error:
                    raise OSError(f"{name} port {address}:{port} is in use ({error.strerror})") from error

    def start(self) -> None:
        """Start DynamoDB, the Lambda service, the emulator, then the gateway."""
        self.check_ports()
        self.dynamodb.start(self.tenants)
        self.notifications.start()
        if self.faults:
            self.faults.start()
        self.lambda_service.start()
        self.emulator.start()
        self.gateway.start()

    def restart_emulator(self) -> None:
        """Stop the durable emulator and start a new one on the same port and sqlite store."""
        self.emulator.stop()
        self.emulator.start()

    def stop(self) -> None:
        """Stop the gateway first and DynamoDB last, writing its snapshot."""
        fault_proxy = [self.faults.stop] if self.faults else []
        for step in (self.gateway.stop, self.emulator.stop, self.lambda_service.stop, *fault_proxy,
                     self.workers.shutdown, self.dynamodb.stop):
            try:
                step()
            except Exception:  # noqa: BLE001 - stop the rest whatever one of them does
                logger.exception("error while stopping %s", step)
        shutil.rmtree(self._tmp_root, ignore_errors=True)

    def throttle_banner(self) -> str:
        """The usage plans and a curl loop that shows tenant-b's 429 (empty without plans)."""
        if self.usage_plans is None or self.gateway.method_throttle is None:
            return "\nUsage plans are off (--throttle off): no tenant and no route is throttled.\n"
        plans = "\n".join(f"  {line}" for line in self.usage_plans.describe())
        token_route = f"  {'POST /callbacks/{callbackToken}':<32} {self.gateway.method_throttle.describe()}, shared by all callers"
        key_b = self.api_keys.get("tenant-b", "<tenant-b's key>")
        return f"""
Usage plans (src/shared/demo_tenants.json, as deployed; over its limit a tenant alone gets
429 {{"message": "Too Many Requests"}} with Retry-After; --throttle off disables them):
{plans}
The token route's method throttle (the stage's default in variables.tf, as deployed):
{token_route}
  # 30 quick reads as tenant-b: 404s (no such workflow) until its burst is spent, then 429s
  for i in $(seq 30); do curl -s -o /dev/null -w '%{{http_code}} ' {self.api_url}/workflow/none \\
        -H 'x-tenant-id: tenant-b' -H '{API_KEY_HEADER}: {key_b}'; done; echo
"""

    def banner(self) -> str:
        """Endpoints and copy-paste commands for the whole flow."""
        api, lam, moto = self.api_url, self.lambda_url, self.dynamodb.url
        workflow = self.names.workflow_function
        notifications = self.notifications
        keys_file = Path(self.config.state_dir) / "api-keys.json"
        faults_line = f"\n  Fault injection      {self.faults.url}/_faults" if self.faults else ""
        demo_keys = "\n".join(f"  {tenant:<18} {api_key}" for tenant, api_key in self.api_keys.items())
        queues = "\n".join(f"  {tenant:<18} {url}" for tenant, url in notifications.queue_urls.items())
        flow = CURL_FLOW.replace(f"API={README_API}\n", f"API={api}\n").replace(
            README_KEY_LINE, f"KEY='{self.api_keys['tenant-a']}'   # tenant-a's API key (also in {keys_file})")
        cli_flow = CLI_FLOW.replace(f"LAMBDA={README_LAMBDA}\n", f"LAMBDA={lam}\n").replace(
            "AWS_DEFAULT_REGION=us-east-1", f"AWS_DEFAULT_REGION={self.config.region}").replace(
            "tenant-durable-workflow:live", f"{workflow}:{ALIAS}")
        queue_a = notifications.queue_urls.get("tenant-a", "<tenant-a's queue URL>")
        return f"""
Tenant-isolated durable workflow: local stack is up (Ctrl-C stops it)

  REST API             {api}   POST /workflow  GET /workflow/{{workflowId}}  POST /callback
                       POST /callbacks/{{callbackToken}} (no authorizer: the token is the credential)
  Lambda endpoint      {lam}   Invoke + durable-execution APIs (boto3 / AWS CLI)
  Durable emulator     {self.emulator.url}   sqlite store in {self.config.state_dir}/
  AWS services (moto)  {moto}   DynamoDB: {self.names.tenants_table}, {self.names.workflows_table}
                       Secrets Manager: {notifications.secret_name} (key kept in {self.config.state_dir}/)
                       EventBridge: {notifications.bus_name}; SQS: one callback queue per tenant
  Workers (debug)      {lam}/_local/workers{faults_line}
  Unknown route or method: 404 {{"message": "Not Found"}} (main.tf's MISSING_AUTHENTICATION_TOKEN response).

Demo API keys (local only; every request needs x-tenant-id and that tenant's x-api-key):
{demo_keys}
{self.throttle_banner()}
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
.venv/bin/python -m local.confirmer --endpoint-url {moto} --api-url {api} \\
      --queue-url {queue_a}

The same with the AWS CLI (v1 1.44.1+ or v2 from December 2025; run after the flow above, which
defines status_after):

{cli_flow}
aws sqs receive-message --endpoint-url {moto} --queue-url {queue_a}

Walk it all for two tenants (a confirmer per tenant answers from its queue): make demo
"""


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, not {value!r}")
    return value == "on"


def parse_args(argv: list[str] | None = None) -> StackConfig:
    parser = argparse.ArgumentParser(
        prog="python -m local.stack",
        description="Run the tenant-isolated durable workflow locally on loopback (make run).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface the REST gateway binds (the other services always stay on 127.0.0.1)")
    parser.add_argument("--api-port", type=int, default=DEFAULT_API_PORT, help="REST gateway port (0: any free)")
    parser.add_argument("--lambda-port", type=int, default=DEFAULT_LAMBDA_PORT, help="Lambda service port")
    parser.add_argument("--emulator-port", type=int, default=DEFAULT_EMULATOR_PORT, help="durable emulator port")
    parser.add_argument("--dynamodb-port", type=int, default=DEFAULT_DYNAMODB_PORT, help="DynamoDB (moto) port")
    parser.add_argument("--state-dir", type=Path, default=Path(DEFAULT_STATE_DIR),
                        help="executions (sqlite) and table snapshots; reuse it to resume")
    parser.add_argument("--region", default=DEFAULT_REGION, help="region the handlers see")
    parser.add_argument("--name-prefix", default=DEFAULT_NAME_PREFIX, help="prefix of function and table names")
    parser.add_argument("--idle-timeout", type=float, default=300.0, help="seconds an idle worker is kept warm")
    parser.add_argument("--max-workers-per-tenant", type=int, default=4,
                        help="concurrent environments of one tenant (and of the api function)")
    parser.add_argument("--tenant-cache-ttl", type=int, default=300,
                        help="TENANT_CACHE_TTL_SECONDS of the workflow function")
    parser.add_argument("--function-timeout", type=int, default=DEFAULT_FUNCTION_TIMEOUT_SECONDS,
                        help="timeout of one handler invocation, seconds")
    parser.add_argument("--execution-timeout", type=int, default=DEFAULT_EXECUTION_TIMEOUT_SECONDS,
                        help="durable execution timeout, seconds")
    parser.add_argument("--snapshot-interval", type=float, default=1.0,
                        help="seconds between DynamoDB snapshot checks (0: only at shutdown)")
    parser.add_argument("--fault-injection", action="store_true",
                        help="route the functions' DynamoDB calls through a fault-injecting proxy (tests)")
    parser.add_argument("--fault-port", type=int, default=0, help="port of the fault proxy (0: any free)")
    parser.add_argument("--throttle", type=_on_off, default="on", metavar="{on,off}",
                        help="enforce each demo tenant's usage plan (rate, burst, daily quota from "
                             "src/shared/demo_tenants.json) with 429s, as API Gateway does")
    parser.add_argument("--callback-throttling-rate-limit", type=float, default=None, metavar="RPS",
                        help="requests per second of POST /callbacks/{callbackToken} (main.tf's variable of that "
                             "name); default: the stage's throttling_rate_limit default in variables.tf")
    parser.add_argument("--callback-throttling-burst-limit", type=int, default=None, metavar="N",
                        help="burst of POST /callbacks/{callbackToken}; default: the stage's throttling_burst_limit")
    parser.add_argument("--log-level", dest="function_log_level", metavar="LEVEL", default=None,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level of the stack and of the functions (POWERTOOLS_LOG_LEVEL). Without it: INFO "
                             "for the stack (one line per request) and WARNING for the functions' JSON logs")
    args = parser.parse_args(argv)
    configure_logging(args.function_log_level or "INFO")
    args.function_log_level = args.function_log_level or "WARNING"
    # Every flag's dest is a StackConfig field: the parser is the one list of options.
    return StackConfig(**{field.name: getattr(args, field.name) for field in fields(StackConfig)})


def configure_logging(level: str) -> None:
    """The stack's own log on stderr: one line a record, one line a request, refusals not warnings."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        for noisy in ("aws_durable_execution_sdk_python_testing", "botocore", "werkzeug", "moto"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(known, ServerErrorSummary) for known in werkzeug.filters):  # once, however often called
        werkzeug.addFilter(ServerErrorSummary(logger))


# moto's server runs on werkzeug, which logs a request that raised as "Error on request:"
# and the rendered traceback (text, not exc_info), at every such request; the caller gets
# a 500. The service is the moto package the traceback passes through last.
SERVER_ERROR_MARK = "Error on request:"
_MOTO_SERVICE = re.compile(r"[/\\]moto[/\\](?!core[/\\]|moto_server[/\\]|utilities[/\\])(\w+)[/\\]")
MOTO_SERVICE_NAMES = {"events": "EventBridge", "sqs": "SQS", "dynamodb": "DynamoDB",
                      "secretsmanager": "Secrets Manager"}
MISSING_PACKAGE_HINT = " (a package missing from the virtualenv: is requirements-run.txt installed?)"


def describe_server_error(text: str) -> tuple[str, str]:
    """(service, "ErrorType: message") of one of werkzeug's "Error on request:" log messages."""
    services = _MOTO_SERVICE.findall(text)
    service = MOTO_SERVICE_NAMES.get(services[-1], services[-1]) if services else "moto"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return service, lines[-1] if lines else "unknown error"


class ServerErrorSummary(logging.Filter):
    """On werkzeug's logger: one clear line per distinct error moto's server raised.

    The first time an error appears, ``report`` gets one line naming the service and the
    error, and werkzeug's traceback follows it; the same error again (every retry of the
    request meets it) prints nothing more.
    """

    def __init__(self, report: logging.Logger) -> None:
        super().__init__()
        self._report = report
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if SERVER_ERROR_MARK not in text:
            return True
        service, error = summary = describe_server_error(text)
        with self._lock:
            first = summary not in self._seen
            self._seen.add(summary)
        if first:
            hint = MISSING_PACKAGE_HINT if error.startswith(("ModuleNotFoundError", "ImportError")) else ""
            self._report.error("local moto server: %s failed a request (HTTP 500): %s%s; its traceback follows, "
                               "repeats of this error are not shown", service, error, hint)
        return first


class AccessLoggedGateway(LocalGateway):
    """The local gateway, with one access-log line per request (as the stage's access log on AWS)."""

    def handle(self, request: Request) -> Response:
        started = time.monotonic()
        status = 500  # what the HTTP server answers when handle() raises
        try:
            response = super().handle(request)
            status = response.status
            return response
        finally:
            # The token of /callbacks/{callbackToken} is a credential: only the template is logged.
            path = self.loggable_path(request.path) if CALLBACKS_PATH in request.path else request.path
            access_logger.info("%s %s %d tenant=%s %.0f ms", request.method, _printable(path), status,
                               _printable(request.header(TENANT_HEADER) or "-"), (time.monotonic() - started) * 1000)


def _printable(text: str, limit: int = 200) -> str:
    """``text`` fit for one log line: no control characters, at most ``limit`` characters."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


class OutputGuard:
    """Stand between a file descriptor (stdout, stderr) and whatever it points at.

    The stack and every worker process it starts (they inherit the descriptor) write into
    a pipe; a thread copies it to the real destination and, once that is gone (``make run
    | tee out`` and the reader exits, or Ctrl-C kills tee first), drops the rest. So a
    closed terminal or pipe never fails a print, a log line or a function's metrics.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._real = os.dup(fd)
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        self._thread = threading.Thread(target=self._forward, args=(read_end,), name=f"output-{fd}", daemon=True)
        self._thread.start()

    def _forward(self, read_end: int) -> None:
        broken = False
        while chunk := os.read(read_end, 65536):
            while chunk and not broken:
                try:
                    chunk = chunk[os.write(self._real, chunk):]
                except OSError:  # EPIPE and friends: the reader is gone, drop the rest
                    broken = True
        os.close(read_end)

    def restore(self, timeout: float = 2.0) -> None:
        """Point the descriptor back at its destination; wait for what is still in the pipe."""
        os.dup2(self._real, self.fd)  # closes this process's write end of the pipe
        os.close(self._real)
        self._thread.join(timeout)  # ends at EOF: no worker holds the pipe any more


def say(text: str) -> None:
    """Print a line; a stdout that is gone (a closed pipe) is not an error worth a traceback."""
    try:
        print(text, flush=True)
    except (BrokenPipeError, ValueError):  # ValueError: sys.stdout already closed
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail either
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    # Every AWS call this process makes goes to loopback; sign them with dummy keys
    # (the emulator's own boto3 client needs some) and never with the user's.
    os.environ.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local")
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    stop = threading.Event()
    interruptible = threading.Event()  # set while a hanging start may be cut short

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()
        if interruptible.is_set():  # e.g. a service that never comes up
            interruptible.clear()
            raise KeyboardInterrupt

    # Ctrl-C (to the whole process group, workers included: they ignore it), kill, and a
    # closed terminal all stop the stack the same way; stopping is never interrupted.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    sys.stdout.flush()
    guards = [OutputGuard(sys.stdout.fileno()), OutputGuard(sys.stderr.fileno())]
    stack: LoopbackStack | None = None
    code = 1
    try:
        stack = LoopbackStack(config)
        interruptible.set()
        if not stop.is_set():
            try:
                stack.start()
            except OSError as error:
                stop.set()
                logger.error("could not start the local stack: %s (is another `make run` using the ports?)", error)
            else:
                interruptible.clear()
                say(stack.banner())
                stop.wait()
                say("Stopping the local stack ...")
                code = 0
    except KeyboardInterrupt:
        pass
    finally:
        interruptible.clear()
        if stack is not None:
            stack.stop()
        sys.stdout.flush()
        sys.stderr.flush()
        for guard in guards:
            guard.restore()
    if code == 0:
        say(f"Stopped. State kept in {config.state_dir}/")
    return code


if __name__ == "__main__":
    sys.exit(main())
