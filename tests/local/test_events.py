"""The events the local gateway sends are the events AWS sends.

The REST proxy event and the REQUEST authorizer event, captured from the real
``LocalGateway``, are validated against Powertools' parser models and compared
field by field with the SAM CLI's proxy sample and the API Gateway developer
guide's REQUEST authorizer example (their field names are in
``data/aws_sample_event_keys.json``, with their sources).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel, ApiGatewayAuthorizerRequest

from local.services.proxy_event import build_proxy_event, request_time, resource_id
from tests.local.gateway_fakes import IDENTITY, TENANT, WORKFLOW_ID, raw_exchange, running_gateway

SAMPLES = json.loads((Path(__file__).parent / "data" / "aws_sample_event_keys.json").read_text())
# Fields the local proxy event has beyond the SAM sample, which predates them; each is
# in the developer guide's proxy input format and Powertools' model.
PROXY_FIELDS_NEWER_THAN_THE_SAMPLE = {
    "multiValueHeaders", "multiValueQueryStringParameters", "requestContext.authorizer",
    "requestContext.domainName", "requestContext.domainPrefix", "requestContext.extendedRequestId",
    "requestContext.identity.principalOrgId",
    # main.tf requires an API key (from the authorizer) on the authorized routes: API Gateway
    # then puts the key and its id in the identity.
    "requestContext.identity.apiKey", "requestContext.identity.apiKeyId",
}
# Fields of the authorizer example that a REST API's REQUEST authorizer does not get here:
# version/identitySource/authorizationToken belong to HTTP APIs' payload 1.0; clientCert comes
# with mutual TLS only, cognitoAmr with Cognito credentials only.
AUTHORIZER_FIELDS_NOT_SENT_HERE = {
    "version", "identitySource", "authorizationToken", "requestContext.identity.clientCert",
    "requestContext.identity.cognitoAmr",
}
# The REQUEST authorizer gets the multi-value query map as the proxy event has it.
AUTHORIZER_FIELDS_BEYOND_THE_EXAMPLE = {"multiValueQueryStringParameters"}


def field_paths(event: dict[str, Any], prefix: str = "") -> set[str]:
    """Top-level, ``requestContext`` and ``requestContext.identity`` field paths."""
    found = set()
    for key, value in event.items():
        found.add(f"{prefix}{key}")
        if key in ("requestContext", "identity") and isinstance(value, dict):
            found |= field_paths(value, f"{prefix}{key}.")
    return found


@pytest.fixture(name="captured", scope="module")
def captured_fixture() -> dict[str, dict[str, Any]]:
    """The authorizer and proxy events of one GET with repeated headers and query parameters."""
    head = (f"GET /workflow/{WORKFLOW_ID}?view=full&tag=a&tag=b&empty= HTTP/1.1\r\nHost: api.example.test:8443\r\n"
            f"x-tenant-id: {TENANT}\r\nx-api-key: key-a\r\nX-Dup: one\r\nX-Dup: two\r\n"
            "User-Agent: events-test\r\nConnection: close\r\n\r\n")
    with running_gateway() as (gateway, scripted):
        status, _headers, body = raw_exchange(gateway.url, head.encode())
        assert status == 200, body
        callback = requests.post(f"{gateway.url}/callbacks/some-token", json={}, headers=IDENTITY, timeout=10)
        assert callback.status_code == 200
    [authorizer, *_] = scripted.of("authorizer")
    proxy, token_route = (call.payload for call in scripted.of("api"))
    return {"authorizer": authorizer.payload, "proxy": proxy, "token_route": token_route}


def test_the_proxy_event_validates_against_powertools_model(captured: dict[str, dict[str, Any]]) -> None:
    for name in ("proxy", "token_route"):
        APIGatewayProxyEventModel.model_validate(captured[name])


def test_the_authorizer_event_validates_against_powertools_model(captured: dict[str, dict[str, Any]]) -> None:
    model = ApiGatewayAuthorizerRequest.model_validate(captured["authorizer"])
    assert model.type == "REQUEST"
    assert model.methodArn == f"arn:aws:execute-api:us-east-1:123456789012:local/v1/GET/workflow/{WORKFLOW_ID}"


def test_the_proxy_event_has_every_field_of_the_sam_sample_and_only_documented_others(
    captured: dict[str, dict[str, Any]],
) -> None:
    sample = set(SAMPLES["restProxy"]["paths"])
    local = field_paths(captured["proxy"])
    assert sample - local == set()
    assert local - sample == PROXY_FIELDS_NEWER_THAN_THE_SAMPLE


def test_the_authorizer_event_has_every_field_of_the_documented_example(captured: dict[str, dict[str, Any]]) -> None:
    example = set(SAMPLES["restRequestAuthorizer"]["paths"])
    local = field_paths(captured["authorizer"])
    assert example - local == AUTHORIZER_FIELDS_NOT_SENT_HERE
    assert local - example == AUTHORIZER_FIELDS_BEYOND_THE_EXAMPLE
    assert "body" not in captured["authorizer"] and "authorizer" not in captured["authorizer"]["requestContext"]
    assert captured["authorizer"]["requestContext"]["identity"]["apiKey"] is None


def test_repeated_headers_and_query_parameters_keep_every_value(captured: dict[str, dict[str, Any]]) -> None:
    for name in ("proxy", "authorizer"):
        event = captured[name]
        assert event["multiValueHeaders"]["X-Dup"] == ["one", "two"]
        assert event["headers"]["X-Dup"] == "two"  # the last one, as API Gateway
        assert event["multiValueQueryStringParameters"] == {"view": ["full"], "tag": ["a", "b"], "empty": [""]}
        assert event["queryStringParameters"] == {"view": "full", "tag": "b", "empty": ""}


def test_request_context_fields_have_api_gateways_values(captured: dict[str, dict[str, Any]]) -> None:
    context = captured["proxy"]["requestContext"]
    assert context["requestTime"] == request_time(context["requestTimeEpoch"])
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000", context["requestTime"])
    assert abs(context["requestTimeEpoch"] / 1000 - time.time()) < 60
    assert (context["domainName"], context["domainPrefix"]) == ("api.example.test", "api")
    assert context["resourceId"] == resource_id("/workflow/{workflowId}") != resource_id("/callback")
    assert re.fullmatch(r"[a-z0-9]{6}", context["resourceId"])
    assert (context["path"], context["resourcePath"], context["stage"]) == (
        f"/v1/workflow/{WORKFLOW_ID}", "/workflow/{workflowId}", "v1")
    identity = context["identity"]
    assert identity["userAgent"] == "events-test" and identity["sourceIp"] == "127.0.0.1"
    assert identity["apiKey"] == IDENTITY["x-api-key"] and re.fullmatch(r"[a-z0-9]{10}", identity["apiKeyId"])
    assert all(value is None for key, value in identity.items()
               if key not in ("userAgent", "sourceIp", "apiKey", "apiKeyId"))
    assert context["authorizer"]["tenantId"] == TENANT


def test_a_route_without_the_authorizer_has_no_authorizer_context(captured: dict[str, dict[str, Any]]) -> None:
    assert "authorizer" not in captured["token_route"]["requestContext"]
    assert "apiKey" not in captured["token_route"]["requestContext"]["identity"]  # no key required there
    assert captured["token_route"]["pathParameters"] == {"callbackToken": "some-token"}


def test_request_time_is_english_clf_whatever_the_locale() -> None:
    assert request_time(1428582896000) == "09/Apr/2015:12:34:56 +0000"
    event = build_proxy_event(method="GET", resource="/r", path="/r", request_time_epoch=1428582896000)
    assert event["requestContext"]["requestTime"] == "09/Apr/2015:12:34:56 +0000"
    assert event["queryStringParameters"] is None and event["multiValueQueryStringParameters"] is None
