"""The local REST gateway: the deployed routes, validation and integrations on loopback.

Everything API Gateway itself answers comes from the files main.tf deploys:
the integration's request parameters, mapping templates and integration
responses (``src/shared/api_gateway/start_workflow_integration.json`` and its
``.vtl`` files) and the gateway responses (``gateway_responses.json`` and
``gateway_response.vtl``), rendered with a Velocity engine (``proving-ground/local/services/vtl.py``).
Like the deployed REST API it:

* serves exactly the contract's routes; any other resource or method (methods
  are case-sensitive: ``get`` is none) answers ``MISSING_AUTHENTICATION_TOKEN``
  (main.tf: ``404 {"message": "Not Found"}``; API Gateway's default is 403
  "Missing Authentication Token");
* runs the ``REQUEST`` Lambda authorizer first. A request without one of its
  identity sources (the ``x-tenant-id`` and ``x-api-key`` headers) is
  ``UNAUTHORIZED`` (401) without invoking it; an authorizer failing with exactly
  ``Unauthorized`` is 401; one failing otherwise, or returning a malformed
  result (no ``principalId``, a policy that is no IAM policy, a context value
  that is an object or a list) is ``AUTHORIZER_CONFIGURATION_ERROR`` (main.tf:
  503, ``Retry-After``, message ``null``); an explicit Deny is ``ACCESS_DENIED``
  "User is not authorized to access this resource with an explicit deny", no
  Allow for the method "User is not authorized to access this resource".
  Context values become strings (``requestContext.authorizer``, ``$context.authorizer``).
  A route whose contract entry says ``"authorizer": false`` (``POST
  /callbacks/{callbackToken}``: the token is the credential) goes straight to
  its integration with no authorizer context, whatever headers it carries; its
  path is never logged (the resource template is). With the usage plans on it
  has its own method throttle (``THROTTLED``: 429, ``Retry-After``);
* then the request validator: ``POST /workflow`` bodies of media type
  ``application/json`` must be JSON text (UTF-8 without a byte-order mark: API
  Gateway's text payloads are UTF-8, RFC 8259 forbids the mark) valid against
  the request model, else ``BAD_REQUEST_BODY`` "Invalid request body" (the
  details only in the log, and in ``$context.error.validationErrorString``);
* ``POST /workflow``: the request template for the body's media type (none:
  ``UNSUPPORTED_MEDIA_TYPE``, passthrough ``NEVER``), the request parameters as
  Lambda Invoke headers (``X-Amz-Tenant-Id``, ``X-Amz-Invocation-Type``,
  ``X-Amz-Durable-Execution-Name``), then the integration response whose
  selection pattern matches (202 accepted, 502 for a function error);
* the other routes are ``AWS_PROXY``: a REST v1 proxy event to the api function,
  whose ``statusCode``/``headers``/``body`` become the response; a function
  error or a malformed answer is 502 ``Internal server error``;
* Lambda refusing an Invoke is ``INTEGRATION_FAILURE`` when it throttled (429;
  main.tf: 502) and API Gateway's 500 ``Internal server error`` otherwise (the
  selection patterns of a Lambda integration match a function error's message,
  never the Invoke's status, so a refusal such as 409
  ``DurableExecutionAlreadyStartedException`` cannot be mapped to another status);
* an integration (start or proxy) that has not answered within API Gateway's
  integration timeout (29 s) is ``INTEGRATION_TIMEOUT``: 504 ``Endpoint request
  timed out``; the invocation runs on, as on AWS.

Functions are reached through a :class:`FunctionInvoker`; the gateway never knows
how they run.
"""

from __future__ import annotations

import base64
import codecs
import fnmatch
import hashlib
import json
import logging
import threading
import time
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.runtime.functions import ALIAS
from local.services.contract import (
    API_PROXY,
    ASYNC_WORKFLOW_START,
    CONTROL_PROXY,
    ERROR_TYPE,
    ApiContract,
)
from local.services.http_base import DEFAULT_HOST, LocalHttpService, Request, Response
from local.services.iam_auth import AdminCredentials, verify
from local.services.proxy_event import build_authorizer_event, build_proxy_event
from local.services.throttle import MethodThrottle, UsagePlans
from local.services.vtl import TemplateInput, message_string, parameter_value
from shared import strict_json
from shared.callback_tokens import CALLBACKS_PATH
from shared.contract import Route

logger = logging.getLogger(__name__)

# $context.error.message of each refusal, as API Gateway words it.
MISSING_TOKEN = "Missing Authentication Token"
UNAUTHORIZED = "Unauthorized"
EXPLICIT_DENY = "User is not authorized to access this resource with an explicit deny"
IMPLICIT_DENY = "User is not authorized to access this resource"
INVALID_BODY = "Invalid request body"
UNSUPPORTED_MEDIA_TYPE = "Unsupported Media Type"
INTERNAL_ERROR = "Internal server error"
ENDPOINT_TIMED_OUT = "Endpoint request timed out"
# API Gateway's integration timeout: every integration of main.tf keeps the default
# timeout_milliseconds (29,000; tests/local/test_gateway.py checks that no .tf file sets it).
INTEGRATION_TIMEOUT_SECONDS = 29.0
# Lambda Invoke's throttling status: API Gateway answers INTEGRATION_FAILURE for it.
THROTTLED_STATUS = 429
# The Invoke headers an integration request parameter may set, and the invoke argument each is.
INVOKE_HEADERS = {
    "x-amz-invocation-type": "invocation_type",
    "x-amz-tenant-id": "tenant_id",
    "x-amz-durable-execution-name": "execution_name",
}
_INTEGRATION_HEADER = "integration.request.header."


@dataclass(frozen=True)
class InvokeOutcome:
    """The parts of a Lambda Invoke answer the gateway uses."""

    status: int
    payload: bytes = b""
    function_error: str | None = None


class InvokeFailed(Exception):
    """Lambda refused the Invoke (the integration failed before the function ran)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code


class FunctionInvoker(Protocol):
    """How the gateway reaches functions (Lambda's Invoke API)."""

    def invoke(self, function: str, payload: dict[str, Any] | str, *, invocation_type: str,
               tenant_id: str | None = None, execution_name: str | None = None) -> InvokeOutcome: ...


class LambdaApiInvoker:
    """A :class:`FunctionInvoker` that calls Lambda's Invoke API with boto3.

    Args:
        endpoint_url: The Lambda endpoint (the local Lambda service).
        region: Signing region.
    """

    def __init__(self, endpoint_url: str, region: str) -> None:
        self._client = boto3.client(
            "lambda",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 0}, read_timeout=120, connect_timeout=5),
        )

    def invoke(self, function: str, payload: dict[str, Any] | str, *, invocation_type: str,
               tenant_id: str | None = None, execution_name: str | None = None) -> InvokeOutcome:
        optional = {"TenantId": tenant_id, "DurableExecutionName": execution_name}
        # A str is an integration template's output, sent as rendered (API Gateway's integration
        # request body): Lambda compares a repeated execution name's input byte for byte.
        body = payload if isinstance(payload, str) else json.dumps(payload)
        try:
            response = self._client.invoke(FunctionName=function, InvocationType=invocation_type,
                                           Payload=body.encode(),
                                           **{name: value for name, value in optional.items() if value is not None})
        except ClientError as error:
            raise InvokeFailed(
                error.response["ResponseMetadata"]["HTTPStatusCode"],
                error.response["Error"]["Code"],
                error.response["Error"]["Message"],
            ) from error
        except BotoCoreError as error:
            raise InvokeFailed(502, type(error).__name__, str(error)) from error
        return InvokeOutcome(response["StatusCode"], response["Payload"].read(), response.get("FunctionError"))


class _Refused(Exception):
    """A request API Gateway answers with one of its gateway responses."""

    def __init__(self, response_type: str, message: str | None, *, status: int | None = None,
                 validation_error: str | None = None) -> None:
        super().__init__(response_type)
        self.response_type = response_type
        self.message = message
        self.status = status
        self.validation_error = validation_error


class LocalGateway(LocalHttpService):
    """The REST API of the pattern on loopback.

    Args:
        contract: Routes, validation, the start integration and the gateway
            responses, from ``src/shared/``.
        invoker: Reaches the functions.
        workflow_function: Name of the durable workflow function (invoked at alias ``live``).
        api_function: Name of the api function (proxy routes).
        authorizer_function: Name of the ``REQUEST`` Lambda authorizer run before every
            integration. Its ``context`` becomes ``requestContext.authorizer`` and
            ``$context.authorizer``.
        region: Region reported in the authorizer's ``methodArn``.
        host: Interface to bind.
        port: Port to bind.
        integration_timeout_seconds: How long an integration may take before the answer is
            ``INTEGRATION_TIMEOUT`` (504); API Gateway's 29 s unless a test wants less.
    """

    name = "gateway"
    # API Gateway REST's payload limit.
    max_body_bytes = 10 * 1024 * 1024
    # API Gateway REST's quota on the request line plus header values.
    max_header_bytes = 10240
    # The tenants' usage plans and the method throttle of the routes without the
    # authorizer (proving-ground/local/services/throttle.py), set by the stack; None: not enforced.
    usage_plans: UsagePlans | None = None
    method_throttle: MethodThrottle | None = None
    # The one principal allowed on the AWS_IAM routes (proving-ground/local/services/iam_auth.py);
    # None: every signed request is refused as signed by an unknown key.
    admin_credentials: AdminCredentials | None = None

    def __init__(
        self,
        *,
        contract: ApiContract,
        invoker: FunctionInvoker,
        workflow_function: str,
        api_function: str,
        authorizer_function: str,
        region: str = "us-east-1",
        host: str = DEFAULT_HOST,
        port: int = 0,
        integration_timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
        control_function: str | None = None,
    ) -> None:
        super().__init__(host, port)
        self._contract = contract
        self._integration_timeout = integration_timeout_seconds
        self._invoker = invoker
        self._workflow_function = f"{workflow_function}:{ALIAS}"
        self._api_function = f"{api_function}:{ALIAS}"
        self._authorizer_function = f"{authorizer_function}:{ALIAS}"
        self._control_function = f"{control_function}:{ALIAS}" if control_function else None
        self._region = region
        for target in contract.start_integration.request_parameters:
            header = target.removeprefix(_INTEGRATION_HEADER)
            if not target.startswith(_INTEGRATION_HEADER) or header.lower() not in INVOKE_HEADERS:
                raise ValueError(f"the local gateway cannot apply the request parameter {target!r}")

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        route, params, _resource_exists = self._contract.find(request.method, request.path)
        event = build_proxy_event(
            method=request.method,
            resource=route.path if route else request.path,
            path=request.path,
            headers=request.header_items or request.headers,
            path_parameters=params or None,
            query=request.raw_query,
            body=request.body.decode("utf-8", errors="replace") if request.body else None,
            request_id=request_id,
        )
        template_input = TemplateInput(
            body=event["body"] or "",
            path_parameters=event["pathParameters"] or {},
            query=event["queryStringParameters"] or {},
            headers=event["headers"],
        )
        try:
            if route is None:
                # API Gateway REST refuses an unknown resource or method as MISSING_AUTHENTICATION_TOKEN
                # (its default 403, main.tf's 404 "Not Found"), never 405.
                raise _Refused("MISSING_AUTHENTICATION_TOKEN", MISSING_TOKEN)
            if route.iam:
                self._check_signature(request, event)
            elif route.authorizer:
                self._authorize(request, event)
            elif self.method_throttle is not None and (refusal := self.method_throttle.admit(route.name)):
                # No key, no usage plan: the route's own method settings throttle it (main.tf public_routes).
                raise _Refused(refusal.response_type, refusal.message)
            if route.integration == ASYNC_WORKFLOW_START:
                if "authorizer" not in event["requestContext"]:
                    raise ValueError(f"{route.name}: the workflow start needs the authorizer's verified tenant")
                return self._start_workflow(route, request, event, template_input)
            if route.integration == API_PROXY:
                return self._proxy(event)
            if route.integration == CONTROL_PROXY and self._control_function and route.iam:
                return self._proxy(event, self._control_function)
            raise ValueError(f"unknown integration {route.integration!r} in the contract")
        except _Refused as refused:
            return self._gateway_response(refused, event, template_input)

    def loggable_path(self, path: str) -> str:
        """The route's resource template (``/callbacks/{callbackToken}``) for a matched path.

        Paths of the token route carry a credential; unmatched paths are logged as
        they came, except whatever follows ``/callbacks/``.
        """
        route, _params, _exists = self._contract.find_resource(path)
        if route is not None:
            return route.path
        head, separator, _rest = path.partition(CALLBACKS_PATH)
        return f"{head}{CALLBACKS_PATH}<redacted>" if separator else path

    # -- gateway responses -------------------------------------------------------

    def refusal(self, status: int, message: str) -> Response:
        """A request refused before routing (too large, malformed) gets main.tf's gateway response too."""
        response_type = {413: "REQUEST_TOO_LARGE"}.get(status, "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX")
        event = {"requestContext": {"requestId": str(uuid.uuid4())}}
        return self._gateway_response(_Refused(response_type, message, status=status), event, TemplateInput())

    def _gateway_response(self, refused: _Refused, event: dict[str, Any], template_input: TemplateInput) -> Response:
        """Render the gateway response of ``refused`` from the deployed template and headers."""
        response = self._contract.gateway_responses.resolve(refused.response_type, refused.status)
        context = _template_context(event)
        context["error"] = {
            "message": refused.message,
            "messageString": message_string(refused.message),
            "responseType": refused.response_type,
            "validationErrorString": refused.validation_error,
        }
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": event["requestContext"]["requestId"]}
        error_type = ERROR_TYPE.get(refused.response_type)
        if error_type:
            headers["x-amzn-ErrorType"] = error_type
        for name, expression in response.headers.items():
            value = parameter_value(expression, context=context, template_input=template_input)
            if value is not None:
                headers[name] = value
        body = response.template.render(context=context, template_input=template_input) if response.template else ""
        return Response(response.status, headers, body.encode())

    # -- AWS_IAM -----------------------------------------------------------------

    def _check_signature(self, request: Request, event: dict[str, Any]) -> None:
        """SigV4 as API Gateway checks it for an AWS_IAM route (proving-ground/local/services/iam_auth.py).

        Raises:
            _Refused: ``MISSING_AUTHENTICATION_TOKEN`` unsigned, 403 for a bad, foreign or expired signature.
        """
        credentials = self.admin_credentials or AdminCredentials("-", "-", self._region)
        refusal = verify(credentials, method=request.method, path=request.path, raw_query=request.raw_query,
                         headers=list(request.header_items or request.headers.items()), body=request.body or b"")
        if refusal is not None:
            raise _Refused(refusal.response_type, refusal.message)
        # API Gateway tells an AWS_IAM integration who signed (requestContext.identity).
        event["requestContext"]["identity"].update(
            accessKey=credentials.access_key_id, caller=credentials.access_key_id,
            user=credentials.access_key_id, userArn="arn:aws:iam::123456789012:user/local-admin")

    # -- authorizer --------------------------------------------------------------

    def _authorize(self, request: Request, event: dict[str, Any]) -> None:
        """Run the REQUEST authorizer; on Allow, its context becomes ``requestContext.authorizer``.

        Raises:
            _Refused: 401, 403, the authorizer error or the usage plan's 429, as API Gateway decides them.
        """
        if not all(request.header(name) for name in self._contract.identity_headers):
            # An identity source missing or empty: 401 without invoking the authorizer.
            raise _Refused("UNAUTHORIZED", UNAUTHORIZED)
        authorizer_event = build_authorizer_event(event, region=self._region)
        started = time.monotonic()
        try:
            outcome = self._invoker.invoke(self._authorizer_function, authorizer_event, invocation_type="RequestResponse")
        except InvokeFailed as failure:
            logger.warning("authorizer could not be invoked: %s", failure)
            raise _Refused("AUTHORIZER_CONFIGURATION_ERROR", None) from failure
        try:
            result = json.loads(outcome.payload or b"null")
        except ValueError:
            result = None
        if outcome.function_error:
            # API Gateway answers 401 only when the authorizer fails with exactly "Unauthorized".
            if isinstance(result, dict) and result.get("errorMessage") == UNAUTHORIZED:
                raise _Refused("UNAUTHORIZED", UNAUTHORIZED)
            logger.warning("authorizer failed: %s", result)
            raise _Refused("AUTHORIZER_CONFIGURATION_ERROR", None)
        problem = authorizer_result_problem(result)
        if problem is not None:
            logger.warning("authorizer returned a malformed result: %s", problem)
            raise _Refused("AUTHORIZER_CONFIGURATION_ERROR", None)
        decision = policy_decision(result["policyDocument"], authorizer_event["methodArn"])
        if decision != "Allow":
            raise _Refused("ACCESS_DENIED", EXPLICIT_DENY if decision == "Deny" else IMPLICIT_DENY)
        # API Gateway meters an allowed request against the usage plan of the key the
        # authorizer returns (usageIdentifierKey): 429 over the tenant's limits, 403 with no plan.
        if self.usage_plans is not None and (refusal := self.usage_plans.admit(result.get("usageIdentifierKey"))):
            raise _Refused(refusal.response_type, refusal.message)
        context: dict[str, Any] = {"principalId": result["principalId"]}
        context.update({key: _context_string(value) for key, value in (result.get("context") or {}).items()})
        context["integrationLatency"] = int((time.monotonic() - started) * 1000)
        event["requestContext"]["authorizer"] = context
        key = result.get("usageIdentifierKey")
        if isinstance(key, str) and key:
            # main.tf: api_key_source AUTHORIZER and the key required, so API Gateway puts the
            # key the authorizer returned, and its id, in $context.identity.
            event["requestContext"]["identity"].update(apiKey=key, apiKeyId=api_key_id(key))

    # -- POST /workflow: the AWS integration -------------------------------------

    def _start_workflow(
        self, route: Route, request: Request, event: dict[str, Any], template_input: TemplateInput
    ) -> Response:
        """Validate, map and invoke as the deployed integration does."""
        integration = self._contract.start_integration
        # API Gateway picks model and template by media type; none sent means JSON.
        content_type = (request.header("content-type") or "application/json").split(";", 1)[0].strip().lower()
        if content_type == "application/json":  # the request model's media type (main.tf)
            problem = self._validate_start(route, request)
            if problem is not None:
                logger.info("request validator: %s: %s", INVALID_BODY, problem)
                raise _Refused("BAD_REQUEST_BODY", INVALID_BODY, validation_error=problem)
        template = integration.request_templates.get(content_type)
        if template is None:
            # passthrough_behavior NEVER: no template for the media type is 415.
            raise _Refused("UNSUPPORTED_MEDIA_TYPE", UNSUPPORTED_MEDIA_TYPE)
        context = _template_context(event)
        try:
            rendered = template.render(context=context, template_input=template_input)
            json.loads(rendered)
        except ValueError as problem:
            # Lambda refuses a payload that is not JSON (InvalidRequestContentException).
            logger.warning("the start template rendered no JSON: %s", problem)
            raise _Refused("DEFAULT_5XX", INTERNAL_ERROR) from problem
        arguments: dict[str, Any] = {"invocation_type": "RequestResponse"}
        for target, expression in integration.request_parameters.items():
            value = parameter_value(expression, context=context, template_input=template_input)
            if value is not None:
                arguments[INVOKE_HEADERS[target.removeprefix(_INTEGRATION_HEADER).lower()]] = value
        try:
            outcome = self._invoke_integration(self._workflow_function, rendered, **arguments)
        except InvokeFailed as failure:
            logger.warning("start of workflow %s for %s failed: %s", arguments.get("execution_name"),
                           arguments.get("tenant_id"), failure)
            raise _refusal_for(failure) from failure
        error_message = _function_error_message(outcome) if outcome.function_error else None
        response = integration.response_for(error_message)
        accept = (request.header("accept") or "application/json").split(",", 1)[0].split(";", 1)[0].strip().lower()
        out_template = response.templates.get(accept) or next(iter(response.templates.values()))
        body = out_template.render(context=context, template_input=TemplateInput(body=outcome.payload.decode(errors="replace")))
        return Response(response.status, {"Content-Type": "application/json",
                                          "x-amzn-RequestId": event["requestContext"]["requestId"]}, body.encode())

    def _validate_start(self, route: Route, request: Request) -> str | None:
        """The request validator of ``POST /workflow``: a JSON body valid against the schema."""
        try:
            # NaN, Infinity and 1e400 are not JSON; API Gateway's parser refuses them too.
            body = strict_json.loads(json_text(request.body or b""))
        except (ValueError, RecursionError) as problem:
            return f"the body is not JSON: {problem}"
        return self._contract.validate_body(route, body)

    def _invoke_integration(self, function: str, payload: dict[str, Any] | str, **arguments: Any) -> InvokeOutcome:
        """Invoke an integration's function, giving up after API Gateway's integration timeout.

        The Invoke runs on its own thread so the gateway can answer on time whatever the
        invoker does; the abandoned invocation runs on (on AWS the function is not stopped either).

        Raises:
            InvokeFailed: Lambda refused the Invoke.
            _Refused: ``INTEGRATION_TIMEOUT`` when no answer came in time.
        """
        answer: Future[InvokeOutcome] = Future()

        def invoke() -> None:
            try:
                answer.set_result(self._invoker.invoke(function, payload, **arguments))
            except BaseException as error:  # noqa: BLE001 - handed to the waiting request thread
                answer.set_exception(error)

        threading.Thread(target=invoke, name="gateway-integration", daemon=True).start()
        try:
            return answer.result(timeout=self._integration_timeout)
        except FutureTimeout:
            logger.warning("integration %s did not answer within %.0f s", function.split(":", 1)[0],
                           self._integration_timeout)
            raise _Refused("INTEGRATION_TIMEOUT", ENDPOINT_TIMED_OUT) from None

    # -- AWS_PROXY ---------------------------------------------------------------

    def _proxy(self, event: dict[str, Any], function: str | None = None) -> Response:
        try:
            outcome = self._invoke_integration(function or self._api_function, event, invocation_type="RequestResponse")
        except InvokeFailed as failure:
            # The resource template, never the raw path: a callback token is in it.
            logger.warning("proxy integration for %s %s failed: %s", event["httpMethod"], event["resource"], failure)
            raise _refusal_for(failure) from failure
        try:
            if outcome.function_error:
                raise ValueError(outcome.payload.decode(errors="replace"))
            result = json.loads(outcome.payload)
            status = int(result["statusCode"])
            body = result.get("body") or ""
            raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        except (ValueError, KeyError, TypeError) as problem:
            # API Gateway: "Execution failed due to configuration error: Malformed Lambda proxy response".
            logger.warning("api function answered with an error or a malformed proxy response: %s", problem)
            raise _Refused("DEFAULT_5XX", INTERNAL_ERROR, status=502) from problem
        response_headers = {"x-amzn-RequestId": event["requestContext"]["requestId"]}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            response_headers[name] = ",".join(str(value) for value in values)
        response_headers.update({name: str(value) for name, value in (result.get("headers") or {}).items()})
        return Response(status, response_headers, raw)


def json_text(raw: bytes) -> str:
    """A body as the JSON text the request validator reads: UTF-8 without a byte-order mark.

    API Gateway's text payloads are UTF-8 (its developer guide, "Binary media types")
    and RFC 8259 (8.1) lets a parser refuse a byte-order mark, which networked JSON
    must not carry. NUL bytes never occur in JSON text (control characters must be
    escaped): they mean UTF-16 or UTF-32.

    Raises:
        ValueError: the body is not such text (the reason, for the log).
    """
    if raw.startswith(codecs.BOM_UTF8):
        raise ValueError("the body starts with a UTF-8 byte-order mark")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in raw:
        raise ValueError("the body is not UTF-8 (UTF-16 or UTF-32)")
    return raw.decode("utf-8")  # invalid UTF-8: UnicodeDecodeError, a ValueError


def api_key_id(key: str) -> str:
    """A stable stand-in for the id API Gateway gives an API key (10 lower-case alphanumerics)."""
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def _refusal_for(failure: InvokeFailed) -> _Refused:
    """Lambda refused an Invoke: throttling is INTEGRATION_FAILURE, anything else API Gateway's 500."""
    if failure.status == THROTTLED_STATUS:
        return _Refused("INTEGRATION_FAILURE", INTERNAL_ERROR)
    return _Refused("DEFAULT_5XX", INTERNAL_ERROR)


def _function_error_message(outcome: InvokeOutcome) -> str:
    """The ``errorMessage`` the selection patterns are matched against."""
    try:
        payload = json.loads(outcome.payload)
    except ValueError:
        return outcome.payload.decode(errors="replace")
    return str(payload.get("errorMessage", "")) if isinstance(payload, dict) else str(payload)


def _template_context(event: dict[str, Any]) -> dict[str, Any]:
    """``$context`` for a template: the request context of the proxy event."""
    return json.loads(json.dumps(event["requestContext"]))


def _context_string(value: Any) -> str:
    """An authorizer context value as API Gateway passes it on: a string (``true``, ``42``)."""
    return value if isinstance(value, str) else json.dumps(value)


def authorizer_result_problem(result: Any) -> str | None:
    """Why API Gateway would refuse an authorizer's result as malformed; ``None`` when it is well-formed."""
    if not isinstance(result, dict):
        return "the result is not a JSON object"
    if not isinstance(result.get("principalId"), str):
        return "principalId is missing or not a string"
    policy = result.get("policyDocument")
    statements = policy.get("Statement") if isinstance(policy, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not all(
        isinstance(statement, dict) and statement.get("Effect") in ("Allow", "Deny") for statement in statements
    ):
        return "policyDocument is not an IAM policy with Allow/Deny statements"
    context = result.get("context")
    if context is not None and not isinstance(context, dict):
        return "context is not an object"
    for key, value in (context or {}).items():
        # Strings, numbers and booleans only: an object or a list (or null) is refused.
        if value is None or isinstance(value, (dict, list)):
            return f"context value {key!r} is not a string, number or boolean"
    return None


def policy_decision(policy: dict[str, Any], method_arn: str) -> str | None:
    """IAM evaluation of an authorizer policy for ``execute-api:Invoke`` on one method ARN.

    Returns:
        ``"Deny"`` (an explicit Deny, which wins), ``"Allow"``, or ``None`` (implicit deny).
    """
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        actions = statement.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        if not any(fnmatch.fnmatchcase("execute-api:invoke", str(action).lower()) for action in actions):
            continue
        resources = statement.get("Resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        if not any(fnmatch.fnmatchcase(method_arn, resource) for resource in resources):
            continue
        if statement.get("Effect") == "Deny":
            return "Deny"
        allowed = allowed or statement.get("Effect") == "Allow"
    return "Allow" if allowed else None
