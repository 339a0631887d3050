"""Transient DynamoDB faults inside steps: retried, completed, nothing before the fault runs twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner
from botocore.exceptions import ClientError

from shared import registry as reg
from workflow import app

THROTTLED = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}


@pytest.fixture
def runner(tables: Any) -> Iterator[DurableFunctionTestRunner]:
    app.BINDING.reset()
    app.TENANT_CACHE.clear()
    test_runner = DurableFunctionTestRunner(app.handler)  # skip_time: retry back-off does not sleep
    yield test_runner
    test_runner.close()


def fail_first(monkeypatch: pytest.MonkeyPatch, target: Any, method: str, failures: int) -> list[str]:
    """Make ``target.method`` raise a throttling error ``failures`` times, then behave; return a call log."""
    calls: list[str] = []
    original = getattr(target, method)

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append("fail" if len(calls) < failures else "ok")
        if calls[-1] == "fail":
            raise ClientError(THROTTLED, method)
        return original(*args, **kwargs)

    monkeypatch.setattr(target, method, flaky)
    return calls


def count(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(app, name)
    monkeypatch.setattr(app, name, lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def run_to_completion(runner: DurableFunctionTestRunner, workflow_id: str) -> dict[str, Any]:
    payload = {"workflowId": workflow_id, "request": {"amount": 10, "currency": "EUR"}}
    arn = runner.run_async(input=json.dumps(payload), tenant_id="tenant-a", execution_name=workflow_id)
    callback_id = runner.wait_for_callback(arn, timeout=30)
    runner.send_callback_success(callback_id, b'{"ok": true}')
    return json.loads(runner.wait_for_result(arn, timeout=30).result)


def test_tenant_read_throttled_twice_is_retried(runner: DurableFunctionTestRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = fail_first(monkeypatch, app.tenants_table(), "get_item", failures=2)
    assert run_to_completion(runner, "wf-read-fault")["status"] == reg.COMPLETED
    assert reads[:3] == ["fail", "fail", "ok"]


def test_registry_write_in_submitter_fails_once_step_one_not_rerun(
    runner: DurableFunctionTestRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_one = count(monkeypatch, "load_tenant_and_validate")
    writes = fail_first(monkeypatch, app.registry(), "register_callback", failures=1)
    assert run_to_completion(runner, "wf-submit-fault")["status"] == reg.COMPLETED
    assert writes == ["fail", "ok"] and len(step_one) == 1


def test_finalize_write_fails_once_earlier_steps_not_rerun(
    runner: DurableFunctionTestRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_one = count(monkeypatch, "load_tenant_and_validate")
    outcomes = fail_first(monkeypatch, app.registry(), "record_outcome", failures=1)
    result = run_to_completion(runner, "wf-final-fault")
    assert result["status"] == reg.COMPLETED
    assert outcomes == ["fail", "ok"] and len(step_one) == 1
    record = app.registry().get_workflow("tenant-a", "wf-final-fault")
    assert record is not None and record.status == reg.COMPLETED


@pytest.mark.parametrize(
    ("target", "method", "reason"),
    [
        ("tenants_table", "get_item", "could not load the tenant"),
        ("registry", "register_callback", "could not register the callback"),
    ],
)
def test_persistent_fault_records_failed_instead_of_losing_the_workflow(
    runner: DurableFunctionTestRunner, monkeypatch: pytest.MonkeyPatch, target: str, method: str, reason: str
) -> None:
    calls = fail_first(monkeypatch, getattr(app, target)(), method, failures=1000)
    payload = {"workflowId": "wf-down", "request": {"amount": 10, "currency": "EUR"}}
    arn = runner.run_async(input=json.dumps(payload), tenant_id="tenant-a", execution_name="wf-down")
    result = json.loads(runner.wait_for_result(arn, timeout=30).result)
    assert result["status"] == reg.FAILED and result["reason"].startswith(reason)
    assert len(calls) == 5, "IO_RETRY allows five attempts"
    record = app.registry().get_workflow("tenant-a", "wf-down")
    assert record is not None and record.status == reg.FAILED


def test_registry_down_for_the_whole_finalize_still_ends_completed_with_the_confirmation(
    runner: DurableFunctionTestRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN every registry write after the callback fails (an outage longer than the step retries)
    outcomes = fail_first(monkeypatch, app.registry(), "record_outcome", failures=1000)
    # WHEN the confirmation arrives
    result = run_to_completion(runner, "wf-registry-down")
    # THEN the execution still ends COMPLETED with the confirmation (the registry is repaired from it later)
    assert result["status"] == reg.COMPLETED and result["confirmation"] == {"ok": True}
    assert len(outcomes) == 5, "the record-outcome step retried five times, then gave up without failing the workflow"
    record = app.registry().get_workflow("tenant-a", "wf-registry-down")
    assert record is not None and record.status == reg.WAITING_FOR_CALLBACK, "the registry lags until repaired"


def test_tenant_table_down_at_finalize_uses_step_ones_copy(
    runner: DurableFunctionTestRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = {"workflowId": "wf-tenant-down", "request": {"amount": 10, "currency": "EUR"}}
    arn = runner.run_async(input=json.dumps(payload), tenant_id="tenant-a", execution_name="wf-tenant-down")
    callback_id = runner.wait_for_callback(arn, timeout=30)
    # GIVEN the cached tenant expired and the tenants table is down when the confirmation arrives
    app.TENANT_CACHE.clear()
    fail_first(monkeypatch, app.tenants_table(), "get_item", failures=1000)
    runner.send_callback_success(callback_id, b'{"ok": true}')
    result = json.loads(runner.wait_for_result(arn, timeout=30).result)
    assert result["status"] == reg.COMPLETED and result["tenantName"] == "Acme Payments"
