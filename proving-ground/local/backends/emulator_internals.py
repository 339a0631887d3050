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

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from typing import Any

from aws_durable_execution_sdk_python.lambda_service import ErrorObject
from aws_durable_execution_sdk_python_testing.execution import Execution
from aws_durable_execution_sdk_python_testing.executor import Executor
from aws_durable_execution_sdk_python_testing.model import Event, RetryDetails

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
                    "proving-ground/local/backends/emulator_internals.py must follow the new release"
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
    wrap is process-wide: :class:`local.backends.durable.DurableEmulator` holds it from
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
                              "proving-ground/local/backends/emulator_internals.py must follow the new release")

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


# -- The history the local Lambda endpoint returns, as AWS records it -----------------------------
#
# AWS's conformance requirements (aws-durable-execution-conformance-tests, run by
# `make test-conformance`) show where the emulator's GetDurableExecutionHistory differs
# from the service's. Each fix below wraps one emulator function, is named after the
# difference it removes (docs/emulator-differences.md has the upstream bug report of
# each), and has a test in tests/local/test_emulator_internals.py that fails once the
# emulator no longer shows the difference, so the fix can go.

def _keep_invocation_completed_details(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Event.from_event_with_id`` renumbers events by copying each field but ``invocation_completed_details``."""

    def from_event_with_id(cls: Any, event: Any, event_id: int) -> Any:
        renumbered = original(event, event_id)
        if event.invocation_completed_details is not None and renumbered.invocation_completed_details is None:
            renumbered = dataclasses.replace(renumbered, invocation_completed_details=event.invocation_completed_details)
        return renumbered

    return from_event_with_id


def _step_succeeded_with_attempt(original: Callable[..., Any]) -> Callable[..., Any]:
    """``StepSucceededDetails`` gets ``RetryDetails.CurrentAttempt`` when the step succeeded after a retry.

    The emulator builds retry details only from a RETRY or FAIL update; the operation's
    own ``step_details.attempt`` already counts the attempt that succeeded.
    """

    def create_step_event_succeeded(cls: Any, context: Any) -> Any:
        event = original(context)
        details = event.step_succeeded_details
        step = context.operation.step_details
        if details is not None and details.retry_details is None and step is not None and step.attempt > 1:
            event = dataclasses.replace(event, step_succeeded_details=dataclasses.replace(
                details, retry_details=RetryDetails(current_attempt=step.attempt)))
        return event

    return create_step_event_succeeded


def _truncated_only_when_withheld(details_field: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The event's ``Error.Truncated`` is false when its payload is all there (IncludeExecutionData=true).

    The emulator marks these errors truncated unconditionally (``EventError.from_details``
    is called without ``include``), while it sends the whole payload; its StepFailed
    events pass ``include`` and are right.
    """

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def create(cls: Any, context: Any) -> Any:
            event = original(context)
            details = getattr(event, details_field)
            if context.include_execution_data and details is not None and details.error is not None \
                    and details.error.truncated:
                event = dataclasses.replace(event, **{details_field: dataclasses.replace(
                    details, error=dataclasses.replace(details.error, truncated=False))})
            return event

        return create

    return wrap


def _callback_started_with_timeouts(original: Callable[..., Any]) -> Callable[..., Any]:
    """``CallbackStartedDetails`` gets ``Timeout`` and ``HeartbeatTimeout`` from the callback's options.

    The emulator reads them from the event's operation update, which it hands only to
    RETRY, FAIL and chained-invoke START events; the execution keeps every update, so
    the history is completed from the START update of each callback.
    """

    def get_execution_history(self: Any, execution_arn: str, *args: Any, **kwargs: Any) -> Any:
        response = original(self, execution_arn, *args, **kwargs)
        if not any(event.event_type == "CallbackStarted" for event in response.events):
            return response
        options = {update.operation_id: update.callback_options
                   for update in self.get_execution(execution_arn).updates if update.callback_options}
        events = []
        for event in response.events:
            started = event.callback_started_details
            option = options.get(event.operation_id)
            if event.event_type == "CallbackStarted" and started is not None and option is not None:
                event = dataclasses.replace(event, callback_started_details=dataclasses.replace(
                    started,
                    timeout=started.timeout if started.timeout is not None else (option.timeout_seconds or None),
                    heartbeat_timeout=(started.heartbeat_timeout if started.heartbeat_timeout is not None
                                       else (option.heartbeat_timeout_seconds or None)),
                ))
            events.append(event)
        return dataclasses.replace(response, events=events)

    return get_execution_history


@dataclass(frozen=True)
class HistoryFix:
    """One difference between the emulator's history and AWS's, and the wrap that removes it.

    Attributes:
        difference: Its name, as docs/emulator-differences.md titles it.
        owner: The emulator class holding the wrapped function.
        attribute: The wrapped function's name.
        wrap: Builds the replacement from the emulator's own function.
        kind: ``classmethod`` or ``method``: how the replacement is installed.
    """

    difference: str
    owner: type
    attribute: str
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]]
    kind: str = "classmethod"


HISTORY_FIXES = (
    HistoryFix("InvocationCompleted events lose InvocationCompletedDetails", Event, "from_event_with_id",
               _keep_invocation_completed_details),
    HistoryFix("CallbackStartedDetails lacks Timeout and HeartbeatTimeout", Executor, "get_execution_history",
               _callback_started_with_timeouts, kind="method"),
    HistoryFix("StepSucceededDetails lacks RetryDetails after retries", Event, "create_step_event_succeeded",
               _step_succeeded_with_attempt),
    HistoryFix("Error.Truncated is always true on CallbackFailed", Event, "create_callback_event_failed",
               _truncated_only_when_withheld("callback_failed_details")),
    HistoryFix("Error.Truncated is always true on CallbackTimedOut", Event, "create_callback_event_timed_out",
               _truncated_only_when_withheld("callback_timed_out_details")),
    HistoryFix("Error.Truncated is always true on ContextFailed", Event, "create_context_event_failed",
               _truncated_only_when_withheld("context_failed_details")),
)
_FIXED_BY = "_local_history_fix"


def use_aws_history(fixes: tuple[HistoryFix, ...] = HISTORY_FIXES) -> Callable[[], None]:
    """Install ``fixes`` in the emulator (each once, however often this is called) until ``restore``.

    Process-wide, like :func:`use_lambda_execution_arns`: :class:`local.backends.durable.DurableEmulator`
    holds them from start to stop.

    Returns:
        A function that puts the emulator's own functions back.

    Raises:
        EmulatorChanged: A wrapped function is gone (a new emulator release).
    """
    installed: list[tuple[type, str, Any]] = []
    for fix in fixes:
        descriptor = fix.owner.__dict__.get(fix.attribute)
        if descriptor is None:
            raise EmulatorChanged(f"{EMULATOR_PACKAGE} {version(EMULATOR_PACKAGE)}: {fix.owner.__name__}."
                                  f"{fix.attribute} is gone; proving-ground/local/backends/emulator_internals.py must follow the new release")
        function = descriptor.__func__ if isinstance(descriptor, classmethod) else descriptor
        if getattr(function, _FIXED_BY, None) == fix.difference:
            continue  # already installed
        if fix.kind == "classmethod":
            replacement = fix.wrap(getattr(fix.owner, fix.attribute))  # the emulator's, bound to its class
        else:
            replacement = fix.wrap(function)
        setattr(replacement, _FIXED_BY, fix.difference)
        setattr(fix.owner, fix.attribute, classmethod(replacement) if fix.kind == "classmethod" else replacement)
        installed.append((fix.owner, fix.attribute, descriptor))

    def restore() -> None:
        for owner, attribute, descriptor in reversed(installed):
            setattr(owner, attribute, descriptor)

    return restore
