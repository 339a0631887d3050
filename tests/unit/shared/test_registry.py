"""Workflow registry against moto DynamoDB."""

from __future__ import annotations

from typing import Any

import pytest

from shared import registry as reg
from tests.unit.fakes import register_waiting


@pytest.fixture
def registry(tables: Any) -> reg.WorkflowRegistry:
    _, workflows = tables
    return reg.WorkflowRegistry(workflows, retention_seconds=100, clock=lambda: 1_000.0)


def test_waiting_workflow_is_found_by_its_callback_only_for_its_tenant(registry: reg.WorkflowRegistry) -> None:
    register_waiting(registry, "tenant-a", "wf-1", "cb-" + "x" * 1000, timeout_seconds=60)
    found = registry.find_by_callback("tenant-a", "cb-" + "x" * 1000)
    assert found is not None and found.workflow_id == "wf-1" and found.status == reg.WAITING_FOR_CALLBACK
    assert registry.find_by_callback("tenant-b", "cb-" + "x" * 1000) is None
    assert registry.get_workflow("tenant-b", "wf-1") is None


def test_outcome_is_recorded_with_result_and_ttl(registry: reg.WorkflowRegistry, tables: Any) -> None:
    register_waiting(registry, "tenant-a", "wf-1", "cb-1", timeout_seconds=60)
    registry.record_outcome("tenant-a", "wf-1", reg.COMPLETED, result={"amount": 12.5})
    record = registry.get_workflow("tenant-a", "wf-1")
    assert record is not None and record.status == reg.COMPLETED and record.result == {"amount": 12.5}
    item = tables[1].get_item(Key=reg.workflow_key("tenant-a", "wf-1"))["Item"]
    assert int(item["expiresAt"]) == 1_100


def test_rejection_creates_the_item(registry: reg.WorkflowRegistry) -> None:
    registry.record_outcome("tenant-a", "wf-2", reg.REJECTED, reason="unknown tenant")
    record = registry.get_workflow("tenant-a", "wf-2")
    assert record is not None and record.reason == "unknown tenant" and record.callback_id is None


def test_non_final_status_is_refused(registry: reg.WorkflowRegistry) -> None:
    with pytest.raises(ValueError, match="not a final status"):
        registry.record_outcome("tenant-a", "wf-1", reg.WAITING_FOR_CALLBACK)


def test_workflow_claim_belongs_to_one_execution(registry: reg.WorkflowRegistry) -> None:
    assert registry.claim_workflow("tenant-a", "wf-9", "arn-1")
    assert registry.claim_workflow("tenant-a", "wf-9", "arn-1"), "the owner may re-run its step"
    assert not registry.claim_workflow("tenant-a", "wf-9", "arn-2")
    assert registry.claim_workflow("tenant-b", "wf-9", "arn-2"), "ids are per tenant"
    record = registry.get_workflow("tenant-a", "wf-9")
    assert record is not None and record.status == reg.STARTED


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked(tables: Any) -> tuple[reg.WorkflowRegistry, Clock]:
    clock = Clock(1_000.0)
    registry = reg.WorkflowRegistry(tables[1], retention_seconds=100, clock=clock)
    register_waiting(registry, "tenant-a", "wf-1", "cb-1", timeout_seconds=600)
    return registry, clock


def test_callback_lease_is_exclusive_to_its_owner_until_released(clocked: tuple[reg.WorkflowRegistry, Clock]) -> None:
    registry, _ = clocked
    assert registry.claim_callback("tenant-a", "cb-1", owner="req-1", lease_seconds=30).claimed
    other = registry.claim_callback("tenant-a", "cb-1", owner="req-2", lease_seconds=30)
    assert not other.claimed and other.lease_until == 1_031 and other.settled_as is None
    assert not registry.claim_callback("tenant-b", "cb-1", owner="req-3", lease_seconds=30).found
    registry.release_callback("tenant-a", "cb-1", owner="req-2")  # not the owner: no effect
    assert not registry.claim_callback("tenant-a", "cb-1", owner="req-2", lease_seconds=30).claimed
    registry.release_callback("tenant-a", "cb-1", owner="req-1")
    assert registry.claim_callback("tenant-a", "cb-1", owner="req-2", lease_seconds=30).claimed


def test_a_retried_claim_write_that_landed_first_does_not_lock_out_its_owner(clocked: tuple[reg.WorkflowRegistry, Clock]) -> None:
    # GIVEN the first attempt of the claim landed but its reply was lost (botocore retries the same call)
    registry, _ = clocked
    assert registry.claim_callback("tenant-a", "cb-1", owner="req-1", lease_seconds=30).claimed
    # THEN the retry of the same owner still holds the lease
    assert registry.claim_callback("tenant-a", "cb-1", owner="req-1", lease_seconds=30).claimed


def test_lease_of_a_killed_holder_expires(clocked: tuple[reg.WorkflowRegistry, Clock]) -> None:
    registry, clock = clocked
    assert registry.claim_callback("tenant-a", "cb-1", owner="killed", lease_seconds=30).claimed
    clock.now += 31
    assert not registry.claim_callback("tenant-a", "cb-1", owner="retry", lease_seconds=30).claimed
    clock.now += 1
    assert registry.claim_callback("tenant-a", "cb-1", owner="retry", lease_seconds=30).claimed


def test_settled_callback_cannot_be_claimed_and_keeps_its_first_outcome(clocked: tuple[reg.WorkflowRegistry, Clock]) -> None:
    registry, clock = clocked
    registry.settle_callback("tenant-a", "cb-1", reg.CallbackSettled.ANSWERED)
    registry.settle_callback("tenant-a", "cb-1", reg.CallbackSettled.TIMED_OUT)
    clock.now += 10_000
    claim = registry.claim_callback("tenant-a", "cb-1", owner="late", lease_seconds=30)
    assert not claim.claimed and claim.settled_as == reg.CallbackSettled.ANSWERED


def test_repair_never_overwrites_a_final_status(clocked: tuple[reg.WorkflowRegistry, Clock]) -> None:
    registry, _ = clocked
    assert registry.record_outcome("tenant-a", "wf-1", reg.FAILED, reason="from execution", only_if_open=True)
    assert not registry.record_outcome("tenant-a", "wf-1", reg.COMPLETED, only_if_open=True)
    record = registry.get_workflow("tenant-a", "wf-1")
    assert record is not None and record.status == reg.FAILED


def test_results_are_stored_compactly_in_utf8(registry: reg.WorkflowRegistry, tables: Any) -> None:
    # GIVEN a confirmation of almost 256 KiB of non-ASCII text (3 bytes per character in UTF-8)
    text = "確" * (255 * 1024 // 3)
    registry.record_outcome("tenant-a", "wf-big", reg.COMPLETED, result={"confirmation": {"note": text}})
    stored = tables[1].get_item(Key=reg.workflow_key("tenant-a", "wf-big"))["Item"]["resultJson"]
    # THEN it is stored as UTF-8, not as 6-byte escapes, and fits the item limit
    assert len(stored.encode("utf-8")) < 256 * 1024 < reg.MAX_RESULT_JSON_BYTES
    assert "\\u" not in stored
    record = registry.get_workflow("tenant-a", "wf-big")
    assert record is not None and record.result == {"confirmation": {"note": text}}


def test_non_finite_numbers_are_never_stored(registry: reg.WorkflowRegistry) -> None:
    with pytest.raises(ValueError):
        registry.record_outcome("tenant-a", "wf-nan", reg.COMPLETED, result={"x": float("inf")})


def test_token_item_holds_the_callback_deadline_and_the_workflow_its_hash(registry: reg.WorkflowRegistry, tables: Any) -> None:
    deadline = register_waiting(registry, "tenant-a", "wf-1", "cb-1", timeout_seconds=60, token_hash="h1")
    token_item = tables[1].get_item(Key=reg.token_key("h1"))["Item"]
    assert int(token_item["callbackDeadline"]) == deadline == 1_060
    assert int(token_item["expiresAt"]) == 1_160, "DynamoDB TTL removes it a retention after the deadline"
    record = registry.get_workflow("tenant-a", "wf-1")
    assert record is not None and record.callback_token_hash == "h1"


def test_a_retried_registration_keeps_the_first_deadline(tables: Any) -> None:
    now = [1_000.0]
    registry = reg.WorkflowRegistry(tables[1], retention_seconds=100, clock=lambda: now[0])
    first = register_waiting(registry, "tenant-a", "wf-1", "cb-1", timeout_seconds=60, token_hash="h1")
    now[0] += 7  # the submitter's retry, seconds later
    assert register_waiting(registry, "tenant-a", "wf-1", "cb-1", timeout_seconds=60, token_hash="h1") == first == 1_060
    record = registry.get_workflow("tenant-a", "wf-1")
    assert record is not None and record.callback_deadline == 1_060
    assert int(tables[1].get_item(Key=reg.token_key("h1"))["Item"]["callbackDeadline"]) == 1_060


def test_reissued_token_gets_its_item_and_the_workflow_its_hash(registry: reg.WorkflowRegistry, tables: Any) -> None:
    register_waiting(registry, "tenant-a", "wf-1", "cb-1", timeout_seconds=60, token_hash="old")
    record = registry.get_workflow("tenant-a", "wf-1")
    assert record is not None
    assert registry.reissue_token(record, "new") and registry.reissue_token(record, "new"), "idempotent"
    found = registry.find_by_token("new")
    assert found is not None and found.callback_token_hash == "new" and found.callback_id == "cb-1"
    assert int(tables[1].get_item(Key=reg.token_key("new"))["Item"]["callbackDeadline"]) == 1_060


def test_a_token_item_never_changes_owner(registry: reg.WorkflowRegistry) -> None:
    register_waiting(registry, "tenant-a", "wf-1", "cb-1", timeout_seconds=60, token_hash="h1")
    register_waiting(registry, "tenant-b", "wf-2", "cb-2", timeout_seconds=60)
    other = registry.get_workflow("tenant-b", "wf-2")
    assert other is not None and not registry.reissue_token(other, "h1")
    found = registry.find_by_token("h1")
    assert found is not None and found.tenant_id == "tenant-a"


def test_no_token_is_reissued_for_a_workflow_that_stopped_waiting(registry: reg.WorkflowRegistry) -> None:
    register_waiting(registry, "tenant-a", "wf-1", "cb-1", timeout_seconds=60, token_hash="old")
    record = registry.get_workflow("tenant-a", "wf-1")
    registry.record_outcome("tenant-a", "wf-1", reg.COMPLETED)
    assert record is not None and not registry.reissue_token(record, "new")


def test_one_repair_check_per_interval(tables: Any) -> None:
    clock = Clock(1_000.0)
    registry = reg.WorkflowRegistry(tables[1], retention_seconds=100, clock=clock)
    register_waiting(registry, "tenant-a", "wf-1", "cb-1", timeout_seconds=600)
    assert registry.claim_repair_check("tenant-a", "wf-1", checked_before=940)
    assert not registry.claim_repair_check("tenant-a", "wf-1", checked_before=940), "another read just checked"
    clock.now = 1_060.0
    assert registry.claim_repair_check("tenant-a", "wf-1", checked_before=1_000)
    record = registry.get_workflow("tenant-a", "wf-1")
    assert record is not None and record.repair_checked_at == 1_060
    registry.record_outcome("tenant-a", "wf-1", reg.COMPLETED)
    assert not registry.claim_repair_check("tenant-a", "wf-1", checked_before=2_000), "an ended workflow is never checked"


def test_a_registered_callback_is_not_answerable_until_marked_waiting(registry: reg.WorkflowRegistry) -> None:
    # GIVEN step one claimed the workflow and the submitter wrote its callback (the event not out yet)
    registry.claim_workflow("tenant-a", "wf-1", "arn-1")
    registry.register_callback("tenant-a", "wf-1", "cb-1", timeout_seconds=60, token_hash="h1")
    # THEN both routes find the callback, but the workflow is still STARTED
    for record in (registry.find_by_callback("tenant-a", "cb-1"), registry.find_by_token("h1")):
        assert record is not None and (record.status, record.callback_id) == (reg.STARTED, "cb-1")
    assert not registry.is_waiting_for("tenant-a", "wf-1", "cb-1")
    # WHEN the submitter marks it waiting (twice: a retried submitter), THEN it is answerable
    assert registry.mark_waiting("tenant-a", "wf-1", "cb-1") and registry.mark_waiting("tenant-a", "wf-1", "cb-1")
    assert registry.is_waiting_for("tenant-a", "wf-1", "cb-1")
    record = registry.get_workflow("tenant-a", "wf-1")
    assert record is not None and record.status == reg.WAITING_FOR_CALLBACK and record.callback_deadline == 1_060


def test_a_retried_registration_never_moves_a_waiting_workflow_back(registry: reg.WorkflowRegistry) -> None:
    register_waiting(registry, "tenant-a", "wf-1", "cb-1", timeout_seconds=60)
    registry.register_callback("tenant-a", "wf-1", "cb-1", timeout_seconds=60)
    assert registry.is_waiting_for("tenant-a", "wf-1", "cb-1")


@pytest.mark.parametrize("final", [reg.COMPLETED, reg.FAILED, reg.TIMED_OUT])
def test_marking_waiting_never_reopens_an_ended_workflow(registry: reg.WorkflowRegistry, final: str) -> None:
    registry.claim_workflow("tenant-a", "wf-1", "arn-1")
    registry.register_callback("tenant-a", "wf-1", "cb-1", timeout_seconds=60)
    registry.record_outcome("tenant-a", "wf-1", final)
    assert not registry.mark_waiting("tenant-a", "wf-1", "cb-1")
    record = registry.get_workflow("tenant-a", "wf-1")
    assert record is not None and record.status == final


def test_marking_waiting_needs_the_callback_the_workflow_names(registry: reg.WorkflowRegistry) -> None:
    registry.claim_workflow("tenant-a", "wf-1", "arn-1")
    assert not registry.mark_waiting("tenant-a", "wf-1", "cb-1"), "no callback registered yet"
    registry.register_callback("tenant-a", "wf-1", "cb-1", timeout_seconds=60)
    assert not registry.mark_waiting("tenant-a", "wf-1", "cb-other")
    assert not registry.is_waiting_for("tenant-a", "wf-1", "cb-1")
