"""Parsing POST /callback bodies and deciding whether a callback may be answered (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.callbacks import (
    MAX_PAYLOAD_DEPTH,
    AnswerKind,
    CallbackFailure,
    InvalidRequest,
    failure_digest,
    parse_callback_request,
    status_view,
    success_digest,
)
from shared import registry as reg
from shared.registry import WorkflowRecord


def test_success_body_keeps_payload_as_compact_json() -> None:
    request = parse_callback_request(json.dumps({"callbackId": "cb", "payload": {"a": [1, 2]}}))
    assert request.result_bytes() == b'{"a":[1,2]}' and request.failure is None


def test_error_body_becomes_a_failure() -> None:
    request = parse_callback_request(json.dumps({"callbackId": "cb", "error": {"type": "T", "message": "m"}}))
    assert request.failure == CallbackFailure("T", "m") and request.payload is None


def test_deeply_nested_json_is_a_clean_400() -> None:
    with pytest.raises(InvalidRequest):
        parse_callback_request("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize(
    ("body", "kind"),
    [('{"callbackId": "cb", "payload": {}}', AnswerKind.SUCCESS),
     ('{"callbackId": "cb", "error": {"type": "T", "message": "m"}}', AnswerKind.FAILURE),
     ('{"callbackId": "cb", "heartbeat": true}', AnswerKind.HEARTBEAT)],
)
def test_an_answer_knows_its_kind_which_a_200_reports_as_delivered(body: str, kind: AnswerKind) -> None:
    assert parse_callback_request(body).kind == kind


def test_status_view_shows_reason_for_rejections() -> None:
    view = status_view(WorkflowRecord("t", "w", reg.REJECTED, reason="unknown tenant", result={"status": "REJECTED"}))
    assert view == {"workflowId": "w", "status": "REJECTED", "result": {"status": "REJECTED"}, "reason": "unknown tenant"}


def nested_payload(levels: int) -> dict[str, Any]:
    """``{"a": {"a": ... 1}}``: ``levels`` objects, the payload itself the first."""
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize("callback_id", ["cb", None])  # POST /callback's body, and the token route's (no callbackId)
def test_a_payload_nested_to_the_limit_passes_and_one_level_more_is_400_naming_the_limit(callback_id: str | None) -> None:
    def body(levels: int) -> str:
        return json.dumps({**({"callbackId": "cb"} if callback_id is None else {}), "payload": nested_payload(levels)})

    named = None if callback_id is None else "cb-token"
    assert parse_callback_request(body(MAX_PAYLOAD_DEPTH), callback_id=named).payload == nested_payload(MAX_PAYLOAD_DEPTH)
    with pytest.raises(InvalidRequest, match=f"the limit is {MAX_PAYLOAD_DEPTH} levels"):
        parse_callback_request(body(MAX_PAYLOAD_DEPTH + 1), callback_id=named)


def test_a_body_too_deep_to_parse_is_400_naming_the_payload_limit() -> None:
    with pytest.raises(InvalidRequest, match=f"at most {MAX_PAYLOAD_DEPTH} levels"):
        parse_callback_request('{"callbackId": "cb", "payload": ' + '{"a":' * 100_000 + "1" + "}" * 100_001)


def test_the_issue_s_250_levels_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="nests 250 levels"):
        parse_callback_request(json.dumps({"callbackId": "cb", "payload": nested_payload(250)}))


def digest_of(body: dict[str, Any]) -> str:
    return parse_callback_request(json.dumps({"callbackId": "cb", **body})).answer_digest()


@pytest.mark.parametrize(
    ("won", "retry", "same"),
    [
        ('{"payload": {"approved": true, "n": 1}}', '{"payload": {"n": 1, "approved": true}}', True),
        ('{"payload": {"n": 1}}', '{"payload": {"n": 1.0}}', True),
        ('{"payload": {"n": 1}}', '{"payload": {"n": 1e0}}', True),
        ('{"payload": {"s": "é"}}', '{"payload": {"s": "\\u00e9"}}', True),
        ('{"payload": {"a": [1, {"b": 2, "c": 3}]}}', '{ "payload" : { "a" : [ 1 , { "c" : 3 , "b" : 2 } ] } }', True),
        ('{"payload": {"n": 1}}', '{"payload": {"n": 2}}', False),
        ('{"payload": {"n": 1}}', '{"error": {"type": "n", "message": "1"}}', False),
        ('{"error": {"type": "Declined", "message": "é"}}', '{"error": {"message": "\\u00e9", "type": "Declined"}}', True),
        ('{"error": {"type": "Declined", "message": "no"}}', '{"error": {"type": "Declined", "message": "No"}}', False),
    ],
)
def test_a_retry_of_the_winning_answer_has_its_digest_however_it_is_serialized(won: str, retry: str, same: bool) -> None:
    assert (digest_of(json.loads(won)) == digest_of(json.loads(retry))) is same
    # and as the raw bodies the client sent (the parser sees the escapes and the number forms)
    first = parse_callback_request('{"callbackId": "cb", ' + won.strip()[1:]).answer_digest()
    again = parse_callback_request('{"callbackId": "cb", ' + retry.strip()[1:]).answer_digest()
    assert (first == again) is same


def test_the_digest_of_a_request_is_the_one_the_history_gives_the_delivered_answer() -> None:
    request = parse_callback_request('{"callbackId": "cb", "payload": {"n": 1.0, "a": "\\u00e9"}}')
    assert request.answer_digest() == success_digest(json.loads(request.result_bytes()))
    failure = parse_callback_request('{"callbackId": "cb", "error": {"type": "T", "message": "m"}}')
    assert failure.answer_digest() == failure_digest("T", "m")
