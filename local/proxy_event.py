"""Build API Gateway REST (v1) proxy events: used by the local gateway, events/ and tests."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

# The stage name the local gateway reports; Terraform's default stage is the same.
DEFAULT_STAGE = "v1"


def build_proxy_event(
    *,
    method: str,
    resource: str,
    path: str,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: str | dict[str, Any] | None = None,
    request_id: str | None = None,
    stage: str = DEFAULT_STAGE,
    authorizer: dict[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """Return the event API Gateway sends to an ``AWS_PROXY`` Lambda integration.

    Args:
        method: HTTP method, e.g. ``POST``.
        resource: The route template, e.g. ``/workflow/{workflowId}``.
        path: The concrete request path, e.g. ``/workflow/abc``.
        headers: Request headers as received (single-valued).
        path_parameters: Values for the template's ``{...}`` parts.
        query: Query-string parameters (single-valued).
        body: Raw body text, or a dict that is JSON-encoded.
        request_id: API Gateway request id; generated when omitted.
        stage: Stage name reported in ``requestContext``.
        authorizer: ``requestContext.authorizer`` (a Lambda authorizer's context).
        source_ip: Caller address reported in ``requestContext.identity``.

    Returns:
        A dict shaped like the real event, suitable for ``handler(event, context)``.
    """
    headers = dict(headers or {})
    raw_body = json.dumps(body) if isinstance(body, dict) else body
    request_id = request_id or str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method.upper(),
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": (
            {name: [value] for name, value in query.items()} if query else None
        ),
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method.upper(),
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "accountId": "123456789012",
            "apiId": "local",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "authorizer": authorizer,
        },
        "body": raw_body,
        "isBase64Encoded": False,
    }


def build_authorizer_event(
    proxy_event: dict[str, Any],
    *,
    region: str = "us-east-1",
    account_id: str = "123456789012",
) -> dict[str, Any]:
    """Return the event API Gateway sends to a ``REQUEST`` Lambda authorizer.

    Args:
        proxy_event: The request as :func:`build_proxy_event` shapes it (without authorizer).
        region: Region in ``methodArn``.
        account_id: Account in ``methodArn``.

    Returns:
        A dict shaped like the real authorizer event, with ``type`` and ``methodArn``.
    """
    context = proxy_event["requestContext"]
    method_arn = (
        f"arn:aws:execute-api:{region}:{account_id}:{context['apiId']}/{context['stage']}"
        f"/{proxy_event['httpMethod']}{proxy_event['path']}"
    )
    event = {key: value for key, value in proxy_event.items() if key not in ("body", "isBase64Encoded")}
    event["requestContext"] = {key: value for key, value in context.items() if key != "authorizer"}
    return {"type": "REQUEST", "methodArn": method_arn, **event}
