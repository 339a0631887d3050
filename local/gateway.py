"""The local REST gateway: the deployed routes, validation and integrations on loopback.

Like the deployed REST API it:

* serves exactly the contract's routes; any other resource or method answers
  ``403 {"message": "Missing Authentication Token"}`` as API Gateway does;
* requires the tenant header (``400 Missing required request parameters``) and,
  for ``POST /workflow``, a tenant id matching the contract's pattern and a JSON
  body valid against the request schema (``400 Invalid request body``), before any
  function is invoked;
* ``POST /workflow``: request id → workflowId; Invoke of the workflow function's
  ``live`` alias with ``InvocationType=Event``, ``TenantId`` from the header and
  ``DurableExecutionName`` = workflowId; answers ``202 {"workflowId", "status": "STARTED"}``;
* the other routes are ``AWS_PROXY``: a REST v1 proxy event to the api function,
  whose ``statusCode``/``headers``/``body`` become the response.

Functions are reached through a :class:`FunctionInvoker`; the gateway never knows
how they run.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.contract import API_PROXY, ASYNC_WORKFLOW_START, ApiContract, Route
from local.functions import ALIAS
from local.http_base import DEFAULT_HOST, LocalHttpService, Request, Response
from local.proxy_event import build_proxy_event

logger = logging.getLogger(__name__)

MISSING_TOKEN = {"message": "Missing Authentication Token"}
INTERNAL_ERROR = {"message": "Internal server error"}
INVALID_BODY = "Invalid request body"


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
        host: Interface to bind.
        port: Port to bind.
    """

    name = "gateway"

    def __init__(
        self,
        *,
        contract: ApiContract,
        invoker: FunctionInvoker,
        workflow_function: str,
        api_function: str,
        host: str = DEFAULT_HOST,
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self._contract = contract
        self._invoker = invoker
        self._workflow_function = f"{workflow_function}:{ALIAS}"
        self._api_function = f"{api_function}:{ALIAS}"

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        headers = {"x-amzn-RequestId": request_id}
        route, params, _resource_exists = self._contract.find(request.method, request.path)
        if route is None:
            # API Gateway REST answers an unknown resource or method with 403, not 404/405.
            return Response.json(403, MISSING_TOKEN, {**headers, "x-amzn-ErrorType": "MissingAuthenticationTokenException"})
        tenant_id = request.header(self._contract.tenant_header)
        if tenant_id is None:
            return Response.json(
                400, {"message": f"Missing required request parameters: [{self._contract.tenant_header}]"}, headers
            )
        if route.integration == ASYNC_WORKFLOW_START:
            return self._start_workflow(route, request, tenant_id, request_id, headers)
        if route.integration == API_PROXY:
            return self._proxy(route, request, params or {}, request_id, headers)
        raise ValueError(f"unknown integration {route.integration!r} in the contract")

    def _start_workflow(
        self, route: Route, request: Request, tenant_id: str, request_id: str, headers: dict[str, str]
    ) -> Response:
        if not self._contract.tenant_id_pattern.fullmatch(tenant_id):
            return Response.json(
                400, {"message": f"Invalid {self._contract.tenant_header}: expected 1-64 of [A-Za-z0-9._-]"}, headers
            )
        try:
            body = json.loads(request.body or b"")
        except ValueError:
            return Response.json(400, {"message": INVALID_BODY}, headers)
        problem = self._contract.validate_body(route, body)
        if problem is not None:
            return Response.json(400, {"message": f"{INVALID_BODY}: {problem}"}, headers)

        workflow_id = request_id
        try:
            outcome = self._invoker.invoke(
                self._workflow_function,
                {"workflowId": workflow_id, "request": body},
                invocation_type="Event",
                tenant_id=tenant_id,
                execution_name=workflow_id,
            )
        except InvokeFailed as failure:
            logger.warning("start of workflow %s for %s failed: %s", workflow_id, tenant_id, failure)
            if failure.status == 400:
                return Response.json(400, {"message": str(failure)}, headers)
            return Response.json(500, INTERNAL_ERROR, headers)
        if outcome.status != 202:
            return Response.json(500, INTERNAL_ERROR, headers)
        return Response.json(route.success_status, {"workflowId": workflow_id, "status": "STARTED"}, headers)

    def _proxy(
        self, route: Route, request: Request, params: dict[str, str], request_id: str, headers: dict[str, str]
    ) -> Response:
        event = build_proxy_event(
            method=request.method,
            resource=route.resource,
            path=request.path,
            headers=request.headers,
            path_parameters=params,
            query=request.query or None,
            body=request.body.decode("utf-8", errors="replace") if request.body else None,
            request_id=request_id,
        )
        try:
            outcome = self._invoker.invoke(self._api_function, event, invocation_type="RequestResponse")
        except InvokeFailed as failure:
            logger.warning("proxy integration for %s %s failed: %s", request.method, request.path, failure)
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
