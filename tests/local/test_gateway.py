"""The local REST gateway: routes and validation from the shared contract, as API Gateway answers."""

from __future__ import annotations

import json

import pytest

from local.contract import API_PROXY, ASYNC_WORKFLOW_START, load_contract
from shared.contract import API_CONTRACT_FILE as CONTRACT_FILE
from local.gateway import _policy_allows
from tests.harness import StackProcess

VALID_BODY = {"amount": 10, "currency": "EUR"}


def test_route_table_is_the_contract() -> None:
    contract = load_contract()
    raw = json.loads(CONTRACT_FILE.read_text())

    assert {(r.name, r.method, r.path) for r in contract.routes} == {
        (name, spec["method"], spec["path"]) for name, spec in raw["routes"].items()
    }
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
    ("tenant", "api_key", "status", "message"),
    [
        (None, None, 401, "Unauthorized"),
        ("tenant-a", None, 401, "Unauthorized"),
        (None, "own", 401, "Unauthorized"),
        ("bad tenant!", "own", 401, "Unauthorized"),
        ("t" * 65, "own", 401, "Unauthorized"),
        ("tenant-a", "wrong-key", 403, "User is not authorized"),
        ("tenant-b", "tenant-a", 403, "User is not authorized"),
    ],
)
@pytest.mark.parametrize("route", ["start", "status", "callback"])
def test_requests_without_a_verified_tenant_are_refused_before_any_function_behind_the_gateway_runs(
    stack: StackProcess, tenant: str | None, api_key: str | None, status: int, message: str, route: str
) -> None:
    # GIVEN the tenant header and a key that is missing, wrong, or another tenant's
    headers = {"content-type": "application/json"}
    if tenant is not None:
        headers["x-tenant-id"] = tenant
    if api_key is not None:
        headers["x-api-key"] = stack.api_keys["tenant-a"] if api_key in ("own", "tenant-a") else api_key
    before = stack.invocations("-workflow") + stack.invocations("-api")
    # WHEN it calls any route
    if route == "start":
        response = stack.http.post(f"{stack.api_url}/workflow", json=VALID_BODY, headers=headers, timeout=30)
    elif route == "status":
        response = stack.http.get(f"{stack.api_url}/workflow/some-id", headers=headers, timeout=30)
    else:
        response = stack.http.post(f"{stack.api_url}/callback", json={"callbackId": "x", "payload": {}},
                                   headers=headers, timeout=30)
    # THEN the authorizer refuses it and neither the workflow nor the api function runs
    assert response.status_code == status
    assert response.json()["message"].startswith(message)
    assert stack.invocations("-workflow") + stack.invocations("-api") == before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "Invalid request body"),
        ({"amount": -1, "currency": "EUR"}, "Invalid request body"),
        ({"amount": 1, "currency": "EUR", "tenantId": "tenant-b"}, "Invalid request body"),
    ],
)
def test_invalid_start_bodies_are_refused_before_the_workflow_runs(stack: StackProcess, body: object, message: str) -> None:
    starts_before = stack.invocations("-workflow")
    data = body if isinstance(body, str) else json.dumps(body)

    response = stack.http.post(f"{stack.api_url}/workflow", data=data,
                               headers={**stack.headers("tenant-a"), "content-type": "application/json"}, timeout=30)

    assert response.status_code == 400
    assert response.json()["message"].startswith(message)
    assert stack.invocations("-workflow") == starts_before


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
