"""The one place the local stack reaches into the durable emulator's private state.

After a restart, the emulator's sqlite store still holds every execution, but its
timers (callback and execution timeouts, pending waits and retries) lived in
memory. ``WebRunner`` has no public way to re-arm them, so :class:`EmulatorInternals`
does it through the runner's executor, scheduler and store. Every private name it
uses is checked when it is built: an emulator release that renames one fails
loudly (``EmulatorChanged``) at start, and ``tests/local/test_emulator_internals.py``
fails in CI, instead of a restart silently losing timeouts.

Upstream, a public ``WebRunner.resume_running_executions()`` (or an
``Executor.rearm(execution)`` hook that re-arms one execution's timers from its
stored state) would remove this module.
"""

from __future__ import annotations

from datetime import datetime
from importlib.metadata import version
from typing import Any

from aws_durable_execution_sdk_python.lambda_service import ErrorObject

EMULATOR_PACKAGE = "aws-durable-execution-sdk-python-testing"
# (object, attribute) pairs this adapter relies on.
REQUIRED = {
    "runner": ("_executor", "_scheduler", "_store"),
    "executor": ("_completion_events", "_execution_timeouts", "_callback_timeouts", "on_timed_out",
                 "_on_callback_timeout", "_schedule_earliest_pending", "_earliest_pending_timestamp",
                 "_invoke_execution"),
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

    def schedule_pending(self, arn: str) -> None:
        """Wake pending waits and step retries of ``arn`` when they are due."""
        self._executor._schedule_earliest_pending(arn)  # noqa: SLF001

    def earliest_pending(self, execution: Any) -> datetime | None:
        """When the next pending wait or retry of ``execution`` is due, if any."""
        return self._executor._earliest_pending_timestamp(execution)  # noqa: SLF001

    def invoke(self, arn: str) -> None:
        """Invoke the handler for ``arn`` again (an invocation the stop cut off)."""
        self._executor._invoke_execution(arn)  # noqa: SLF001
