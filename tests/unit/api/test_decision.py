"""The callback decision as a table: one row per case, each row's id states the scenario (api.decision, pure)."""

from __future__ import annotations

from typing import Any

import pytest

from api.callbacks import AnswerKind
from api.decision import HTTP_STATUS, STEPS, Decision, Facts, Lease, LeaseFacts, Sent, Unreadable, Verdict, decide
from api.reconcile import CallbackOutcome, CallbackState
from shared.registry import CallbackSettled, WorkflowStatus

MINE, OTHER = "digest-of-this-answer", "digest-of-another-answer"
SUCCESS, FAILURE, HEARTBEAT = AnswerKind.SUCCESS, AnswerKind.FAILURE, AnswerKind.HEARTBEAT
STARTED, WAITING = WorkflowStatus.STARTED, WorkflowStatus.WAITING_FOR_CALLBACK
COMPLETED, FAILED, REJECTED, TIMED_OUT = (WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.REJECTED,
                                          WorkflowStatus.TIMED_OUT)
HELD = LeaseFacts(Lease.HELD)
BUSY = LeaseFacts(Lease.BUSY, lease_digest=OTHER)
FREE = LeaseFacts(Lease.FREE)
MISSING = LeaseFacts(Lease.MISSING)
ANSWERED, SETTLED_TIMED_OUT = CallbackSettled.ANSWERED, CallbackSettled.TIMED_OUT


def settled(digest: str | None) -> LeaseFacts:
    return LeaseFacts(Lease.SETTLED, ANSWERED, settled_digest=digest)


def history(state: CallbackState, digest: str | None = None) -> CallbackOutcome:
    return CallbackOutcome(state, digest)


def facts(workflow: WorkflowStatus | None = WAITING, kind: AnswerKind = SUCCESS, **known: Any) -> Facts:
    return Facts(kind=kind, digest=None if kind == HEARTBEAT else MINE, workflow=workflow, **known)


def step(verdict: Verdict) -> Decision:
    return Decision(verdict)


ALREADY_ANSWERED = "callback was already answered"
TIMED_OUT_MESSAGE = "callback timed out"
IN_PROGRESS = "another delivery of this callback is in progress; retry later"
UNKNOWN_OUTCOME = "the callback's outcome cannot be read right now; retry later"
BUSY_SERVICE = "durable execution service is busy, retry later"
SENT_NOT_WAITING = {"lease": HELD, "sent": Sent.NOT_WAITING}

TABLE: list[tuple[str, Facts, Decision]] = [
    # -- the registry: which callback, and is it answerable ------------------------------------------------------
    ("no-such-callback-for-this-tenant-is-404", facts(None), Decision(Verdict.NOT_FOUND, "callback not found")),
    ("an-answer-while-the-wait-is-being-registered-is-503-and-nothing-is-sent", facts(STARTED),
     Decision(Verdict.REGISTERING, "the callback's wait is still being registered; retry later")),
    ("a-heartbeat-while-the-wait-is-being-registered-is-503", facts(STARTED, HEARTBEAT),
     Decision(Verdict.REGISTERING, "the callback's wait is still being registered; retry later")),
    ("a-waiting-workflows-answer-first-claims-the-lease", facts(), step(Verdict.CLAIM_LEASE)),
    ("a-failure-answer-claims-the-lease-too", facts(kind=FAILURE), step(Verdict.CLAIM_LEASE)),
    ("a-heartbeat-needs-no-lease-it-is-sent", facts(kind=HEARTBEAT), step(Verdict.SEND)),
    # -- the lease -----------------------------------------------------------------------------------------------
    ("the-lease-taken-the-answer-is-sent", facts(lease=HELD), step(Verdict.SEND)),
    ("a-lease-another-live-request-holds-is-503-retry-nothing-waits",
     facts(lease=BUSY), Decision(Verdict.IN_PROGRESS, IN_PROGRESS)),
    ("a-callback-this-same-answer-settled-is-200-again-without-sending", facts(lease=settled(MINE)),
     Decision(Verdict.DELIVERED_BEFORE)),
    ("a-callback-another-answer-settled-is-409-and-the-registry-is-repaired", facts(lease=settled(OTHER)),
     Decision(Verdict.ANSWERED, ALREADY_ANSWERED, repair=True)),
    ("a-callback-settled-by-an-answer-nobody-knows-is-409", facts(lease=settled(None)),
     Decision(Verdict.ANSWERED, ALREADY_ANSWERED, repair=True)),
    ("a-callback-settled-as-timed-out-is-410", facts(lease=LeaseFacts(Lease.SETTLED, SETTLED_TIMED_OUT)),
     Decision(Verdict.EXPIRED, TIMED_OUT_MESSAGE, repair=True)),
    ("a-callback-without-its-item-is-409", facts(lease=MISSING),
     Decision(Verdict.ANSWERED, ALREADY_ANSWERED, repair=True)),
    # -- the durable service: the arbiter ------------------------------------------------------------------------
    ("a-success-the-service-accepted-is-200-and-settles-the-callback", facts(lease=HELD, sent=Sent.OK),
     Decision(Verdict.DELIVERED, settle=ANSWERED, settle_digest=MINE)),
    ("a-failure-answer-the-service-accepted-is-200-and-settles-the-callback",
     facts(kind=FAILURE, lease=HELD, sent=Sent.OK), Decision(Verdict.DELIVERED, settle=ANSWERED, settle_digest=MINE)),
    ("a-heartbeat-the-service-accepted-is-200-and-settles-nothing", facts(kind=HEARTBEAT, sent=Sent.OK),
     Decision(Verdict.DELIVERED)),
    ("the-service-throttled-is-429-and-the-lease-is-given-back", facts(lease=HELD, sent=Sent.THROTTLED),
     Decision(Verdict.THROTTLED, BUSY_SERVICE, release=True)),
    ("the-service-failed-is-502-and-the-lease-is-given-back", facts(lease=HELD, sent=Sent.FAILED),
     Decision(Verdict.SERVICE_FAILED, "durable execution service failed", release=True)),
    ("a-throttled-heartbeat-is-429-with-no-lease-to-give-back", facts(kind=HEARTBEAT, sent=Sent.THROTTLED),
     Decision(Verdict.THROTTLED, BUSY_SERVICE)),
    ("the-service-says-the-callback-no-longer-waits-the-history-is-read", facts(**SENT_NOT_WAITING),
     step(Verdict.READ_HISTORY)),
    # -- the history says why the callback no longer waits --------------------------------------------------------
    ("the-history-holds-this-answer-its-earlier-attempt-landed-200",
     facts(**SENT_NOT_WAITING, history=history(CallbackState.SUCCEEDED, MINE)),
     Decision(Verdict.DELIVERED, settle=ANSWERED, settle_digest=MINE)),
    ("a-truncated-answer-of-this-kind-while-holding-the-lease-is-this-one-200",
     facts(**SENT_NOT_WAITING, history=history(CallbackState.SUCCEEDED)),
     Decision(Verdict.DELIVERED, settle=ANSWERED, settle_digest=MINE)),
    ("a-truncated-answer-of-the-other-kind-is-409",
     facts(**SENT_NOT_WAITING, history=history(CallbackState.FAILED)),
     Decision(Verdict.ANSWERED, ALREADY_ANSWERED, settle=ANSWERED, repair=True)),
    ("the-history-holds-another-answer-409-settled-with-its-digest",
     facts(**SENT_NOT_WAITING, history=history(CallbackState.SUCCEEDED, OTHER)),
     Decision(Verdict.ANSWERED, ALREADY_ANSWERED, settle=ANSWERED, settle_digest=OTHER, repair=True)),
    ("the-history-says-timed-out-410-settled-as-timed-out",
     facts(**SENT_NOT_WAITING, history=history(CallbackState.TIMED_OUT)),
     Decision(Verdict.EXPIRED, TIMED_OUT_MESSAGE, settle=SETTLED_TIMED_OUT, repair=True)),
    ("a-history-that-still-shows-the-callback-waiting-is-a-503-retry-not-a-409",
     facts(**SENT_NOT_WAITING, history=history(CallbackState.WAITING)),
     Decision(Verdict.OUTCOME_UNKNOWN, UNKNOWN_OUTCOME, release=True)),
    ("a-throttled-history-is-429-and-the-lease-is-given-back",
     facts(**SENT_NOT_WAITING, history=Unreadable.THROTTLED), Decision(Verdict.THROTTLED, BUSY_SERVICE, release=True)),
    ("an-unreadable-history-is-503-never-a-final-409",
     facts(**SENT_NOT_WAITING, history=Unreadable.UNAVAILABLE),
     Decision(Verdict.OUTCOME_UNKNOWN, UNKNOWN_OUTCOME, release=True)),
    ("a-history-past-its-retention-before-the-deadline-is-409-settling-nothing",
     facts(**SENT_NOT_WAITING, history=history(CallbackState.UNKNOWN)),
     Decision(Verdict.ANSWERED, "callback is no longer waiting", repair=True)),
    ("a-history-past-its-retention-after-the-deadline-is-410-settling-nothing",
     facts(**SENT_NOT_WAITING, history=history(CallbackState.UNKNOWN), deadline_passed=True),
     Decision(Verdict.EXPIRED, TIMED_OUT_MESSAGE, repair=True)),
    ("a-heartbeat-to-a-callback-another-answer-completed-is-409",
     facts(kind=HEARTBEAT, sent=Sent.NOT_WAITING, history=history(CallbackState.SUCCEEDED, OTHER)),
     Decision(Verdict.ANSWERED, ALREADY_ANSWERED, settle=ANSWERED, settle_digest=OTHER, repair=True)),
    ("a-heartbeat-never-counts-as-a-truncated-answer-409",
     facts(kind=HEARTBEAT, sent=Sent.NOT_WAITING, history=history(CallbackState.SUCCEEDED)),
     Decision(Verdict.ANSWERED, ALREADY_ANSWERED, settle=ANSWERED, repair=True)),
    ("a-heartbeat-after-the-timeout-is-410",
     facts(kind=HEARTBEAT, sent=Sent.NOT_WAITING, history=history(CallbackState.TIMED_OUT)),
     Decision(Verdict.EXPIRED, TIMED_OUT_MESSAGE, settle=SETTLED_TIMED_OUT, repair=True)),
    ("a-heartbeat-with-the-history-unreadable-is-503-with-no-lease-to-give-back",
     facts(kind=HEARTBEAT, sent=Sent.NOT_WAITING, history=Unreadable.UNAVAILABLE),
     Decision(Verdict.OUTCOME_UNKNOWN, UNKNOWN_OUTCOME)),
    # -- the workflow already ended: 200 again only for the answer that won ----------------------------------------
    ("a-timed-out-workflow-is-410-without-asking-anything", facts(TIMED_OUT), Decision(Verdict.EXPIRED, TIMED_OUT_MESSAGE)),
    ("a-heartbeat-to-a-completed-workflow-is-409", facts(COMPLETED, HEARTBEAT),
     Decision(Verdict.ANSWERED, "workflow is already COMPLETED")),
    ("a-heartbeat-to-a-failed-workflow-is-409", facts(FAILED, HEARTBEAT), Decision(Verdict.ANSWERED, "workflow is already FAILED")),
    ("an-answer-to-a-completed-workflow-reads-the-lease", facts(COMPLETED), step(Verdict.READ_LEASE)),
    ("an-answer-to-a-rejected-workflow-reads-the-lease", facts(REJECTED), step(Verdict.READ_LEASE)),
    ("the-answer-that-won-the-ended-workflow-is-200-again", facts(COMPLETED, lease=settled(MINE)),
     Decision(Verdict.DELIVERED_BEFORE)),
    ("another-answer-to-the-ended-workflow-is-409", facts(COMPLETED, lease=settled(OTHER)),
     Decision(Verdict.ANSWERED, "workflow is already COMPLETED")),
    ("a-rejected-workflow-nothing-answered-is-409-once-the-history-says-so",
     facts(REJECTED, lease=MISSING, history=history(CallbackState.UNKNOWN)),
     Decision(Verdict.ANSWERED, "workflow is already REJECTED")),
    ("an-ended-workflow-whose-holder-died-before-settling-reads-the-history", facts(COMPLETED, lease=FREE),
     step(Verdict.READ_HISTORY)),
    ("a-killed-holders-client-retrying-after-the-end-is-200-again-and-settles",
     facts(COMPLETED, lease=FREE, history=history(CallbackState.SUCCEEDED, MINE)),
     Decision(Verdict.DELIVERED_BEFORE, settle=ANSWERED, settle_digest=MINE)),
    ("another-answer-after-the-end-is-409-by-the-history",
     facts(COMPLETED, lease=FREE, history=history(CallbackState.SUCCEEDED, OTHER)),
     Decision(Verdict.ANSWERED, "workflow is already COMPLETED")),
    ("a-truncated-history-and-the-last-lease-holder-sent-this-answer-is-200-again",
     facts(FAILED, kind=FAILURE, lease=LeaseFacts(Lease.FREE, lease_digest=MINE), history=history(CallbackState.FAILED)),
     Decision(Verdict.DELIVERED_BEFORE, settle=ANSWERED, settle_digest=MINE)),
    ("a-truncated-history-and-the-last-lease-holder-sent-another-answer-is-409",
     facts(FAILED, kind=FAILURE, lease=LeaseFacts(Lease.FREE, lease_digest=OTHER), history=history(CallbackState.FAILED)),
     Decision(Verdict.ANSWERED, "workflow is already FAILED")),
    ("a-truncated-history-of-the-other-kind-is-409",
     facts(COMPLETED, lease=LeaseFacts(Lease.FREE, lease_digest=MINE), history=history(CallbackState.FAILED)),
     Decision(Verdict.ANSWERED, "workflow is already COMPLETED")),
    ("an-ended-workflow-with-its-history-throttled-is-429",
     facts(COMPLETED, lease=FREE, history=Unreadable.THROTTLED), Decision(Verdict.THROTTLED, BUSY_SERVICE)),
    ("an-ended-workflow-with-its-history-unreadable-is-503",
     facts(COMPLETED, lease=FREE, history=Unreadable.UNAVAILABLE), Decision(Verdict.OUTCOME_UNKNOWN, UNKNOWN_OUTCOME)),
]


@pytest.mark.parametrize(("scenario", "known", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_the_callback_decision(scenario: str, known: Facts, expected: Decision) -> None:
    assert decide(known) == expected, scenario


def test_the_table_has_one_row_per_scenario() -> None:
    names = [row[0] for row in TABLE]
    assert len(names) == len(set(names))
    assert {decide(known).verdict for _, known, _ in TABLE} == set(Verdict), "a verdict no row reaches"


def test_every_answer_has_a_status_and_every_retry_says_when() -> None:
    for verdict in Verdict:
        decision = Decision(verdict)
        if verdict in STEPS:
            assert decision.status is None and decision.retry_after is None
        else:
            assert decision.status == HTTP_STATUS[verdict]
            assert decision.retry_after == (1 if decision.status in (429, 503) else None)


def test_a_lease_is_given_back_only_by_its_holder_and_never_with_a_settlement() -> None:
    for scenario, known, _ in TABLE:
        decision = decide(known)
        if decision.release:
            assert known.lease == HELD, scenario
            assert decision.settle is None, scenario



@pytest.mark.parametrize(("status", "status_code"), [(COMPLETED, 409), (REJECTED, 409), (FAILED, 409), (TIMED_OUT, 410)])
def test_only_waiting_workflows_accept_callbacks(status: WorkflowStatus, status_code: int) -> None:
    assert decide(facts(status, HEARTBEAT)).status == status_code
    assert decide(facts(status)).verdict not in (Verdict.CLAIM_LEASE, Verdict.SEND), "an ended workflow is never sent to"
    assert decide(facts(None)).status == 404
    assert decide(facts(WAITING)).verdict == Verdict.CLAIM_LEASE


def test_a_request_while_the_wait_is_registered_is_told_to_retry() -> None:
    refused = decide(facts(STARTED))
    assert refused.status == 503 and "still being registered" in refused.message and refused.retry_after == 1
    assert decide(facts(WAITING)).status is None  # a step: the wait is answerable
    assert decide(facts(COMPLETED)).verdict != Verdict.REGISTERING  # 409/200 are decided by the lease and history
