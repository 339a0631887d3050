"""Workflow registry against moto DynamoDB."""

from __future__ import annotations

from typing import Any

import pytest

from shared import registry as reg


@pytest.fixture
def registry(tables: Any) -> reg.WorkflowRegistry:
    _, workflows = tables
    return reg.WorkflowRegistry(workflows, retention_seconds=100, clock=lambda: 1_000.0)


def test_waiting_workflow_is_found_by_its_callback_only_for_its_tenant(registry: reg.WorkflowRegistry) -> None:
    registry.register_waiting("tenant-a", "wf-1", "cb-" + "x" * 1000, timeout_seconds=60)
    found = registry.find_by_callback("tenant-a", "cb-" + "x" * 1000)
    assert found is not None and found.workflow_id == "wf-1" and found.status == reg.WAITING_FOR_CALLBACK
    assert registry.find_by_callback("tenant-b", "cb-" + "x" * 1000) is None
    assert registry.get_workflow("tenant-b", "wf-1") is None


def test_outcome_is_recorded_with_result_and_ttl(registry: reg.WorkflowRegistry, tables: Any) -> None:
    registry.register_waiting("tenant-a", "wf-1", "cb-1", timeout_seconds=60)
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


def test_callback_claim_is_exclusive_until_released(registry: reg.WorkflowRegistry) -> None:
    registry.register_waiting("tenant-a", "wf-1", "cb-1", timeout_seconds=60)
    assert registry.claim_callback("tenant-a", "cb-1")
    assert not registry.claim_callback("tenant-a", "cb-1")
    assert not registry.claim_callback("tenant-b", "cb-1"), "another tenant cannot even claim it"
    registry.release_callback("tenant-a", "cb-1")
    assert registry.claim_callback("tenant-a", "cb-1")
