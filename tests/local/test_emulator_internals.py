"""The emulator's private state the local stack relies on still exists (fails loudly on a new release)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from local.backends.durable import DurableEmulator
from local.backends.emulator_internals import REQUIRED, EmulatorChanged, EmulatorInternals
from local.services.http_base import free_port


def test_the_installed_emulator_has_everything_the_restart_re_arming_uses(tmp_path: Path) -> None:
    emulator = DurableEmulator(host="127.0.0.1", port=free_port(), lambda_endpoint="http://127.0.0.1:9",
                               state_dir=tmp_path, region="us-east-1", invocation_timeout_seconds=5)
    emulator.start()
    try:
        internals = EmulatorInternals(emulator._runner)  # noqa: SLF001 - what start() itself does
        assert internals.running_executions() == []
    finally:
        emulator.stop()


def test_a_renamed_private_attribute_is_named_in_the_error() -> None:
    executor = SimpleNamespace(**{name: None for name in REQUIRED["executor"] if name != "_callback_timeouts"})
    runner = SimpleNamespace(_executor=executor, _scheduler=SimpleNamespace(create_event=None, call_later=None),
                             _store=SimpleNamespace(query=None))
    with pytest.raises(EmulatorChanged, match="_callback_timeouts"):
        EmulatorInternals(runner)


def test_new_executions_get_lambdas_arn_shape_until_restored() -> None:
    from aws_durable_execution_sdk_python_testing.execution import Execution
    from aws_durable_execution_sdk_python_testing.model import StartDurableExecutionInput

    from local.backends.emulator_internals import use_lambda_execution_arns
    from local.runtime.functions import FunctionConfig

    emulators_own = Execution.new
    start = StartDurableExecutionInput(account_id="123456789012", function_name="wf", function_qualifier="live",
                                       execution_name="order-1", execution_timeout_seconds=60,
                                       execution_retention_period_days=1, invocation_id="inv-1")
    use_lambda_execution_arns("eu-west-1", FunctionConfig.executed_version)
    restore = use_lambda_execution_arns("eu-west-1", FunctionConfig.executed_version)  # wraps once
    try:
        arn = Execution.new(input=start).durable_execution_arn
    finally:
        restore()

    assert arn == "arn:aws:lambda:eu-west-1:123456789012:function:wf:1/durable-execution/order-1/inv-1"
    # restored: the emulator's own factory again, for anything else in this process
    assert Execution.new is emulators_own
    assert "durable-execution" not in Execution.new(input=start).durable_execution_arn


def test_a_stopped_emulator_leaves_the_emulators_own_execution_factory(tmp_path: Path) -> None:
    from aws_durable_execution_sdk_python_testing.execution import Execution

    emulators_own = Execution.new
    emulator = DurableEmulator(host="127.0.0.1", port=free_port(), lambda_endpoint="http://127.0.0.1:9",
                               state_dir=tmp_path, region="us-east-1", invocation_timeout_seconds=5)
    emulator.start()
    try:
        assert Execution.new is not emulators_own
    finally:
        emulator.stop()
    assert Execution.new is emulators_own


# -- The history fixes (proving-ground/local/backends/emulator_internals.py HISTORY_FIXES) --------------------------------
#
# One execution through the emulator's own executor (the SDK's in-process test runner)
# shows every difference: a step that succeeds on its second attempt, a callback with
# timeouts answered with a failure, one that times out, and a wait_for_callback whose
# callback is refused. Each "upstream" test asserts the emulator alone still differs
# from AWS: when it fails, the emulator release fixed that difference, so the named fix
# (and its entry in docs/emulator-differences.md) can go.

def _history_of_every_difference(*, fixed: bool) -> list[dict[str, Any]]:
    from aws_durable_execution_sdk_python import DurableContext, durable_execution
    from aws_durable_execution_sdk_python.config import CallbackConfig, Duration, JitterStrategy, StepConfig
    from aws_durable_execution_sdk_python.exceptions import CallbackError
    from aws_durable_execution_sdk_python.lambda_service import ErrorObject
    from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
    from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

    from local.backends.emulator_internals import use_aws_history

    retry_once = StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(
        max_attempts=2, initial_delay=Duration.from_seconds(1), jitter_strategy=JitterStrategy.NONE)))

    def second_attempt_succeeds(step: Any) -> str:
        if step.attempt < 2:
            raise RuntimeError("first attempt fails")
        return "ok"

    @durable_execution
    def handler(event: Any, context: DurableContext) -> str:
        context.step(second_attempt_succeeds, name="flaky", config=retry_once)
        answered = context.create_callback(name="answered", config=CallbackConfig(
            timeout=Duration.from_seconds(600), heartbeat_timeout=Duration.from_seconds(300)))
        for wait in (answered.result,
                     lambda: context.create_callback(name="expires", config=CallbackConfig(
                         timeout=Duration.from_seconds(1))).result(),
                     lambda: context.wait_for_callback(lambda callback_id, _: None, name="refused")):
            try:
                wait()
            except CallbackError:
                pass
        return "done"

    restore = use_aws_history() if fixed else (lambda: None)
    try:
        with DurableFunctionTestRunner(handler=handler, poll_interval=0.05) as runner:
            arn = runner.run_async(input="{}", execution_timeout=120)
            refusal = ErrorObject(message="not approved", type="RejectedError", data=None, stack_trace=None)
            runner.send_callback_failure(runner.wait_for_callback(arn, name="answered", timeout=30), refusal)
            runner.send_callback_failure(_inner_callback_id(runner, arn, "refused"), refusal)
            runner.wait_for_result(arn, timeout=30)
            return [event.to_dict() for event in runner.get_execution_history(arn, include_execution_data=True).events]
    finally:
        restore()


def _inner_callback_id(runner: Any, arn: str, context_name: str) -> str:
    """The callback id of the wait_for_callback named ``context_name`` (its callback has no name of its own)."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = runner.get_execution_history(arn).events
        parent = next((e.operation_id for e in events if e.event_type == "ContextStarted" and e.name == context_name), None)
        inner = next((e.callback_started_details.callback_id for e in events
                      if e.event_type == "CallbackStarted" and parent and e.parent_id == parent), None)
        if inner:
            return inner
        time.sleep(0.05)
    raise TimeoutError(f"no callback of {context_name} within 30 s")


@pytest.fixture(scope="module")
def emulators_history() -> list[dict[str, Any]]:
    return _history_of_every_difference(fixed=False)


@pytest.fixture(scope="module")
def fixed_history() -> list[dict[str, Any]]:
    return _history_of_every_difference(fixed=True)


def _events(history: list[dict[str, Any]], event_type: str, name: str | None = None) -> list[dict[str, Any]]:
    found = [e for e in history if e["EventType"] == event_type and (name is None or e.get("Name") == name)]
    assert found, f"no {event_type} {name or ''} event in {[e['EventType'] for e in history]}"
    return found


def _error(event: dict[str, Any]) -> dict[str, Any]:
    return next(value["Error"] for key, value in event.items() if key.endswith("Details") and "Error" in value)


UPSTREAM_FIXED = "the emulator release fixed this difference: drop the fix {!r} and its report in docs/emulator-differences.md"


def test_upstream_invocation_completed_events_still_lose_their_details(emulators_history: list[dict[str, Any]]) -> None:
    assert all("InvocationCompletedDetails" not in e for e in _events(emulators_history, "InvocationCompleted")), \
        UPSTREAM_FIXED.format("InvocationCompleted events lose InvocationCompletedDetails")


def test_invocation_completed_events_carry_start_end_and_request_id(fixed_history: list[dict[str, Any]]) -> None:
    for event in _events(fixed_history, "InvocationCompleted"):
        assert set(event["InvocationCompletedDetails"]) == {"StartTimestamp", "EndTimestamp", "RequestId"}
        assert event["InvocationCompletedDetails"]["RequestId"]


def test_upstream_callback_started_still_lacks_its_timeouts(emulators_history: list[dict[str, Any]]) -> None:
    (started,) = _events(emulators_history, "CallbackStarted", "answered")
    assert "Timeout" not in started["CallbackStartedDetails"], \
        UPSTREAM_FIXED.format("CallbackStartedDetails lacks Timeout and HeartbeatTimeout")


def test_callback_started_names_its_timeout_and_heartbeat_timeout(fixed_history: list[dict[str, Any]]) -> None:
    (started,) = _events(fixed_history, "CallbackStarted", "answered")
    assert started["CallbackStartedDetails"]["Timeout"] == 600
    assert started["CallbackStartedDetails"]["HeartbeatTimeout"] == 300
    (expires,) = _events(fixed_history, "CallbackStarted", "expires")
    assert expires["CallbackStartedDetails"]["Timeout"] == 1
    assert "HeartbeatTimeout" not in expires["CallbackStartedDetails"]  # none configured


def test_upstream_step_succeeded_still_lacks_retry_details(emulators_history: list[dict[str, Any]]) -> None:
    (succeeded,) = _events(emulators_history, "StepSucceeded", "flaky")
    assert "RetryDetails" not in succeeded["StepSucceededDetails"], \
        UPSTREAM_FIXED.format("StepSucceededDetails lacks RetryDetails after retries")


def test_a_step_that_succeeds_after_a_retry_names_its_attempt(fixed_history: list[dict[str, Any]]) -> None:
    (succeeded,) = _events(fixed_history, "StepSucceeded", "flaky")
    assert succeeded["StepSucceededDetails"]["RetryDetails"]["CurrentAttempt"] == 2


@pytest.mark.parametrize(("event_type", "name"), [("CallbackFailed", "answered"), ("CallbackTimedOut", "expires"),
                                                  ("ContextFailed", "refused")])
def test_upstream_errors_are_still_marked_truncated_with_their_whole_payload(
    emulators_history: list[dict[str, Any]], event_type: str, name: str,
) -> None:
    error = _error(_events(emulators_history, event_type, name)[0])
    assert error["Payload"]["ErrorType"]
    assert error["Truncated"] is True, UPSTREAM_FIXED.format(f"Error.Truncated is always true on {event_type}")


@pytest.mark.parametrize(("event_type", "name"), [("CallbackFailed", "answered"), ("CallbackTimedOut", "expires"),
                                                  ("ContextFailed", "refused")])
def test_an_error_with_its_whole_payload_is_not_truncated(
    fixed_history: list[dict[str, Any]], event_type: str, name: str,
) -> None:
    error = _error(_events(fixed_history, event_type, name)[0])
    assert error["Truncated"] is False
    assert error["Payload"]["ErrorType"]


def test_history_fixes_install_once_and_restore_the_emulators_own_functions() -> None:
    from local.backends.emulator_internals import HISTORY_FIXES, use_aws_history

    own = {(fix.owner, fix.attribute): fix.owner.__dict__[fix.attribute] for fix in HISTORY_FIXES}
    restore_first = use_aws_history()
    restore_second = use_aws_history()  # installs nothing more
    wrapped = {key: key[0].__dict__[key[1]] for key in own}
    restore_second()
    assert all(key[0].__dict__[key[1]] is wrapped[key] for key in own)
    restore_first()
    assert all(key[0].__dict__[key[1]] is descriptor for key, descriptor in own.items())


def test_a_vanished_emulator_function_is_named_in_the_error() -> None:
    from local.backends.emulator_internals import HistoryFix, use_aws_history

    class Release:  # an emulator class without the function a fix wraps
        pass

    with pytest.raises(EmulatorChanged, match="Release.create_step_event_succeeded"):
        use_aws_history((HistoryFix("gone", Release, "create_step_event_succeeded", lambda original: original),))
