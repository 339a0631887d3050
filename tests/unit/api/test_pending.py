"""GET /workflows: parameters (a table), the nextToken's binding, paging through the index, the handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from api import app, pending
from api.callbacks import InvalidRequest
from shared import registry as reg
from tests.unit.api_events import proxy_event
from tests.unit.fakes import FakeLambdaContext, register_waiting

KEY = pending.list_key(b"unit-key")


def query(**values: str | list[str]) -> dict[str, list[str]]:
    return {name: value if isinstance(value, list) else [value] for name, value in values.items()}


@pytest.mark.parametrize(("given", "status", "limit"), [
    ({}, None, 20),
    (query(status="WAITING_FOR_CALLBACK"), "WAITING_FOR_CALLBACK", 20),
    (query(status="COMPLETED", limit="100"), "COMPLETED", 100),
    (query(limit="1"), None, 1),
])
def test_parameters_that_are_accepted(given: dict[str, list[str]], status: str | None, limit: int) -> None:
    assert pending.parse_list_request(given, "tenant-a", lambda: KEY) == pending.ListRequest(status, limit)


@pytest.mark.parametrize("given", [
    query(limit="0"), query(limit="101"), query(limit="-1"), query(limit="1.5"), query(limit="ten"), query(limit=""),
    query(limit="١"), query(status="waiting"), query(status="UNKNOWN"), query(status=""),
    query(limit=["1", "2"]), query(other="1"), query(nextToken="nope"), query(nextToken=""),
])
def test_parameters_that_are_400(given: dict[str, list[str]]) -> None:
    with pytest.raises(InvalidRequest):
        pending.parse_list_request(given, "tenant-a", lambda: KEY)


def a_key(tenant: str = "tenant-a", status: str | None = None) -> dict[str, str]:
    _index, attribute, value = reg.list_index(tenant, status)
    return {"tenantId": tenant, "recordId": "workflow#wf-1", attribute: value, "createdKey": "0000000001#wf-1"}


def test_a_token_reads_back_for_its_tenant_and_filter_only() -> None:
    token = pending.next_token(KEY, "tenant-a", "WAITING_FOR_CALLBACK", a_key(status="WAITING_FOR_CALLBACK"))
    assert pending.read_next_token(KEY, token, "tenant-a", "WAITING_FOR_CALLBACK") == a_key(status="WAITING_FOR_CALLBACK")
    for tenant, status, key in [("tenant-b", "WAITING_FOR_CALLBACK", KEY), ("tenant-a", None, KEY),
                                ("tenant-a", "COMPLETED", KEY), ("tenant-a", "WAITING_FOR_CALLBACK", pending.list_key(b"x"))]:
        with pytest.raises(InvalidRequest):
            pending.read_next_token(key, token, tenant, status)


def test_an_altered_or_forged_token_is_refused() -> None:
    token = pending.next_token(KEY, "tenant-a", None, a_key())
    body, mac = token.split(".")
    forged_body = pending._b64(json.dumps({"t": "tenant-a", "s": None, "k": a_key("tenant-b")}).encode())
    for bad in [body + "." + mac[:-2] + "AA", forged_body + "." + mac, body, token + ".x", "x" * 3000, "%%%.%%%"]:
        with pytest.raises(InvalidRequest):
            pending.read_next_token(KEY, bad, "tenant-a", None)


def test_a_signed_token_with_another_tenants_key_inside_is_refused() -> None:
    # Even signed with the right key (never issued so), a key outside the tenant's partition is refused.
    token = pending.next_token(KEY, "tenant-a", None, a_key("tenant-b"))
    with pytest.raises(InvalidRequest):
        pending.read_next_token(KEY, token, "tenant-a", None)


# -- the registry's query ---------------------------------------------------------------------------


@pytest.fixture
def clock() -> Iterator[list[int]]:
    now = [1_800_000_000]
    with mock.patch.object(app.REGISTRY, "_clock", lambda: now[0]):
        yield now


def start(tenant: str, workflow_id: str, clock: list[int], *, waiting: bool = True) -> None:
    clock[0] += 1
    app.REGISTRY.claim_workflow(tenant, workflow_id, f"arn:{tenant}:{workflow_id}", {"amount": 1, "currency": "EUR"})
    if waiting:
        register_waiting(app.REGISTRY, tenant, workflow_id, f"cb-{workflow_id}", 3600)


def test_the_query_lists_the_tenants_own_newest_first_and_leaves_ended_ones_out(tables: Any, clock: list[int]) -> None:
    for number in range(3):
        start("tenant-a", f"wf-{number}", clock)
        start("tenant-b", f"wf-{number}", clock)
    start("tenant-a", "wf-started", clock, waiting=False)
    app.REGISTRY.record_outcome("tenant-a", "wf-1", reg.COMPLETED, result={"status": "COMPLETED"})
    open_ids = [r.workflow_id for r in app.REGISTRY.list_workflows("tenant-a", None, 100).records]
    assert open_ids == ["wf-started", "wf-2", "wf-0"]
    waiting = app.REGISTRY.list_workflows("tenant-a", reg.WAITING_FOR_CALLBACK, 100).records
    assert [(r.workflow_id, r.tenant_id) for r in waiting] == [("wf-2", "tenant-a"), ("wf-0", "tenant-a")]
    assert [r.workflow_id for r in app.REGISTRY.list_workflows("tenant-a", reg.COMPLETED, 100).records] == ["wf-1"]
    assert waiting[0].created_at == 1_800_000_005 and waiting[0].callback_deadline is not None


def test_one_query_per_page(tables: Any, clock: list[int]) -> None:
    start("tenant-a", "wf-1", clock)
    with mock.patch.object(app.REGISTRY._table, "query", wraps=app.REGISTRY._table.query) as spied, \
            mock.patch.object(app.REGISTRY._table, "scan") as scan:
        app.REGISTRY.list_workflows("tenant-a", None, 5)
    assert spied.call_count == 1 and spied.call_args.kwargs["IndexName"] == reg.OPEN_INDEX
    assert not scan.called


# -- through the handler ----------------------------------------------------------------------------


def get_list(tenant: str | None, params: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    event = proxy_event(method="GET", resource="/workflows", path="/workflows",
                        headers={"x-tenant-id": tenant or ""},
                        authorizer={"tenantId": tenant} if tenant else None)
    event["queryStringParameters"] = params
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in params.items()} if params else None
    response = app.handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_paging_with_limit_1_returns_every_item_once(tables: Any, clock: list[int]) -> None:
    for number in range(5):
        start("tenant-a", f"wf-{number}", clock)
    start("tenant-b", "wf-b", clock)
    seen: list[str] = []
    params = {"limit": "1", "status": "WAITING_FOR_CALLBACK"}
    while True:
        status, body = get_list("tenant-a", params)
        assert status == 200 and len(body["workflows"]) <= 1
        seen += [item["workflowId"] for item in body["workflows"]]
        if "nextToken" not in body:
            break
        params = {**params, "nextToken": body["nextToken"]}
    assert seen == [f"wf-{n}" for n in reversed(range(5))]
    item = get_list("tenant-a", {"limit": "1"})[1]["workflows"][0]
    assert set(item) == {"workflowId", "status", "createdAt", "callbackDeadline", "callbackUrl"}
    assert item["callbackUrl"].startswith("https://api.example.test/v1/callbacks/")


def test_another_tenants_next_token_is_400(tables: Any, clock: list[int]) -> None:
    for number in range(2):
        start("tenant-b", f"wf-{number}", clock)
    token = get_list("tenant-b", {"limit": "1"})[1]["nextToken"]
    assert get_list("tenant-a", {"limit": "1", "nextToken": token})[0] == 400
    assert get_list("tenant-b", {"limit": "1", "nextToken": token, "status": "COMPLETED"})[0] == 400
    assert get_list("tenant-b", {"limit": "1", "nextToken": token})[0] == 200


def test_without_a_verified_tenant_it_is_401(tables: Any) -> None:
    assert get_list(None)[0] == 401


@pytest.mark.parametrize("params", [{"limit": "0"}, {"status": "NOPE"}, {"nextToken": "forged.token"}, {"x": "1"}])
def test_bad_parameters_are_400_json(tables: Any, params: dict[str, str]) -> None:
    status, body = get_list("tenant-a", params)
    assert status == 400 and isinstance(body["message"], str)
