"""The one place the local stack reaches into the durable emulator's private state.

After a restart, the emulator's sqlite store still holds every execution, but its
timers (callback and execution timeouts, pending waits and retries) lived in
memory. ``WebRunner`` has no public way to re-arm them, so :class:`EmulatorInternals`
does it through the runner's executor, scheduler and store. Every private name it
uses is checked when it is built: an emulator release that renames one fails
loudly (``EmulatorChanged``) at start, and ``tests/local/test_emulator_internals.py``
fails in CI, instead of a restart silently losing timeouts.

It also names executions as Lambda does (:func:`use_lambda_execution_arns`): the
emulator's ARNs are opaque ``uuid/uuid`` strings, Lambda's read
``arn:aws:lambda:REGION:ACCOUNT:function:NAME:VERSION/durable-execution/NAME/ID``.

Upstream, a public ``WebRunner.resume_running_executions()`` (or an
``Executor.rearm(execution)`` hook that re-arms one execution's timers from its
stored state) and an ARN factory option would remove this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import version
from typing import Any

from aws_durable_execution_sdk_python.lambda_service import ErrorObject
from aws_durable_execution_sdk_python_testing.execution import Execution

EMULATOR_PACKAGE = "aws-durable-execution-sdk-python-testing"
# (object, attribute) pairs this adapter relies on.
REQUIRED = {
    "runner": ("_executor", "_scheduler", "_store"),
    "executor": ("_completion_events", "_execution_timeouts", "_callback_timeouts", "_callback_heartbeats",
                 "on_timed_out", "_on_callback_timeout", "_on_callback_heartbeat_timeout",
                 "_schedule_earliest_pending", "_earliest_pending_timestamp", "_invoke_execution"),
    "scheduler": ("create_event", "call_later"),
    "store": ("query",),
}


class EmulatorChanged(RuntimeError):
    """The emulator no longer has a private attribute this adapter needs."""


class EmulatorInternals:
    """Re-arming operations on a started ``WebRunner``."""

    def __init__(self, runner: Any) -> None:
        parts = {"runner": runner}
        for owner in ("executor", "scheduler", "store"):
            parts[owner] = getattr(runner, f"_{owner}", None)
        for owner, names in REQUIRED.items():
            missing = [name for name in names if not hasattr(parts[owner], name)]
            if missing:
                raise EmulatorChanged(
                    f"{EMULATOR_PACKAGE} {version(EMULATOR_PACKAGE)}: its {owner} has no {', '.join(missing)}; "
                    "local/emulator_internals.py must follow the new release"
                )
        self._executor, self._scheduler, self._store = parts["executor"], parts["scheduler"], parts["store"]

    def running_executions(self) -> list[Any]:
        """Executions the store holds as RUNNING."""
        executions, _ = self._store.query(status_filter="RUNNING")
        return list(executions)

    def completion_event(self, arn: str) -> Any:
        """The event the executor sets when ``arn`` ends (created if the restart lost it)."""
        return self._executor._completion_events.setdefault(arn, self._scheduler.create_event())  # noqa: SLF001

    def arm_execution_timeout(self, arn: str, delay: float, message: str) -> None:
        """Time ``arn`` out after ``delay`` seconds, as the executor would have."""
        error = ErrorObject.from_message(message)
        self._executor._execution_timeouts[arn] = self._scheduler.call_later(  # noqa: SLF001
            lambda: self._executor.on_timed_out(arn, error), delay=delay, completion_event=self.completion_event(arn),
        )

    def arm_callback_timeout(self, arn: str, callback_id: str, delay: float) -> None:
        """Time the callback out after ``delay`` seconds."""
        self._executor._callback_timeouts[callback_id] = self._scheduler.call_later(  # noqa: SLF001
            lambda: self._executor._on_callback_timeout(arn, callback_id),  # noqa: SLF001
            delay=delay, completion_event=self.completion_event(arn),
        )

    def arm_heartbeat_timeout(self, arn: str, callback_id: str, delay: float) -> None:
        """Time the callback out for want of a heartbeat after ``delay`` seconds."""
        self._executor._callback_heartbeats[callback_id] = self._scheduler.call_later(  # noqa: SLF001
            lambda: self._executor._on_callback_heartbeat_timeout(arn, callback_id),  # noqa: SLF001
            delay=delay, completion_event=self.completion_event(arn),
        )

    def schedule_pending(self, arn: str) -> None:
        """Wake pending waits and step retries of ``arn`` when they are due."""
        self._executor._schedule_earliest_pending(arn)  # noqa: SLF001

    def earliest_pending(self, execution: Any) -> datetime | None:
        """When the next pending wait or retry of ``execution`` is due, if any."""
        return self._executor._earliest_pending_timestamp(execution)  # noqa: SLF001

    def invoke(self, arn: str) -> None:
        """Invoke the handler for ``arn`` again (an invocation the stop cut off)."""
        self._executor._invoke_execution(arn)  # noqa: SLF001


def use_lambda_execution_arns(region: str, version_of: Callable[[str | None], str]) -> Callable[[], None]:
    """Make the emulator name new executions as Lambda does, until the returned ``restore`` is called.

    The emulator builds every execution with ``Execution.new``; this wraps it (once,
    however often it is called) so executions stored before keep their ARNs. The
    wrap is process-wide: :class:`local.durable.DurableEmulator` holds it from
    start to stop, so nothing else in the process (the SDK's in-process test
    runner, say) sees it afterwards.

    Args:
        region: Region in the ARN.
        version_of: The version a qualifier runs (an alias resolves to its version).

    Returns:
        A function that puts the emulator's own ``Execution.new`` back.
    """
    original = getattr(Execution.new, "emulator_new", Execution.new)
    if not callable(original):
        raise EmulatorChanged(f"{EMULATOR_PACKAGE} {version(EMULATOR_PACKAGE)}: Execution.new is gone; "
                              "local/emulator_internals.py must follow the new release")

    def new(input: Any) -> Any:  # noqa: A002 - the emulator's signature
        execution = original(input=input)
        execution.durable_execution_arn = (
            f"arn:aws:lambda:{region}:{input.account_id}:function:{input.function_name}:"
            f"{version_of(input.function_qualifier)}/durable-execution/{input.execution_name}/"
            f"{input.invocation_id or uuid.uuid4()}"
        )
        return execution

    def restore() -> None:
        Execution.new = staticmethod(original)  # type: ignore[method-assign]

    new.emulator_new = original  # type: ignore[attr-defined]
    Execution.new = staticmethod(new)  # type: ignore[method-assign]
    return restore
