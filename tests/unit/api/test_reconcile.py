"""The reconcile rules: how a callback and a workflow ended, read from the durable execution."""

from __future__ import annotations

import json

import pytest

from api.callbacks import failure_digest, success_digest
from api.reconcile import STALE_AFTER_SECONDS, CallbackState, callback_outcome, repair_check_cutoff, workflow_outcome
from shared import registry as reg

STARTED = {"EventType": "CallbackStarted", "Id": "op", "CallbackStartedDetails": {"CallbackId": "cb-1"}}


def test_callback_never_started_is_unknown() -> None:
    assert callback_outcome([], "cb-1").state == CallbackState.UNKNOWN


def test_started_callback_without_outcome_still_waits() -> None:
    assert callback_outcome([STARTED], "cb-1").state == CallbackState.WAITING


def succeeded(payload_text: str) -> dict[str, object]:
    return {"EventType": "CallbackSucceeded", "Id": "op", "CallbackSucceededDetails": {"Result": {"Payload": payload_text}}}


def test_success_carries_the_digest_of_the_delivered_answer_in_its_canonical_form() -> None:
    outcome = callback_outcome([STARTED, succeeded('{"n":1.0,"a":"\\u00e9"}')], "cb-1")
    assert outcome.state == CallbackState.SUCCEEDED and outcome.answer_digest == success_digest({"a": "é", "n": 1})


def test_a_result_that_is_not_an_answer_of_the_routes_matches_none() -> None:
    # Not JSON, or nested deeper than the routes accept: digested as text, which no object answer is.
    assert callback_outcome([STARTED, succeeded("plain approval")], "cb-1").answer_digest == success_digest("plain approval")
    deep = "[" * 150 + "]" * 150
    digest = callback_outcome([STARTED, succeeded(deep)], "cb-1").answer_digest
    assert digest == success_digest(deep) != success_digest(json.loads(deep))


def test_failure_carries_the_digest_of_type_and_message() -> None:
    event = {"EventType": "CallbackFailed", "Id": "op",
             "CallbackFailedDetails": {"Error": {"Payload": {"ErrorType": "Declined", "ErrorMessage": "no"}}}}
    outcome = callback_outcome([STARTED, event], "cb-1")
    assert outcome.state == CallbackState.FAILED and outcome.answer_digest == failure_digest("Declined", "no")


def test_truncated_result_has_no_digest_and_another_callbacks_events_are_ignored() -> None:
    other = {"EventType": "CallbackTimedOut", "Id": "other-op"}
    event = {"EventType": "CallbackSucceeded", "Id": "op", "CallbackSucceededDetails": {"Result": {"Truncated": True}}}
    outcome = callback_outcome([STARTED, other, event], "cb-1")
    assert outcome.state == CallbackState.SUCCEEDED and outcome.answer_digest is None


def test_timed_out_callback() -> None:
    assert callback_outcome([STARTED, {"EventType": "CallbackTimedOut", "Id": "op"}], "cb-1").state == CallbackState.TIMED_OUT


def test_running_execution_repairs_nothing() -> None:
    assert workflow_outcome({"Status": "RUNNING"}) is None


@pytest.mark.parametrize("status", [reg.COMPLETED, reg.REJECTED, reg.FAILED, reg.TIMED_OUT])
def test_succeeded_execution_carries_the_workflow_status_in_its_result(status: str) -> None:
    result = {"workflowId": "wf", "status": status, "reason": "why" if status != reg.COMPLETED else None, "x": 1}
    outcome = workflow_outcome({"Status": "SUCCEEDED", "Result": json.dumps(result)})
    assert outcome is not None and outcome.status == status and outcome.result is not None
    assert "workflowId" not in outcome.result and outcome.result["x"] == 1


@pytest.mark.parametrize(("execution_status", "status"), [("FAILED", reg.FAILED), ("STOPPED", reg.FAILED), ("TIMED_OUT", reg.TIMED_OUT)])
def test_execution_that_ended_as_a_whole(execution_status: str, status: str) -> None:
    outcome = workflow_outcome({"Status": execution_status, "Error": {"ErrorType": "StepError"}})
    assert outcome is not None and outcome.status == status and "StepError" in (outcome.reason or "")


def test_duplicate_start_never_touches_the_registry() -> None:
    assert workflow_outcome({"Status": "SUCCEEDED", "Result": json.dumps({"status": "DUPLICATE"})}) is None


def test_succeeded_execution_without_a_result_is_failed() -> None:
    outcome = workflow_outcome({"Status": "SUCCEEDED", "Result": "not json"})
    assert outcome is not None and outcome.status == reg.FAILED


def record(**fields: object) -> reg.WorkflowRecord:
    base = {"tenant_id": "t", "workflow_id": "wf", "status": reg.WAITING_FOR_CALLBACK, "execution_arn": "arn",
            "callback_deadline": 2_000, "updated_at": 1_000}
    return reg.WorkflowRecord(**{**base, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "now", "expected"),
    [
        ({}, 1_000 + STALE_AFTER_SECONDS - 1, False),
        ({}, 2_000, True),
        ({"status": reg.COMPLETED}, 2_500, False),
        ({"execution_arn": None}, 1_500, False),
        ({"status": reg.STARTED, "callback_deadline": None}, 1_000 + STALE_AFTER_SECONDS + 1, True),
        ({"status": reg.STARTED, "callback_deadline": None}, 1_000 + STALE_AFTER_SECONDS - 1, False),
        # a waiting workflow nothing says has moved on: checked once its item is STALE_AFTER_SECONDS old ...
        ({}, 1_000 + STALE_AFTER_SECONDS, True),
        # ... counted from the last check as well as from the last update
        ({"repair_checked_at": 1_500}, 1_500 + STALE_AFTER_SECONDS - 1, False),
        ({"repair_checked_at": 1_500}, 1_500 + STALE_AFTER_SECONDS, True),
    ],
)
def test_a_read_checks_the_execution_only_once_the_item_is_stale(
    fields: dict[str, object], now: float, expected: bool
) -> None:
    assert (repair_check_cutoff(record(**fields), now) is not None) is expected


def test_the_cutoff_is_what_the_conditional_write_compares_the_last_check_with() -> None:
    assert repair_check_cutoff(record(), 1_000 + STALE_AFTER_SECONDS + 0.5) == 1_000
    assert repair_check_cutoff(record(), 1_010) is None


def test_a_wait_still_being_registered_is_checked_only_when_the_start_is_long_past() -> None:
    # The submitter wrote the callback (callbackId, deadline) but has not made the wait answerable yet.
    registering = reg.WorkflowRecord("t", "w", reg.STARTED, callback_id="cb", execution_arn="arn", updated_at=1_000,
                                     callback_deadline=100_000)
    assert repair_check_cutoff(registering, 1_000 + 30) is None, "its retries are still running"
    assert repair_check_cutoff(registering, 1_000 + STALE_AFTER_SECONDS + 1) is not None, "a submitter that died long ago"
