"""Is this request's answer the one that landed? One pure function, read as a table. No I/O.

Both callback routes ask :func:`decide` what to do with an answer, given what
is known so far: the workflow's status in the registry, the callback's lease
(who holds it, how it settled), what the durable service said to the answer,
and how the execution's history says the callback ended. The decision is either
a *step* (the I/O shell, :mod:`api.delivery`, gathers one more fact and asks
again) or an *answer* to the client, with the bookkeeping that goes with it
(settle the callback, give the lease back, repair the registry).

The rules (``tests/unit/api/test_decision.py`` holds them as a table):

- The durable service is the arbiter: it completes a callback once. When it
  says the callback no longer waits, the history says why: this very answer
  landed (an earlier attempt whose reply was lost, or a killed holder with the
  same answer): 200; another answer: 409; the callback timed out: 410.
- An outcome that cannot be known right now (the history is throttled, failing,
  or has not caught up) is a retry (429 or 503 with ``Retry-After``), never a
  final 409: the retry learns whether it won.
- The lease keeps two live requests from delivering at once; a request that
  meets another's live lease is told to retry (503): clients retry a 503 anyway,
  so nothing waits here. A holder that is killed blocks only until its lease ends.
- A repeat of the answer that won gets 200 again (its client may have lost the
  first reply); any other answer gets 409; a timed-out callback 410.
- A wait whose event is not out yet (the workflow is still ``STARTED``) is not
  answerable: 503, nothing is delivered, so a submitter that then fails never
  breaks an accepted answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from api.callbacks import AnswerKind
from api.reconcile import CallbackOutcome, CallbackState
from shared.registry import CallbackSettled, WorkflowStatus

# Every retry verdict says "retry after a second": a live holder finishes within
# its invocation, and a repeated 503 costs one registry read.
RETRY_AFTER_SECONDS = 1


class Verdict(StrEnum):
    """What :func:`decide` says: a step that gathers one more fact, or the answer to the client."""

    # steps: the shell gathers the fact and asks again
    CLAIM_LEASE = "claim the lease"
    READ_LEASE = "read the lease"
    SEND = "send the answer to the durable service"
    READ_HISTORY = "read the execution's history"
    # answers
    DELIVERED = "200: delivered"
    DELIVERED_BEFORE = "200 again: this answer had already won"
    NOT_FOUND = "404: no such callback"
    ANSWERED = "409: another answer won, or the workflow ended"
    EXPIRED = "410: the callback timed out"
    THROTTLED = "429: retry"
    SERVICE_FAILED = "502: the durable service failed"
    IN_PROGRESS = "503: another delivery holds the lease"
    OUTCOME_UNKNOWN = "503: the outcome cannot be read yet"
    REGISTERING = "503: the wait is still being registered"


STEPS = frozenset({Verdict.CLAIM_LEASE, Verdict.READ_LEASE, Verdict.SEND, Verdict.READ_HISTORY})
HTTP_STATUS: dict[Verdict, int] = {
    Verdict.DELIVERED: 200, Verdict.DELIVERED_BEFORE: 200, Verdict.NOT_FOUND: 404, Verdict.ANSWERED: 409,
    Verdict.EXPIRED: 410, Verdict.THROTTLED: 429, Verdict.SERVICE_FAILED: 502, Verdict.IN_PROGRESS: 503,
    Verdict.OUTCOME_UNKNOWN: 503, Verdict.REGISTERING: 503,
}


class Lease(StrEnum):
    """The callback's lease as the registry's callback item holds it."""

    HELD = "held by this request"
    BUSY = "held by another live request"
    FREE = "held by nobody live"
    SETTLED = "settled (answered or timed out)"
    MISSING = "no callback item"


class Sent(StrEnum):
    """What the durable service said to the answer."""

    OK = "accepted"
    NOT_WAITING = "the callback no longer waits"
    THROTTLED = "throttled"
    FAILED = "failed or unreachable"


class Unreadable(StrEnum):
    """Why the execution's history could not be read."""

    THROTTLED = "throttled"
    UNAVAILABLE = "failing or unreachable"


@dataclass(frozen=True)
class LeaseFacts:
    """The callback item: its lease, how it settled and by which answer, and the last holder's answer."""

    state: Lease
    settled_as: CallbackSettled | None = None
    settled_digest: str | None = None
    lease_digest: str | None = None


@dataclass(frozen=True)
class Facts:
    """What is known about one answer. A field left None has not been gathered yet.

    Attributes:
        kind: The answer: success, failure or heartbeat.
        digest: The answer's digest in its canonical form (None for a heartbeat).
        workflow: The workflow's status in the registry; None when the caller has no such callback.
        deadline_passed: The callback's registered deadline has passed.
    """

    kind: AnswerKind
    digest: str | None
    workflow: WorkflowStatus | None
    deadline_passed: bool = False
    lease: LeaseFacts | None = None
    sent: Sent | None = None
    history: CallbackOutcome | Unreadable | None = None


@dataclass(frozen=True)
class Decision:
    """A step, or the answer and its bookkeeping.

    Attributes:
        settle: Write to the callback item how it ended (and by which answer), so
            later requests answer without the durable service.
        settle_digest: The answer that settled it, when known.
        release: Give this request's lease back (nothing was settled; the retry may take it at once).
        repair: The registry says the workflow waits but the execution moved on: converge it now.
    """

    verdict: Verdict
    message: str = ""
    settle: CallbackSettled | None = None
    settle_digest: str | None = None
    release: bool = False
    repair: bool = False

    @property
    def status(self) -> int | None:
        """The HTTP status of an answer (None for a step)."""
        return HTTP_STATUS.get(self.verdict)

    @property
    def retry_after(self) -> int | None:
        """``Retry-After`` seconds of a retry verdict (429, 503), else None."""
        return RETRY_AFTER_SECONDS if self.status in (429, 503) else None


ANSWERED_MESSAGE = "callback was already answered"
EXPIRED_MESSAGE = "callback timed out"
_STEP = {verdict: Decision(verdict) for verdict in STEPS}
_KIND_IN_HISTORY = {AnswerKind.SUCCESS: CallbackState.SUCCEEDED, AnswerKind.FAILURE: CallbackState.FAILED}


def decide(facts: Facts) -> Decision:
    """The next step for ``facts``, or the answer to the client (the table: module docstring and its test)."""
    if facts.workflow is None:
        return Decision(Verdict.NOT_FOUND, "callback not found")
    if facts.workflow == WorkflowStatus.STARTED:
        return Decision(Verdict.REGISTERING, "the callback's wait is still being registered; retry later")
    if facts.workflow == WorkflowStatus.WAITING_FOR_CALLBACK:
        return _while_waiting(facts)
    return _after_the_end(facts, facts.workflow)


def _while_waiting(facts: Facts) -> Decision:
    """The registry says the workflow waits: take the lease (a heartbeat needs none), send, explain a refusal."""
    holds_lease = facts.lease is not None and facts.lease.state == Lease.HELD
    if facts.kind != AnswerKind.HEARTBEAT and not holds_lease:
        if facts.lease is None:
            return _STEP[Verdict.CLAIM_LEASE]
        return _lease_refused(facts, facts.lease)
    if facts.sent is None:
        return _STEP[Verdict.SEND]
    if facts.sent == Sent.OK:
        return _delivered(facts)
    if facts.sent == Sent.THROTTLED:
        return Decision(Verdict.THROTTLED, "durable execution service is busy, retry later", release=holds_lease)
    if facts.sent == Sent.FAILED:
        return Decision(Verdict.SERVICE_FAILED, "durable execution service failed", release=holds_lease)
    # The service says the callback no longer waits: the history says why.
    if facts.history is None:
        return _STEP[Verdict.READ_HISTORY]
    if isinstance(facts.history, Unreadable):
        return _unreadable(facts.history, release=holds_lease)
    outcome = facts.history
    if _landed_while_holding(facts, outcome):
        return _delivered(facts)
    if outcome.state == CallbackState.TIMED_OUT:
        return Decision(Verdict.EXPIRED, EXPIRED_MESSAGE, settle=CallbackSettled.TIMED_OUT, repair=True)
    if outcome.state in (CallbackState.SUCCEEDED, CallbackState.FAILED):
        return Decision(Verdict.ANSWERED, ANSWERED_MESSAGE, settle=CallbackSettled.ANSWERED,
                        settle_digest=outcome.answer_digest, repair=True)
    if outcome.state == CallbackState.WAITING:
        # The service says it no longer waits, its history does not say how yet: retry, never a final 409.
        return Decision(Verdict.OUTCOME_UNKNOWN, "the callback's outcome cannot be read right now; retry later",
                        release=holds_lease)
    # The history is gone (past its retention) or never named the callback: the deadline decides; settle nothing.
    if facts.deadline_passed:
        return Decision(Verdict.EXPIRED, EXPIRED_MESSAGE, repair=True)
    return Decision(Verdict.ANSWERED, "callback is no longer waiting", repair=True)


def _lease_refused(facts: Facts, lease: LeaseFacts) -> Decision:
    """Another request holds the lease, or the callback already settled."""
    if lease.state == Lease.SETTLED and lease.settled_as == CallbackSettled.TIMED_OUT:
        return Decision(Verdict.EXPIRED, EXPIRED_MESSAGE, repair=True)
    if lease.state == Lease.SETTLED and lease.settled_digest is not None and lease.settled_digest == facts.digest:
        return Decision(Verdict.DELIVERED_BEFORE)  # a retry of the answer that won (its first reply was lost)
    if lease.state in (Lease.SETTLED, Lease.MISSING):
        return Decision(Verdict.ANSWERED, ANSWERED_MESSAGE, repair=True)
    return Decision(Verdict.IN_PROGRESS, "another delivery of this callback is in progress; retry later")


def _landed_while_holding(facts: Facts, outcome: CallbackOutcome) -> bool:
    """Whether the answer the history recorded is this request's.

    When the history truncates the answer (no digest), the lease decides: this
    request holds it, so the answer of the same kind that landed is its own
    earlier attempt (a holder before it would have had to be dead for longer
    than its lease and have answered the same kind).
    """
    if outcome.state != _KIND_IN_HISTORY.get(facts.kind):
        return False
    return outcome.answer_digest is None or outcome.answer_digest == facts.digest


def _after_the_end(facts: Facts, status: WorkflowStatus) -> Decision:
    """The workflow ended: 200 again only for the answer that won it, read from the callback item or the history."""
    if status == WorkflowStatus.TIMED_OUT:
        return Decision(Verdict.EXPIRED, EXPIRED_MESSAGE)  # no answer won it: no need to ask
    ended = Decision(Verdict.ANSWERED, f"workflow is already {status}")
    if facts.kind == AnswerKind.HEARTBEAT:
        return ended
    if facts.lease is None:
        return _STEP[Verdict.READ_LEASE]
    if facts.lease.settled_digest is not None:
        return Decision(Verdict.DELIVERED_BEFORE) if facts.lease.settled_digest == facts.digest else ended
    # The holder was killed before settling: ask the execution.
    if facts.history is None:
        return _STEP[Verdict.READ_HISTORY]
    if isinstance(facts.history, Unreadable):
        return _unreadable(facts.history, release=False)
    outcome = facts.history
    if outcome.answer_digest is not None:
        ours = outcome.answer_digest == facts.digest
    else:  # the history truncated the answer: was the last lease holder delivering this one?
        ours = outcome.state == _KIND_IN_HISTORY.get(facts.kind) and facts.lease.lease_digest == facts.digest
    if not ours:
        return ended
    return Decision(Verdict.DELIVERED_BEFORE, settle=CallbackSettled.ANSWERED, settle_digest=facts.digest)


def _delivered(facts: Facts) -> Decision:
    if facts.kind == AnswerKind.HEARTBEAT:
        return Decision(Verdict.DELIVERED)
    return Decision(Verdict.DELIVERED, settle=CallbackSettled.ANSWERED, settle_digest=facts.digest)


def _unreadable(reason: Unreadable, *, release: bool) -> Decision:
    if reason == Unreadable.THROTTLED:
        return Decision(Verdict.THROTTLED, "durable execution service is busy, retry later", release=release)
    return Decision(Verdict.OUTCOME_UNKNOWN, "the callback's outcome cannot be read right now; retry later",
                    release=release)
