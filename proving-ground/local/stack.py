"""Compose the whole pattern on loopback: the services ``make run`` starts, wired together.

Starts, in this process:

* DynamoDB (moto's server) with the tenants table and the workflow registry,
  snapshotted to the state directory so both survive a restart;
* on the same moto server, the callback tokens' signing secret (its key kept in
  the state directory) and the EventBridge bus (local/services/notifications.py);
  each tenant's rule and SQS queue are the provisioner's, created at runtime;
* API Gateway's API keys and usage plans (local/services/apigateway.py): the
  provisioner's metering keys, read by the gateway's usage plans;
* the durable emulator (``WebRunner``) with its sqlite store in the state directory;
* the local Lambda service: Lambda's Invoke API, one worker process per tenant, and
  the durable-execution APIs forwarded to the emulator;
* the local REST gateway serving the routes of ``src/shared/api_contract.json``,
  the admin routes under ``/tenants`` signed with the admin credentials of
  ``<state dir>/admin-credentials.json`` (SigV4, local/services/iam_auth.py).

Once all are up, the demo tenants are onboarded through that admin API, and
every live tenant's resources reconciled (local/tools/api_keys.py).

The command line is ``python -m local`` (local/cli.py); the banner is local/banner.py.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from local.backends.durable import DurableBackendClient, DurableEmulator
from local.runtime.functions import (
    ALIAS,
    DEFAULT_EXECUTION_TIMEOUT_SECONDS,
    DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    DEFAULT_NAME_PREFIX,
    DEFAULT_REGION,
    Names,
    pattern_functions,
)
from local.runtime.workers import WorkerPools
from local.services.contract import load_contract
from local.services.apigateway import ApiKeyStore, LocalApiGateway
from local.services.dynamodb import LocalDynamoDB, pattern_tables
from local.services.gateway import LambdaApiInvoker, LocalGateway
from local.services.http_base import DEFAULT_HOST, Request, Response, free_port
from local.services.iam_auth import ensure_admin_credentials
from local.services.lambda_service import LocalLambdaService
from local.services.queue_entry import create_router_dead_letter_queue, router_dead_letter_queue_url
from local.services.notifications import LocalNotifications
from local.services.throttle import MethodThrottle, UsagePlans
from local.tools.api_keys import AdminClient, DemoTenants
from shared.callback_tokens import CALLBACKS_PATH
from shared.contract import TENANT_HEADER

logger = logging.getLogger("local.stack")
# One line per gateway request: method, path, status, tenant header, milliseconds.
access_logger = logging.getLogger("local.access")

DEFAULT_API_PORT = 3000
DEFAULT_LAMBDA_PORT = 3001
DEFAULT_EMULATOR_PORT = 3002
DEFAULT_DYNAMODB_PORT = 3003
DEFAULT_APIGATEWAY_PORT = 3004
DEFAULT_STATE_DIR = ".state"
# Each start queue's visibility timeout here (on AWS: 60 s, six times the router's timeout).
START_QUEUE_VISIBILITY_TIMEOUT_SECONDS = 12



@dataclass(frozen=True)
class StackConfig:
    """Everything ``make run`` can be told; the defaults are the documented ones."""

    host: str = DEFAULT_HOST
    api_port: int = DEFAULT_API_PORT
    lambda_port: int = DEFAULT_LAMBDA_PORT
    emulator_port: int = DEFAULT_EMULATOR_PORT
    dynamodb_port: int = DEFAULT_DYNAMODB_PORT
    apigateway_port: int = DEFAULT_APIGATEWAY_PORT
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
    # The tiers' usage plans (rate, burst, daily quota from tiers.json) with the tenants'
    # metering keys, enforced by the gateway as API Gateway does (proving-ground/local/services/throttle.py).
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
                ("apigateway", config.apigateway_port),
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
        # The tiers' usage plans (ids: the tier names) and the tenants' metering keys.
        self.api_key_store = ApiKeyStore(config.name_prefix)
        self.apigateway = LocalApiGateway(self.api_key_store, host, self.ports["apigateway"])
        # With --fault-injection the functions reach DynamoDB, EventBridge, SQS and
        # API Gateway's keys through a proxy, and the
        # Lambda service forwards their durable API calls, both under one fault plan
        # that tests arm to fail, stall or cut chosen calls (local/testing/faults.py,
        # test-only machinery: imported only when asked for, never by `make run`).
        self.faults = None
        if config.fault_injection:
            from local.testing.faults import AwsFaultProxy, FaultPlan, FaultyDurableClient

            fault_plan = FaultPlan(kill_environment=lambda environment_id: self.workers.kill_environment(environment_id),
                                   function_of=lambda environment_id: self.workers.function_of_environment(environment_id))
            self.faults = AwsFaultProxy(self.dynamodb.url, self.restart_emulator, fault_plan, host,
                                        self.ports["faults"], apigateway_url=self.apigateway.url)
        functions_dynamodb_url = self.faults.url if self.faults else self.dynamodb.url
        self.admin_credentials = ensure_admin_credentials(state_dir, config.region)
        # The signing secret, the event bus and each tenant's rule and queue live on
        # moto's server too (it answers every AWS service on the DynamoDB port);
        # secrets go straight to it, and with --fault-injection the functions'
        # events go through the fault proxy, as their DynamoDB calls do.
        self.notifications = LocalNotifications(
            endpoint_url=self.dynamodb.url,
            region=config.region,
            prefix=config.name_prefix,
            state_dir=state_dir,
            api_url=self.api_url,
        )
        self.functions = pattern_functions(
            self.names,
            common_environment={
                "AWS_ENDPOINT_URL_LAMBDA": self.lambda_url,
                "AWS_ENDPOINT_URL_DYNAMODB": functions_dynamodb_url,
                **self.notifications.function_environment(self.callback_base_url),
                "AWS_ENDPOINT_URL_API_GATEWAY": self.faults.url if self.faults else self.apigateway.url,
                **({"AWS_ENDPOINT_URL_EVENTBRIDGE": self.faults.url, "AWS_ENDPOINT_URL_SQS": self.faults.url}
                   if self.faults else {}),
                "POWERTOOLS_LOG_LEVEL": config.function_log_level,
                # The router's dead-letter queue (router.tf), on the moto server.
                "ROUTER_DEAD_LETTER_QUEUE_URL": router_dead_letter_queue_url(self.dynamodb.url, config.name_prefix),
                # The provisioner's start queues: a redelivery within seconds, not a minute (tests wait for them).
                "START_QUEUE_VISIBILITY_TIMEOUT_SECONDS": str(START_QUEUE_VISIBILITY_TIMEOUT_SECONDS),
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
            durable=FaultyDurableClient(durable_client, fault_plan) if config.fault_injection else durable_client,
            region=config.region,
            host=host,
            port=self.ports["lambda"],
            health_checks={"durableEmulator": durable_client.healthy, "dynamodb": self.dynamodb.healthy,
                           # The demo tenants onboarded and every live tenant reconciled.
                           "tenants": lambda: self.tenants_ready},
            # SQS event source mappings (the tenants' start queues) poll moto's queues.
            sqs_endpoint_url=self.dynamodb.url,
            state_dir=state_dir,
        )
        self.api_keys: dict[str, str] = {}
        self.start_queue_urls: dict[str, str] = {}
        self.tenants_ready = False
        self.gateway = AccessLoggedGateway(
            contract=load_contract(),
            invoker=LambdaApiInvoker(self.lambda_url, config.region),
            workflow_function=self.names.workflow_function,
            api_function=self.names.api_function,
            authorizer_function=self.names.authorizer_function,
            control_function=self.names.function("control"),
            region=config.region,
            host=config.host,
            port=self.ports["api"],
        )
        self.gateway.admin_credentials = self.admin_credentials
        self.usage_plans = UsagePlans.from_store(self.api_key_store) if config.throttle else None
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
        self.dynamodb.start([])
        self.notifications.start()
        create_router_dead_letter_queue(self.dynamodb.url, self.config.region, self.config.name_prefix)
        self.apigateway.start()
        if self.faults:
            self.faults.start()
        self.lambda_service.start()
        self.emulator.start()
        self.gateway.start()
        self.bring_up_tenants()

    def bring_up_tenants(self) -> None:
        """Reconcile every live tenant, onboard the missing demo tenants (signed admin calls), record the keys."""
        import boto3  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415

        local = {"region_name": self.config.region, "aws_access_key_id": "local", "aws_secret_access_key": "local"}
        table = boto3.resource("dynamodb", endpoint_url=self.dynamodb.url, **local).Table(self.names.tenants_table)
        lambda_client = boto3.client("lambda", endpoint_url=self.lambda_url, **local,
                                     config=Config(retries={"max_attempts": 0}, read_timeout=120))

        def invoke_provisioner(payload: dict, name: str) -> dict:
            answer = lambda_client.invoke(FunctionName=f"{self.names.function('provisioner')}:{ALIAS}",
                                          DurableExecutionName=name, Payload=json.dumps(payload).encode())
            result = json.loads(answer["Payload"].read() or b"null")
            return result if isinstance(result, dict) else {}

        demo = DemoTenants(Path(self.config.state_dir), AdminClient(self.callback_base_url, self.admin_credentials),
                           table, invoke_provisioner)
        self.api_keys = demo.bring_up()
        self.notifications.write_queues_file({
            str(item["tenantId"]): str(item["callbackQueueUrl"]) for item in demo.items()
            if item.get("callbackQueueUrl") and item["status"] in ("ACTIVE", "SUSPENDED")})
        self.start_queue_urls = {str(item["tenantId"]): str(item["startQueueUrl"]) for item in demo.items()
                                 if item.get("startQueueUrl") and item["status"] in ("ACTIVE", "SUSPENDED")}
        self.tenants_ready = True

    def restart_emulator(self) -> None:
        """Stop the durable emulator and start a new one on the same port and sqlite store."""
        self.emulator.stop()
        self.emulator.start()

    def stop(self) -> None:
        """Stop the gateway first and DynamoDB last, writing its snapshot."""
        fault_proxy = [self.faults.stop] if self.faults else []
        for step in (self.gateway.stop, self.emulator.stop, self.lambda_service.stop, *fault_proxy,
                     self.workers.shutdown, self.apigateway.stop, self.dynamodb.stop):
            try:
                step()
            except Exception:  # noqa: BLE001 - stop the rest whatever one of them does
                logger.exception("error while stopping %s", step)
        shutil.rmtree(self._tmp_root, ignore_errors=True)


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
