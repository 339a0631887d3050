"""Durable workflow semantics through the SDK's in-process DurableFunctionTestRunner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_durable_execution_sdk_python.execution import InvocationStatus
from aws_durable_execution_sdk_python.lambda_service import ErrorObject
from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

from shared import registry as reg
from shared import strict_json
from workflow import app

VALID_REQUEST = {"amount": 120, "currency": "EUR", "description": "invoice 42"}
WAIT_SECONDS = 20


@pytest.fixture
def runner(tables: Any) -> Iterator[DurableFunctionTestRunner]:
    """A fresh runner and a fresh 'execution environment' (binding + cache) per test."""
    app.BINDING.reset()
    app.TENANT_CACHE.clear()
    test_runner = DurableFunctionTestRunner(app.handler)
    yield test_runner
    test_runner.close()


def start(runner: DurableFunctionTestRunner, tenant_id: str, workflow_id: str, request: Any = None) -> str:
    payload = {"workflowId": workflow_id, "request": VALID_REQUEST if request is None else request}
    return runner.run_async(input=json.dumps(payload), tenant_id=tenant_id, execution_name=workflow_id)


def finish(runner: DurableFunctionTestRunner, arn: str) -> dict[str, Any]:
    result = runner.wait_for_result(arn, timeout=WAIT_SECONDS)
    assert result.status is InvocationStatus.SUCCEEDED, result.error
    return json.loads(result.result)


def complete_with(runner: DurableFunctionTestRunner, arn: str, payload: dict[str, Any]) -> dict[str, Any]:
    callback_id = runner.wait_for_callback(arn, timeout=WAIT_SECONDS)
    runner.send_callback_success(callback_id, json.dumps(payload).encode())
    return finish(runner, arn)


def count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Wrap ``app.<name>`` and count its calls."""
    calls: list[int] = []
    original = getattr(app, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(app, name, counting)
    return calls


def test_happy_path_completes_and_records_result(runner: DurableFunctionTestRunner) -> None:
    # GIVEN a workflow of tenant-a waiting for its callback
    arn = start(runner, "tenant-a", "wf-happy")
    callback_id = runner.wait_for_callback(arn, timeout=WAIT_SECONDS)
    waiting = app.registry().get_workflow("tenant-a", "wf-happy")
    assert waiting is not None and waiting.status == reg.WAITING_FOR_CALLBACK
    assert waiting.callback_id == callback_id
    # WHEN the external system confirms
    runner.send_callback_success(callback_id, json.dumps({"approved": True, "ref": "X1"}).encode())
    result = finish(runner, arn)
    # THEN the decoded payload, the tenant data and the environments are in the result and the registry
    assert result["status"] == reg.COMPLETED
    assert result["confirmation"] == {"approved": True, "ref": "X1"}
    assert result["tenantName"] == "Acme Payments"
    assert result["environments"]["validatedIn"] == app.BINDING.environment_id
    assert result["tenantDataFromCache"] == {"validate": False, "finalize": True}
    record = app.registry().get_workflow("tenant-a", "wf-happy")
    assert record is not None and record.status == reg.COMPLETED
    assert record.result is not None and record.result["confirmation"] == {"approved": True, "ref": "X1"}


def test_callback_result_that_is_not_json_is_kept_as_text(runner: DurableFunctionTestRunner) -> None:
    arn = start(runner, "tenant-a", "wf-text")
    callback_id = runner.wait_for_callback(arn, timeout=WAIT_SECONDS)
    runner.send_callback_success(callback_id, b"plain approval")
    assert finish(runner, arn)["confirmation"] == "plain approval"


def test_callback_failure_marks_workflow_failed(runner: DurableFunctionTestRunner) -> None:
    arn = start(runner, "tenant-a", "wf-fail")
    callback_id = runner.wait_for_callback(arn, timeout=WAIT_SECONDS)
    runner.send_callback_failure(callback_id, ErrorObject(message="card declined", type="Declined", data=None, stack_trace=None))
    result = finish(runner, arn)
    assert result["status"] == reg.FAILED
    assert "card declined" in result["reason"]
    record = app.registry().get_workflow("tenant-a", "wf-fail")
    assert record is not None and record.status == reg.FAILED


def test_callback_times_out_marks_workflow_timed_out(runner: DurableFunctionTestRunner, tables: Any) -> None:
    tenants, _ = tables
    tenants.put_item(
        Item={"tenantId": "tenant-impatient", "displayName": "Impatient", "status": "ACTIVE",
              "allowedCurrencies": ["EUR"], "maxAmount": 500, "callbackTimeoutSeconds": 1}
    )
    result = finish(runner, start(runner, "tenant-impatient", "wf-timeout"))
    assert result["status"] == reg.TIMED_OUT
    record = app.registry().get_workflow("tenant-impatient", "wf-timeout")
    assert record is not None and record.status == reg.TIMED_OUT


@pytest.mark.parametrize(
    ("tenant_id", "request_body", "reason_part"),
    [
        ("tenant-a", {"amount": 120, "currency": "JPY"}, "currency JPY is not allowed"),
        ("tenant-a", {"amount": 9000, "currency": "EUR"}, "exceeds the tenant limit"),
        ("tenant-a", {"amount": "12", "currency": "EUR"}, "invalid request"),
        ("tenant-a", {"currency": "EUR"}, "invalid request"),
        ("tenant-suspended", {"amount": 1, "currency": "USD"}, "tenant is suspended"),
        ("tenant-nobody", {"amount": 1, "currency": "USD"}, "unknown tenant"),
    ],
)
def test_rejected_request_ends_workflow_without_retry(
    runner: DurableFunctionTestRunner, monkeypatch: pytest.MonkeyPatch,
    tenant_id: str, request_body: dict[str, Any], reason_part: str,
) -> None:
    step_calls = count_calls(monkeypatch, "load_tenant_and_validate")
    result = finish(runner, start(runner, tenant_id, "wf-rejected", request_body))
    assert result["status"] == reg.REJECTED
    assert reason_part in result["reason"]
    assert len(step_calls) == 1, "a rejection must not be retried"
    record = app.registry().get_workflow(tenant_id, "wf-rejected")
    assert record is not None and record.status == reg.REJECTED and reason_part in (record.reason or "")


def test_replay_after_callback_does_not_rerun_step_one(
    runner: DurableFunctionTestRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    invocations = count_calls(monkeypatch, "parse_start_event")
    step_one = count_calls(monkeypatch, "load_tenant_and_validate")
    finalize = count_calls(monkeypatch, "finalize")
    complete_with(runner, start(runner, "tenant-a", "wf-replay"), {"ok": True})
    assert len(invocations) >= 2, "the callback must resume the execution in a new invocation (a replay)"
    assert len(step_one) == 1
    assert len(finalize) == 1


def test_second_workflow_of_tenant_in_same_environment_hits_cache(runner: DurableFunctionTestRunner) -> None:
    first = complete_with(runner, start(runner, "tenant-a", "wf-cache-1"), {"n": 1})
    second = complete_with(runner, start(runner, "tenant-a", "wf-cache-2"), {"n": 2})
    assert first["tenantDataFromCache"]["validate"] is False
    assert second["tenantDataFromCache"] == {"validate": True, "finalize": True}
    assert app.TENANT_CACHE.store_reads == 1
    assert second["environments"]["validatedIn"] == first["environments"]["validatedIn"]


def test_environment_refuses_a_second_tenant(runner: DurableFunctionTestRunner, json_logs: Any) -> None:
    logs = json_logs(app.logger)
    # GIVEN an environment that has served tenant-a
    complete_with(runner, start(runner, "tenant-a", "wf-owner"), {"ok": True})
    # WHEN tenant-b's request lands in it
    result = runner.wait_for_result(start(runner, "tenant-b", "wf-intruder"), timeout=WAIT_SECONDS)
    # THEN it fails loudly, writes nothing for tenant-b, and logs a critical violation
    assert result.status is InvocationStatus.FAILED
    assert "TenantIsolationViolation" in json.dumps(result.error.to_dict())
    assert app.registry().get_workflow("tenant-b", "wf-intruder") is None
    critical = [line for line in logs.lines() if line["level"] == "CRITICAL"]
    assert critical and critical[0]["message"] == "tenant isolation violation"
    assert critical[0]["tenant_id"] == "tenant-b"


def test_invocation_without_tenant_id_is_refused(runner: DurableFunctionTestRunner) -> None:
    arn = runner.run_async(input=json.dumps({"workflowId": "wf-anon", "request": VALID_REQUEST}), execution_name="wf-anon")
    result = runner.wait_for_result(arn, timeout=WAIT_SECONDS)
    assert result.status is InvocationStatus.FAILED
    assert app.BINDING.tenant_id is None


def test_logs_carry_tenant_and_workflow_and_are_not_repeated_on_replay(
    runner: DurableFunctionTestRunner, capsys: pytest.CaptureFixture[str], json_logs: Any
) -> None:
    logs = json_logs(app.logger)
    complete_with(runner, start(runner, "tenant-a", "wf-logs"), {"ok": True})
    log_lines = logs.lines()
    # Metrics are EMF lines that Powertools prints to stdout.
    metric_lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    lines = log_lines + metric_lines
    assert log_lines, "expected structured log lines"
    for line in log_lines:
        assert line["tenant_id"] == "tenant-a" and line["workflow_id"] == "wf-logs", line
    messages = [line["message"] for line in log_lines]
    assert messages.count("request accepted") == 1
    assert messages.count("waiting for external confirmation") == 1
    assert messages.count("workflow completed") == 1
    names = [name for line in metric_lines for m in line["_aws"]["CloudWatchMetrics"] for name in [x["Name"] for x in m["Metrics"]]]
    assert names.count("WorkflowAccepted") == 1 and names.count("WorkflowCompleted") == 1
    assert all(line["tenant_id"] == "tenant-a" for line in metric_lines)
    assert "invoice 42" not in json.dumps(lines), "request payloads must not be logged"


def test_duplicate_start_of_same_workflow_id_does_nothing(runner: DurableFunctionTestRunner) -> None:
    # GIVEN a waiting workflow
    first = start(runner, "tenant-a", "wf-dup")
    callback_id = runner.wait_for_callback(first, timeout=WAIT_SECONDS)
    # WHEN a second execution with the same workflow id starts (a retried start that got through)
    second = finish(runner, start(runner, "tenant-a", "wf-dup"))
    # THEN it ends as a duplicate and the original keeps its registry entry and completes
    assert second["status"] == "DUPLICATE"
    record = app.registry().get_workflow("tenant-a", "wf-dup")
    assert record is not None and record.status == reg.WAITING_FOR_CALLBACK and record.callback_id == callback_id
    runner.send_callback_success(callback_id, b'{"ok": true}')
    assert finish(runner, first)["status"] == reg.COMPLETED


def test_missing_heartbeat_times_out_when_the_tenant_requires_one(runner: DurableFunctionTestRunner, tables: Any) -> None:
    tenants, _ = tables
    tenants.put_item(
        Item={"tenantId": "tenant-heartbeat", "displayName": "HB", "status": "ACTIVE", "allowedCurrencies": ["EUR"],
              "maxAmount": 500, "callbackTimeoutSeconds": 3600, "heartbeatTimeoutSeconds": 1}
    )
    result = finish(runner, start(runner, "tenant-heartbeat", "wf-heartbeat"))
    assert result["status"] == reg.TIMED_OUT


def test_finalize_that_keeps_failing_records_failed(runner: DurableFunctionTestRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("registry unreachable")

    monkeypatch.setattr(app, "finalize", broken)
    result = complete_with(runner, start(runner, "tenant-a", "wf-final-broken"), {"ok": True})
    assert result["status"] == reg.FAILED and result["reason"].startswith("could not finalize")
    record = app.registry().get_workflow("tenant-a", "wf-final-broken")
    assert record is not None and record.status == reg.FAILED


# -- the limits of a callback answer (shared.strict_json), end to end through the SDK ------------------


def nested(levels: int) -> dict[str, Any]:
    value: Any = "deepest"
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize("levels", [strict_json.MAX_PAYLOAD_DEPTH, 2 * strict_json.MAX_PAYLOAD_DEPTH])
def test_a_payload_nested_to_the_limit_and_well_past_it_completes_and_is_kept(
    runner: DurableFunctionTestRunner, levels: int
) -> None:
    # The limit, and twice it: the SDK's serialiser (which fails past about 245 levels on python3.11,
    # 327 on 3.13, in this runner) keeps a margin of at least the limit again.
    payload = nested(levels)
    result = complete_with(runner, start(runner, "tenant-a", f"wf-deep-{levels}"), payload)
    assert result["status"] == reg.COMPLETED and result["confirmation"] == payload
    record = app.registry().get_workflow("tenant-a", f"wf-deep-{levels}")
    assert record is not None and record.result is not None and record.result["confirmation"] == payload


@pytest.mark.parametrize("element", [[0], "確"], ids=["many small values", "three-byte characters"])
def test_a_payload_of_the_largest_size_completes_and_is_kept(runner: DurableFunctionTestRunner, element: Any) -> None:
    # Compact UTF-8 JSON of exactly MAX_PAYLOAD_BYTES: the SDK checkpoints the wait's larger encoded result
    # by replaying the wait, the result and the registry item still fit.
    if isinstance(element, list):
        payload: dict[str, Any] = {"v": [0] * ((strict_json.MAX_PAYLOAD_BYTES - 7) // 2)}
    else:
        payload = {"v": "確" * ((strict_json.MAX_PAYLOAD_BYTES - 8) // 3)}
    size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    assert strict_json.MAX_PAYLOAD_BYTES - 3 <= size <= strict_json.MAX_PAYLOAD_BYTES
    result = complete_with(runner, start(runner, "tenant-a", "wf-largest"), payload)
    assert result["status"] == reg.COMPLETED and result["confirmation"] == payload
    record = app.registry().get_workflow("tenant-a", "wf-largest")
    assert record is not None and record.status == reg.COMPLETED and record.result["confirmation"] == payload
