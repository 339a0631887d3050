"""The emulator's private state the local stack relies on still exists (fails loudly on a new release)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from local.durable import DurableEmulator
from local.emulator_internals import REQUIRED, EmulatorChanged, EmulatorInternals
from local.http_base import free_port


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

    from local.emulator_internals import use_lambda_execution_arns
    from local.functions import FunctionConfig

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
