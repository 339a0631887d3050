"""The queue entry under faults, on a stack of its own with --fault-injection: the Invoke that starts a
workflow throttled for one delivery, failing for good, and the router killed mid-batch. Each workflow starts
once; what cannot start ends in the router's dead-letter queue (by the start queue's redrive)."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from shared.identity import mint_workflow_id
from tests.harness import StackProcess, wait_until

from .router_helpers import QueueEntry

pytestmark = pytest.mark.slow

# src/provisioner/start_queues.py: received this many times, then redriven to the router's DLQ.
MAX_RECEIVE_COUNT = 5
# src/router/app.py INVOKE_CONFIG: botocore's attempts of one Invoke.
INVOKE_ATTEMPTS = 2


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackProcess, str]]:
    base = tmp_path_factory.mktemp("router-fault-stack")
    process = StackProcess(base / "state", base / "stack.log", extra_args=["--fault-injection"])
    process.start()
    yield process, process.fault_url
    process.stop()


@pytest.fixture
def arm(faulty) -> Iterator[Any]:
    _, url = faulty

    def arm_rule(**rule: Any) -> None:
        requests.post(f"{url}/_faults", json={"target": "durable", "operation": "StartExecution", **rule},
                      timeout=10).raise_for_status()

    arm_rule.rules = lambda: requests.get(f"{url}/_faults", timeout=10).json()["rules"]  # type: ignore[attr-defined]
    requests.delete(f"{url}/_faults", timeout=10).raise_for_status()
    yield arm_rule
    requests.delete(f"{url}/_faults", timeout=10).raise_for_status()


def order(tag: str, amount: float = 15) -> str:
    # USD: both demo tenants allow it.
    return json.dumps({"amount": amount, "currency": "USD", "description": tag})


def test_an_invoke_throttled_for_one_delivery_is_retried_by_sqs_and_starts_once(faulty, arm) -> None:
    stack, _ = faulty
    entry = QueueEntry(stack)
    tag = f"throttled-{uuid.uuid4().hex[:8]}"
    # GIVEN every attempt of the first delivery's Invoke is throttled (botocore retries once itself)
    arm(body_contains=[tag], count=INVOKE_ATTEMPTS, fail=True, error="throttle", label=tag)
    before = entry.starts("tenant-a")
    message = entry.send("tenant-a", order(tag))
    # THEN the record is a batch item failure, comes back after the visibility timeout, and starts once
    stack.wait_for_status("tenant-a", message, "WAITING_FOR_CALLBACK", timeout=90)
    entry.wait_drained("tenant-a")
    assert entry.starts("tenant-a") - before == 1
    assert [rule["hits"] for rule in arm.rules() if rule["label"] == tag] == [INVOKE_ATTEMPTS]
    assert message not in entry.dead_letters()


def test_an_invoke_failing_for_good_ends_in_the_dead_letter_queue_after_max_receive_count(faulty, arm) -> None:
    stack, _ = faulty
    entry = QueueEntry(stack)
    tag = f"failing-{uuid.uuid4().hex[:8]}"
    arm(body_contains=[tag], count=1000, fail=True, error="unavailable", label=tag)
    good = entry.send("tenant-a", order(f"fine-{uuid.uuid4().hex[:8]}"))
    doomed = entry.send("tenant-a", order(tag))
    # The good record of the same batch starts at once: one failing record holds back nothing.
    stack.wait_for_status("tenant-a", good, "WAITING_FOR_CALLBACK")
    dead = entry.wait_dead([doomed], timeout=180)
    # Redriven by SQS (no Reason: the router never refused it), received maxReceiveCount times.
    assert "Reason" not in dead[doomed] and json.loads(dead[doomed]["body"])["description"] == tag
    [rule] = [rule for rule in arm.rules() if rule["label"] == tag]
    assert rule["hits"] == MAX_RECEIVE_COUNT * INVOKE_ATTEMPTS
    assert stack.status("tenant-a", doomed).status_code == 404
    entry.wait_drained("tenant-a")


def test_the_router_killed_mid_batch_starts_nothing_twice(faulty, arm) -> None:
    stack, _ = faulty
    entry = QueueEntry(stack)
    tag = f"killed-{uuid.uuid4().hex[:8]}"
    # GIVEN the third start of a batch stalls (then lands), and the router is killed while it waits
    arm(body_contains=[f"{tag}-2"], count=1, fail=False, delay_seconds=6, label=tag)
    before = entry.starts("tenant-b")
    keys = [f"{tag}-{index}" for index in range(5)]
    messages = [entry.send("tenant-b", order(key, 20), key=key) for key in keys]

    def stalled_router() -> dict[str, Any] | None:
        if not [rule for rule in arm.rules() if rule["label"] == tag and rule["hits"]]:
            return None
        return next((w for w in stack.workers() if w["functionName"].endswith("-router") and w["busy"]), None)

    worker = wait_until(stalled_router, 60, "the router waiting on the stalled start")
    os.kill(worker["pid"], signal.SIGKILL)

    # THEN the batch comes back (nothing was deleted), and every order starts exactly once
    for key in keys:
        stack.wait_for_status("tenant-b", mint_workflow_id("tenant-b", key, ""), "WAITING_FOR_CALLBACK", timeout=90)
    entry.wait_drained("tenant-b", timeout=90)
    assert entry.starts("tenant-b") - before == len(keys)
    assert not set(messages) & set(entry.dead_letters())
