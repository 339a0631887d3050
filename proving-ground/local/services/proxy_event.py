"""Build API Gateway REST (v1) events: the proxy event and the REQUEST authorizer event.

Shaped as API Gateway sends them (its developer guide's input formats; the SAM
CLI's sample events; Powertools' ``APIGatewayProxyEventModel`` and
``ApiGatewayAuthorizerRequest`` validate them in ``tests/local/test_events.py``):
every field AWS always sends is there, identity fields AWS sends as ``null`` are
``null``, and repeated headers and query parameters keep every value in the
``multiValue*`` maps (the single-value maps hold the last one, as on AWS).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

# The stage name the local gateway reports; Terraform's default stage is the same.
DEFAULT_STAGE = "v1"
DEFAULT_ACCOUNT = "123456789012"
LOCAL_API_ID = "local"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# requestContext.identity as API Gateway sends it for a caller without IAM or Cognito credentials.
_NULL_IDENTITY_FIELDS = (
    "cognitoIdentityPoolId", "accountId", "cognitoIdentityId", "caller", "principalOrgId", "accessKey",
    "cognitoAuthenticationType", "cognitoAuthenticationProvider", "userArn", "user",
)

Pairs = Mapping[str, str] | Iterable[tuple[str, str]]


def request_time(epoch_ms: int) -> str:
    """``$context.requestTime``: CLF format, ``dd/MMM/yyyy:HH:mm:ss +0000``, always English months."""
    moment = time.gmtime(epoch_ms / 1000)
    return (f"{moment.tm_mday:02d}/{_MONTHS[moment.tm_mon - 1]}/{moment.tm_year}:"
            f"{moment.tm_hour:02d}:{moment.tm_min:02d}:{moment.tm_sec:02d} +0000")


def resource_id(resource: str) -> str:
    """A stable API Gateway-like resource id (6 lower-case alphanumerics) for a resource path."""
    return hashlib.sha256(resource.encode()).hexdigest()[:6]


def _pairs(values: Pairs | None) -> list[tuple[str, str]]:
    if values is None:
        return []
    return list(values.items()) if isinstance(values, Mapping) else list(values)


def _single_and_multi(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value  # the last value of a repeated name, as API Gateway
        multi.setdefault(name, []).append(value)
    return single, multi


def _header(pairs: list[tuple[str, str]], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in reversed(pairs) if key.lower() == wanted), None)


def build_proxy_event(
    *,
    method: str,
    resource: str,
    path: str,
    headers: Pairs | None = None,
    path_parameters: dict[str, str] | None = None,
    query: Pairs | str | None = None,
    body: str | dict[str, Any] | None = None,
    request_id: str | None = None,
    stage: str = DEFAULT_STAGE,
    authorizer: dict[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
    request_time_epoch: int | None = None,
    api_id: str = LOCAL_API_ID,
    account_id: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """Return the event API Gateway sends to an ``AWS_PROXY`` Lambda integration.

    Args:
        method: HTTP method, e.g. ``POST``.
        resource: The route template, e.g. ``/workflow/{workflowId}``.
        path: The concrete request path, e.g. ``/workflow/abc``.
        headers: Request headers: a map, or ``(name, value)`` pairs with repeated names.
        path_parameters: Values for the template's ``{...}`` parts.
        query: Query parameters: the raw query string, a map, or pairs with repeated names.
        body: Raw body text, or a dict that is JSON-encoded.
        request_id: API Gateway request id; generated when omitted.
        stage: Stage name reported in ``requestContext``.
        authorizer: ``requestContext.authorizer`` (a Lambda authorizer's context);
            ``None``: a route without an authorizer (no such key, as on AWS).
        source_ip: Caller address reported in ``requestContext.identity``.
        request_time_epoch: Milliseconds since the epoch; now when omitted.
        api_id: ``requestContext.apiId``.
        account_id: ``requestContext.accountId``.

    Returns:
        A dict shaped like the real event, suitable for ``handler(event, context)``.
    """
    header_pairs = _pairs(headers)
    query_pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else _pairs(query)
    single_headers, multi_headers = _single_and_multi(header_pairs)
    single_query, multi_query = _single_and_multi(query_pairs)
    raw_body = json.dumps(body) if isinstance(body, dict) else body
    request_id = request_id or str(uuid.uuid4())
    epoch_ms = int(time.time() * 1000) if request_time_epoch is None else request_time_epoch
    domain_name = _domain_name(_header(header_pairs, "Host"))
    identity: dict[str, Any] = dict.fromkeys(_NULL_IDENTITY_FIELDS)
    identity.update(sourceIp=source_ip, userAgent=_header(header_pairs, "User-Agent"))
    request_context: dict[str, Any] = {
        "resourceId": resource_id(resource),
        "resourcePath": resource,
        "httpMethod": method,
        # API Gateway's own id of the request (base64, like "EXqgWgXxSK4EJug=").
        "extendedRequestId": base64.b64encode(uuid.uuid4().bytes[:10]).decode(),
        "requestTime": request_time(epoch_ms),
        "path": f"/{stage}{path}",
        "accountId": account_id,
        "protocol": "HTTP/1.1",
        "stage": stage,
        "domainPrefix": domain_name.split(".", 1)[0],
        "requestTimeEpoch": epoch_ms,
        "requestId": request_id,
        "identity": identity,
        "domainName": domain_name,
        "apiId": api_id,
    }
    if authorizer is not None:
        request_context["authorizer"] = authorizer
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": request_context,
        "body": raw_body,
        "isBase64Encoded": False,
    }


def _domain_name(host: str | None) -> str:
    """``$context.domainName``: the host the caller used, without the port (the API's domain on AWS)."""
    if not host:
        return "localhost"
    if host.startswith("["):  # an IPv6 literal
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0]


def build_authorizer_event(
    proxy_event: dict[str, Any],
    *,
    region: str = "us-east-1",
    account_id: str | None = None,
) -> dict[str, Any]:
    """Return the event API Gateway sends to a ``REQUEST`` Lambda authorizer.

    Args:
        proxy_event: The request as :func:`build_proxy_event` shapes it (without authorizer).
        region: Region in ``methodArn``.
        account_id: Account in ``methodArn``; the proxy event's when omitted.

    Returns:
        The request's fields without the body, ``type`` and ``methodArn``, and a
        ``requestContext`` without ``authorizer`` whose identity has ``apiKey``
        (``null``: the methods require no API Gateway API key).
    """
    context = proxy_event["requestContext"]
    method_arn = (
        f"arn:aws:execute-api:{region}:{account_id or context['accountId']}:{context['apiId']}/{context['stage']}"
        f"/{proxy_event['httpMethod']}{proxy_event['path']}"
    )
    event = {key: value for key, value in proxy_event.items() if key not in ("body", "isBase64Encoded")}
    event["requestContext"] = {key: value for key, value in context.items() if key != "authorizer"}
    event["requestContext"]["identity"] = {**context["identity"], "apiKey": None}
    return {"type": "REQUEST", "methodArn": method_arn, **event}
