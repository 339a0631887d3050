"""The local Lambda service: Lambda's Invoke API and the durable-execution APIs on one endpoint.

* ``POST /2015-03-31/functions/{FunctionName}/invocations`` with ``Qualifier``,
  ``X-Amz-Invocation-Type``, ``X-Amz-Tenant-Id``, ``X-Amz-Durable-Execution-Name``.
  A caller's Invoke of a durable function starts an execution at the durable
  backend; the backend's own Invoke (header ``X-Dex-Handler-Invoke: true``) runs the
  handler once in a worker of the calling tenant. A plain function runs directly.
* ``/2025-12-01/...`` (callbacks, get, history, state, checkpoint, stop) is forwarded
  to the durable backend unchanged.
* ``/2015-03-31/event-source-mappings[/{UUID}]``: Create, Get, List and Delete of SQS
  event source mappings, each run by a poller as Lambda runs it
  (local/services/event_sources.py), when the service is given the SQS endpoint.
* ``/_local/...`` is a debug surface for tests: workers, invocation counts, health.

Errors are shaped as Lambda's (``x-amzn-ErrorType`` header + JSON body), so boto3
raises its modelled exceptions. The service hands every handler run to a *runner*
(:class:`local.runtime.workers.WorkerPools`) and never knows how functions run.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Protocol
from urllib.parse import unquote

from aws_durable_execution_sdk_python_testing.invoker import INVOCATION_MARKER_HEADER

from local.backends.durable import DurableBackendClient, DurableBackendError
from local.runtime.functions import (
    ACCOUNT_ID,
    ALIAS,
    LATEST,
    PUBLISHED_VERSION,
    FunctionConfig,
    parse_function_identifier,
)
from local.runtime.workers import (
    InvocationContext,
    InvocationResult,
    WorkerCapacityError,
)
from local.services.event_sources import EventSourceMappings, MappingError
from local.services.http_base import DEFAULT_HOST, LocalHttpService, Request, Response

logger = logging.getLogger(__name__)

INVOKE_PREFIX = "/2015-03-31/functions/"
INVOKE_SUFFIX = "/invocations"
DURABLE_API_PREFIX = "/2025-12-01/"
EVENT_SOURCE_MAPPINGS_PATH = "/2015-03-31/event-source-mappings"
QUALIFIERS = (ALIAS, PUBLISHED_VERSION, LATEST)

# The Invoke API's constraints (botocore's lambda service model, shapes TenantId and
# DurableExecutionName): (member, pattern, min length, max length).
TENANT_ID_CONSTRAINT = ("tenantId", r"[a-zA-Z0-9\._:\/=+\-@ ]+", 1, 256)
EXECUTION_NAME_CONSTRAINT = ("durableExecutionName", r"[a-zA-Z0-9-_]+", 1, 64)

# Lambda's error when the tenant id does not fit the function's tenancy configuration:
# InvalidParameterValueException with the text of the Lambda guide's "Troubleshooting
# tenant isolation" page (the service's exact wire message is not documented).
TENANCY_MESSAGE = "Tenant ID configuration not specified or passed to a function when tenant isolation is not enabled."

# The durable APIs that answer a callback; AWS answers CallbackTimeoutException (400)
# when the callback is no longer open (answered, or timed out), the emulator 404.
CALLBACK_ANSWER_PATH = re.compile(r"^/2025-12-01/durable-execution-callbacks/([^/]+)/(?:succeed|fail|heartbeat)$")
CALLBACK_CLOSED_MESSAGE = (
    "The callback ID token has either expired or the callback associated with the token has already been closed."
)

# A synchronous (RequestResponse) Invoke of a durable function waits for the execution
# to end. The AWS CLI gives up reading after 60 s and retries; answer before that.
SYNC_WAIT_LIMIT_SECONDS = 50.0


class FunctionRunner(Protocol):
    """Runs a function's handler once; see :class:`local.runtime.workers.WorkerPools`."""

    def invoke(self, function: FunctionConfig, event: Any, context: InvocationContext) -> InvocationResult: ...

    def describe(self) -> list[dict[str, Any]]: ...


class LambdaApiError(Exception):
    """An error answered in Lambda's shape.

    ``message_member`` is the body's name for the message: ``message`` by default,
    ``Message`` where botocore's model names the member so (``DurableExecutionAlreadyStartedException``).
    """

    def __init__(self, status: int, error_type: str, message: str, *, message_member: str = "message") -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.message_member = message_member


def check_constraint(value: str, constraint: tuple[str, str, int, int]) -> None:
    """Refuse ``value`` as Lambda's request validation does (ValidationException, 400)."""
    member, pattern, low, high = constraint
    if len(value) > high:
        broken = f"Member must have length less than or equal to {high}"
    elif len(value) < low:
        broken = f"Member must have length greater than or equal to {low}"
    elif not re.fullmatch(pattern, value):
        broken = f"Member must satisfy regular expression pattern: {pattern}"
    else:
        return
    raise LambdaApiError(400, "ValidationException",
                         f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {broken}")


def error_response(status: int, error_type: str, message: str, request_id: str, *,
                   message_member: str = "message") -> Response:
    """A Lambda-shaped error response boto3 maps to ``client.exceptions.<error_type>``."""
    return Response.json(
        status,
        {"Type": "User", message_member: message},
        {"x-amzn-ErrorType": error_type, "x-amzn-RequestId": request_id},
    )


class LocalLambdaService(LocalHttpService):
    """Lambda's Invoke API for the pattern's functions, plus the durable APIs.

    Args:
        functions: The functions this service hosts.
        runner: Runs handlers (one worker pool per function and tenant).
        durable: Client of the durable backend.
        region: Region reported in ARNs.
        host: Interface to bind.
        port: Port to bind.
    """

    name = "lambda"

    def __init__(
        self,
        *,
        functions: list[FunctionConfig],
        runner: FunctionRunner,
        durable: DurableBackendClient,
        region: str,
        host: str = DEFAULT_HOST,
        port: int = 0,
        health_checks: dict[str, Callable[[], bool]] | None = None,
        sqs_endpoint_url: str | None = None,
        state_dir: Path | None = None,
    ) -> None:
        super().__init__(host, port)
        self._functions = {function.name: function for function in functions}
        self._runner = runner
        self._durable = durable
        self._region = region
        self._health_checks = dict(health_checks or {})
        self._counts: Counter[tuple[str, str | None, str]] = Counter()
        self._counts_lock = threading.Lock()
        # Starting an execution by name is check-then-start (find, then start) against
        # the emulator, which does not refuse a second execution with the same name. The
        # durable service decides atomically, so starts of one (function, name) are
        # serialized here: one lock per name in use, [lock, callers], dropped when its
        # last caller leaves (the map only holds names being started right now).
        self._start_locks: dict[tuple[str, str], list[Any]] = {}
        self._start_locks_guard = threading.Lock()
        # SQS event source mappings, polled from the moto server's queues (None: no SQS here).
        self.event_sources = EventSourceMappings(
            sqs_endpoint_url=sqs_endpoint_url, region=region, account=ACCOUNT_ID, invoke=self._invoke_for_mapping,
            function_arn=self._function_arn, state_dir=state_dir,
        ) if sqs_endpoint_url else None

    def start(self) -> None:
        """Serve, then start the event source mappings' pollers."""
        super().start()
        if self.event_sources is not None:
            self.event_sources.start()

    def stop(self) -> None:
        """Stop the pollers (each within one long poll), then serving."""
        if self.event_sources is not None:
            self.event_sources.stop()
        super().stop()

    # -- routing ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        path = request.path
        try:
            if path.startswith(INVOKE_PREFIX) and path.endswith(INVOKE_SUFFIX) and request.method == "POST":
                identifier = unquote(path[len(INVOKE_PREFIX):-len(INVOKE_SUFFIX)])
                return self._invoke(identifier, request, request_id)
            if path.startswith(DURABLE_API_PREFIX):
                return self._forward(request)
            if path.rstrip("/") == EVENT_SOURCE_MAPPINGS_PATH or path.startswith(EVENT_SOURCE_MAPPINGS_PATH + "/"):
                return self._event_source_mappings(request, request_id)
            if path.startswith("/_local/") and request.method == "GET":
                return self._debug(path)
            raise LambdaApiError(404, "UnknownOperationException", f"Unknown operation {request.method} {path}")
        except LambdaApiError as error:
            return error_response(error.status, error.error_type, error.message, request_id,
                                  message_member=error.message_member)

    # -- Invoke ----------------------------------------------------------------------------

    def _resolve(self, identifier: str, query_qualifier: str | None) -> tuple[FunctionConfig, str | None]:
        parsed = parse_function_identifier(identifier)
        if parsed is None:
            raise LambdaApiError(400, "InvalidParameterValueException", f"Invalid function name: {identifier}")
        name, qualifier = parsed
        if qualifier and query_qualifier and qualifier != query_qualifier:
            raise LambdaApiError(
                400, "InvalidParameterValueException",
                "The derived qualifier from the function name does not match the specified qualifier.",
            )
        qualifier = qualifier or query_qualifier
        function = self._functions.get(name)
        if function is None or (qualifier is not None and qualifier not in QUALIFIERS):
            arn = f"arn:aws:lambda:{self._region}:{ACCOUNT_ID}:function:{name}"
            raise LambdaApiError(404, "ResourceNotFoundException",
                                 f"Function not found: {arn}{':' + qualifier if qualifier else ''}")
        return function, qualifier

    @staticmethod
    def _check_tenant(function: FunctionConfig, tenant_id: str | None) -> None:
        if tenant_id is not None:
            check_constraint(tenant_id, TENANT_ID_CONSTRAINT)
        if function.per_tenant != (tenant_id is not None):
            raise LambdaApiError(400, "InvalidParameterValueException", TENANCY_MESSAGE)

    def _invoke(self, identifier: str, request: Request, request_id: str) -> Response:
        function, qualifier = self._resolve(identifier, request.query.get("Qualifier"))
        tenant_id = request.header("X-Amz-Tenant-Id")
        self._check_tenant(function, tenant_id)
        execution_name = request.header("X-Amz-Durable-Execution-Name")
        if execution_name is not None:
            check_constraint(execution_name, EXECUTION_NAME_CONSTRAINT)
        invocation_type = request.header("X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type not in ("RequestResponse", "Event", "DryRun"):
            raise LambdaApiError(400, "InvalidParameterValueException", f"Invalid invocation type: {invocation_type}")
        try:
            event = json.loads(request.body) if request.body else {}
        except ValueError as exc:
            raise LambdaApiError(400, "InvalidRequestContentException",
                                 f"Could not parse request body into json: {exc}") from exc
        if invocation_type == "DryRun":
            return Response(204, {"x-amzn-RequestId": request_id})

        handler_run = (request.header(INVOCATION_MARKER_HEADER) or "").lower() == "true"
        if function.durable and not handler_run:
            return self._start_execution(function, qualifier, tenant_id, request, invocation_type, request_id)

        context = InvocationContext(
            request_id=request_id,
            tenant_id=tenant_id,
            function_version=FunctionConfig.executed_version(qualifier),
            invoked_function_arn=function.arn(self._region, qualifier),
        )
        self._count(function.name, tenant_id, "handler")
        headers = {"x-amzn-RequestId": request_id, "X-Amz-Executed-Version": context.function_version}
        if invocation_type == "Event":
            threading.Thread(target=self._run_event, args=(function, event, context), daemon=True).start()
            return Response(202, headers)
        result = self._run(function, event, context, caller_waits=True)
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if result.body is not None:  # as the runtime marshalled it
            return Response(200, {**headers, "Content-Type": "application/json"}, result.body)
        return Response.json(200, result.payload, headers)

    def _run_event(self, function: FunctionConfig, event: Any, context: InvocationContext) -> None:
        """An asynchronous (Event) invocation: nobody waits for its result."""
        try:
            self._run(function, event, context, caller_waits=False)
        except LambdaApiError as error:
            logger.warning("asynchronous invocation of %s dropped: %s", function.name, error.message)

    def _run(self, function: FunctionConfig, event: Any, context: InvocationContext, *,
             caller_waits: bool) -> InvocationResult:
        try:
            result = self._runner.invoke(function, event, context)
        except WorkerCapacityError as exc:
            raise LambdaApiError(429, "TooManyRequestsException", f"Rate Exceeded. {exc}") from exc
        if result.function_error and caller_waits:
            # The caller gets the error and decides whether it matters (the authorizer's
            # "Unauthorized" is an ordinary 401), so one quiet line, not a stack trace.
            error = result.payload if isinstance(result.payload, dict) else {}
            logger.debug("%s (tenant %s) answered %s: %s", function.name, context.tenant_id,
                         error.get("errorType"), error.get("errorMessage"))
        elif result.function_error:
            logger.warning("%s (tenant %s) failed: %s", function.name, context.tenant_id, result.payload)
        return result

    def _start_execution(
        self,
        function: FunctionConfig,
        qualifier: str | None,
        tenant_id: str | None,
        request: Request,
        invocation_type: str,
        request_id: str,
    ) -> Response:
        name = request.header("X-Amz-Durable-Execution-Name") or str(uuid.uuid4())  # checked in _invoke
        payload = request.body.decode() if request.body else "{}"
        key = (function.name, name)
        with self._start_locks_guard:
            entry = self._start_locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:  # find and start as one step for this name (see __init__)
                existing = self._durable.find_execution(function.name, name)
                if existing is not None:
                    # Same name and input: Lambda answers with the existing execution (idempotent start).
                    if existing.get("InputPayload") != payload:
                        # botocore's lambda model: 409, members Type and Message.
                        raise LambdaApiError(
                            409, "DurableExecutionAlreadyStartedException",
                            f"A durable execution named {name} already exists with a different input.",
                            message_member="Message",
                        )
                    arn = existing["DurableExecutionArn"]
                else:
                    try:
                        arn = self._durable.start_execution(
                            function_name=function.name,
                            qualifier=qualifier or LATEST,
                            execution_name=name,
                            tenant_id=tenant_id,
                            payload=payload,
                            execution_timeout_seconds=function.execution_timeout_seconds,
                            retention_days=function.retention_days,
                        )
                    except DurableBackendError as exc:
                        raise LambdaApiError(exc.status, str(exc.body.get("Type") or "ServiceException"),
                                             str(exc.body.get("message") or exc.body.get("Message") or exc.body)) from exc
                    self._count(function.name, tenant_id, "start")
        finally:
            with self._start_locks_guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._start_locks[key]
        headers = {
            "x-amzn-RequestId": request_id,
            "X-Amz-Executed-Version": FunctionConfig.executed_version(qualifier),
            "X-Amz-Durable-Execution-Arn": arn,
        }
        if invocation_type == "Event":
            return Response(202, headers)
        waited = min(float(function.timeout_seconds), SYNC_WAIT_LIMIT_SECONDS)
        ended = self._durable.wait_for_end(arn, timeout=waited)
        if ended is None:
            # Chosen locally (AWS documents no answer for this): a function error the CLI
            # prints and does not retry, well before its 60 s read timeout. The execution runs on.
            headers["X-Amz-Function-Error"] = "Unhandled"
            return Response.json(200, {
                "errorType": "Local.ExecutionStillRunning",
                "errorMessage": (f"Durable execution {arn} is still running after {waited:.0f}s (it waits for its "
                                 "callback); invoke with --invocation-type Event and follow it with "
                                 "get-durable-execution."),
                "requestId": request_id,
                "stackTrace": [],
            }, headers)
        if ended["Status"] == "SUCCEEDED":
            return Response(200, {**headers, "Content-Type": "application/json"},
                            (ended.get("Result") or "null").encode())
        error = ended.get("Error") or {}
        headers["X-Amz-Function-Error"] = "Unhandled"
        return Response.json(200, {"errorType": error.get("ErrorType", ended["Status"]),
                                   "errorMessage": error.get("ErrorMessage", "")}, headers)

    # -- event source mappings -------------------------------------------------------------

    def _event_source_mappings(self, request: Request, request_id: str) -> Response:
        """CreateEventSourceMapping (POST), ListEventSourceMappings (GET), Get and Delete (GET/DELETE /{UUID})."""
        if self.event_sources is None:
            raise LambdaApiError(400, "InvalidParameterValueException", "This local Lambda service has no SQS endpoint.")
        mapping_uuid = unquote(request.path[len(EVENT_SOURCE_MAPPINGS_PATH):].strip("/"))
        headers = {"x-amzn-RequestId": request_id}
        try:
            if not mapping_uuid and request.method == "POST":
                try:
                    body = json.loads(request.body or b"{}")
                except ValueError as exc:
                    raise LambdaApiError(400, "InvalidRequestContentException",
                                         f"Could not parse request body into json: {exc}") from exc
                if not isinstance(body, dict):
                    raise LambdaApiError(400, "InvalidRequestContentException", "The request body must be an object.")
                return Response.json(202, self.event_sources.create(body), headers)
            if not mapping_uuid and request.method == "GET":
                return Response.json(200, self.event_sources.list(
                    event_source_arn=request.query.get("EventSourceArn"), function_name=request.query.get("FunctionName"),
                    marker=request.query.get("Marker"), max_items=request.query.get("MaxItems")), headers)
            if mapping_uuid and "/" not in mapping_uuid and request.method == "GET":
                return Response.json(200, self.event_sources.get(mapping_uuid), headers)
            if mapping_uuid and "/" not in mapping_uuid and request.method == "DELETE":
                return Response.json(202, self.event_sources.delete(mapping_uuid), headers)
        except MappingError as error:
            raise LambdaApiError(error.status, error.error_type, error.message) from error
        raise LambdaApiError(404, "UnknownOperationException", f"Unknown operation {request.method} {request.path}")

    def _function_arn(self, identifier: str) -> str | None:
        """The unqualified ARN of a hosted function named by name or ARN; None when there is none."""
        parsed = parse_function_identifier(identifier)
        function = self._functions.get(parsed[0]) if parsed else None
        return function.arn(self._region) if function else None

    def _invoke_for_mapping(self, function_name: str, event: dict[str, Any]) -> tuple[str | None, Any]:
        """An event source mapping's synchronous invocation, in the function's worker."""
        function = self._functions[function_name]
        context = InvocationContext(
            request_id=str(uuid.uuid4()), tenant_id=None, function_version=FunctionConfig.executed_version(None),
            invoked_function_arn=function.arn(self._region),
        )
        self._count(function.name, None, "handler")
        result = self._run(function, event, context, caller_waits=True)
        return result.function_error, result.payload

    # -- durable APIs ----------------------------------------------------------------------

    def _forward(self, request: Request) -> Response:
        path = request.path + (f"?{request.raw_query}" if request.raw_query else "")
        # user-agent too: with --fault-injection it names the calling environment.
        headers = {key: value for key, value in request.headers.items()
                   if key.lower() in ("content-type", "accept", "user-agent")}
        try:
            response = self._durable.request(request.method, path, request.body, headers)
        except OSError as exc:
            raise LambdaApiError(502, "ServiceException", f"durable backend unreachable: {exc}") from exc
        headers = {key: value for key, value in response.headers.items()
                   if key.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server")}
        if response.status >= 400 and not any(key.lower() == "x-amzn-errortype" for key in headers):
            # The emulator names the error in the body's "Type"; boto3 reads it from this header.
            try:
                error_type = json.loads(response.body).get("Type")
            except (ValueError, AttributeError):
                error_type = None
            closed = CALLBACK_ANSWER_PATH.match(request.path)
            if error_type == "ResourceNotFoundException" and closed and self._durable.callback_was_issued(
                    unquote(closed.group(1))):
                # A callback that exists but no longer waits (answered, timed out): AWS's error.
                raise LambdaApiError(400, "CallbackTimeoutException", CALLBACK_CLOSED_MESSAGE)
            if error_type and error_type != "User":
                headers["x-amzn-ErrorType"] = error_type
        return Response(response.status, headers, response.body)

    # -- debug surface ---------------------------------------------------------------------

    def _count(self, function: str, tenant_id: str | None, kind: str) -> None:
        with self._counts_lock:
            self._counts[(function, tenant_id, kind)] += 1

    def _debug(self, path: str) -> Response:
        if path == "/_local/workers":
            return Response.json(200, {"workers": self._runner.describe()})
        if path == "/_local/invocations":
            with self._counts_lock:
                rows = [{"functionName": f, "tenantId": t, "kind": k, "count": n}
                        for (f, t, k), n in sorted(self._counts.items(), key=str)]
            return Response.json(200, {"invocations": rows})
        if path == "/_local/health":
            checks = {name: check() for name, check in self._health_checks.items()}
            return Response.json(200 if all(checks.values()) else 503, {"healthy": all(checks.values()), **checks})
        raise LambdaApiError(404, "ResourceNotFoundException", f"Unknown debug path {path}")
