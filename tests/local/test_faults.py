"""Faults on the local stack: a worker killed mid-step, the durable emulator restarted,
DynamoDB failing transiently. The workflow resumes and completes; no step before the
fault runs twice; nothing is lost or completed twice."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.harness import StackProcess, wait_until

pytestmark = pytest.mark.slow

BODY = {"amount": 40, "currency": "EUR", "description": "fault test"}


class Faults:
    def __init__(self, stack: StackProcess) -> None:
        self.url = stack.fault_url

    def arm(self, **rule: Any) -> None:
        requests.post(f"{self.url}/_faults", json=rule, timeout=10).raise_for_status()

    def rules(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/_faults", timeout=10).json()["rules"]

    def clear(self) -> None:
        requests.delete(f"{self.url}/_faults", timeout=10).raise_for_status()

    def restart_emulator(self) -> None:
        requests.post(f"{self.url}/_faults/durable-emulator/restart", timeout=60).raise_for_status()


@pytest.fixture
def faults(faulty_stack: StackProcess) -> Iterator[Faults]:
    controller = Faults(faulty_stack)
    controller.clear()
    yield controller
    controller.clear()


def log_lines(stack: StackProcess, workflow_id: str, message: str) -> list[dict[str, Any]]:
    """The functions' JSON log lines (they share the stack's log) for one workflow and message."""
    found = []
    for line in stack.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and workflow_id in line:
            record = json.loads(line)
            if record.get("workflow_id") == workflow_id and record.get("message") == message:
                found.append(record)
    return found


def test_worker_killed_in_the_middle_of_the_final_registry_write_resumes_without_rerunning_step_one(
    faulty_stack: StackProcess, faults: Faults
) -> None:
    stack = faulty_stack
    workflow_id = stack.start_workflow("tenant-a", BODY)
    callback_id = stack.wait_for_status("tenant-a", workflow_id, "WAITING_FOR_CALLBACK")["callbackId"]
    # GIVEN the final registry write stalls (and then fails, as for a process that died)
    faults.arm(operation="UpdateItem", body_contains="COMPLETED", count=1, delay_seconds=6, fail=True)
    assert stack.callback("tenant-a", callback_id, {"approved": True}).status_code == 200
    wait_until(lambda: faults.rules()[0]["hits"] == 1, 30, "finalize reaching its registry write")
    # WHEN the tenant's workers are killed in the middle of that step (record-outcome)
    victims = [w for w in stack.workers() if w["functionName"].endswith("-workflow") and w["tenantId"] == "tenant-a"]
    assert victims
    for worker in victims:
        os.kill(worker["pid"], signal.SIGKILL)
    # THEN the invocation is retried in a new environment of the same tenant and completes
    done = stack.wait_for_status("tenant-a", workflow_id, "COMPLETED", timeout=90)
    assert done["result"]["confirmation"] == {"approved": True}
    survivors = [w for w in stack.workers() if w["functionName"].endswith("-workflow")]
    assert all(w["tenantId"] == "tenant-a" for w in survivors)
    assert {w["environmentId"] for w in survivors if w["tenantId"] == "tenant-a"} - {w["environmentId"] for w in victims}
    # step one ran once; the workflow completed once (the killed attempt never wrote)
    assert len(log_lines(stack, workflow_id, "request accepted")) == 1
    assert len(log_lines(stack, workflow_id, "workflow completed")) == 1


def test_durable_emulator_restart_while_waiting_loses_nothing(faulty_stack: StackProcess, faults: Faults) -> None:
    stack = faulty_stack
    workflow_id = stack.start_workflow("tenant-a", BODY)
    callback_id = stack.wait_for_status("tenant-a", workflow_id, "WAITING_FOR_CALLBACK")["callbackId"]
    faults.restart_emulator()
    assert stack.callback("tenant-a", callback_id, {"after": "restart"}).status_code == 200
    done = stack.wait_for_status("tenant-a", workflow_id, "COMPLETED", timeout=60)
    assert done["result"]["confirmation"] == {"after": "restart"}
    assert len(log_lines(stack, workflow_id, "request accepted")) == 1


def test_transient_dynamodb_failures_are_retried_and_nothing_runs_twice(faulty_stack: StackProcess, faults: Faults) -> None:
    stack = faulty_stack
    # GIVEN the registry write of the callback submitter fails 4 times in a row
    # (more than the SDK's 3 attempts, so the durable step's own retry takes over)
    faults.arm(operation="UpdateItem", body_contains="WAITING_FOR_CALLBACK", count=4, fail=True)
    # and the tenant read fails twice (absorbed by boto3's retries inside step one)
    faults.arm(operation="GetItem", body_contains="tenant-b", count=2, fail=True)
    workflow_id = stack.start_workflow("tenant-b", {"amount": 20, "currency": "GBP"})
    callback_id = stack.wait_for_status("tenant-b", workflow_id, "WAITING_FOR_CALLBACK", timeout=60)["callbackId"]
    assert [rule["hits"] for rule in faults.rules()] == [4, 2]
    assert stack.callback("tenant-b", callback_id).status_code == 200
    stack.wait_for_status("tenant-b", workflow_id, "COMPLETED", timeout=60)
    assert len(log_lines(stack, workflow_id, "request accepted")) == 1
    assert len(log_lines(stack, workflow_id, "waiting for external confirmation")) == 1
    assert len(log_lines(stack, workflow_id, "workflow completed")) == 1


def test_fault_plan_skips_then_hits_and_records_every_call_with_its_caller() -> None:
    """A rule can aim at the second of two identical calls; a recording sees each call, faulted or not."""
    from local.testing.faults import FaultPlan, FaultRule

    plan = FaultPlan(kill_environment=lambda environment_id: False)
    plan.arm(FaultRule(operation="GetItem", body_contains="callback#1", skip=1, label="second read"))
    plan.start_recording()
    forwarded = []

    def read(user_agent: str) -> int:
        return plan.apply("dynamodb", "GetItem", b'{"Key": "callback#1"}', user_agent,
                          lambda: forwarded.append(1) or (200, {}, b"{}"))[0]

    assert [read("Boto3/1 app/env-0a1b"), read("Boto3/1 app/env-0a1b"), read("aws-cli/2")] == [200, 400, 200]
    assert len(forwarded) == 2
    assert plan.describe()[0]["skipped"] == 1 and plan.describe()[0]["hits"] == 1
    assert [(call["environment"], call["faulted"]) for call in plan.recorded()] == [("0a1b", False), ("0a1b", True), (None, False)]
    plan.stop_recording()
    read("Boto3/1 app/env-0a1b")
    assert plan.recorded() == []


def test_an_event_put_fails_as_eventbridge_does_and_a_counting_rule_only_counts() -> None:
    """EventBridge calls obey the plan like DynamoDB's; "every attempt" is botocore's attempts times the step's."""
    from local.testing.faults import COUNTED_ONLY, EVENTS, FAILS_EVERY_ATTEMPT, FaultPlan, FaultRule, fault_rule

    plan = FaultPlan(kill_environment=lambda environment_id: False)
    rule = fault_rule(FAILS_EVERY_ATTEMPT, target=EVENTS, operation="PutEvents", body_contains=["tenant-x"],
                      step_attempts=5, label="bus")
    assert rule["count"] == 3 * 5  # EVENTS_CONFIG's total_max_attempts, five submitter attempts
    plan.arm(FaultRule(**rule))
    forwarded: list[int] = []

    def put(text: bytes) -> tuple[int, bytes]:
        status, _, body = plan.apply(EVENTS, "PutEvents", text, "", lambda: forwarded.append(1) or (200, {}, b"{}"))
        return status, body

    status, body = put(b'{"Entries": [{"Detail": "{\\"tenantId\\": \\"tenant-x\\"}"}]}')
    assert (status, json.loads(body)["__type"]) == (400, "ThrottlingException") and forwarded == []
    assert put(b'{"Entries": [{"Detail": "{\\"tenantId\\": \\"tenant-y\\"}"}]}')[0] == 200, "another tenant's event"
    plan.clear()
    plan.arm(FaultRule(**fault_rule(COUNTED_ONLY, target="durable", operation="*", body_contains=["cb-1"], label="spy")))
    answers = [plan.apply("durable", "SendDurableExecutionCallbackSuccess", b"/cb-1/succeed\n{}", "",
                          lambda: (200, {}, b"{}"))[0] for _ in range(2)]
    assert answers == [200, 200] and plan.describe()[0]["hits"] == 2
