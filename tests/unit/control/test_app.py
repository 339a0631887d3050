"""The admin API's handler against moto DynamoDB, with the provisioner's Invoke recorded (functional)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from control import app
from shared.identity import hash_api_key
from shared.tenants import read_capacity
from tests.unit.api_events import proxy_event
from tests.unit.fakes import FakeLambdaContext

BODY = {"tenantId": "acme", "displayName": "Acme", "tier": "starter", "allowedCurrencies": ["EUR"], "maxAmount": 100,
        "callbackTimeoutSeconds": 600}


class RecordingLambda:
    """Stands in for Lambda's Invoke: records the provisioning executions started (or refuses them)."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.refuse = False

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        if self.refuse:
            raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate Exceeded"}}, "Invoke")
        self.started.append({"name": kwargs["DurableExecutionName"], "function": kwargs["FunctionName"],
                             "type": kwargs["InvocationType"], **json.loads(kwargs["Payload"])})
        return {"StatusCode": 202}


@pytest.fixture
def lam(tables: Any, monkeypatch: pytest.MonkeyPatch) -> RecordingLambda:
    fake = RecordingLambda()
    monkeypatch.setattr(app.STORE, "lambda_client", fake)
    monkeypatch.setattr(app.STORE, "table", tables[0])
    # The demo tenants of the unit tables are plain items (not through the ledger): start from an empty ledger.
    return fake


def call(method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> tuple[int, Any]:
    resource = "/tenants" if path == "/tenants" else ("/tenants/{tenantId}/api-keys" if path.endswith("/api-keys")
                                                    else "/tenants/{tenantId}")
    parts = path.split("/")
    event = proxy_event(method=method, resource=resource, path=path, body=body,
                        path_parameters={"tenantId": parts[2]} if len(parts) > 2 else None)
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {key: [value] for key, value in (query or {}).items()} or None
    answer = app.handler(event, FakeLambdaContext())
    return answer["statusCode"], json.loads(answer["body"])


def set_status(tables: Any, tenant_id: str, status: str) -> None:
    tables[0].update_item(Key={"tenantId": tenant_id}, UpdateExpression="SET #s = :s",
                          ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": status})


def test_onboarding_writes_provisioning_with_only_the_key_hash_and_starts_one_named_execution(lam, tables) -> None:
    status, body = call("POST", "/tenants", BODY)
    assert status == 202 and body["status"] == "PROVISIONING" and body["tenantId"] == "acme"
    item = tables[0].get_item(Key={"tenantId": "acme"})["Item"]
    assert item["apiKeyHash"] == hash_api_key(body["apiKey"]) and body["apiKey"] not in json.dumps(item, default=str)
    assert item["generation"] == 1
    (started,) = lam.started
    assert started["type"] == "Event" and started["function"].endswith(":live")
    assert (started["operation"], started["tenantId"], started["generation"]) == ("onboard", "acme", 1)
    assert read_capacity(tables[0]).rate == 5


def test_an_existing_id_is_409_and_a_provisioning_one_is_nudged_under_the_same_name(lam) -> None:
    call("POST", "/tenants", BODY)
    status, body = call("POST", "/tenants", {**BODY, "displayName": "Other"})
    assert status == 409 and "already exists" in body["message"]
    assert [s["name"] for s in lam.started] == [lam.started[0]["name"]] * 2


def test_a_failed_onboarding_is_retried_with_a_new_key_and_a_new_execution(lam, tables) -> None:
    first = call("POST", "/tenants", BODY)[1]["apiKey"]
    set_status(tables, "acme", "FAILED")
    tables[0].update_item(Key={"tenantId": "#capacity"}, UpdateExpression="ADD rateSum :r, burstSum :b",
                          ExpressionAttributeValues={":r": -5, ":b": -10})  # what the provisioner's FAILED move does
    status, body = call("POST", "/tenants", BODY)
    assert status == 202 and body["apiKey"] != first
    assert [s["generation"] for s in lam.started] == [1, 2] and lam.started[0]["name"] != lam.started[1]["name"]


def test_an_onboarding_over_the_stage_throttle_is_409_with_the_reason(lam, monkeypatch) -> None:
    monkeypatch.setattr(app.STORE, "stage", app.StageThrottle(60, 200))
    assert call("POST", "/tenants", {**BODY, "tenantId": "big", "tier": "business"})[0] == 202
    status, body = call("POST", "/tenants", {**BODY, "tenantId": "more", "tier": "business"})
    assert status == 409 and body["message"].startswith("capacity:") and "60" in body["message"]
    assert call("GET", "/tenants/more")[0] == 404


def test_if_the_provisioner_cannot_be_started_the_tenant_is_failed_with_the_reason(lam, tables) -> None:
    lam.refuse = True
    status, body = call("POST", "/tenants", BODY)
    assert status == 503 and "TooManyRequestsException" in body["message"]
    item = tables[0].get_item(Key={"tenantId": "acme"})["Item"]
    assert item["status"] == "FAILED" and "TooManyRequestsException" in item["reason"]
    assert read_capacity(tables[0]).rate == 0  # its share given back


@pytest.mark.parametrize(("current", "wanted", "status"), [
    ("ACTIVE", "SUSPENDED", 200), ("SUSPENDED", "ACTIVE", 200), ("ACTIVE", "ACTIVE", 200),
    ("PROVISIONING", "ACTIVE", 409), ("FAILED", "ACTIVE", 409), ("OFFBOARDED", "ACTIVE", 409), ("OFFBOARDING", "SUSPENDED", 409),
])
def test_status_moves_only_between_active_and_suspended(lam, tables, current, wanted, status) -> None:
    call("POST", "/tenants", BODY)
    set_status(tables, "acme", current)
    answer = call("PATCH", "/tenants/acme", {"status": wanted})
    assert answer[0] == status
    assert tables[0].get_item(Key={"tenantId": "acme"})["Item"]["status"] == (wanted if status == 200 else current)


def test_a_tier_change_moves_the_ledger_and_starts_a_reconcile(lam, tables) -> None:
    call("POST", "/tenants", BODY)
    set_status(tables, "acme", "ACTIVE")
    status, body = call("PATCH", "/tenants/acme", {"tier": "business"})
    assert status == 200 and body["tier"] == "business"
    assert read_capacity(tables[0]).rate == 50
    assert lam.started[-1]["operation"] == "reconcile" and lam.started[-1]["generation"] == 2


def test_rotation_keeps_the_previous_key_for_the_overlap_and_zero_revokes(lam, tables) -> None:
    key = call("POST", "/tenants", BODY)[1]["apiKey"]
    set_status(tables, "acme", "ACTIVE")
    status, body = call("POST", "/tenants/acme/api-keys", {"overlapSeconds": 120})
    assert status == 201 and body["apiKey"] != key
    item = tables[0].get_item(Key={"tenantId": "acme"})["Item"]
    assert item["apiKeyHash"] == hash_api_key(body["apiKey"]) and item["previousApiKeyHash"] == hash_api_key(key)
    assert int(item["previousApiKeyExpiresAt"]) == body["previousKeyExpiresAt"]
    call("POST", "/tenants/acme/api-keys", {"overlapSeconds": 0})
    assert "previousApiKeyHash" not in tables[0].get_item(Key={"tenantId": "acme"})["Item"]


def test_offboarding_is_202_then_idempotent_and_a_provisioning_tenant_is_409(lam, tables) -> None:
    call("POST", "/tenants", BODY)
    assert call("DELETE", "/tenants/acme")[0] == 409  # still PROVISIONING
    set_status(tables, "acme", "ACTIVE")
    assert call("DELETE", "/tenants/acme") == (202, {"tenantId": "acme", "status": "OFFBOARDING"})
    assert call("DELETE", "/tenants/acme") == (202, {"tenantId": "acme", "status": "OFFBOARDING"})
    offboards = [s for s in lam.started if s["operation"] == "offboard"]
    assert len({s["name"] for s in offboards}) == 1 and len(offboards) == 2  # the same execution named twice
    set_status(tables, "acme", "OFFBOARDED")
    assert call("DELETE", "/tenants/acme") == (202, {"tenantId": "acme", "status": "OFFBOARDED"})
    assert read_capacity(tables[0]).rate == 0


def test_get_never_shows_a_key_and_an_unknown_tenant_is_404(lam) -> None:
    call("POST", "/tenants", BODY)
    status, body = call("GET", "/tenants/acme")
    assert status == 200 and not {"apiKeyHash", "apiKey", "meteringKey", "generation"} & set(body)
    assert call("GET", "/tenants/nobody") == (404, {"message": "tenant not found"})


def test_list_pages_hides_tombstones_and_the_ledger_unless_asked(lam, tables) -> None:
    for index in range(5):
        call("POST", "/tenants", {**BODY, "tenantId": f"t{index}"})
    set_status(tables, "t0", "OFFBOARDED")
    seen: list[str] = []
    query: dict[str, str] = {"limit": "2"}
    while True:
        status, page = call("GET", "/tenants", query=query)
        assert status == 200 and len(page["tenants"]) <= 2
        seen += [tenant["tenantId"] for tenant in page["tenants"]]
        if "nextToken" not in page:
            break
        query = {"limit": "2", "nextToken": page["nextToken"]}
    # The unit tables also hold the three demo tenants (seeded as plain items).
    assert "t0" not in seen and {"t1", "t2", "t3", "t4"} <= set(seen) and "#capacity" not in seen
    assert len(seen) == len(set(seen))
    tombstones = call("GET", "/tenants", query={"status": "OFFBOARDED"})[1]["tenants"]
    assert [tenant["tenantId"] for tenant in tombstones] == ["t0"]


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/tenants", {**BODY, "tier": "gold"}, "tier"),
    ("POST", "/tenants", "not json", "body"),
    ("PATCH", "/tenants/acme", {"status": "OFFBOARDED"}, "status"),
    ("POST", "/tenants/acme/api-keys", {"overlapSeconds": -1}, "overlapSeconds"),
    ("GET", "/tenants/a%20b", None, "tenantId"),
])
def test_bad_input_is_400_naming_the_field(lam, method, path, body, field) -> None:
    status, answer = call(method, path, body)
    assert status == 400 and answer["message"].startswith(f"{field}: ")
