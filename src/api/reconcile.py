"""What really happened, read from the durable execution: the rules that repair the registry. No I/O.

The registry is a projection of the durable execution, written by the workflow's
own steps. When those writes fail for longer than the steps retry, the execution
still ends (its result carries the final status), and the registry is repaired
from it on the next read or callback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from api.callbacks import failure_digest, success_digest
from shared import registry as reg
from shared import strict_json



class CallbackState(StrEnum):
    """How a callback stands in the execution's history."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    WAITING = "WAITING"
    UNKNOWN = "UNKNOWN"  # the history never named it, or is gone (past the durable retention)


# Execution statuses of GetDurableExecution that mean "ended".
_ENDED_AS = {"SUCCEEDED": reg.COMPLETED, "FAILED": reg.FAILED, "TIMED_OUT": reg.TIMED_OUT, "STOPPED": reg.FAILED}
# An open workflow whose registry item nothing has updated or checked for this
# long is checked against its execution on the next read. This is the bound the
# README states: how long the registry can show an ended workflow as open when
# the workflow's own final write was lost (a registry outage longer than its
# step's retries); it keeps a poller of a workflow that waits for days to one
# durable-service call a minute. A callback for the workflow repairs it at once.
STALE_AFTER_SECONDS = 60


@dataclass(frozen=True)
class CallbackOutcome:
    """How one callback ended according to the execution history."""

    state: CallbackState
    answer_digest: str | None = None


@dataclass(frozen=True)
class WorkflowOutcome:
    """A final registry status derived from an ended execution."""

    status: reg.WorkflowStatus
    result: dict[str, Any] | None
    reason: str | None


def callback_outcome(events: list[dict[str, Any]], callback_id: str) -> CallbackOutcome:
    """Find ``callback_id`` in a GetDurableExecutionHistory event list and say how it ended."""
    operation_id = next(
        (event.get("Id") for event in events
         if event.get("EventType") == "CallbackStarted"
         and (event.get("CallbackStartedDetails") or {}).get("CallbackId") == callback_id),
        None,
    )
    if operation_id is None:
        return CallbackOutcome(CallbackState.UNKNOWN)
    for event in events:
        if event.get("Id") != operation_id:
            continue
        kind = event.get("EventType")
        if kind == "CallbackSucceeded":
            result = ((event.get("CallbackSucceededDetails") or {}).get("Result") or {})
            digest = None if result.get("Truncated") else success_digest(_delivered_payload(result.get("Payload")))
            return CallbackOutcome(CallbackState.SUCCEEDED, digest)
        if kind == "CallbackFailed":
            error = ((event.get("CallbackFailedDetails") or {}).get("Error") or {})
            payload = error.get("Payload") or {}
            digest = None if error.get("Truncated") else failure_digest(payload.get("ErrorType"), payload.get("ErrorMessage"))
            return CallbackOutcome(CallbackState.FAILED, digest)
        if kind == "CallbackTimedOut":
            return CallbackOutcome(CallbackState.TIMED_OUT)
    return CallbackOutcome(CallbackState.WAITING)


def _delivered_payload(text: Any) -> Any:
    """A success result as the history holds it (the delivered text), decoded for the canonical digest.

    Text that is not JSON, or nested deeper than the routes accept (a result some
    other client sent), stays text: its digest matches no answer of the callback
    routes, whose payloads are objects.
    """
    raw = str(text or "")
    try:
        value = strict_json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    # Deeper than any answer the routes accept: not one of theirs (and too deep to canonicalise safely).
    return value if strict_json.depth(value) <= strict_json.MAX_PAYLOAD_DEPTH else raw


def workflow_outcome(execution: dict[str, Any]) -> WorkflowOutcome | None:
    """The final registry status of an ended execution (GetDurableExecution), or None while it runs.

    The handler returns ``{"workflowId", "status", ...}`` for every way it ends
    (completed, rejected, failed, timed out), so a SUCCEEDED execution carries its
    workflow status in its result; an execution that failed, timed out or was
    stopped as a whole is FAILED or TIMED_OUT.
    """
    status = _ENDED_AS.get(str(execution.get("Status")))
    if status is None:
        return None
    if status == reg.COMPLETED:
        result = _decoded_result(execution.get("Result"))
        if result is not None and result.get("status") in reg.FINAL_STATUSES:
            reason = result.get("reason")
            stored = {key: value for key, value in result.items() if key != "workflowId"}
            return WorkflowOutcome(reg.WorkflowStatus(result["status"]), stored, reason if isinstance(reason, str) else None)
        if result is not None and result.get("status") == "DUPLICATE":
            return None  # a duplicate start never owned the registry item
        return WorkflowOutcome(reg.FAILED, None, "the execution ended without a workflow result")
    error = execution.get("Error") or {}
    reason = f"execution {str(execution.get('Status')).lower().replace('_', ' ')}"
    if error.get("ErrorType"):
        reason += f": {error['ErrorType']}"
    return WorkflowOutcome(status, {"status": status, "reason": reason}, reason)


def repair_check_cutoff(record: reg.WorkflowRecord, now: float) -> int | None:
    """When a read of an open workflow should ask the execution if it already ended.

    Returns None when no check is due; else the cutoff: a check made at or before
    it is stale (``WorkflowRegistry.claim_repair_check`` writes the new one only
    if no other read made one since). A check is due once ``STALE_AFTER_SECONDS``
    passed since the item was last updated or checked: asking on every status
    poll would spend the durable service's request quota for nothing.
    """
    if not record.is_open or not record.execution_arn:
        return None
    cutoff, last = now - STALE_AFTER_SECONDS, max(record.updated_at or 0, record.repair_checked_at or 0)
    return int(cutoff) if last <= cutoff else None


def _decoded_result(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
