"""The I/O shell of the callback decision: gather the facts :func:`api.decision.decide` asks for, carry out its verdict.

Both callback routes (``POST /callback`` and ``POST /callbacks/{callbackToken}``)
answer through :meth:`CallbackDelivery.deliver`. The shell knows no rule: it
reads the registry, takes the lease, calls the durable service and reads the
execution's history when the decision asks for that fact, then settles the
callback, gives the lease back or repairs the registry when the decision says
so. The lease has an owner (this invocation: botocore's retries of its write
carry the same owner, so a first attempt that lands late never locks its retry
out) and an expiry after this invocation's own timeout (a holder that is killed
blocks the callback only until then).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from api.callbacks import AnswerKind, CallbackRequest
from api.decision import STEPS, Decision, Facts, Lease, LeaseFacts, Sent, Unreadable, Verdict, decide
from api.reconcile import CallbackOutcome, CallbackState, callback_outcome
from api.repair import converge_on_read, repair_from_execution
from shared.registry import CallbackClaim, WorkflowRecord, WorkflowRegistry, WorkflowStatus

logger = Logger(child=True)

# A lease outlives the holder's invocation by this much (clock skew between hosts).
LEASE_MARGIN_SECONDS = 10.0
# What the durable service answers when the callback no longer waits: answered
# (by anyone) or timed out. AWS answers CallbackTimeoutException for both; the
# history tells them apart.
_NOT_WAITING = frozenset({"ResourceNotFoundException", "InvalidParameterValueException", "CallbackTimeoutException"})
_THROTTLED = frozenset({"TooManyRequestsException", "ThrottlingException"})


class CallbackRefused(Exception):
    """The decision's answer is not a 200: its status, message and ``Retry-After`` travel with it."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message)
        self.decision = decision

    @property
    def status(self) -> int:
        """The HTTP status."""
        return int(self.decision.status or 500)

    @property
    def retry_after_seconds(self) -> int | None:
        """``Retry-After`` for a 429 or 503, else None."""
        return self.decision.retry_after


@dataclass
class CallbackDelivery:
    """One answer on its way to the callback of ``record``.

    Args:
        registry: The workflow registry.
        lambda_client: boto3 Lambda client (durable-execution APIs).
        record: The caller's tenant's workflow the callback belongs to (or the token's); None when there is none.
        request: The parsed answer.
        owner: Lease owner: this invocation's request id.
        remaining_seconds: Time left in this invocation (the lease outlives it).
    """

    registry: WorkflowRegistry
    lambda_client: Any
    record: WorkflowRecord | None
    request: CallbackRequest
    owner: str
    remaining_seconds: Callable[[], float]
    clock: Callable[[], float] = time.time

    def deliver(self) -> Decision:
        """Answer the callback: the 200 decision (``DELIVERED`` or ``DELIVERED_BEFORE``).

        Raises:
            CallbackRefused: Any other answer (404, 409, 410, 429, 502, 503).
            ClientError, BotoCoreError: A registry call failed (the API maps it to 429 or 503).
        """
        if self.record is not None and self.record.status == WorkflowStatus.STARTED:
            # Not answerable until the submitter has told the external party (503, retry); a
            # submitter that died long ago is found out here as on a read (rate-limited).
            self.record = converge_on_read(self.registry, self.lambda_client, self.record, self.clock())
        facts = self._facts()
        decision = decide(facts)
        while decision.verdict in STEPS:
            facts = self._gather(decision.verdict, facts)
            decision = decide(facts)
        self._carry_out(decision)
        if decision.status != 200:
            raise CallbackRefused(decision)
        return decision

    def _facts(self) -> Facts:
        record, request = self.record, self.request
        if record is None:
            return Facts(request.kind, None, None)
        deadline = record.callback_deadline
        return Facts(kind=request.kind, digest=None if request.heartbeat else request.answer_digest(),
                     workflow=record.status, deadline_passed=deadline is not None and self.clock() >= deadline)

    # -- gathering -------------------------------------------------------------------------

    def _gather(self, step: Verdict, facts: Facts) -> Facts:
        if step == Verdict.CLAIM_LEASE:
            return replace(facts, lease=self._claim_lease())
        if step == Verdict.READ_LEASE:
            return replace(facts, lease=self._lease_facts(self.registry.callback_claim(self._tenant_id, self._callback_id)))
        if step == Verdict.SEND:
            return replace(facts, sent=self._send())
        return replace(facts, history=self._history())

    @property
    def _tenant_id(self) -> str:
        assert self.record is not None  # the decision asks for I/O only about a callback that exists
        return self.record.tenant_id

    @property
    def _callback_id(self) -> str:
        return self.request.callback_id

    def _claim_lease(self) -> LeaseFacts:
        lease_seconds = max(self.remaining_seconds(), 0.0) + LEASE_MARGIN_SECONDS
        claim = self.registry.claim_callback(self._tenant_id, self._callback_id, owner=self.owner,
                                             lease_seconds=lease_seconds, answer_digest=self.request.answer_digest())
        return LeaseFacts(Lease.HELD) if claim.claimed else self._lease_facts(claim)

    def _lease_facts(self, claim: CallbackClaim) -> LeaseFacts:
        if not claim.found:
            state = Lease.MISSING
        elif claim.settled_as is not None:
            state = Lease.SETTLED
        else:
            state = Lease.BUSY if claim.lease_until is not None and claim.lease_until > self.clock() else Lease.FREE
        return LeaseFacts(state, claim.settled_as, claim.settled_digest, claim.lease_digest)

    def _send(self) -> Sent:
        request = self.request
        try:
            if request.kind == AnswerKind.HEARTBEAT:
                self.lambda_client.send_durable_execution_callback_heartbeat(CallbackId=self._callback_id)
            elif request.failure is not None:
                self.lambda_client.send_durable_execution_callback_failure(
                    CallbackId=self._callback_id,
                    Error={"ErrorType": request.failure.error_type, "ErrorMessage": request.failure.message},
                )
            else:
                self.lambda_client.send_durable_execution_callback_success(
                    CallbackId=self._callback_id, Result=request.result_bytes())
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _NOT_WAITING:
                return Sent.NOT_WAITING
            logger.warning("durable service refused the answer", extra={"error": code})
            return Sent.THROTTLED if code in _THROTTLED else Sent.FAILED
        except BotoCoreError as error:  # connection refused, timeouts: retry; the history arbitrates
            logger.warning("durable service unreachable", extra={"error": type(error).__name__})
            return Sent.FAILED
        return Sent.OK

    def _history(self) -> CallbackOutcome | Unreadable:
        """How the callback ended, from the execution history; UNKNOWN if the history is gone."""
        assert self.record is not None
        arn = self.record.execution_arn
        if not arn:
            return CallbackOutcome(CallbackState.UNKNOWN)
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
                return CallbackOutcome(CallbackState.UNKNOWN)
            return Unreadable.THROTTLED if code in _THROTTLED else Unreadable.UNAVAILABLE
        except BotoCoreError as error:
            logger.warning("execution history unreachable", extra={"error": type(error).__name__})
            return Unreadable.UNAVAILABLE
        return callback_outcome(events, self._callback_id)

    # -- carrying out ----------------------------------------------------------------------

    def _carry_out(self, decision: Decision) -> None:
        """The decision's bookkeeping, each best effort: the lease and the execution's history cover a failure."""
        if decision.settle is not None:
            settle_as, digest = decision.settle, decision.settle_digest
            self._best_effort("settle the callback", lambda: self.registry.settle_callback(
                self._tenant_id, self._callback_id, settle_as, digest))
        if decision.release:
            self._best_effort("release the callback lease", lambda: self.registry.release_callback(
                self._tenant_id, self._callback_id, owner=self.owner))
        if decision.repair and self.record is not None:
            # The registry said "waiting" but the execution has moved on: converge it now.
            self.record = repair_from_execution(self.registry, self.lambda_client, self.record)

    @staticmethod
    def _best_effort(what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except (ClientError, BotoCoreError) as error:
            logger.warning(f"could not {what}; the lease and the execution history cover it",
                           extra={"error": type(error).__name__})
