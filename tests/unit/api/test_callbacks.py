"""Parsing POST /callback bodies and deciding whether a callback may be answered (pure)."""

from __future__ import annotations

import json

import pytest

from api.callbacks import (
    AlreadyCompleted,
    CallbackExpired,
    CallbackFailure,
    InvalidRequest,
    NotFound,
    ensure_waiting,
    parse_callback_request,
    status_view,
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
    ("status", "error"),
    [(reg.COMPLETED, AlreadyCompleted), (reg.REJECTED, AlreadyCompleted), (reg.FAILED, AlreadyCompleted), (reg.TIMED_OUT, CallbackExpired)],
)
def test_only_waiting_workflows_accept_callbacks(status: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        ensure_waiting(WorkflowRecord("t", "w", status))
    with pytest.raises(NotFound):
        ensure_waiting(None)
    waiting = WorkflowRecord("t", "w", reg.WAITING_FOR_CALLBACK, callback_id="cb")
    assert ensure_waiting(waiting) is waiting


def test_status_view_shows_reason_for_rejections() -> None:
    view = status_view(WorkflowRecord("t", "w", reg.REJECTED, reason="unknown tenant", result={"status": "REJECTED"}))
    assert view == {"workflowId": "w", "status": "REJECTED", "result": {"status": "REJECTED"}, "reason": "unknown tenant"}
