"""GET /workflows on the local stack: each tenant sees its own waiting workflows, even while both start at once;
paging with limit=1 visits every item once; another tenant's or a forged nextToken is 400; the authorizer guards it."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest
import requests

from tests.harness import StackProcess

PER_TENANT = 4
BODIES = {"tenant-a": {"amount": 10, "currency": "EUR"}, "tenant-b": {"amount": 10, "currency": "GBP"}}


def listing(stack: StackProcess, tenant: str | None, **params: str) -> requests.Response:
    return stack.http.get(f"{stack.api_url}/workflows", params=params, headers=stack.headers(tenant), timeout=30)


def every_page(stack: StackProcess, tenant: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        response = listing(stack, tenant, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["workflows"]) <= int(params.get("limit", "20"))
        items += body["workflows"]
        if "nextToken" not in body:
            return items
        params = {**params, "nextToken": body["nextToken"]}


@pytest.fixture(scope="module")
def started(stack: StackProcess) -> dict[str, list[str]]:
    """Both tenants start PER_TENANT workflows at once, and each waits for its callback."""
    jobs = [tenant for tenant in BODIES for _ in range(PER_TENANT)]
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        ids = list(pool.map(lambda tenant: (tenant, stack.start_workflow(tenant, BODIES[tenant])), jobs))
    by_tenant: dict[str, list[str]] = {tenant: [] for tenant in BODIES}
    for tenant, workflow_id in ids:
        stack.wait_for_status(tenant, workflow_id, "WAITING_FOR_CALLBACK")
        by_tenant[tenant].append(workflow_id)
    return by_tenant


def test_each_tenant_lists_only_its_own_waiting_workflows_while_both_read_at_once(
        stack: StackProcess, started: dict[str, list[str]]) -> None:
    def read(tenant: str) -> tuple[str, list[dict[str, Any]]]:
        return tenant, every_page(stack, tenant, status="WAITING_FOR_CALLBACK", limit="100")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(read, [tenant for tenant in BODIES for _ in range(4)]))
    for tenant, items in results:
        ids = {item["workflowId"] for item in items}
        assert set(started[tenant]) <= ids, "every waiting workflow of the tenant is listed"
        other = next(t for t in BODIES if t != tenant)
        assert not ids & set(started[other]), "never another tenant's"
        for item in items:
            assert item["status"] == "WAITING_FOR_CALLBACK" and item["callbackUrl"].startswith(stack.api_url)
            assert isinstance(item["createdAt"], int) and item["callbackDeadline"] > item["createdAt"]
        created = [item["createdAt"] for item in items]
        assert created == sorted(created, reverse=True), "newest first"


def test_paging_with_limit_1_visits_every_item_once(stack: StackProcess, started: dict[str, list[str]]) -> None:
    whole = every_page(stack, "tenant-a", limit="100")
    one_by_one = every_page(stack, "tenant-a", limit="1")
    assert [item["workflowId"] for item in one_by_one] == [item["workflowId"] for item in whole]
    assert len({item["workflowId"] for item in one_by_one}) == len(one_by_one)
    assert set(started["tenant-a"]) <= {item["workflowId"] for item in one_by_one}


def test_another_tenants_or_a_forged_next_token_is_400(stack: StackProcess, started: dict[str, list[str]]) -> None:
    token = listing(stack, "tenant-b", limit="1").json()["nextToken"]
    refused = listing(stack, "tenant-a", limit="1", nextToken=token)
    assert refused.status_code == 400 and "nextToken" in refused.json()["message"]
    body, mac = token.split(".")
    for forged in (f"{body}.{mac[::-1]}", f"{body[:-4]}AAAA.{mac}", "eyJ0IjoidGVuYW50LWEifQ.AAAA"):
        assert listing(stack, "tenant-b", limit="1", nextToken=forged).status_code == 400
    assert listing(stack, "tenant-b", limit="1", status="COMPLETED", nextToken=token).status_code == 400
    assert listing(stack, "tenant-b", limit="1", nextToken=token).status_code == 200


@pytest.mark.parametrize(("params", "status"), [({"limit": "0"}, 400), ({"limit": "101"}, 400),
                                                ({"status": "SLEEPING"}, 400), ({"limit": "100"}, 200),
                                                ({"status": "COMPLETED"}, 200)])
def test_parameters(stack: StackProcess, params: dict[str, str], status: int) -> None:
    assert listing(stack, "tenant-a", **params).status_code == status


def test_the_route_needs_the_tenants_key(stack: StackProcess) -> None:
    assert stack.http.get(f"{stack.api_url}/workflows", timeout=30).status_code == 401
    wrong = stack.http.get(f"{stack.api_url}/workflows", headers={"x-tenant-id": "tenant-a", "x-api-key": "nope"},
                           timeout=30)
    assert wrong.status_code == 403
