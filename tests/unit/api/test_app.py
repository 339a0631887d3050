"""API function against moto DynamoDB, with botocore's Stubber for the durable callback calls."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from api import app
from api.callbacks import MAX_PAYLOAD_DEPTH
from api.reconcile import STALE_AFTER_SECONDS
from tests.unit.api_events import proxy_event
from shared import registry as reg
from shared.callback_tokens import mint_token
from tests.unit.conftest import TEST_ENV, TEST_SIGNING_KEY
from tests.unit.fakes import FakeLambdaContext, register_waiting

EVENTS = Path(__file__).resolve().parents[3] / "events"
CALLBACK_ID = "cb-tenant-a-1"
# What GET returns while waiting: the token route, with the token computed from the test signing key.
CALLBACK_TOKEN = mint_token(TEST_SIGNING_KEY.encode(), "tenant-a", CALLBACK_ID)
CALLBACK_URL = f"{TEST_ENV['CALLBACK_BASE_URL']}/callbacks/{CALLBACK_TOKEN}"



EXECUTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:wf:1/durable-execution/wf-a/1"


@pytest.fixture
def waiting_workflow(tables: Any) -> str:
    """tenant-a has workflow wf-a (execution EXECUTION_ARN) waiting on CALLBACK_ID."""
    app.REGISTRY.claim_workflow("tenant-a", "wf-a", EXECUTION_ARN)
    register_waiting(app.REGISTRY, "tenant-a", "wf-a", CALLBACK_ID, timeout_seconds=3600)
    return "wf-a"


def history(*outcome: dict[str, Any]) -> dict[str, Any]:
    """A GetDurableExecutionHistory response: CALLBACK_ID started, then ``outcome`` events."""
    started = {"EventType": "CallbackStarted", "Id": "op-1", "EventId": 1, "EventTimestamp": "2026-01-01T00:00:00Z",
               "CallbackStartedDetails": {"CallbackId": CALLBACK_ID}}
    return {"Events": [started, *({"Id": "op-1", "EventId": 2, "EventTimestamp": "2026-01-01T00:00:01Z", **event}
                                  for event in outcome)]}


def succeeded_with(payload: bytes) -> dict[str, Any]:
    return {"EventType": "CallbackSucceeded", "CallbackSucceededDetails": {"Result": {"Payload": payload.decode()}}}


TIMED_OUT_EVENT = {"EventType": "CallbackTimedOut",
                   "CallbackTimedOutDetails": {"Error": {"Payload": {"ErrorType": "Timeout", "ErrorMessage": "timed out"}}}}
RUNNING = {"DurableExecutionArn": EXECUTION_ARN, "DurableExecutionName": "wf-a", "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:wf:1",
           "Status": "RUNNING", "StartTimestamp": "2026-01-01T00:00:00Z"}


@pytest.fixture
def durable() -> Iterator[Stubber]:
    """Stub the durable-execution APIs (moto has none); fails the test if an expected call is missing."""
    with Stubber(app.LAMBDA_CLIENT) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def call(method: str, path: str, *, tenant: str | None = "tenant-a", body: Any = None,
         resource: str | None = None, path_parameters: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    # API Gateway passes the authorizer's verified context; the header alone proves nothing.
    headers = {"x-tenant-id": tenant} if tenant is not None else {}
    authorizer = {"tenantId": tenant, "workflowId": "unused", "principalId": tenant} if tenant is not None else None
    event = proxy_event(method=method, resource=resource or path, path=path, headers=headers,
                              path_parameters=path_parameters, body=body, authorizer=authorizer)
    response = app.handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def get_status(workflow_id: str, tenant: str | None = "tenant-a") -> tuple[int, dict[str, Any]]:
    return call("GET", f"/workflow/{workflow_id}", tenant=tenant, resource="/workflow/{workflowId}",
                path_parameters={"workflowId": workflow_id})


def post_callback(body: Any, tenant: str | None = "tenant-a") -> tuple[int, dict[str, Any]]:
    return call("POST", "/callback", tenant=tenant, body=body)


def test_status_of_own_waiting_workflow_shows_callback_id(waiting_workflow: str) -> None:
    assert get_status(waiting_workflow) == (
        200, {"workflowId": "wf-a", "status": reg.WAITING_FOR_CALLBACK, "callbackId": CALLBACK_ID, "callbackUrl": CALLBACK_URL}
    )


def test_status_of_another_tenants_workflow_is_404(waiting_workflow: str) -> None:
    assert get_status(waiting_workflow, tenant="tenant-b") == (404, {"message": "workflow not found"})


def test_status_of_completed_workflow_shows_result_not_callback(waiting_workflow: str) -> None:
    app.REGISTRY.record_outcome("tenant-a", "wf-a", reg.COMPLETED, result={"status": "COMPLETED"})
    status, body = get_status(waiting_workflow)
    assert status == 200 and body["result"] == {"status": "COMPLETED"} and "callbackId" not in body


@pytest.mark.parametrize("tenant", [None, "", "a b", "x" * 65, "../etc"])
def test_request_without_verified_tenant_is_401(waiting_workflow: str, tenant: str | None) -> None:
    status, body = get_status(waiting_workflow, tenant=tenant)
    assert (status, body) == (401, {"message": "request carries no verified tenant identity"})


def test_header_alone_does_not_identify_the_tenant(waiting_workflow: str) -> None:
    event = proxy_event(method="GET", resource="/workflow/{workflowId}", path="/workflow/wf-a",
                              headers={"x-tenant-id": "tenant-a"}, path_parameters={"workflowId": "wf-a"})
    assert app.handler(event, FakeLambdaContext())["statusCode"] == 401


def test_malformed_workflow_id_is_400(tables: Any) -> None:
    assert get_status("a%20b c")[0] == 400


def test_own_callback_is_delivered(waiting_workflow: str, durable: Stubber) -> None:
    durable.add_response(
        "send_durable_execution_callback_success", {},
        {"CallbackId": CALLBACK_ID, "Result": b'{"approved":true}'},
    )
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {"approved": True}}) == (
        200, {"workflowId": "wf-a", "delivered": "success"}
    )


def test_callback_error_is_delivered_as_failure(waiting_workflow: str, durable: Stubber) -> None:
    durable.add_response(
        "send_durable_execution_callback_failure", {},
        {"CallbackId": CALLBACK_ID, "Error": {"ErrorType": "Declined", "ErrorMessage": "card declined"}},
    )
    status, body = post_callback({"callbackId": CALLBACK_ID, "error": {"type": "Declined", "message": "card declined"}})
    assert (status, body["delivered"]) == (200, "failure")


def test_another_tenants_callback_is_404_and_never_delivered(waiting_workflow: str, durable: Stubber) -> None:
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {}}, tenant="tenant-b") == (
        404, {"message": "callback not found"}
    )


def test_unknown_callback_is_404(tables: Any, durable: Stubber) -> None:
    assert post_callback({"callbackId": "nope", "payload": {}})[0] == 404


@pytest.mark.parametrize("final_status", [reg.COMPLETED, reg.FAILED])
def test_callback_of_finished_workflow_is_409(waiting_workflow: str, durable: Stubber, final_status: str) -> None:
    app.REGISTRY.record_outcome("tenant-a", "wf-a", final_status, reason="done")
    # no answer settled the callback in the registry: the history says another answer ended it
    durable.add_response("get_durable_execution_history", history(succeeded_with(b'{"other":1}')))
    status, body = post_callback({"callbackId": CALLBACK_ID, "payload": {}})
    assert status == 409 and final_status in body["message"]


def test_callback_of_timed_out_workflow_is_410(waiting_workflow: str, durable: Stubber) -> None:
    app.REGISTRY.record_outcome("tenant-a", "wf-a", reg.TIMED_OUT, reason="late")
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {}}) == (410, {"message": "callback timed out"})


@pytest.mark.parametrize(("service_error", "expected_status"), [("TooManyRequestsException", 429), ("ServiceException", 502)])
def test_durable_service_failures_map_to_retryable_statuses(
    waiting_workflow: str, durable: Stubber, service_error: str, expected_status: int
) -> None:
    durable.add_client_error("send_durable_execution_callback_success", service_error_code=service_error)
    status, body = post_callback({"callbackId": CALLBACK_ID, "payload": {}})
    assert status == expected_status and set(body) == {"message"}


@pytest.mark.parametrize("service_error", ["CallbackTimeoutException", "ResourceNotFoundException", "InvalidParameterValueException"])
@pytest.mark.parametrize(
    ("recorded", "expected_status"),
    [([TIMED_OUT_EVENT], 410), ([succeeded_with(b'{"other":1}')], 409), ([succeeded_with(b'{"mine":1}')], 200)],
    ids=["timed-out", "another-answer", "this-answer-landed-before"],
)
def test_callback_that_no_longer_waits_is_decided_by_the_execution_history(
    waiting_workflow: str, durable: Stubber, service_error: str, recorded: list[dict[str, Any]], expected_status: int
) -> None:
    # GIVEN the service refuses the answer (AWS says CallbackTimeoutException for answered and timed out alike)
    durable.add_client_error("send_durable_execution_callback_success", service_error_code=service_error)
    durable.add_response("get_durable_execution_history", history(*recorded))
    if expected_status != 200:
        durable.add_response("get_durable_execution", RUNNING)  # the repair finds the execution still running
    # WHEN the answer arrives, THEN the history says which status it gets
    status, _ = post_callback({"callbackId": CALLBACK_ID, "payload": {"mine": 1}})
    assert status == expected_status
    # and every later answer is settled from the registry without calling the service again
    later, _ = post_callback({"callbackId": CALLBACK_ID, "payload": {"late": 1}})
    assert later == (410 if expected_status == 410 else 409)


def post_callback_response(body: Any) -> dict[str, Any]:
    """The whole proxy response of a POST /callback (status, headers, body)."""
    return app.handler(proxy_event(
        method="POST", resource="/callback", path="/callback", headers={"x-tenant-id": "tenant-a"},
        body=json.dumps(body), authorizer={"tenantId": "tenant-a", "workflowId": "unused", "principalId": "tenant-a"}),
        FakeLambdaContext())


@pytest.mark.parametrize(("history_error", "expected_status"), [("TooManyRequestsException", 429), ("ServiceException", 503)])
def test_unreadable_history_is_a_retry_never_a_final_409(
    waiting_workflow: str, durable: Stubber, history_error: str, expected_status: int
) -> None:
    # GIVEN the service says the callback no longer waits, and its history cannot be read right now
    durable.add_client_error("send_durable_execution_callback_success", service_error_code="CallbackTimeoutException")
    durable.add_client_error("get_durable_execution_history", service_error_code=history_error)
    # WHEN the answer arrives, THEN the outcome is unknown: retry (not 409, which a client takes as final)
    response = post_callback_response({"callbackId": CALLBACK_ID, "payload": {"mine": 1}})
    assert response["statusCode"] == expected_status and int(response["multiValueHeaders"]["Retry-After"][0]) >= 1
    # and the retry, once the history reads, learns the truth: another answer won (a true 409)
    durable.add_client_error("send_durable_execution_callback_success", service_error_code="CallbackTimeoutException")
    durable.add_response("get_durable_execution_history", history(succeeded_with(b'{"other":1}')))
    durable.add_response("get_durable_execution", RUNNING)
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {"mine": 1}}) == (
        409, {"message": "callback was already answered"})


def test_answer_that_landed_late_with_history_unreadable_once_gets_200_on_retry(
    waiting_workflow: str, durable: Stubber
) -> None:
    # GIVEN the first attempt's durable call landed, but its reply was lost (botocore's retry of it is told
    # the callback no longer waits) and the history read that would say so is throttled once
    durable.add_client_error("send_durable_execution_callback_success", service_error_code="CallbackTimeoutException")
    durable.add_client_error("get_durable_execution_history", service_error_code="TooManyRequestsException")
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {"mine": 1}})[0] == 429
    # WHEN the client retries (the lease was given back), THEN the history names its own answer: 200
    durable.add_client_error("send_durable_execution_callback_success", service_error_code="CallbackTimeoutException")
    durable.add_response("get_durable_execution_history", history(succeeded_with(b'{"mine":1}')))
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {"mine": 1}}) == (
        200, {"workflowId": "wf-a", "delivered": "success"})
    # and a further retry is answered from the registry without the service: 200 again
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {"mine": 1}})[0] == 200


def test_unreadable_history_of_an_ended_workflow_is_a_retry(waiting_workflow: str, durable: Stubber) -> None:
    # GIVEN the workflow ended and no answer was settled in the registry (its holder was killed)
    app.REGISTRY.record_outcome("tenant-a", "wf-a", reg.COMPLETED, result={"status": reg.COMPLETED})
    durable.add_client_error("get_durable_execution_history", service_error_code="ServiceException")
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {"mine": 1}})[0] == 503
    durable.add_response("get_durable_execution_history", history(succeeded_with(b'{"mine":1}')))
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {"mine": 1}})[0] == 200


def test_history_past_its_retention_falls_back_to_the_callback_deadline(waiting_workflow: str, durable: Stubber) -> None:
    durable.add_client_error("send_durable_execution_callback_success", service_error_code="CallbackTimeoutException")
    durable.add_client_error("get_durable_execution_history", service_error_code="ResourceNotFoundException")
    durable.add_response("get_durable_execution", RUNNING)
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {}}) == (409, {"message": "callback is no longer waiting"})


@pytest.mark.parametrize(
    "body",
    [
        None,
        "not json",
        "[]",
        "{}",
        {"callbackId": ""},
        {"callbackId": 7, "payload": {}},
        {"callbackId": CALLBACK_ID},
        {"callbackId": CALLBACK_ID, "payload": {}, "error": {"type": "a", "message": "b"}},
        {"callbackId": CALLBACK_ID, "payload": "yes"},
        {"callbackId": CALLBACK_ID, "payload": {}, "admin": True},
        {"callbackId": CALLBACK_ID, "error": {"type": "a"}},
        {"callbackId": CALLBACK_ID, "error": "boom"},
        {"callbackId": "x" * 1025, "payload": {}},
    ],
)
def test_malformed_callback_body_is_400_and_nothing_is_delivered(
    waiting_workflow: str, durable: Stubber, body: Any
) -> None:
    raw = body if body is None or isinstance(body, str) else json.dumps(body)
    status, response = post_callback(raw)
    assert status == 400 and set(response) == {"message"}


def test_oversized_callback_body_is_413(waiting_workflow: str, durable: Stubber) -> None:
    status, body = post_callback({"callbackId": CALLBACK_ID, "payload": {"blob": "x" * 300_000}})
    assert status == 413 and "262144 bytes" in body["message"]


def test_unknown_route_is_json_404(tables: Any) -> None:
    assert call("DELETE", "/callback") == (404, {"message": "route not found"})


def test_unexpected_error_is_500_without_stack_trace(waiting_workflow: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.REGISTRY, "get_workflow", broken)
    status, body = get_status(waiting_workflow)
    assert (status, body) == (500, {"message": "internal error"})


def test_every_log_line_has_tenant_and_workflow_keys(waiting_workflow: str, durable: Stubber, json_logs: Any) -> None:
    logs = json_logs(app.logger)
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b"{}"})
    post_callback({"callbackId": CALLBACK_ID, "payload": {}})
    post_callback({"callbackId": "nope", "payload": {}})
    lines = logs.lines()
    assert lines
    for line in lines:
        assert "tenant_id" in line and "workflow_id" in line, line
    assert lines[0]["tenant_id"] == "tenant-a" and lines[0]["workflow_id"] == "wf-a"


def test_sample_events_route_through_the_handler(waiting_workflow: str, durable: Stubber) -> None:
    get_event = json.loads((EVENTS / "get-workflow.json").read_text())
    assert app.handler(get_event, FakeLambdaContext())["statusCode"] == 404  # sample id is not registered
    callback_event = json.loads((EVENTS / "send-callback.json").read_text())
    callback_event["body"] = callback_event["body"].replace("REPLACE_WITH_CALLBACK_ID", CALLBACK_ID)
    durable.add_response(
        "send_durable_execution_callback_success", {},
        {"CallbackId": CALLBACK_ID, "Result": json.dumps(json.loads(callback_event["body"])["payload"], separators=(",", ":")).encode()},
    )
    assert app.handler(callback_event, FakeLambdaContext())["statusCode"] == 200
    start_event = json.loads((EVENTS / "start-workflow.json").read_text())
    assert set(start_event) == {"workflowId", "request"}


def test_second_callback_is_409_and_never_reaches_the_service(waiting_workflow: str, durable: Stubber) -> None:
    # GIVEN a delivered callback whose workflow has not finalized yet (registry still WAITING)
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b'{"n":1}'})
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {"n": 1}})[0] == 200
    # WHEN the same callback arrives again, THEN it is refused before any service call (Stubber has none queued)
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {"n": 2}}) == (409, {"message": "callback was already answered"})


def test_retryable_service_error_releases_the_lease(waiting_workflow: str, durable: Stubber) -> None:
    durable.add_client_error("send_durable_execution_callback_success", service_error_code="TooManyRequestsException")
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b"{}"})
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {}})[0] == 429
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {}})[0] == 200


def test_heartbeat_is_forwarded_and_may_repeat(waiting_workflow: str, durable: Stubber) -> None:
    for _ in range(2):
        durable.add_response("send_durable_execution_callback_heartbeat", {}, {"CallbackId": CALLBACK_ID})
        assert post_callback({"callbackId": CALLBACK_ID, "heartbeat": True}) == (
            200, {"workflowId": "wf-a", "delivered": "heartbeat"}
        )


@pytest.mark.parametrize("body", [{"callbackId": CALLBACK_ID, "heartbeat": False}, {"callbackId": CALLBACK_ID, "heartbeat": True, "payload": {}}])
def test_malformed_heartbeat_is_400(waiting_workflow: str, durable: Stubber, body: dict[str, Any]) -> None:
    assert post_callback(body)[0] == 400


def test_unreachable_durable_service_is_502_and_the_callback_can_be_retried(
    waiting_workflow: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import EndpointConnectionError

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://durable.invalid")

    monkeypatch.setattr(app.LAMBDA_CLIENT, "send_durable_execution_callback_success", unreachable)
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {}})[0] == 502
    claim = app.REGISTRY.claim_callback("tenant-a", CALLBACK_ID, owner="another-request", lease_seconds=10)
    assert claim.claimed, "the failed delivery released its lease"


def test_nan_in_callback_payload_is_400(waiting_workflow: str, durable: Stubber) -> None:
    assert post_callback('{"callbackId": "%s", "payload": {"x": NaN}}' % CALLBACK_ID)[0] == 400


@pytest.mark.parametrize("payload", ['{"x": 1e400}', '{"x": -1E999}', '{"x": Infinity}', '{"x": "\\ud800"}'])
def test_non_finite_numbers_and_lone_surrogates_are_400(waiting_workflow: str, durable: Stubber, payload: str) -> None:
    status, body = post_callback('{"callbackId": "%s", "payload": %s}' % (CALLBACK_ID, payload))
    assert status == 400 and set(body) == {"message"}


def test_payload_that_grows_past_the_stored_limit_is_413_with_the_limit(waiting_workflow: str, durable: Stubber) -> None:
    # GIVEN a body under the body limit whose numbers grow when stored (1E5 is stored as 100000.0)
    body = '{"callbackId": "%s", "payload": {"n": [%s]}}' % (CALLBACK_ID, ",".join(["1E5"] * 40_000))
    assert len(body) < 1024 * 1024
    status, response = post_callback(body)
    assert status == 413 and "262144 bytes" in response["message"] and "as stored" in response["message"]


def test_non_ascii_payload_near_the_limit_is_delivered_as_utf8(waiting_workflow: str, durable: Stubber) -> None:
    text = "確" * (250 * 1024 // 3)
    payload = json.dumps({"note": text}, ensure_ascii=False, separators=(",", ":")).encode()
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": payload})
    # the client sent it with \\u escapes (6 bytes a character): the body is 2x the stored size
    assert post_callback(json.dumps({"callbackId": CALLBACK_ID, "payload": {"note": text}}))[0] == 200


@pytest.mark.parametrize(
    ("failing", "code", "expected"),
    [("get_item", "ProvisionedThroughputExceededException", 429), ("get_item", "ThrottlingException", 429),
     ("update_item", "ProvisionedThroughputExceededException", 429), ("get_item", "InternalServerError", 503),
     ("update_item", "ServiceUnavailable", 503)],
)
def test_registry_failures_on_the_callback_path_are_429_or_503_with_retry_after(
    waiting_workflow: str, durable: Stubber, monkeypatch: pytest.MonkeyPatch, failing: str, code: str, expected: int
) -> None:
    from botocore.exceptions import ClientError

    def broken(**_: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, failing)

    monkeypatch.setattr(app.REGISTRY._table, failing, broken)  # noqa: SLF001
    response = post_callback_response({"callbackId": CALLBACK_ID, "payload": {}})
    assert response["statusCode"] == expected and int(response["multiValueHeaders"]["Retry-After"][0]) >= 1
    assert set(json.loads(response["body"])) == {"message"}


def test_unreachable_registry_is_503(waiting_workflow: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import EndpointConnectionError

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://dynamodb.invalid")

    monkeypatch.setattr(app.REGISTRY._table, "get_item", unreachable)  # noqa: SLF001
    assert get_status(waiting_workflow)[0] == 503


def test_read_of_a_waiting_workflow_does_not_call_the_service(waiting_workflow: str, durable: Stubber) -> None:
    assert get_status(waiting_workflow)[1]["status"] == reg.WAITING_FOR_CALLBACK  # Stubber: no call expected


# -- an answer before the wait is answerable; answers the workflow could not keep; a reordered retry ---------


@pytest.fixture
def registering_workflow(tables: Any) -> str:
    """tenant-a's wf-a: its submitter wrote the callback, the event is not out yet (still STARTED)."""
    app.REGISTRY.claim_workflow("tenant-a", "wf-a", EXECUTION_ARN)
    app.REGISTRY.register_callback("tenant-a", "wf-a", CALLBACK_ID, timeout_seconds=3600)
    return "wf-a"


@pytest.mark.parametrize("answer", [{"payload": {"ok": True}}, {"error": {"type": "T", "message": "m"}}, {"heartbeat": True}])
def test_an_answer_while_the_wait_is_registered_is_503_and_never_reaches_the_service(
    registering_workflow: str, durable: Stubber, answer: dict[str, Any]
) -> None:
    # GIVEN the Stubber has no answer queued: any durable call would fail this test
    response = post_callback_response({"callbackId": CALLBACK_ID, **answer})
    assert response["statusCode"] == 503 and response["multiValueHeaders"]["Retry-After"] == ["1"]
    assert json.loads(response["body"]) == {"message": "the callback's wait is still being registered; retry later"}
    # AND GET shows the workflow as STARTED, without the callbackId nobody may answer yet
    assert get_status(registering_workflow) == (200, {"workflowId": "wf-a", "status": reg.STARTED})


def test_once_the_wait_is_answerable_the_same_answer_gets_200(registering_workflow: str, durable: Stubber) -> None:
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {"ok": True}})[0] == 503
    assert app.REGISTRY.mark_waiting("tenant-a", "wf-a", CALLBACK_ID)
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b'{"ok":true}'})
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {"ok": True}}) == (200, {"workflowId": "wf-a", "delivered": "success"})


def test_a_wait_whose_submitter_gave_up_long_ago_is_409_once_the_execution_says_so(
    tables: Any, durable: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a workflow left STARTED with its callback registered, longer ago than a read trusts (its final write lost too)
    past = reg.WorkflowRegistry(app.REGISTRY._table, 3600, clock=lambda: time.time() - STALE_AFTER_SECONDS - 1)  # noqa: SLF001
    past.claim_workflow("tenant-a", "wf-a", EXECUTION_ARN)
    past.register_callback("tenant-a", "wf-a", CALLBACK_ID, timeout_seconds=3600)
    ended = {**RUNNING, "Status": "SUCCEEDED", "EndTimestamp": "2026-01-01T00:01:00Z",
             "Result": json.dumps({"workflowId": "wf-a", "status": reg.FAILED, "reason": "could not register the callback"})}
    durable.add_response("get_durable_execution", ended)
    durable.add_response("get_durable_execution_history", history())
    # WHEN an answer arrives, THEN the registry converges on the execution and the answer is final: 409
    assert post_callback({"callbackId": CALLBACK_ID, "payload": {"ok": True}}) == (409, {"message": "workflow is already FAILED"})


def nested(levels: int) -> dict[str, Any]:
    value: Any = True
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_payload_nested_to_the_limit_is_delivered_and_one_level_more_is_400(waiting_workflow: str, durable: Stubber) -> None:
    status, body = post_callback({"callbackId": CALLBACK_ID, "payload": nested(MAX_PAYLOAD_DEPTH + 1)})
    assert status == 400 and f"the limit is {MAX_PAYLOAD_DEPTH} levels" in body["message"]
    delivered = json.dumps(nested(MAX_PAYLOAD_DEPTH), separators=(",", ":")).encode()
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": delivered})
    assert post_callback({"callbackId": CALLBACK_ID, "payload": nested(MAX_PAYLOAD_DEPTH)})[0] == 200


def test_a_retry_of_the_winning_answer_in_another_key_order_and_number_form_is_200(waiting_workflow: str, durable: Stubber) -> None:
    durable.add_response("send_durable_execution_callback_success", {},
                         {"CallbackId": CALLBACK_ID, "Result": b'{"approved":true,"n":1}'})
    assert post_callback('{"callbackId": "%s", "payload": {"approved": true, "n": 1}}' % CALLBACK_ID)[0] == 200
    # THEN the same answer serialized otherwise is recognised (no service call: the Stubber has none queued)
    retry = '{"payload": {"n": 1.0, "approved": true}, "callbackId": "%s"}' % CALLBACK_ID
    assert post_callback(retry) == (200, {"workflowId": "wf-a", "delivered": "success"})
    assert post_callback('{"callbackId": "%s", "payload": {"n": 2, "approved": true}}' % CALLBACK_ID)[0] == 409
