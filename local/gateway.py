"""The local REST gateway: the deployed routes, validation and integrations on loopback.

Like the deployed REST API it:

* serves exactly the contract's routes; any other resource or method answers
  ``403 {"message": "Missing Authentication Token"}`` as API Gateway does;
* runs the ``REQUEST`` Lambda authorizer first, as API Gateway does: no verified
  tenant means ``401 Unauthorized`` or ``403`` (explicit deny), and no function
  behind the gateway runs; its context becomes ``requestContext.authorizer``.
  A route whose contract entry says ``"authorizer": false`` (``POST
  /callbacks/{callbackToken}``: the token is the credential) goes straight to
  its integration with no authorizer context, whatever headers it carries; its
  path is never logged (the resource template is);
* then the request validator: ``POST /workflow`` needs a JSON body valid against
  the request schema (``400 Invalid request body``);
* ``POST /workflow``: Invoke of the workflow function's ``live`` alias with
  ``InvocationType=Event``, ``TenantId`` and ``DurableExecutionName`` from the
  authorizer's verified ``tenantId`` and ``workflowId``; answers
  ``202 {"workflowId", "status": "STARTED"}``;
* the other routes are ``AWS_PROXY``: a REST v1 proxy event to the api function,
  whose ``statusCode``/``headers``/``body`` become the response.

Functions are reached through a :class:`FunctionInvoker`; the gateway never knows
how they run.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.contract import API_PROXY, ASYNC_WORKFLOW_START, ApiContract
from local.functions import ALIAS
from local.http_base import DEFAULT_HOST, LocalHttpService, Request, Response
from local.proxy_event import build_authorizer_event, build_proxy_event
from local.throttle import UsagePlans
from shared import strict_json
from shared.callback_tokens import CALLBACKS_PATH
from shared.contract import Route

logger = logging.getLogger(__name__)

MISSING_TOKEN = {"message": "Missing Authentication Token"}
INTERNAL_ERROR = {"message": "Internal server error"}
INVALID_BODY = "Invalid request body"
START_FAILED = {"message": "The workflow could not be started"}
UNAUTHORIZED = {"message": "Unauthorized"}
DENIED = {"message": "User is not authorized to access this resource with an explicit deny"}
AUTHORIZER_FAILURE = {"message": "Authorizer failure"}
# main.tf maps API Gateway's AUTHORIZER_FAILURE and AUTHORIZER_CONFIGURATION_ERROR
# to 503 with Retry-After: an authorizer that cannot read the tenants table is a
# dependency failure the caller should retry, not a 500.
AUTHORIZER_FAILURE_STATUS = 503
AUTHORIZER_RETRY_AFTER = {"Retry-After": "1"}


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

    def invoke(
        self,
        function: str,
        payload: dict[str, Any],
        *,
        invocation_type: str,
        tenant_id: str | None = None,
        execution_name: str | None = None,
    ) -> InvokeOutcome: ...


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

    def invoke(
        self,
        function: str,
        payload: dict[str, Any],
        *,
        invocation_type: str,
        tenant_id: str | None = None,
        execution_name: str | None = None,
    ) -> InvokeOutcome:
        kwargs: dict[str, Any] = {
            "FunctionName": function,
            "InvocationType": invocation_type,
            "Payload": json.dumps(payload).encode(),
        }
        if tenant_id is not None:
            kwargs["TenantId"] = tenant_id
        if execution_name is not None:
            kwargs["DurableExecutionName"] = execution_name
        try:
            response = self._client.invoke(**kwargs)
        except ClientError as error:
            raise InvokeFailed(
                error.response["ResponseMetadata"]["HTTPStatusCode"],
                error.response["Error"]["Code"],
                error.response["Error"]["Message"],
            ) from error
        except BotoCoreError as error:
            raise InvokeFailed(502, type(error).__name__, str(error)) from error
        return InvokeOutcome(response["StatusCode"], response["Payload"].read(), response.get("FunctionError"))


class LocalGateway(LocalHttpService):
    """The REST API of the pattern on loopback.

    Args:
        contract: Routes and validation, from the shared contract.
        invoker: Reaches the functions.
        workflow_function: Name of the durable workflow function (invoked at alias ``live``).
        api_function: Name of the api function (proxy routes).
        authorizer_function: Name of the ``REQUEST`` Lambda authorizer run before every
            integration. Its ``context`` becomes ``requestContext.authorizer``;
            ``context.tenantId`` / ``context.workflowId`` are the tenant and workflow
            id of ``POST /workflow``.
        region: Region reported in the authorizer's ``methodArn``.
        host: Interface to bind.
        port: Port to bind.
    """

    name = "gateway"
    # API Gateway REST's payload limit.
    max_body_bytes = 10 * 1024 * 1024
    # The tenants' usage plans (local/throttle.py), set by the stack; None: not enforced.
    usage_plans: UsagePlans | None = None

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
    ) -> None:
        super().__init__(host, port)
        self._contract = contract
        self._invoker = invoker
        self._workflow_function = f"{workflow_function}:{ALIAS}"
        self._api_function = f"{api_function}:{ALIAS}"
        self._authorizer_function = f"{authorizer_function}:{ALIAS}"
        self._region = region

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        headers = {"x-amzn-RequestId": request_id}
        route, params, _resource_exists = self._contract.find(request.method, request.path)
        if route is None:
            # API Gateway REST answers an unknown resource or method with 403, not 404/405.
            return Response.json(403, MISSING_TOKEN, {**headers, "x-amzn-ErrorType": "MissingAuthenticationTokenException"})
        event = build_proxy_event(
            method=request.method,
            resource=route.path,
            path=request.path,
            headers=request.headers,
            path_parameters=params or None,
            query=request.query or None,
            body=request.body.decode("utf-8", errors="replace") if request.body else None,
            request_id=request_id,
        )
        if route.authorizer:
            refusal, verified = self._authorize(event)
            if refusal is not None:
                refusal.headers.update(headers)
                return refusal
            assert verified is not None  # an allowed request always has a context
            event["requestContext"]["authorizer"] = verified
        else:
            # A route without the authorizer (POST /callbacks/{callbackToken}): straight
            # to its integration. Whatever identity headers the caller sends stay plain
            # headers; nothing becomes requestContext.authorizer.
            verified = None
            event["requestContext"]["authorizer"] = None
        if route.integration == ASYNC_WORKFLOW_START:
            if verified is None:
                raise ValueError(f"{route.name}: the workflow start needs the authorizer's verified tenant")
            if not _is_json_content_type(request.header("content-type")):
                # The integration has a template for application/json only and
                # passthrough_behavior NEVER: API Gateway answers 415.
                return Response.json(415, {"message": "Unsupported Media Type"}, headers)
            problem = self._validate_start(route, request)
            if problem is not None:
                return Response.json(400, {"message": problem}, headers)
            return self._start_workflow(route, json.loads(request.body), verified, headers)
        if route.integration == API_PROXY:
            return self._proxy(event, headers)
        raise ValueError(f"unknown integration {route.integration!r} in the contract")

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

    def _validate_start(self, route: Route, request: Request) -> str | None:
        """The request validator of ``POST /workflow``: a JSON body valid against the schema."""
        try:
            # NaN, Infinity and 1e400 are not JSON; API Gateway's parser refuses them too.
            body = strict_json.loads(request.body or b"")
        except (ValueError, RecursionError):
            return INVALID_BODY
        problem = self._contract.validate_body(route, body)
        return None if problem is None else f"{INVALID_BODY}: {problem}"

    def _authorize(self, event: dict[str, Any]) -> tuple[Response | None, dict[str, Any] | None]:
        """Run the REQUEST authorizer: ``(refusal, None)`` or ``(None, context)``."""
        authorizer_event = build_authorizer_event(event, region=self._region)
        started = time.monotonic()
        try:
            outcome = self._invoker.invoke(self._authorizer_function, authorizer_event, invocation_type="RequestResponse")
            result = json.loads(outcome.payload or b"null")
        except (InvokeFailed, ValueError) as failure:
            logger.warning("authorizer could not be invoked: %s", failure)
            return Response.json(AUTHORIZER_FAILURE_STATUS, AUTHORIZER_FAILURE, dict(AUTHORIZER_RETRY_AFTER)), None
        if outcome.function_error:
            # API Gateway answers 401 only when the authorizer fails with exactly "Unauthorized".
            if isinstance(result, dict) and result.get("errorMessage") == "Unauthorized":
                return Response.json(401, UNAUTHORIZED), None
            logger.warning("authorizer failed: %s", result)
            return Response.json(AUTHORIZER_FAILURE_STATUS, AUTHORIZER_FAILURE, dict(AUTHORIZER_RETRY_AFTER)), None
        if not isinstance(result, dict) or not _policy_allows(result.get("policyDocument"), authorizer_event["methodArn"]):
            return Response.json(403, DENIED), None
        # API Gateway meters an allowed request against the usage plan of the key the
        # authorizer returns (usageIdentifierKey): 429 over the tenant's limits, 403 with no plan.
        if self.usage_plans is not None and (refusal := self.usage_plans.admit(result.get("usageIdentifierKey"))):
            return refusal, None
        context = {"principalId": result.get("principalId"), **(result.get("context") or {})}
        context["integrationLatency"] = int((time.monotonic() - started) * 1000)
        return None, context

    def _start_workflow(
        self, route: Route, body: Any, verified: dict[str, Any], headers: dict[str, str]
    ) -> Response:
        """Async Invoke of the workflow alias, as the deployed AWS integration maps it."""
        tenant_id, workflow_id = str(verified["tenantId"]), str(verified["workflowId"])
        try:
            outcome = self._invoker.invoke(
                self._workflow_function,
                {"workflowId": workflow_id, "request": body},
                invocation_type="Event",
                tenant_id=tenant_id,
                execution_name=workflow_id,
            )
        except InvokeFailed as failure:
            # API Gateway cannot tell Lambda's refusals apart (throttling, a reused
            # execution name with another payload ...): all are one 502, as deployed.
            logger.warning("start of workflow %s for %s failed: %s", workflow_id, tenant_id, failure)
            return Response.json(502, START_FAILED, headers)
        if outcome.status != 202:
            return Response.json(502, START_FAILED, headers)
        return Response.json(route.success_status, {"workflowId": workflow_id, "status": "STARTED"}, headers)

    def _proxy(self, event: dict[str, Any], headers: dict[str, str]) -> Response:
        try:
            outcome = self._invoker.invoke(self._api_function, event, invocation_type="RequestResponse")
        except InvokeFailed as failure:
            # The resource template, never the raw path: a callback token is in it.
            logger.warning("proxy integration for %s %s failed: %s", event["httpMethod"], event["resource"], failure)
            return Response.json(500, INTERNAL_ERROR, headers)
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
            return Response.json(502, INTERNAL_ERROR, headers)
        response_headers = {**headers}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            response_headers[name] = ",".join(str(value) for value in values)
        response_headers.update({name: str(value) for name, value in (result.get("headers") or {}).items()})
        return Response(status, response_headers, raw)


def _is_json_content_type(value: str | None) -> bool:
    """API Gateway picks the mapping template by media type; a missing one defaults to JSON."""
    return value is None or value.split(";", 1)[0].strip().lower() == "application/json"


def _policy_allows(policy: Any, method_arn: str) -> bool:
    """IAM evaluation of an authorizer policy for one method ARN: an explicit Deny wins."""
    if not isinstance(policy, dict):
        return False
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        resources = statement.get("Resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        if not any(fnmatch.fnmatchcase(method_arn, resource) for resource in resources):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
