"""The decision's I/O shell (api.delivery) under single faults: lease owner and expiry, the history as arbiter."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber

from api import app
from api.callbacks import AnswerKind, CallbackRequest, parse_callback_request
from api.decision import Verdict
from api.delivery import CallbackDelivery, CallbackRefused
from shared import registry as reg
from tests.unit.api.test_app import CALLBACK_ID, history, succeeded_with
from tests.unit.fakes import register_waiting

ANSWER = parse_callback_request('{"callbackId": "%s", "payload": {"approved": true}}' % CALLBACK_ID)


class FakeTime:
    """A clock that only moves when the test moves it."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def waiting(tables: Any) -> reg.WorkflowRecord:
    app.REGISTRY.claim_workflow("tenant-a", "wf-a", "arn:execution")
    register_waiting(app.REGISTRY, "tenant-a", "wf-a", CALLBACK_ID, timeout_seconds=3600)
    found = app.REGISTRY.find_by_callback("tenant-a", CALLBACK_ID)
    assert found is not None
    return found


def delivery(record: reg.WorkflowRecord, owner: str, clock: FakeTime | None = None,
             request: CallbackRequest = ANSWER, client: Any = None) -> CallbackDelivery:
    clock = clock or FakeTime()
    registry = reg.WorkflowRegistry(app.REGISTRY._table, 3600, clock=clock)  # noqa: SLF001 - same table, test clock
    return CallbackDelivery(registry=registry, lambda_client=client or app.LAMBDA_CLIENT, record=record, request=request,
                            owner=owner, remaining_seconds=lambda: 10.0, clock=clock)


def test_lease_held_by_a_live_request_answers_503_with_retry_after_within_the_lease(waiting: reg.WorkflowRecord) -> None:
    clock = FakeTime()
    registry = reg.WorkflowRegistry(app.REGISTRY._table, 3600, clock=clock)  # noqa: SLF001
    assert registry.claim_callback("tenant-a", CALLBACK_ID, owner="holder", lease_seconds=20).claimed
    with pytest.raises(CallbackRefused) as refused:
        delivery(waiting, "second", clock).deliver()
    assert refused.value.decision.verdict == Verdict.IN_PROGRESS and refused.value.status == 503
    assert refused.value.retry_after_seconds is not None and 1 <= refused.value.retry_after_seconds <= 21


def test_killed_holder_blocks_only_until_its_lease_ends(waiting: reg.WorkflowRecord) -> None:
    # GIVEN a holder that took the lease and was killed before delivering
    clock = FakeTime()
    registry = reg.WorkflowRegistry(app.REGISTRY._table, 3600, clock=clock)  # noqa: SLF001
    assert registry.claim_callback("tenant-a", CALLBACK_ID, owner="killed", lease_seconds=20).claimed
    # WHEN the client retries after the Retry-After it was given
    clock.now += 22
    with Stubber(app.LAMBDA_CLIENT) as durable:
        durable.add_response("send_durable_execution_callback_success", {},
                             {"CallbackId": CALLBACK_ID, "Result": ANSWER.result_bytes()})
        # THEN it delivers
        assert delivery(waiting, "retry", clock).deliver().verdict == Verdict.DELIVERED


def test_a_retry_after_the_holder_settles_answers_409(waiting: reg.WorkflowRecord) -> None:
    # GIVEN a live holder: the second request is told to retry (nothing waits in the function)
    clock = FakeTime()
    registry = reg.WorkflowRegistry(app.REGISTRY._table, 3600, clock=clock)  # noqa: SLF001
    assert registry.claim_callback("tenant-a", CALLBACK_ID, owner="holder", lease_seconds=20).claimed
    with pytest.raises(CallbackRefused) as first:
        delivery(waiting, "waiter", clock).deliver()
    assert first.value.status == 503
    # WHEN the holder settles and the client retries, THEN it learns another answer won
    registry.settle_callback("tenant-a", CALLBACK_ID, reg.CallbackSettled.ANSWERED)
    clock.now += 1
    with pytest.raises(CallbackRefused) as retry:
        delivery(waiting, "waiter-retry", clock).deliver()
    assert retry.value.decision.verdict == Verdict.ANSWERED and retry.value.status == 409


def test_delivery_that_landed_but_timed_out_is_recognised_on_retry(waiting: reg.WorkflowRecord) -> None:
    # GIVEN the first send landed at the service, but its reply never came back
    with Stubber(app.LAMBDA_CLIENT) as durable:
        first = delivery(waiting, "req-1")

        def timed_out(**_: Any) -> None:
            raise ReadTimeoutError(endpoint_url="http://durable")

        client = type("TimingOut", (), {"send_durable_execution_callback_success": staticmethod(timed_out)})()
        first.lambda_client = client
        with pytest.raises(CallbackRefused) as unavailable:
            first.deliver()
        assert unavailable.value.status == 502
        # WHEN the client retries, the service says the callback no longer waits, and the history holds this answer
        durable.add_client_error("send_durable_execution_callback_success", service_error_code="CallbackTimeoutException")
        durable.add_response("get_durable_execution_history", history(succeeded_with(ANSWER.result_bytes())))
        # THEN the retry is a success, not a 409
        assert delivery(waiting, "req-2").deliver().verdict == Verdict.DELIVERED
        durable.assert_no_pending_responses()


def test_a_history_that_still_shows_the_callback_waiting_is_a_retry_not_a_409(waiting: reg.WorkflowRecord) -> None:
    # GIVEN the service says the callback no longer waits, but its history has not caught up
    with Stubber(app.LAMBDA_CLIENT) as durable:
        durable.add_client_error("send_durable_execution_callback_success", service_error_code="CallbackTimeoutException")
        durable.add_response("get_durable_execution_history", history())
        # THEN the outcome is unknown: retry (503), and the lease is given back for that retry
        with pytest.raises(CallbackRefused) as unknown:
            delivery(waiting, "req-1").deliver()
        assert unknown.value.decision.verdict == Verdict.OUTCOME_UNKNOWN and unknown.value.status == 503
        durable.add_client_error("send_durable_execution_callback_success", service_error_code="CallbackTimeoutException")
        durable.add_response("get_durable_execution_history", history(succeeded_with(ANSWER.result_bytes())))
        # WHEN the history has caught up, THEN the retry learns that this answer won
        assert delivery(waiting, "req-2").deliver().verdict == Verdict.DELIVERED
        durable.assert_no_pending_responses()


def test_heartbeat_after_timeout_is_410(waiting: reg.WorkflowRecord) -> None:
    beat = parse_callback_request('{"callbackId": "%s", "heartbeat": true}' % CALLBACK_ID)
    timed_out = {"EventType": "CallbackTimedOut",
                 "CallbackTimedOutDetails": {"Error": {"Payload": {"ErrorType": "T", "ErrorMessage": "t"}}}}
    with Stubber(app.LAMBDA_CLIENT) as durable:
        durable.add_client_error("send_durable_execution_callback_heartbeat", service_error_code="CallbackTimeoutException")
        durable.add_response("get_durable_execution_history", history(timed_out))
        durable.add_response("get_durable_execution", {"DurableExecutionArn": "arn:execution", "Status": "RUNNING",
                                                       "DurableExecutionName": "wf-a", "FunctionArn": "arn:function",
                                                       "StartTimestamp": "2026-01-01T00:00:00Z"})
        with pytest.raises(CallbackRefused) as expired:
            delivery(waiting, "beat", request=beat).deliver()
        assert expired.value.status == 410


def test_the_answer_that_won_gets_200_again_and_any_other_409(waiting: reg.WorkflowRecord) -> None:
    with Stubber(app.LAMBDA_CLIENT) as durable:
        durable.add_response("send_durable_execution_callback_success", {},
                             {"CallbackId": CALLBACK_ID, "Result": ANSWER.result_bytes()})
        assert delivery(waiting, "first").deliver().verdict == Verdict.DELIVERED
        # the same answer again (its client never saw the first reply): 200, without a second delivery
        assert delivery(waiting, "retry").deliver().verdict == Verdict.DELIVERED_BEFORE
        other = parse_callback_request('{"callbackId": "%s", "payload": {"approved": false}}' % CALLBACK_ID)
        durable.add_response("get_durable_execution", {"DurableExecutionArn": "arn:execution", "Status": "RUNNING",
                                                       "DurableExecutionName": "wf-a", "FunctionArn": "arn:function",
                                                       "StartTimestamp": "2026-01-01T00:00:00Z"})
        with pytest.raises(CallbackRefused) as refused:
            delivery(waiting, "other", request=other).deliver()
        assert refused.value.status == 409
        durable.assert_no_pending_responses()


def test_a_killed_holders_answer_is_recognised_when_the_history_truncates_it(waiting: reg.WorkflowRecord) -> None:
    # GIVEN a holder took the lease for a failure answer, delivered it and was killed before settling
    failure = parse_callback_request('{"callbackId": "%s", "error": {"type": "Declined", "message": "no"}}' % CALLBACK_ID)
    assert app.REGISTRY.claim_callback("tenant-a", CALLBACK_ID, owner="killed", lease_seconds=20,
                                       answer_digest=failure.answer_digest()).claimed
    truncated = {"EventType": "CallbackFailed", "CallbackFailedDetails": {"Error": {"Truncated": True}}}
    other = parse_callback_request('{"callbackId": "%s", "error": {"type": "Declined", "message": "other"}}' % CALLBACK_ID)
    ended = replace(waiting, status=reg.FAILED)
    with Stubber(app.LAMBDA_CLIENT) as durable:
        durable.add_response("get_durable_execution_history", history(truncated))
        durable.add_response("get_durable_execution_history", history(truncated))
        # WHEN another failure answer asks after the workflow ended, THEN it did not win
        with pytest.raises(CallbackRefused) as lost:
            delivery(ended, "other", request=other).deliver()
        assert lost.value.status == 409
        # and the killed holder's client, retrying the same answer, is told it won
        won = delivery(ended, "retry", request=failure).deliver()
        assert won.verdict == Verdict.DELIVERED_BEFORE and failure.kind == AnswerKind.FAILURE
