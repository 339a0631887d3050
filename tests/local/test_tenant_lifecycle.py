"""The tenant lifecycle end to end on a running local stack, with no restart: onboard, use, suspend,
reactivate, rotate (with and without overlap), offboard with a workflow waiting; two concurrent onboardings."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
import requests

from shared.tenants import OFFBOARDED_REASON
from tests.harness import StackProcess, wait_until
from tests.local.tenant_admin import (
    LOCAL,
    admin,
    names,
    offboard,
    onboard,
    queue_messages,
    read,
    registry_item,
    resources,
    start,
    tenant_body,
    waiting,
)


def test_the_demo_tenants_went_through_the_control_plane(stack: StackProcess) -> None:
    client = admin(stack)
    listed = client.call("GET", "/tenants", None)
    assert listed.status_code == 200, listed.text
    by_id = {tenant["tenantId"]: tenant for tenant in listed.json()["tenants"]}
    assert {by_id[t]["status"] for t in ("tenant-a", "tenant-b")} == {"ACTIVE"}
    assert by_id["tenant-suspended"]["status"] == "SUSPENDED"
    # Never a key, a key hash or the metering key in an answer.
    assert not {"apiKeyHash", "apiKey", "meteringKey", "meteringKeyId", "previousApiKeyHash"} & set(by_id["tenant-a"])
    assert by_id["tenant-a"]["callbackQueueUrl"].endswith(names("tenant-a").callback_queue)


def test_a_tenant_onboarded_at_runtime_runs_workflows_with_its_key_and_gets_its_events(stack: StackProcess) -> None:
    key = onboard(stack, "life.one")
    tenant = admin(stack).call("GET", "/tenants/life.one").json()
    assert tenant["status"] == "ACTIVE" and tenant["tier"] == "starter"
    # "." is no valid queue name: the names are hashed.
    assert tenant["callbackQueueUrl"].endswith(names("life.one").callback_queue)
    status = waiting(stack, "life.one", key)
    events = queue_messages(stack, tenant["callbackQueueUrl"])
    assert [event["detail"]["workflowId"] for event in events] == [status["workflowId"]]
    answer = requests.post(status["callbackUrl"], json={"payload": {"approved": True}}, timeout=30)
    assert answer.status_code == 200, answer.text
    done = wait_until(lambda: read(stack, "life.one", key, status["workflowId"]).json()["status"] == "COMPLETED",
                      45, "workflow completed")
    assert done
    # Another tenant's key never works for it.
    assert start(stack, "life.one", stack.api_keys["tenant-a"]).status_code == 403
    offboard(stack, "life.one")


def test_suspension_refuses_starts_and_tokens_at_once_and_reactivation_lets_them_in(stack: StackProcess) -> None:
    key = onboard(stack, "life-suspend")
    held = waiting(stack, "life-suspend", key)
    client = admin(stack)
    assert client.call("PATCH", "/tenants/life-suspend", {"status": "SUSPENDED"}).json()["status"] == "SUSPENDED"
    assert start(stack, "life-suspend", key).status_code == 403
    assert requests.post(held["callbackUrl"], json={"payload": {}}, timeout=30).status_code == 404
    assert client.call("PATCH", "/tenants/life-suspend", {"status": "ACTIVE"}).json()["status"] == "ACTIVE"
    assert start(stack, "life-suspend", key).status_code == 202
    assert requests.post(held["callbackUrl"], json={"payload": {"ok": True}}, timeout=30).status_code == 200
    offboard(stack, "life-suspend")


def test_rotation_with_overlap_keeps_both_keys_then_only_the_new_and_zero_revokes_at_once(stack: StackProcess) -> None:
    first = onboard(stack, "life-rotate")
    client = admin(stack)
    rotated = client.call("POST", "/tenants/life-rotate/api-keys", {"overlapSeconds": 2})
    assert rotated.status_code == 201, rotated.text
    second = rotated.json()["apiKey"]
    # Both work during the overlap (an unknown workflow is 404: the request was authorized).
    assert read(stack, "life-rotate", first, "none").status_code == 404
    assert read(stack, "life-rotate", second, "none").status_code == 404
    wait_until(lambda: read(stack, "life-rotate", first, "none").status_code == 403, 15, "the old key expiring")
    assert read(stack, "life-rotate", second, "none").status_code == 404
    third = client.call("POST", "/tenants/life-rotate/api-keys", {"overlapSeconds": 0}).json()["apiKey"]
    assert read(stack, "life-rotate", second, "none").status_code == 403
    assert read(stack, "life-rotate", third, "none").status_code == 404
    offboard(stack, "life-rotate")


def test_offboarding_fails_the_waiting_workflow_and_removes_everything_but_the_tombstone(stack: StackProcess) -> None:
    before = resources(stack)
    key = onboard(stack, "life-off")
    queue_url = admin(stack).call("GET", "/tenants/life-off").json()["callbackQueueUrl"]
    held = waiting(stack, "life-off", key)
    assert resources(stack)["queues"] == sorted([*before["queues"], names("life-off").callback_queue])
    tenant = offboard(stack, "life-off")
    assert tenant["status"] == "OFFBOARDED" and tenant["callbackQueueUrl"] is None
    item = wait_until(lambda: (i := registry_item(stack, "life-off", held["workflowId"]))["status"] == "FAILED" and i,
                      45, "the waiting workflow failed")
    assert item["reason"] == OFFBOARDED_REASON
    assert requests.post(held["callbackUrl"], json={"payload": {}}, timeout=30).status_code == 404
    assert start(stack, "life-off", key).status_code == 403
    sqs = boto3.client("sqs", endpoint_url=stack.dynamodb_url, **LOCAL)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    assert resources(stack) == before
    # The tombstone keeps the id: no reuse by mistake; DELETE again answers the status.
    assert admin(stack).call("POST", "/tenants", tenant_body("life-off")).status_code == 409
    again = admin(stack).call("DELETE", "/tenants/life-off")
    assert (again.status_code, again.json()["status"]) == (202, "OFFBOARDED")
    listed = admin(stack).call("GET", "/tenants").json()["tenants"]
    assert "life-off" not in {tenant["tenantId"] for tenant in listed}
    tombstones = admin(stack).call("GET", "/tenants?status=OFFBOARDED").json()["tenants"]
    assert "life-off" in {tenant["tenantId"] for tenant in tombstones}


def test_two_concurrent_onboardings_of_one_id_give_one_202_one_409_and_one_set_of_resources(stack: StackProcess) -> None:
    before = resources(stack)
    answers: list[Any] = []
    barrier = threading.Barrier(2)

    def post() -> None:
        client = admin(stack)
        barrier.wait()
        answers.append(client.call("POST", "/tenants", tenant_body("life-race")))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answer.status_code for answer in answers) == [202, 409]
    assert admin(stack).wait_for("life-race", ("ACTIVE", "FAILED"), 60)["status"] == "ACTIVE"
    after = resources(stack)
    assert after["keys"].count(names("life-race").metering_key) == 1
    assert after["planKeys"] == before["planKeys"] + 1
    offboard(stack, "life-race")
    assert resources(stack) == before


def test_a_tier_that_does_not_fit_the_stage_throttle_is_refused_with_the_reason(stack: StackProcess) -> None:
    # tenant-a (business, 50) and two starters (5 each) hold 60 of the stage's 100 requests per second.
    answer = admin(stack).call("POST", "/tenants", tenant_body("life-big", tier="business"))
    assert answer.status_code == 409
    assert answer.json()["message"].startswith("capacity:")
    assert admin(stack).call("GET", "/tenants/life-big").status_code == 404


def test_a_restart_reconciles_every_live_tenants_key_queue_and_rule(stack: StackProcess) -> None:
    # GIVEN a tenant onboarded at runtime (moto and the local API Gateway keep its resources in memory only)
    key = onboard(stack, "life-restart")
    before = resources(stack)
    # WHEN make run is stopped and started again
    stack.restart()
    # THEN its key, queue and rule exist again, once, and its workflows still reach its queue
    after = resources(stack)
    assert after == before
    tenant = admin(stack).call("GET", "/tenants/life-restart").json()
    assert tenant["status"] == "ACTIVE" and tenant["callbackQueueUrl"].endswith(names("life-restart").callback_queue)
    status = waiting(stack, "life-restart", key)
    events = queue_messages(stack, tenant["callbackQueueUrl"])
    assert status["workflowId"] in [event["detail"]["workflowId"] for event in events]
    offboard(stack, "life-restart")
