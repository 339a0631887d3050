"""Deliver a callback answer exactly once, whatever single fault hits the path (the I/O edge of POST /callback).

The rules, in the order a request meets them:

1. **Lease.** The request takes a lease on the callback in the registry: an owner
   (this invocation) and an expiry after this invocation's own timeout. botocore's
   retries of that write carry the same owner, so a first attempt that lands
   late never locks its retry out; a holder that is killed blocks the callback
   only until its lease ends. Other requests wait briefly for the holder, then
   answer from how the callback settled (409, 410) or, if the holder is still at
   it, 503 with ``Retry-After`` (the time left on its lease).
2. **Delivery.** The durable service is the arbiter: it completes a callback once.
   When it says the callback no longer waits, the execution's history says why:
   this very answer landed (an earlier attempt of this request whose reply was
   lost, or a killed holder with the same answer): 200; another answer: 409;
   the callback timed out: 410. When the history cannot be read right now
   (throttled, failing), the outcome is unknown and the answer says retry
   (429 or 503, with ``Retry-After``), never a final 409: the retry learns
   from the history whether it won (200) or lost (409).
3. **Settling.** The outcome is written to the callback item (later requests
   answer from it without calling the service) and the workflow is marked
   answered (its next read checks the execution if the workflow's own registry
   write never lands). Both are best effort: the lease and the history cover
   their failure. A later request with the very answer that won gets 200 again
   (a client whose reply was lost retries safely); any other answer gets 409.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from api.callbacks import AlreadyCompleted, CallbackExpired, CallbackRequest
from api.reconcile import (
    CALLBACK_FAILED,
    CALLBACK_SUCCEEDED,
    CALLBACK_TIMED_OUT,
    CALLBACK_UNKNOWN,
    CALLBACK_WAITING,
    CallbackOutcome,
    callback_outcome,
)
from shared import registry as reg
from shared.registry import WorkflowRecord, WorkflowRegistry

logger = Logger(child=True)

# A lease outlives the holder's invocation by this much (clock skew between hosts).
LEASE_MARGIN_SECONDS = 10.0
# How long a request waits for another holder of the same callback to finish.
CLAIM_WAIT_SECONDS = 2.0
CLAIM_POLL_SECONDS = 0.1
# What the durable service answers when the callback no longer waits: answered
# (by anyone) or timed out. AWS answers CallbackTimeoutException for both; the
# history tells them apart.
_NOT_WAITING = frozenset({"ResourceNotFoundException", "InvalidParameterValueException", "CallbackTimeoutException"})
_THROTTLED = frozenset({"TooManyRequestsException", "ThrottlingException"})


class DurableServiceBusy(RuntimeError):
    """The durable service throttled the call (429); the caller may retry."""

    retry_after_seconds = 1


class DurableServiceUnavailable(RuntimeError):
    """The durable service failed; nothing was delivered (502)."""


class DeliveryInProgress(RuntimeError):
    """Another request holds this callback's lease (503 with Retry-After)."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("another delivery of this callback is in progress; retry later")
        self.retry_after_seconds = retry_after_seconds


class OutcomeUnknown(RuntimeError):
    """The callback no longer waits and its history cannot be read now (503 with Retry-After)."""

    retry_after_seconds = 1

    def __init__(self) -> None:
        super().__init__("the callback's outcome cannot be read right now; retry later")


class _NotWaiting(Exception):
    """The durable service says the callback no longer waits."""


@dataclass
class CallbackDelivery:
    """One ``POST /callback`` answer on its way to the durable service.

    Args:
        registry: The workflow registry.
        lambda_client: boto3 Lambda client (durable-execution APIs).
        record: The waiting workflow the callback belongs to (the caller's tenant).
        request: The parsed answer.
        owner: Lease owner: this invocation's request id.
        remaining_seconds: Time left in this invocation (the lease outlives it).
    """

    registry: WorkflowRegistry
    lambda_client: Any
    record: WorkflowRecord
    request: CallbackRequest
    owner: str
    remaining_seconds: Callable[[], float]
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    _tenant_id: str = field(init=False)

    def __post_init__(self) -> None:
        self._tenant_id = self.record.tenant_id

    def deliver(self) -> str:
        """Deliver once; return ``"success"``, ``"failure"`` or ``"heartbeat"``.

        Raises:
            AlreadyCompleted: Another answer completed the callback first (409).
            CallbackExpired: The callback timed out (410).
            DeliveryInProgress: Another live request holds the lease (503).
            DurableServiceBusy: Throttled by the durable service, or by its history (429).
            DurableServiceUnavailable: The durable service failed (502).
            OutcomeUnknown: The callback no longer waits and its history cannot be read (503).
        """
        if self.request.heartbeat:
            try:
                self._send()
            except _NotWaiting:
                self._raise_ended(self._history_outcome())
            return "heartbeat"
        if not self._take_lease():
            logger.info("callback was already settled by this same answer")
            return self._delivered()
        try:
            self._send_or_explain()
        except (DurableServiceBusy, DurableServiceUnavailable, OutcomeUnknown):
            # Nothing was settled: give the lease back so the client's retry can take it at once.
            self._best_effort("release the callback lease",
                              lambda: self.registry.release_callback(self._tenant_id, self.request.callback_id,
                                                                     owner=self.owner))
            raise
        self._settle(reg.CALLBACK_ANSWERED, self.request.answer_digest())
        self._best_effort("mark the workflow answered",
                          lambda: self.registry.mark_answered(self._tenant_id, self.record.workflow_id))
        return self._delivered()

    def _send_or_explain(self) -> None:
        """Send the answer; if the callback no longer waits, return only if this very answer ended it."""
        try:
            self._send()
        except _NotWaiting:
            outcome = self._history_outcome()
            if not self._is_this_answer(outcome):
                self._raise_ended(outcome)
            logger.info("callback had already landed with this same answer")

    def _delivered(self) -> str:
        return "failure" if self.request.failure is not None else "success"

    def _kind(self) -> str:
        """How the history records this answer when it lands."""
        return CALLBACK_FAILED if self.request.failure is not None else CALLBACK_SUCCEEDED

    def repeat_of_the_winning_answer(self) -> str | None:
        """For a workflow that already ended: ``"success"``/``"failure"`` if this very answer ended it, else None.

        A client whose holder was killed after delivering (so it saw a 5xx) and
        that retries after the workflow completed is told its answer won.

        Raises:
            DurableServiceBusy, OutcomeUnknown: The history would decide and cannot be read now (429, 503).
        """
        if self.request.heartbeat or self.record.status == reg.TIMED_OUT:
            return None  # a workflow that timed out was won by no answer: 410 without asking the history
        digest = self.request.answer_digest()
        claim = self.registry.callback_claim(self._tenant_id, self.request.callback_id)
        if claim.settled_digest is not None:
            return self._delivered() if claim.settled_digest == digest else None
        outcome = self._history_outcome()  # the holder died before settling: ask the execution
        if outcome.answer_digest is not None:
            ours = outcome.answer_digest == digest
        else:  # the history truncated the answer: the last lease holder was delivering which one?
            ours = outcome.state == self._kind() and claim.lease_digest == digest
        if not ours:
            return None
        self._settle(reg.CALLBACK_ANSWERED, digest)
        return self._delivered()

    # -- lease -----------------------------------------------------------------------------

    def _take_lease(self) -> bool:
        """Hold the lease (True), or learn that this same answer already settled the callback (False)."""
        lease_seconds = max(self.remaining_seconds(), 0.0) + LEASE_MARGIN_SECONDS
        waited_until = self.clock() + min(CLAIM_WAIT_SECONDS, max(self.remaining_seconds() - 3.0, 0.0))
        while True:
            claim = self.registry.claim_callback(self._tenant_id, self.request.callback_id, owner=self.owner,
                                                 lease_seconds=lease_seconds, answer_digest=self.request.answer_digest())
            if claim.claimed:
                return True
            if claim.settled_as == reg.CALLBACK_ANSWERED and claim.settled_digest == self.request.answer_digest():
                return False  # a retry of the answer that won (its first reply was lost): idempotent
            if not claim.found or claim.settled_as == reg.CALLBACK_ANSWERED:
                raise AlreadyCompleted("callback was already answered")
            if claim.settled_as == reg.CALLBACK_TIMED_OUT:
                raise CallbackExpired("callback timed out")
            now = self.clock()
            if now >= waited_until:
                retry_after = max(1, math.ceil((claim.lease_until or now) - now))
                raise DeliveryInProgress(retry_after)
            self.sleep(CLAIM_POLL_SECONDS)

    # -- the durable service ---------------------------------------------------------------

    def _send(self) -> None:
        callback_id = self.request.callback_id
        try:
            if self.request.heartbeat:
                self.lambda_client.send_durable_execution_callback_heartbeat(CallbackId=callback_id)
            elif self.request.failure is not None:
                failure = self.request.failure
                self.lambda_client.send_durable_execution_callback_failure(
                    CallbackId=callback_id,
                    Error={"ErrorType": failure.error_type, "ErrorMessage": failure.message},
                )
            else:
                self.lambda_client.send_durable_execution_callback_success(
                    CallbackId=callback_id, Result=self.request.result_bytes()
                )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _NOT_WAITING:
                raise _NotWaiting(code) from error
            if code in _THROTTLED:
                raise DurableServiceBusy("durable execution service is busy, retry later") from error
            raise DurableServiceUnavailable("durable execution service failed") from error
        except BotoCoreError as error:  # connection refused, timeouts: retry; the history arbitrates
            raise DurableServiceUnavailable("durable execution service unreachable") from error

    def _history_outcome(self) -> CallbackOutcome:
        """How the callback ended, from the execution history; UNKNOWN if the history is gone.

        Raises:
            DurableServiceBusy: Reading the history was throttled (429): retry.
            OutcomeUnknown: The history cannot be read right now (503): retry.
        """
        arn = self.record.execution_arn
        if not arn:
            return CallbackOutcome(CALLBACK_UNKNOWN)
        events: list[dict[str, Any]] = []
        marker: str | None = None
        try:
            while True:
                page = self.lambda_client.get_durable_execution_history(
                    DurableExecutionArn=arn, IncludeExecutionData=True, **({"Marker": marker} if marker else {})
                )
                events.extend(page.get("Events") or [])
                marker = page.get("NextMarker")
                if not marker:
                    break
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            logger.warning("execution history unavailable", extra={"error": code})
            if code == "ResourceNotFoundException":  # past the durable retention: it will never say
                return CallbackOutcome(CALLBACK_UNKNOWN)
            if code in _THROTTLED:
                raise DurableServiceBusy("durable execution service is busy, retry later") from error
            raise OutcomeUnknown() from error
        except BotoCoreError as error:
            logger.warning("execution history unreachable", extra={"error": type(error).__name__})
            raise OutcomeUnknown() from error
        return callback_outcome(events, self.request.callback_id)

    def _is_this_answer(self, outcome: CallbackOutcome) -> bool:
        """Whether the answer the history recorded is this request's.

        When the history truncates the answer (no digest), the lease decides: this
        request holds it, so the answer of the same kind that landed is its own
        earlier attempt (a holder before it would have had to be dead for longer
        than its lease and have answered the same kind).
        """
        if outcome.state != self._kind():
            return False
        return outcome.answer_digest is None or outcome.answer_digest == self.request.answer_digest()

    def _raise_ended(self, outcome: CallbackOutcome) -> None:
        if outcome.state == CALLBACK_TIMED_OUT:
            self._settle(reg.CALLBACK_TIMED_OUT)
            raise CallbackExpired("callback timed out")
        if outcome.state in (CALLBACK_SUCCEEDED, CALLBACK_FAILED):
            self._settle(reg.CALLBACK_ANSWERED, outcome.answer_digest)
            raise AlreadyCompleted("callback was already answered")
        if outcome.state == CALLBACK_WAITING:
            # The service says it no longer waits, its history does not say how yet:
            # unknown, so retry (the history catches up), never a final 409.
            raise OutcomeUnknown()
        # The history is gone or never named this callback: decide by the deadline, and settle nothing.
        deadline = self.record.callback_deadline
        if deadline is not None and self.clock() >= deadline:
            raise CallbackExpired("callback timed out")
        raise AlreadyCompleted("callback is no longer waiting")

    # -- registry bookkeeping --------------------------------------------------------------

    def _settle(self, settled_as: str, answer_digest: str | None = None) -> None:
        self._best_effort("settle the callback", lambda: self.registry.settle_callback(
            self._tenant_id, self.request.callback_id, settled_as, answer_digest))

    @staticmethod
    def _best_effort(what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except (ClientError, BotoCoreError) as error:
            logger.warning(f"could not {what}; the lease and the execution history cover it",
                           extra={"error": type(error).__name__})
