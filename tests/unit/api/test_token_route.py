"""POST /callbacks/{callbackToken}: the token is the only credential, good for one answer to one callback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from api import app, tokens
from api.callbacks import MAX_PAYLOAD_DEPTH
from shared import registry as reg
from shared.callback_tokens import mint_token, token_hash
from tests.unit.api_events import proxy_event
from tests.unit.conftest import TEST_ENV, TEST_SIGNING_KEY
from tests.unit.fakes import FakeLambdaContext, register_waiting

CALLBACK_ID = "cb-token-1"
TOKEN = mint_token(TEST_SIGNING_KEY.encode(), "tenant-a", CALLBACK_ID)


@pytest.fixture
def waiting(tables: Any) -> str:
    app.REGISTRY.claim_workflow("tenant-a", "wf-t", "arn:execution:wf-t")
    register_waiting(app.REGISTRY, "tenant-a", "wf-t", CALLBACK_ID, 3600, token_hash=token_hash(TOKEN))
    return "wf-t"


@pytest.fixture
def durable() -> Iterator[Stubber]:
    with Stubber(app.LAMBDA_CLIENT) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def post_token(token: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    # No authorizer runs on this route: requestContext carries no authorizer context.
    event = proxy_event(method="POST", resource="/callbacks/{callbackToken}", path=f"/callbacks/{token}",
                        headers=headers, path_parameters={"callbackToken": token}, body=body, authorizer=None)
    response = app.handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_the_token_alone_answers_its_callback(waiting: str, durable: Stubber) -> None:
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b'{"ok":true}'})
    assert post_token(TOKEN, {"payload": {"ok": True}}) == (200, {"workflowId": "wf-t", "delivered": "success"})


def test_headers_the_caller_adds_are_ignored(waiting: str, durable: Stubber) -> None:
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b"{}"})
    status, body = post_token(TOKEN, {"payload": {}}, headers={"x-tenant-id": "tenant-b", "x-api-key": "tenant-b-key"})
    assert (status, body["workflowId"]) == (200, "wf-t")


def test_second_answer_with_the_token_is_409(waiting: str, durable: Stubber) -> None:
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b'{"n":1}'})
    assert post_token(TOKEN, {"payload": {"n": 1}})[0] == 200
    assert post_token(TOKEN, {"payload": {"n": 2}}) == (409, {"message": "callback was already answered"})


def test_answer_after_the_deadline_is_410(waiting: str, durable: Stubber) -> None:
    app.REGISTRY.record_outcome("tenant-a", "wf-t", reg.TIMED_OUT, reason="late")
    assert post_token(TOKEN, {"payload": {}}) == (410, {"message": "callback timed out"})


@pytest.mark.parametrize("token", [
    TOKEN[:-1], TOKEN + "A", "A" * 43, mint_token(b"another-key", "tenant-a", CALLBACK_ID),
    mint_token(TEST_SIGNING_KEY.encode(), "tenant-b", CALLBACK_ID), "x" * 2000, "%00", "..%2F..%2Fworkflow",
])
def test_unknown_or_malformed_tokens_are_404_with_one_answer(waiting: str, durable: Stubber, token: str) -> None:
    assert post_token(token, {"payload": {}}) == (404, {"message": "callback not found"})


@pytest.mark.parametrize("body", [{"callbackId": CALLBACK_ID, "payload": {}}, {"payload": {}, "heartbeat": True}, "nope", None])
def test_bad_bodies_are_400(waiting: str, durable: Stubber, body: Any) -> None:
    assert post_token(TOKEN, body)[0] == 400


def test_heartbeats_may_repeat_with_the_token(waiting: str, durable: Stubber) -> None:
    for _ in range(2):
        durable.add_response("send_durable_execution_callback_heartbeat", {}, {"CallbackId": CALLBACK_ID})
        assert post_token(TOKEN, {"heartbeat": True}) == (200, {"workflowId": "wf-t", "delivered": "heartbeat"})


def test_the_token_grants_no_status_read(waiting: str) -> None:
    event = proxy_event(method="GET", resource="/workflow/{workflowId}", path="/workflow/wf-t",
                        headers={"x-callback-token": TOKEN}, path_parameters={"workflowId": "wf-t"}, authorizer=None)
    assert app.handler(event, FakeLambdaContext())["statusCode"] == 401


def test_the_token_is_never_logged(waiting: str, durable: Stubber, json_logs: Any) -> None:
    logs = json_logs(app.logger)
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b"{}"})
    post_token(TOKEN, {"payload": {}})
    post_token(TOKEN[:-1] + "B", {"payload": {}})
    text = json.dumps(logs.lines())
    assert logs.lines() and TOKEN not in text and TOKEN[:-1] not in text


def test_status_is_still_served_when_the_signing_key_cannot_be_read(waiting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    def unavailable(_name: str) -> bytes:
        raise GetParameterError("secrets manager down")

    monkeypatch.setattr(tokens, "signing_key", unavailable)
    event = proxy_event(method="GET", resource="/workflow/{workflowId}", path="/workflow/wf-t", headers={},
                        path_parameters={"workflowId": "wf-t"},
                        authorizer={"tenantId": "tenant-a", "workflowId": "unused", "principalId": "tenant-a"})
    response = app.handler(event, FakeLambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 200 and body["status"] == "WAITING_FOR_CALLBACK" and "callbackUrl" not in body


def get_status(workflow_id: str, tenant: str = "tenant-a") -> tuple[int, dict[str, Any]]:
    event = proxy_event(method="GET", resource="/workflow/{workflowId}", path=f"/workflow/{workflow_id}", headers={},
                        path_parameters={"workflowId": workflow_id},
                        authorizer={"tenantId": tenant, "workflowId": "unused", "principalId": tenant})
    response = app.handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def rotate_signing_key() -> Iterator[Any]:
    """Rotate the signing secret (as Secrets Manager rotation would); restore the test key afterwards.

    ``parameters.clear_caches()`` stands for SIGNING_KEY_MAX_AGE_SECONDS passing:
    until then a running function keeps the key it read.
    """
    from aws_lambda_powertools.utilities import parameters

    secrets = boto3.client("secretsmanager")

    def rotate(new_key: str) -> None:
        secrets.put_secret_value(SecretId=TEST_ENV["CALLBACK_SIGNING_SECRET_NAME"], SecretString=new_key)
        parameters.clear_caches()

    yield rotate
    rotate(TEST_SIGNING_KEY)


def test_rotating_the_signing_key_revokes_the_token_and_get_hands_out_a_working_one(
    waiting: str, durable: Stubber, rotate_signing_key: Any
) -> None:
    # GIVEN a waiting workflow whose token was minted with the old key, then the key is rotated
    rotate_signing_key("rotated-signing-key")
    new_token = mint_token(b"rotated-signing-key", "tenant-a", CALLBACK_ID)
    # WHEN the old token is presented, THEN it is 404 like any unknown token (its item still exists)
    assert post_token(TOKEN, {"payload": {}}) == (404, {"message": "callback not found"})
    # WHEN the tenant reads the workflow, THEN the callbackUrl carries the new key's token ...
    status, body = get_status(waiting)
    assert status == 200 and body["callbackUrl"] == f"{TEST_ENV['CALLBACK_BASE_URL']}/callbacks/{new_token}"
    record = app.REGISTRY.get_workflow("tenant-a", waiting)
    assert record is not None and record.callback_token_hash == token_hash(new_token)
    # ... which answers the callback, while the old one stays refused
    assert post_token(TOKEN, {"payload": {}}) == (404, {"message": "callback not found"})
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b'{"ok":1}'})
    assert post_token(new_token, {"payload": {"ok": 1}}) == (200, {"workflowId": "wf-t", "delivered": "success"})


def test_get_writes_the_token_item_once_and_then_only_reads(waiting: str, rotate_signing_key: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    rotate_signing_key("rotated-signing-key")
    assert "callbackUrl" in get_status(waiting)[1]
    reissued: list[Any] = []
    monkeypatch.setattr(app.REGISTRY, "reissue_token", lambda *args: reissued.append(args) or True)
    assert "callbackUrl" in get_status(waiting)[1] and not reissued, "the workflow item holds the current hash"


def test_get_leaves_the_url_out_when_the_token_item_cannot_be_written(waiting: str, rotate_signing_key: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    def throttled(*_: Any) -> bool:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, "UpdateItem")

    rotate_signing_key("rotated-signing-key")
    monkeypatch.setattr(app.REGISTRY, "reissue_token", throttled)
    status, body = get_status(waiting)
    assert status == 200 and body["status"] == "WAITING_FOR_CALLBACK" and "callbackUrl" not in body


def set_tenant_status(tables: Any, status: str) -> None:
    tenants, _ = tables
    tenants.update_item(Key={"tenantId": "tenant-a"}, UpdateExpression="SET #status = :status",
                        ExpressionAttributeNames={"#status": "status"}, ExpressionAttributeValues={":status": status})


def test_a_suspended_tenants_token_is_404_until_it_is_reactivated(waiting: str, durable: Stubber, tables: Any) -> None:
    # GIVEN the tenant is suspended while its workflow waits
    set_tenant_status(tables, "SUSPENDED")
    # WHEN its real token answers, THEN it is 404 like an unknown token, and nothing reaches the service
    assert post_token(TOKEN, {"payload": {}}) == (404, {"message": "callback not found"})
    assert post_token(TOKEN, {"heartbeat": True}) == (404, {"message": "callback not found"})
    # WHEN the tenant is reactivated, THEN the same token works (the tenant is read on every token request)
    set_tenant_status(tables, "ACTIVE")
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b"{}"})
    assert post_token(TOKEN, {"payload": {}}) == (200, {"workflowId": "wf-t", "delivered": "success"})


def test_a_deleted_tenants_token_is_404(waiting: str, durable: Stubber, tables: Any) -> None:
    tables[0].delete_item(Key={"tenantId": "tenant-a"})
    assert post_token(TOKEN, {"payload": {}}) == (404, {"message": "callback not found"})


def test_a_tenant_item_with_only_a_status_does_not_fail_the_token_route(waiting: str, durable: Stubber,
                                                                       tables: Any) -> None:
    # GIVEN a tenant item being onboarded by hand: its status and nothing else (the route reads only that)
    tables[0].put_item(Item={"tenantId": "tenant-a", "status": "ACTIVE"})
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b"{}"})
    assert post_token(TOKEN, {"payload": {}}) == (200, {"workflowId": "wf-t", "delivered": "success"})


def test_an_empty_signing_secret_is_503_on_the_token_route_and_no_url_on_get(
    waiting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the secret reads empty (SecretBinary of a botched rotation): never a 500
    from aws_lambda_powertools.utilities import parameters

    monkeypatch.setattr(parameters, "get_secret", lambda *_args, **_kwargs: "")
    status, body = post_token(TOKEN, {"payload": {}})
    assert status == 503, body
    status, body = get_status(waiting)
    assert status == 200 and body["status"] == "WAITING_FOR_CALLBACK" and "callbackUrl" not in body


def test_token_route_is_503_when_the_signing_key_cannot_be_read(waiting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    def unavailable(_name: str) -> bytes:
        raise GetParameterError("secrets manager down")

    monkeypatch.setattr(tokens, "signing_key", unavailable)
    event = proxy_event(method="POST", resource="/callbacks/{callbackToken}", path=f"/callbacks/{TOKEN}",
                        path_parameters={"callbackToken": TOKEN}, body=json.dumps({"payload": {}}), authorizer=None)
    response = app.handler(event, FakeLambdaContext())
    assert response["statusCode"] == 503 and int(response["multiValueHeaders"]["Retry-After"][0]) >= 1


def test_an_answer_with_the_token_before_the_wait_is_answerable_is_503_and_never_delivered(tables: Any, durable: Stubber) -> None:
    # GIVEN the submitter wrote the token's item, the event not out yet (the Stubber has no call queued)
    app.REGISTRY.claim_workflow("tenant-a", "wf-t", "arn:execution:wf-t")
    app.REGISTRY.register_callback("tenant-a", "wf-t", CALLBACK_ID, 3600, token_hash=token_hash(TOKEN))
    assert post_token(TOKEN, {"payload": {"ok": True}}) == (
        503, {"message": "the callback's wait is still being registered; retry later"})
    # WHEN the submitter has told the external party, THEN the same answer is delivered
    assert app.REGISTRY.mark_waiting("tenant-a", "wf-t", CALLBACK_ID)
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b'{"ok":true}'})
    assert post_token(TOKEN, {"payload": {"ok": True}}) == (200, {"workflowId": "wf-t", "delivered": "success"})


def test_a_payload_nested_past_the_limit_is_400_naming_it_with_the_token(waiting: str, durable: Stubber) -> None:
    value: Any = 1
    for _ in range(MAX_PAYLOAD_DEPTH + 1):
        value = {"a": value}
    status, body = post_token(TOKEN, {"payload": value})
    assert status == 400 and f"the limit is {MAX_PAYLOAD_DEPTH} levels" in body["message"]
    durable.add_response("send_durable_execution_callback_success", {},
                         {"CallbackId": CALLBACK_ID, "Result": json.dumps(value["a"], separators=(",", ":")).encode()})
    assert post_token(TOKEN, {"payload": value["a"]})[0] == 200


def test_a_retry_of_the_winning_answer_reordered_is_200_with_the_token(waiting: str, durable: Stubber) -> None:
    durable.add_response("send_durable_execution_callback_success", {},
                         {"CallbackId": CALLBACK_ID, "Result": b'{"approved":true,"n":1}'})
    assert post_token(TOKEN, {"payload": {"approved": True, "n": 1}})[0] == 200
    assert post_token(TOKEN, {"payload": {"n": 1.0, "approved": True}}) == (200, {"workflowId": "wf-t", "delivered": "success"})
    assert post_token(TOKEN, {"payload": {"n": 2, "approved": True}})[0] == 409
