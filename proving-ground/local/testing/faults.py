"""Fault injection for tests: fail, stall or cut chosen DynamoDB, EventBridge, SQS, API Gateway and
durable-service calls, and restart the emulator. Enabled only by ``python -m local --fault-injection``.

The functions' ``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL_EVENTBRIDGE``,
``AWS_ENDPOINT_URL_SQS`` and ``AWS_ENDPOINT_URL_API_GATEWAY`` point at one proxy
(:class:`AwsFaultProxy`): it forwards the JSON-protocol calls to moto (one server answers
all three) and the API Gateway key and usage-plan calls (REST, told apart by their
signature's service) to the local keys service; their durable-service calls
reach the local Lambda service, which forwards them to the emulator through
:class:`FaultyDurableClient`. Both consult one :class:`FaultPlan`.
``POST /_faults`` (on the proxy) arms a rule, ``GET /_faults`` lists rules with their
hits, ``DELETE /_faults`` clears them, ``POST /_faults/durable-emulator/restart``
stops and restarts the durable emulator (its sqlite store persists).
``POST /_faults/calls`` starts recording every call that passes the plan (a census
of the I/O a request makes), ``GET /_faults/calls`` lists them, ``DELETE
/_faults/calls`` stops recording and forgets them.

Every I/O call can fail, can stall past its timeout and then land (so a retry runs
after the first attempt landed), and can be cut off by a killed process; a rule says
which: ``fail``; ``after_landing`` with ``delay_seconds``; ``kill_caller``. ``fail`` with
``after_landing`` lets the call land, then answers an error: the effect happened, the caller
does not know and retries, as after a timeout, without waiting out a read timeout.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from local.backends.durable import DurableBackendError, ForwardedResponse
from local.runtime.workers import ENVIRONMENT_UA_PREFIX
from local.services.http_base import DEFAULT_HOST, LocalHttpService, Request, Response

logger = logging.getLogger(__name__)

ADMIN_PATH = "/_faults"
DYNAMODB = "dynamodb"
EVENTS = "events"
# The provisioner's SQS calls (JSON protocol, X-Amz-Target AmazonSQS.*): its tenants' callback queues.
SQS = "sqs"
DURABLE = "durable"
# The provisioner's API Gateway calls (REST): its tenants' metering keys and usage-plan keys.
APIGATEWAY = "apigateway"
# The X-Amz-Target prefix of each proxied service's JSON protocol.
_TARGET_PREFIXES = {"DynamoDB_20120810": DYNAMODB, "AWSEvents": EVENTS, "AmazonSQS": SQS}
# What a throttled or failing call returns; botocore retries them, then the caller decides.
_ERRORS: dict[tuple[str, str], tuple[int, dict[str, str], dict[str, str]]] = {
    (DYNAMODB, "throttle"): (400, {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                                   "message": "injected fault: throughput exceeded"},
                             {"Content-Type": "application/x-amz-json-1.0"}),
    (DYNAMODB, "unavailable"): (500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                                      "message": "injected fault: internal server error"},
                                {"Content-Type": "application/x-amz-json-1.0"}),
    (EVENTS, "throttle"): (400, {"__type": "ThrottlingException", "message": "injected fault: rate exceeded"},
                           {"Content-Type": "application/x-amz-json-1.1"}),
    (EVENTS, "unavailable"): (500, {"__type": "InternalException", "message": "injected fault: internal error"},
                              {"Content-Type": "application/x-amz-json-1.1"}),
    (SQS, "throttle"): (400, {"__type": "com.amazonaws.sqs#ThrottlingException", "message": "injected fault: rate exceeded"},
                        {"Content-Type": "application/x-amz-json-1.0"}),
    (SQS, "unavailable"): (500, {"__type": "com.amazonaws.sqs#InternalError", "message": "injected fault: internal error"},
                           {"Content-Type": "application/x-amz-json-1.0"}),
    (APIGATEWAY, "throttle"): (429, {"message": "injected fault: too many requests"},
                               {"x-amzn-ErrorType": "TooManyRequestsException", "Content-Type": "application/json"}),
    (APIGATEWAY, "unavailable"): (503, {"message": "injected fault: service unavailable"},
                                  {"x-amzn-ErrorType": "ServiceUnavailableException",
                                   "Content-Type": "application/json"}),
    (DURABLE, "throttle"): (429, {"Type": "User", "message": "injected fault: rate exceeded"},
                            {"x-amzn-ErrorType": "TooManyRequestsException"}),
    (DURABLE, "unavailable"): (500, {"Type": "Service", "message": "injected fault: service exception"},
                               {"x-amzn-ErrorType": "ServiceException"}),
}
# The service a SigV4 request is signed for (``Credential=<key>/<date>/<region>/<service>/aws4_request``).
_SIGNED_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
_CALLER = re.compile(rf"app/{re.escape(ENVIRONMENT_UA_PREFIX)}([0-9a-f]+)")
# (method, path, operation): the first that matches names a forwarded durable API call.
_DURABLE_OPERATIONS = (
    ("POST", re.compile(r"/durable-execution-callbacks/[^/]+/succeed$"), "SendDurableExecutionCallbackSuccess"),
    ("POST", re.compile(r"/durable-execution-callbacks/[^/]+/fail$"), "SendDurableExecutionCallbackFailure"),
    ("POST", re.compile(r"/durable-execution-callbacks/[^/]+/heartbeat$"), "SendDurableExecutionCallbackHeartbeat"),
    ("POST", re.compile(r"/durable-executions/.+/checkpoint$"), "CheckpointDurableExecution"),
    ("GET", re.compile(r"/durable-executions/.+/state$"), "GetDurableExecutionState"),
    ("GET", re.compile(r"/durable-executions/.+/history$"), "GetDurableExecutionHistory"),
    ("GET", re.compile(r"/durable-executions/[^?]+$"), "GetDurableExecution"),
)

# (method, path, operation): the API Gateway calls the provisioner makes (its keys and usage plans).
_APIGATEWAY_OPERATIONS = (
    ("POST", re.compile(r"^/apikeys$"), "CreateApiKey"),
    ("GET", re.compile(r"^/apikeys$"), "GetApiKeys"),
    ("GET", re.compile(r"^/apikeys/[^/]+$"), "GetApiKey"),
    ("DELETE", re.compile(r"^/apikeys/[^/]+$"), "DeleteApiKey"),
    ("GET", re.compile(r"^/usageplans$"), "GetUsagePlans"),
    ("POST", re.compile(r"^/usageplans/[^/]+/keys$"), "CreateUsagePlanKey"),
    ("GET", re.compile(r"^/usageplans/[^/]+/keys$"), "GetUsagePlanKeys"),
    ("DELETE", re.compile(r"^/usageplans/[^/]+/keys/[^/]+$"), "DeleteUsagePlanKey"),
)


@dataclass
class FaultRule:
    """Affect the next ``count`` calls that match.

    Attributes:
        target: ``dynamodb`` (the functions' DynamoDB calls), ``events`` (their EventBridge
            calls: the submitter's ``PutEvents``, the provisioner's rules), ``sqs`` (the
            provisioner's queues, the router's dead letters), ``apigateway`` (the
            provisioner's metering keys and usage-plan keys) or ``durable`` (their
            durable-execution API calls: callbacks, get, history).
        operation: API operation (``UpdateItem``, ``SendDurableExecutionCallbackSuccess`` ...) or ``*``.
        body_contains: Only calls whose body (for ``durable`` and ``apigateway``: decoded path
            and query, a newline, then the body) contains this text (or each text of a list).
        count: How many matching calls to affect.
        delay_seconds: Stall each affected call this long (before failing or forwarding it,
            or, with ``after_landing``, after forwarding it).
        fail: Answer with an error instead of forwarding (nothing lands; with
            ``after_landing``: after forwarding).
        error: ``throttle`` (429-class) or ``unavailable`` (500-class), when ``fail``.
        after_landing: Forward first, then stall the answer (the call lands, the caller
            times out and retries) or, with ``fail``, answer the error (the call lands,
            the caller sees a 5xx and retries).
        kill_caller: Forward, then SIGKILL the execution environment that made the call.
        skip: Let this many matching calls through untouched first (aims at the second
            of two calls with the same body, such as a read that a request repeats).
        label: A name for the rule, so a test can find its hits among other rules.
        caller: Only calls of this function (its name, or the name's last ``-`` part:
            ``api``, ``workflow``, ``authorizer``); None for any caller. Two calls can
            carry the same body (the api's and the workflow's tenant reads).
        hits: How many calls the rule affected so far.
        skipped: How many matching calls it let through so far (``skip``).
    """

    target: str = DYNAMODB
    operation: str = "*"
    body_contains: str | list[str] | None = None
    count: int = 1
    delay_seconds: float = 0.0
    fail: bool = True
    error: str = "throttle"
    after_landing: bool = False
    kill_caller: bool = False
    skip: int = 0
    label: str = ""
    caller: str | None = None
    hits: int = 0
    skipped: int = 0

    def __post_init__(self) -> None:
        if (self.target, self.error) not in _ERRORS:
            raise ValueError(f"unknown target or error: {self.target}/{self.error}")

    def matches(self, target: str, operation: str, text: bytes, function: str | None = None) -> bool:
        return (
            self.hits < self.count
            and self.target == target
            and self.operation in ("*", operation)
            and (self.caller is None or is_function(function, self.caller))
            and all(part.encode() in text for part in self._parts())
        )

    def _parts(self) -> list[str]:
        if self.body_contains is None:
            return []
        return [self.body_contains] if isinstance(self.body_contains, str) else list(self.body_contains)


# The fault kinds the tests and the benchmark aim at one call on the callback path.
FAILS_ONCE = "fails once"
FAILS_EVERY_ATTEMPT = "fails until retries are exhausted"
LANDS_LATE = "lands, answers late"
KILLED_AFTER = "killed right after"
FAULT_KINDS = (FAILS_ONCE, FAILS_EVERY_ATTEMPT, LANDS_LATE, KILLED_AFTER)
# LANDS_LATE without the wait: the call lands, then its caller gets a 5xx instead of the answer
# (botocore retries it, so the retry runs after the first attempt took effect, as after a timeout).
LANDS_THEN_FAILS = "lands, answers an error"
# Not a fault: the calls pass untouched and the rule's hits count them (a test's spy).
COUNTED_ONLY = "passes, counted"
# A census is a bounded record: a forgotten recording must not grow the stack for ever.
MAX_RECORDED_CALLS = 10_000


@dataclass(frozen=True)
class RecordedCall:
    """One call that passed the plan while recording: what it was and who made it.

    Attributes:
        target: ``dynamodb`` or ``durable``.
        operation: The API operation (``GetItem``, ``SendDurableExecutionCallbackSuccess`` ...).
        environment: The calling function's execution environment id; None for a call
            made from outside the functions (a test reading the execution, say).
        function: The calling function's name; None as for ``environment``.
        text: The body (for ``durable``, the decoded path, a newline, then the body).
        faulted: Whether a rule affected it.
    """

    target: str
    operation: str
    environment: str | None
    function: str | None
    text: str
    faulted: bool


def _client_config(target: str, caller: str | None = None) -> Any:
    """The botocore config of the client that makes ``caller``'s calls to ``target``."""
    from shared.aws_clients import (  # the functions' own clients
        DYNAMODB_CONFIG,
        EVENTS_CONFIG,
        LAMBDA_CONFIG,
        PROVISIONER_CONFIG,
    )

    # The provisioner's SQS, EventBridge and API Gateway clients wait longer (PROVISIONER_CONFIG);
    # the router's SQS client retries and times out as EVENTS_CONFIG does.
    if target == APIGATEWAY or (target in (SQS, EVENTS) and caller is not None and is_function(caller, "provisioner")):
        return PROVISIONER_CONFIG
    return {DYNAMODB: DYNAMODB_CONFIG, EVENTS: EVENTS_CONFIG, SQS: EVENTS_CONFIG, DURABLE: LAMBDA_CONFIG}[target]


def fault_rule(kind: str, *, target: str, operation: str, body_contains: list[str], step_attempts: int = 1,
               skip: int = 0, label: str = "", caller: str | None = None,
               delay_seconds: float = 0.0) -> dict[str, Any]:
    """The rule (``POST /_faults`` body) that gives one call the fault ``kind`` (or counts it: ``COUNTED_ONLY``).

    The numbers come from the functions' botocore configs (the ``caller``'s, where
    functions differ): "every attempt" is botocore's total attempts (times
    ``step_attempts`` when a durable step retries the call), and "late" outlasts the
    caller's read timeout by a second. ``LANDS_THEN_FAILS`` answers a 5xx once the
    call landed, which botocore retries at once.
    ``skip``, ``label`` and ``caller`` pass through to :class:`FaultRule`;
    ``delay_seconds`` stalls a failing call first (so the test can act while it hangs).
    """
    config = _client_config(target, caller)
    rule: dict[str, Any] = {"target": target, "operation": operation, "body_contains": body_contains, "count": 1,
                            "skip": skip, "label": label, "caller": caller}
    if kind == FAILS_ONCE:
        return {**rule, "fail": True, "delay_seconds": delay_seconds}
    if kind == FAILS_EVERY_ATTEMPT:
        return {**rule, "fail": True, "delay_seconds": delay_seconds,
                "count": config.retries["total_max_attempts"] * step_attempts}
    if kind == LANDS_LATE:
        return {**rule, "fail": False, "after_landing": True, "delay_seconds": config.read_timeout + 1}
    if kind == LANDS_THEN_FAILS:
        return {**rule, "fail": True, "after_landing": True, "error": "unavailable"}
    if kind == KILLED_AFTER:
        return {**rule, "fail": False, "kill_caller": True}
    if kind == COUNTED_ONLY:
        return {**rule, "fail": False, "count": MAX_RECORDED_CALLS}
    raise ValueError(f"unknown fault kind {kind!r}")


class FaultPlan:
    """The armed rules, shared by every interception point.

    Args:
        kill_environment: Kills an execution environment by id (``WorkerPools.kill_environment``).
        function_of: The function name of an execution environment id
            (``WorkerPools.function_of_environment``), for rules with a ``caller``.
    """

    def __init__(self, kill_environment: Callable[[str], bool],
                 function_of: Callable[[str], str | None] = lambda _environment_id: None) -> None:
        self._kill_environment = kill_environment
        self._function_of = function_of
        self._rules: list[FaultRule] = []
        self._recorded: deque[RecordedCall] | None = None
        self._lock = threading.Lock()

    def arm(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(rule) for rule in self._rules]

    def start_recording(self) -> None:
        """Record every call from now on (forgetting any earlier recording)."""
        with self._lock:
            self._recorded = deque(maxlen=MAX_RECORDED_CALLS)

    def stop_recording(self) -> None:
        with self._lock:
            self._recorded = None

    def recorded(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(call) for call in self._recorded or ()]

    def _choose(self, target: str, operation: str, text: bytes, function: str | None) -> FaultRule | None:
        """The first matching rule that is past its ``skip``; counts the skip or the hit (under the lock)."""
        for rule in self._rules:
            if not rule.matches(target, operation, text, function):
                continue
            if rule.skipped < rule.skip:
                rule.skipped += 1
                continue
            rule.hits += 1
            return rule
        return None

    def apply(self, target: str, operation: str, text: bytes, user_agent: str,
              forward: Callable[[], tuple[int, dict[str, str], bytes]]) -> tuple[int, dict[str, str], bytes]:
        """Run ``forward`` (the real call) as the first matching rule says; untouched if none matches."""
        environment = _environment(user_agent)
        # Outside the plan's lock: the worker pools take their own.
        function = self._function_of(environment) if environment else None
        with self._lock:
            rule = self._choose(target, operation, text, function)
            if self._recorded is not None:
                self._recorded.append(RecordedCall(target, operation, environment, function,
                                                   text.decode("utf-8", "replace"), rule is not None))
        if rule is None:
            return forward()
        logger.warning("injecting fault into %s %s (rule %s)", target, operation, rule)
        if rule.fail:
            if rule.after_landing:
                forward()  # it lands; its answer is lost
            time.sleep(rule.delay_seconds)
            status, body, headers = _ERRORS[(target, rule.error)]
            return status, headers, json.dumps(body).encode()
        if not rule.after_landing and not rule.kill_caller:
            time.sleep(rule.delay_seconds)
        answer = forward()
        if rule.after_landing:
            time.sleep(rule.delay_seconds)
        if rule.kill_caller:
            if environment is None or not self._kill_environment(environment):
                logger.warning("kill_caller: no environment found in user agent %r", user_agent)
        return answer


def is_function(function: str | None, caller: str) -> bool:
    """Whether ``function`` (a function name) is ``caller``: the whole name or its last ``-`` part."""
    return function is not None and (function == caller or function.endswith("-" + caller))


def _environment(user_agent: str) -> str | None:
    """The execution environment a function's call names in its user agent; None for any other caller."""
    caller = _CALLER.search(user_agent or "")
    return caller.group(1) if caller else None


def apigateway_operation(method: str, path: str) -> str:
    """The API Gateway operation a request is (``CreateApiKey`` ...), else its path."""
    for operation_method, pattern, name in _APIGATEWAY_OPERATIONS:
        if method == operation_method and pattern.match(path):
            return name
    return path


def signed_service(authorization: str) -> str | None:
    """The service a SigV4 ``Authorization`` header is signed for; None if it is not one."""
    match = _SIGNED_SERVICE.search(authorization or "")
    return match.group(1) if match else None


def durable_operation(method: str, path: str) -> str:
    """The durable API operation a forwarded request is (``*``-matchable name), else its path."""
    plain = path.split("?", 1)[0]
    for operation_method, pattern, name in _DURABLE_OPERATIONS:
        if method == operation_method and pattern.search(plain):
            return name
    return plain


class FaultyDurableClient:
    """Wraps :class:`local.backends.durable.DurableBackendClient`: forwarded durable API calls obey the plan."""

    def __init__(self, inner: Any, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
        headers = dict(headers or {})
        user_agent = next((value for key, value in headers.items() if key.lower() == "user-agent"), "")

        def forward() -> tuple[int, dict[str, str], bytes]:
            response = self._inner.request(method, path, body, headers)
            return response.status, response.headers, response.body

        status, response_headers, response_body = self._plan.apply(
            DURABLE, durable_operation(method, path), unquote(path).encode() + b"\n" + (body or b""), user_agent, forward
        )
        return ForwardedResponse(status, response_headers, response_body)

    def start_execution(self, **arguments: Any) -> str:
        """An Invoke that starts a durable execution (operation ``StartExecution``; the rule's body text
        is the function, name and tenant, then the payload): a failing rule makes the Invoke answer
        Lambda's error (``throttle``: TooManyRequestsException, 429) and starts nothing."""
        described = {key: value for key, value in arguments.items() if key != "payload"}
        text = json.dumps(described).encode() + b"\n" + str(arguments.get("payload", "")).encode()

        def forward() -> tuple[int, dict[str, str], bytes]:
            return 202, {}, self._inner.start_execution(**arguments).encode()

        status, headers, body = self._plan.apply(DURABLE, "StartExecution", text, "", forward)
        if status >= 400:
            error = json.loads(body)
            raise DurableBackendError(status, {"Type": headers.get("x-amzn-ErrorType", "ServiceException"),
                                               "message": error.get("message", "")})
        return body.decode()


class AwsFaultProxy(LocalHttpService):
    """Forwards the functions' AWS calls unless an armed rule says otherwise: DynamoDB, EventBridge and
    SQS (JSON protocol) to ``upstream_url`` (moto), API Gateway's (REST) to ``apigateway_url``.
    """

    name = "aws-faults"

    def __init__(self, upstream_url: str, restart_emulator: Callable[[], None], plan: FaultPlan,
                 host: str = DEFAULT_HOST, port: int = 0, apigateway_url: str | None = None) -> None:
        super().__init__(host, port)
        self._upstream = _address(upstream_url, host)
        self._apigateway = _address(apigateway_url, host) if apigateway_url else None
        self._restart_emulator = restart_emulator
        self.plan = plan

    def handle(self, request: Request) -> Response:
        if request.path.startswith(ADMIN_PATH):
            return self._admin(request)
        user_agent = request.header("User-Agent") or ""
        amz_target = request.header("X-Amz-Target")
        if not amz_target and self._apigateway and signed_service(request.header("Authorization") or "") == APIGATEWAY:
            # REST: the operation is the method and path; the rule matches the decoded path and query, then the body.
            text = unquote(_path_and_query(request)).encode() + b"\n" + request.body
            status, headers, body = self.plan.apply(
                APIGATEWAY, apigateway_operation(request.method, request.path), text, user_agent,
                lambda: self._forward(request, self._apigateway))
            return Response(status, headers, body)
        service, _, operation = (amz_target or "").rpartition(".")
        status, headers, body = self.plan.apply(_TARGET_PREFIXES.get(service, DYNAMODB), operation, request.body,
                                                user_agent, lambda: self._forward(request, self._upstream))
        return Response(status, headers, body)

    @staticmethod
    def _forward(request: Request, upstream: tuple[str, int]) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(*upstream, timeout=60)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            connection.request(request.method, _path_and_query(request), body=request.body or None, headers=headers)
            upstream = connection.getresponse()
            return upstream.status, dict(upstream.getheaders()), upstream.read()
        finally:
            connection.close()

    def _admin(self, request: Request) -> Response:
        if request.path == f"{ADMIN_PATH}/durable-emulator/restart" and request.method == "POST":
            self._restart_emulator()
            return Response.json(200, {"restarted": "durable-emulator"})
        if request.path == f"{ADMIN_PATH}/calls":
            calls = self.plan.recorded()  # DELETE answers with what it forgets
            if request.method == "POST":
                self.plan.start_recording()
            elif request.method == "DELETE":
                self.plan.stop_recording()
            return Response.json(200, {"calls": calls})
        if request.path != ADMIN_PATH:
            return Response.json(404, {"message": "unknown fault endpoint"})
        if request.method == "POST":
            try:
                self.plan.arm(FaultRule(**json.loads(request.body or b"{}")))
            except (TypeError, ValueError) as error:
                return Response.json(400, {"message": f"invalid rule: {error}"})
        elif request.method == "DELETE":
            self.plan.clear()
        return Response.json(200, {"rules": self.plan.describe()})


def _address(url: str, default_host: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or default_host, parts.port or 80


def _path_and_query(request: Request) -> str:
    return f"{request.path}?{request.raw_query}" if request.raw_query else request.path
