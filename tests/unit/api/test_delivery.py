"""Exactly-once delivery under single faults: lease owner and expiry, the history as arbiter."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber

from api import app
from api.callbacks import AlreadyCompleted, CallbackExpired, CallbackRequest, parse_callback_request
from api.delivery import CallbackDelivery, DeliveryInProgress, DurableServiceUnavailable, OutcomeUnknown
from shared import registry as reg
from tests.unit.api.test_app import CALLBACK_ID, history, succeeded_with
from tests.unit.fakes import register_waiting

ANSWER = parse_callback_request('{"callbackId": "%s", "payload": {"approved": true}}' % CALLBACK_ID)


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


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
                            owner=owner, remaining_seconds=lambda: 10.0, clock=clock, sleep=clock.sleep)


def test_lease_held_by_a_live_request_answers_503_with_the_time_left(waiting: reg.WorkflowRecord) -> None:
    clock = FakeTime()
    registry = reg.WorkflowRegistry(app.REGISTRY._table, 3600, clock=clock)  # noqa: SLF001
    assert registry.claim_callback("tenant-a", CALLBACK_ID, owner="holder", lease_seconds=20).claimed
    with pytest.raises(DeliveryInProgress) as refused:
        delivery(waiting, "second", clock).deliver()
    assert 1 <= refused.value.retry_after_seconds <= 21


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
        assert delivery(waiting, "retry", clock).deliver() == "success"


def test_waiter_answers_409_once_the_holder_settles(waiting: reg.WorkflowRecord) -> None:
    clock = FakeTime()
    registry = reg.WorkflowRegistry(app.REGISTRY._table, 3600, clock=clock)  # noqa: SLF001
    assert registry.claim_callback("tenant-a", CALLBACK_ID, owner="holder", lease_seconds=20).claimed
    original_sleep = clock.sleep

    def holder_finishes(seconds: float) -> None:
        registry.settle_callback("tenant-a", CALLBACK_ID, reg.CALLBACK_ANSWERED)
        original_sleep(seconds)

    waiter = delivery(waiting, "waiter", clock)
    waiter.sleep = holder_finishes
    with pytest.raises(AlreadyCompleted):
        waiter.deliver()


def test_delivery_that_landed_but_timed_out_is_recognised_on_retry(waiting: reg.WorkflowRecord) -> None:
    # GIVEN the first send landed at the service, but its reply never came back
    with Stubber(app.LAMBDA_CLIENT) as durable:
        first = delivery(waiting, "req-1")

        def timed_out(**_: Any) -> None:
            raise ReadTimeoutError(endpoint_url="http://durable")

        client = type("TimingOut", (), {"send_durable_execution_callback_success": staticmethod(timed_out)})()
        first.lambda_client = client
        with pytest.raises(DurableServiceUnavailable):
            first.deliver()
        # WHEN the client retries, the service says the callback no longer waits, and the history holds this answer
        durable.add_client_error("send_durable_execution_callback_success", service_error_code="CallbackTimeoutException")
        durable.add_response("get_durable_execution_history", history(succeeded_with(ANSWER.result_bytes())))
        # THEN the retry is a success, not a 409
        assert delivery(waiting, "req-2").deliver() == "success"
        durable.assert_no_pending_responses()


def test_a_history_that_still_shows_the_callback_waiting_is_a_retry_not_a_409(waiting: reg.WorkflowRecord) -> None:
    # GIVEN the service says the callback no longer waits, but its history has not caught up
    with Stubber(app.LAMBDA_CLIENT) as durable:
        durable.add_client_error("send_durable_execution_callback_success", service_error_code="CallbackTimeoutException")
        durable.add_response("get_durable_execution_history", history())
        # THEN the outcome is unknown: retry (503), and the lease is given back for that retry
        with pytest.raises(OutcomeUnknown):
            delivery(waiting, "req-1").deliver()
        durable.add_client_error("send_durable_execution_callback_success", service_error_code="CallbackTimeoutException")
        durable.add_response("get_durable_execution_history", history(succeeded_with(ANSWER.result_bytes())))
        # WHEN the history has caught up, THEN the retry learns that this answer won
        assert delivery(waiting, "req-2").deliver() == "success"
        durable.assert_no_pending_responses()


def test_heartbeat_after_timeout_is_410(waiting: reg.WorkflowRecord) -> None:
    beat = parse_callback_request('{"callbackId": "%s", "heartbeat": true}' % CALLBACK_ID)
    timed_out = {"EventType": "CallbackTimedOut",
                 "CallbackTimedOutDetails": {"Error": {"Payload": {"ErrorType": "T", "ErrorMessage": "t"}}}}
    with Stubber(app.LAMBDA_CLIENT) as durable:
        durable.add_client_error("send_durable_execution_callback_heartbeat", service_error_code="CallbackTimeoutException")
        durable.add_response("get_durable_execution_history", history(timed_out))
        with pytest.raises(CallbackExpired):
            delivery(waiting, "beat", request=beat).deliver()


def test_the_answer_that_won_gets_200_again_and_any_other_409(waiting: reg.WorkflowRecord) -> None:
    with Stubber(app.LAMBDA_CLIENT) as durable:
        durable.add_response("send_durable_execution_callback_success", {},
                             {"CallbackId": CALLBACK_ID, "Result": ANSWER.result_bytes()})
        assert delivery(waiting, "first").deliver() == "success"
        # the same answer again (its client never saw the first reply): 200, without a second delivery
        assert delivery(waiting, "retry").deliver() == "success"
        other = parse_callback_request('{"callbackId": "%s", "payload": {"approved": false}}' % CALLBACK_ID)
        with pytest.raises(AlreadyCompleted):
            delivery(waiting, "other", request=other).deliver()
        durable.assert_no_pending_responses()


def test_a_killed_holders_answer_is_recognised_when_the_history_truncates_it(waiting: reg.WorkflowRecord) -> None:
    # GIVEN a holder took the lease for a failure answer, delivered it and was killed before settling
    failure = parse_callback_request('{"callbackId": "%s", "error": {"type": "Declined", "message": "no"}}' % CALLBACK_ID)
    assert app.REGISTRY.claim_callback("tenant-a", CALLBACK_ID, owner="killed", lease_seconds=20,
                                       answer_digest=failure.answer_digest()).claimed
    truncated = {"EventType": "CallbackFailed", "CallbackFailedDetails": {"Error": {"Truncated": True}}}
    other = parse_callback_request('{"callbackId": "%s", "error": {"type": "Declined", "message": "other"}}' % CALLBACK_ID)
    with Stubber(app.LAMBDA_CLIENT) as durable:
        durable.add_response("get_durable_execution_history", history(truncated))
        durable.add_response("get_durable_execution_history", history(truncated))
        # WHEN another failure answer asks after the workflow ended, THEN it did not win
        assert delivery(waiting, "other", request=other).repeat_of_the_winning_answer() is None
        # and the killed holder's client, retrying the same answer, is told it won
        assert delivery(waiting, "retry", request=failure).repeat_of_the_winning_answer() == "failure"
