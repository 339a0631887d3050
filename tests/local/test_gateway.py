"""The local REST gateway: routes and validation from the shared contract, as API Gateway answers."""

from __future__ import annotations

import json

import pytest

from local.contract import API_PROXY, ASYNC_WORKFLOW_START, CONTRACT_FILE, load_contract
from local.gateway import _policy_allows
from local.harness import StackProcess

VALID_BODY = {"amount": 10, "currency": "EUR"}
GATEWAY_TENANT = "tenant-gw"


def test_route_table_is_the_contract() -> None:
    contract = load_contract()
    raw = json.loads(CONTRACT_FILE.read_text())

    assert {(r.name, r.method, r.resource) for r in contract.routes} == {
        (name, spec["method"], spec["path"]) for name, spec in raw["routes"].items()
    }
    assert contract.tenant_header == raw["tenantHeader"]
    route, params, _ = contract.find("GET", "/workflow/abc-123")
    assert route is not None and route.integration == API_PROXY and params == {"workflowId": "abc-123"}
    assert contract.find("POST", "/workflow")[0].integration == ASYNC_WORKFLOW_START
    assert contract.find("DELETE", "/workflow") == (None, None, True)
    assert contract.find("GET", "/nowhere") == (None, None, False)


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"amount": 1, "currency": "USD", "description": "x"}, True),
        ({"amount": 0, "currency": "USD"}, False),
        ({"amount": 1, "currency": "usd"}, False),
        ({"amount": 1}, False),
        ({"amount": 1, "currency": "USD", "extra": True}, False),
        (["not", "an", "object"], False),
    ],
)
def test_body_schema_is_the_shared_request_schema(body: object, valid: bool) -> None:
    contract = load_contract()
    route = contract.find("POST", "/workflow")[0]

    assert (contract.validate_body(route, body) is None) is valid


def test_authorizer_policy_explicit_deny_wins() -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:local/v1/GET/workflow/abc"
    allow = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": ["arn:aws:execute-api:*:*:local/v1/GET/workflow/*"]}
    deny = {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": ["*"]}

    assert _policy_allows({"Statement": [allow]}, arn)
    assert not _policy_allows({"Statement": [allow, deny]}, arn)
    assert not _policy_allows({"Statement": []}, arn)
    assert not _policy_allows(None, arn)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({}, VALID_BODY, "Missing required request parameters: [x-tenant-id]"),
        ({"x-tenant-id": "bad tenant!"}, VALID_BODY, "Invalid x-tenant-id"),
        ({"x-tenant-id": "t" * 65}, VALID_BODY, "Invalid x-tenant-id"),
        ({"x-tenant-id": GATEWAY_TENANT}, "{not json", "Invalid request body"),
        ({"x-tenant-id": GATEWAY_TENANT}, {"amount": -1, "currency": "EUR"}, "Invalid request body"),
        ({"x-tenant-id": GATEWAY_TENANT}, {"amount": 1, "currency": "EUR", "tenantId": "tenant-b"}, "Invalid request body"),
    ],
)
def test_invalid_start_requests_are_refused_before_any_function_runs(
    stack: StackProcess, headers: dict[str, str], body: object, message: str
) -> None:
    starts_before = stack.invocations("-workflow")
    data = body if isinstance(body, str) else json.dumps(body)

    response = stack.http.post(f"{stack.api_url}/workflow", data=data,
                               headers={**headers, "content-type": "application/json"}, timeout=30)

    assert response.status_code == 400
    assert response.json()["message"].startswith(message)
    assert stack.invocations("-workflow") == starts_before


@pytest.mark.slow
def test_status_and_callback_routes_require_the_tenant_header(stack: StackProcess) -> None:
    api_before = stack.invocations("-api")

    status = stack.http.get(f"{stack.api_url}/workflow/some-id", timeout=30)
    callback = stack.http.post(f"{stack.api_url}/callback", json={"callbackId": "x", "payload": {}}, timeout=30)

    assert status.status_code == callback.status_code == 400
    assert stack.invocations("-api") == api_before


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("DELETE", "/workflow"), ("GET", "/callback")])
def test_unknown_route_or_method_answers_like_api_gateway(stack: StackProcess, method: str, path: str) -> None:
    response = stack.http.request(method, f"{stack.api_url}{path}", headers=stack.headers("tenant-a"), timeout=30)

    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}


@pytest.mark.slow
def test_status_of_an_unknown_workflow_is_404_json(stack: StackProcess) -> None:
    response = stack.status("tenant-a", "no-such-workflow")

    assert response.status_code == 404
    assert "message" in response.json()
