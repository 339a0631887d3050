"""Provisioning under faults: the provisioner killed after each checkpoint, and each AWS call it makes failing
once or for good. The tenant ends ACTIVE exactly once (one key, one queue, one rule), or FAILED with a reason
and, after offboarding, nothing left behind (keys, plan keys, queues and rules counted before and after)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.testing.faults import COUNTED_ONLY, FAILS_EVERY_ATTEMPT, FAILS_ONCE, KILLED_AFTER, fault_rule
from tests.harness import StackProcess
from tests.local.tenant_admin import admin, names, resources, tenant_body

pytestmark = pytest.mark.slow

# The provisioner's steps retry each call: botocore's attempts times the step's five.
PROVISIONER_STEP_ATTEMPTS = 5


class Faults:
    def __init__(self, stack: StackProcess) -> None:
        self.url = stack.fault_url

    def arm(self, rule: dict[str, Any]) -> None:
        requests.post(f"{self.url}/_faults", json=rule, timeout=10).raise_for_status()

    def rules(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/_faults", timeout=10).json()["rules"]

    def clear(self) -> None:
        requests.delete(f"{self.url}/_faults", timeout=10).raise_for_status()


@pytest.fixture
def faults(faulty_stack: StackProcess) -> Iterator[Faults]:
    controller = Faults(faulty_stack)
    controller.clear()
    yield controller
    controller.clear()


def onboard_and_settle(stack: StackProcess, tenant_id: str) -> dict[str, Any]:
    client = admin(stack)
    answer = client.call("POST", "/tenants", tenant_body(tenant_id))
    assert answer.status_code == 202, answer.text
    return client.wait_for(tenant_id, ("ACTIVE", "FAILED"), 120)


def offboard_and_settle(stack: StackProcess, tenant_id: str) -> dict[str, Any]:
    client = admin(stack)
    assert client.call("DELETE", f"/tenants/{tenant_id}").status_code == 202
    return client.wait_for(tenant_id, ("OFFBOARDED", "FAILED"), 120)


def exactly_once(stack: StackProcess, tenant_id: str, before: dict[str, Any]) -> None:
    after = resources(stack)
    assert after["keys"].count(names(tenant_id).metering_key) == 1
    assert after["queues"].count(names(tenant_id).callback_queue) == 1
    assert after["rules"].count(names(tenant_id).callback_rule) == 1
    assert after["planKeys"] == before["planKeys"] + 1


# (label, target, operation, what its body names): the provisioner's calls while onboarding.
def onboarding_calls(tenant_id: str) -> list[tuple[str, str, str, list[str]]]:
    queue = names(tenant_id).callback_queue
    return [
        ("create-queue", "sqs", "CreateQueue", [queue]),
        ("queue-policy", "sqs", "SetQueueAttributes", ["Policy"]),
        ("put-rule", "events", "PutRule", [queue]),
        ("put-targets", "events", "PutTargets", [queue]),
        ("activate", "dynamodb", "TransactWriteItems", [tenant_id, "ACTIVE"]),
    ]


@pytest.mark.parametrize("index", range(5))
def test_each_onboarding_call_failing_once_still_ends_active_exactly_once(faulty_stack, faults, index) -> None:
    tenant_id = f"fault-once-{index}"
    label, target, operation, body = onboarding_calls(tenant_id)[index]
    before = resources(faulty_stack)
    faults.arm(fault_rule(FAILS_ONCE, target=target, operation=operation, body_contains=body, label=label,
                          caller="provisioner"))
    assert onboard_and_settle(faulty_stack, tenant_id)["status"] == "ACTIVE"
    assert [rule["hits"] for rule in faults.rules() if rule["label"] == label] == [1]
    exactly_once(faulty_stack, tenant_id, before)
    assert offboard_and_settle(faulty_stack, tenant_id)["status"] == "OFFBOARDED"
    assert resources(faulty_stack) == before


@pytest.mark.parametrize("index", range(4))
def test_an_onboarding_call_failing_for_good_ends_failed_with_a_reason_and_offboarding_leaves_nothing(
        faulty_stack, faults, index) -> None:
    tenant_id = f"fault-good-{index}"
    label, target, operation, body = onboarding_calls(tenant_id)[index]
    before = resources(faulty_stack)
    faults.arm(fault_rule(FAILS_EVERY_ATTEMPT, target=target, operation=operation, body_contains=body, label=label,
                          caller="provisioner", step_attempts=PROVISIONER_STEP_ATTEMPTS))
    tenant = onboard_and_settle(faulty_stack, tenant_id)
    assert tenant["status"] == "FAILED" and "failed" in tenant["reason"] and "callback-route" in tenant["reason"]
    # Its key is refused (the tenant is not ACTIVE), and its share of the stage's throttle is free again.
    faults.clear()
    assert offboard_and_settle(faulty_stack, tenant_id)["status"] == "OFFBOARDED"
    assert resources(faulty_stack) == before


def test_the_provisioner_killed_after_each_checkpoint_still_onboards_exactly_once(faulty_stack, faults) -> None:
    # GIVEN how many checkpoints one onboarding makes
    faults.arm(fault_rule(COUNTED_ONLY, target="durable", operation="CheckpointDurableExecution", body_contains=[],
                          label="census", caller="provisioner"))
    before = resources(faulty_stack)
    assert onboard_and_settle(faulty_stack, "fault-census")["status"] == "ACTIVE"
    checkpoints = next(rule["hits"] for rule in faults.rules() if rule["label"] == "census")
    assert checkpoints >= 4
    assert offboard_and_settle(faulty_stack, "fault-census")["status"] == "OFFBOARDED"
    faults.clear()
    # WHEN the provisioner's environment is killed right after each of them, one onboarding each
    for skip in range(checkpoints):
        tenant_id = f"fault-kill-{skip}"
        faults.arm(fault_rule(KILLED_AFTER, target="durable", operation="CheckpointDurableExecution",
                              body_contains=[], skip=skip, label=f"kill-{skip}", caller="provisioner"))
        # THEN it ends ACTIVE with one key, one queue, one rule
        assert onboard_and_settle(faulty_stack, tenant_id)["status"] == "ACTIVE", skip
        assert [rule["hits"] for rule in faults.rules() if rule["label"] == f"kill-{skip}"] == [1]
        exactly_once(faulty_stack, tenant_id, before)
        faults.clear()
        assert offboard_and_settle(faulty_stack, tenant_id)["status"] == "OFFBOARDED"
        assert resources(faulty_stack) == before


def test_offboarding_with_its_calls_failing_once_still_removes_everything(faulty_stack, faults) -> None:
    before = resources(faulty_stack)
    tenant_id = "fault-off"
    assert onboard_and_settle(faulty_stack, tenant_id)["status"] == "ACTIVE"
    queue = names(tenant_id).callback_queue
    for label, target, operation, body in (("remove-targets", "events", "RemoveTargets", [queue]),
                                           ("delete-rule", "events", "DeleteRule", [queue]),
                                           ("delete-queue", "sqs", "DeleteQueue", [queue]),
                                           ("tombstone", "dynamodb", "TransactWriteItems", [tenant_id, "OFFBOARDED"])):
        faults.arm(fault_rule(FAILS_ONCE, target=target, operation=operation, body_contains=body, label=label,
                              caller="provisioner"))
    assert offboard_and_settle(faulty_stack, tenant_id)["status"] == "OFFBOARDED"
    assert {rule["label"]: rule["hits"] for rule in faults.rules()} == {
        "remove-targets": 1, "delete-rule": 1, "delete-queue": 1, "tombstone": 1}
    assert resources(faulty_stack) == before
