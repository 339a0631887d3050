"""Callback bodies and the status view of the API function: parse, digest, show. No I/O (the decision: ``api.decision``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from shared import registry as reg
from shared import strict_json
from shared.contract import CALLBACK_ID_MAX_LENGTH
from shared.registry import WorkflowRecord

# Bodies are parsed only up to this size (API Gateway itself allows 10 MB).
MAX_CALLBACK_BODY_BYTES = 1024 * 1024
# What the whole path can keep (shared.strict_json says why): refused up front.
MAX_PAYLOAD_BYTES = strict_json.MAX_PAYLOAD_BYTES
MAX_PAYLOAD_DEPTH = strict_json.MAX_PAYLOAD_DEPTH
MAX_ERROR_FIELD_LENGTH = 1024
_CALLBACK_FIELDS = frozenset({"callbackId", "payload", "error", "heartbeat"})
_ANSWER_FIELDS = ("payload", "error", "heartbeat")


class InvalidRequest(ValueError):
    """The request body or a parameter is malformed (400)."""


class Unauthenticated(PermissionError):
    """No verified tenant identity reached the function (401); the authorizer should have refused."""


class RequestTooLarge(ValueError):
    """The body, or the payload as stored, exceeds its limit (413)."""


class NotFound(LookupError):
    """Unknown id, or an id that belongs to another tenant (404: never say which)."""


class AnswerKind(StrEnum):
    """What an answer is, and what a ``200`` says was delivered (its ``delivered`` field)."""

    SUCCESS = "success"
    FAILURE = "failure"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True)
class CallbackFailure:
    """An external system's report that the awaited operation failed."""

    error_type: str
    message: str


@dataclass(frozen=True)
class CallbackRequest:
    """A parsed ``POST /callback`` body: exactly one of ``payload``, ``failure`` or ``heartbeat``."""

    callback_id: str
    payload: dict[str, Any] | None = None
    failure: CallbackFailure | None = None
    heartbeat: bool = False

    @property
    def kind(self) -> AnswerKind:
        """Success, failure or heartbeat."""
        if self.heartbeat:
            return AnswerKind.HEARTBEAT
        return AnswerKind.FAILURE if self.failure is not None else AnswerKind.SUCCESS

    def result_bytes(self) -> bytes:
        """The payload as it is delivered and stored: compact UTF-8 JSON."""
        return self._result

    def answer_digest(self) -> str:
        """Fingerprint of the answer in its canonical form, comparable with what the execution's history recorded."""
        return self._digest

    # Computed once per request: the payload may be 256 KiB, and the size check,
    # the lease (every poll) and the delivery all need these.
    @cached_property
    def _result(self) -> bytes:
        return payload_bytes(self.payload)

    @cached_property
    def _digest(self) -> str:
        if self.failure is not None:
            return failure_digest(self.failure.error_type, self.failure.message)
        return success_digest(self.payload)


def payload_bytes(payload: Any) -> bytes:
    """Compact UTF-8 JSON; raises ``ValueError`` for non-finite numbers or lone surrogates."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def success_digest(payload: Any) -> str:
    """Digest of a success answer: its payload in the canonical form (``strict_json.canonical``).

    The same answer serialized another way (key order, whitespace, ``\\u``
    escapes, ``1`` or ``1.0``) has the same digest, so a retry of the answer
    that won is recognised however the client serialized it.
    """
    return _digest(b"success", payload)


def failure_digest(error_type: str | None, message: str | None) -> str:
    """Digest of a failure answer: its type and message, in the canonical form."""
    return _digest(b"failure", [error_type or "", message or ""])


def _digest(kind: bytes, value: Any) -> str:
    text = strict_json.canonical(value)
    return hashlib.sha256(kind + b"\n" + text.encode("utf-8", "surrogatepass")).hexdigest()


def parse_callback_request(body: str | None, callback_id: str | None = None) -> CallbackRequest:
    """Parse and validate a callback body.

    Args:
        body: The request body.
        callback_id: The callback a token named (``POST /callbacks/{callbackToken}``);
            then the body carries no ``callbackId``. None for ``POST /callback``.

    Raises:
        RequestTooLarge: The body is over ``MAX_CALLBACK_BODY_BYTES``.
        InvalidRequest: Not JSON, not an object, unknown fields, wrong types,
            or not exactly one of ``payload`` / ``error`` / ``heartbeat``.
    """
    if body is None or body == "":
        raise InvalidRequest("request body is required")
    if len(body.encode("utf-8")) > MAX_CALLBACK_BODY_BYTES:
        raise RequestTooLarge(f"request body exceeds {MAX_CALLBACK_BODY_BYTES} bytes")
    try:
        data = strict_json.loads(body)
    except RecursionError as error:
        raise InvalidRequest(f"request body is nested too deeply: a payload may nest at most "
                             f"{MAX_PAYLOAD_DEPTH} levels") from error
    except ValueError as error:
        raise InvalidRequest("request body must be valid JSON") from error
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    allowed = _CALLBACK_FIELDS if callback_id is None else _CALLBACK_FIELDS - {"callbackId"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(unknown)}")
    if callback_id is None:
        callback_id = data.get("callbackId")
        if not isinstance(callback_id, str) or not callback_id.strip():
            raise InvalidRequest("callbackId must be a non-empty string")
        if len(callback_id) > CALLBACK_ID_MAX_LENGTH:
            raise InvalidRequest(f"callbackId must be at most {CALLBACK_ID_MAX_LENGTH} characters")
    if sum(field in data for field in _ANSWER_FIELDS) != 1:
        raise InvalidRequest("send exactly one of payload, error or heartbeat")
    if "heartbeat" in data:
        if data["heartbeat"] is not True:
            raise InvalidRequest("heartbeat must be true")
        return CallbackRequest(callback_id=callback_id, heartbeat=True)
    if "payload" in data:
        if not isinstance(data["payload"], dict):
            raise InvalidRequest("payload must be a JSON object")
        request = CallbackRequest(callback_id=callback_id, payload=data["payload"])
        _check_storable(request)
        return request
    return CallbackRequest(callback_id=callback_id, failure=_parse_failure(data["error"]))


def _check_storable(request: CallbackRequest) -> None:
    """Refuse a payload the workflow could not checkpoint, store or return (the limits: ``shared.strict_json``)."""
    levels = strict_json.depth(request.payload)
    if levels > MAX_PAYLOAD_DEPTH:
        raise InvalidRequest(f"payload nests {levels} levels of objects and arrays; the limit is {MAX_PAYLOAD_DEPTH} levels")
    try:
        size = len(request.result_bytes())
    except (ValueError, UnicodeEncodeError) as error:
        raise InvalidRequest("payload must be valid JSON text (no lone surrogates)") from error
    if size > MAX_PAYLOAD_BYTES:
        raise RequestTooLarge(
            f"payload is {size} bytes as stored (compact UTF-8 JSON); the limit is {MAX_PAYLOAD_BYTES} bytes"
        )


def _parse_failure(error: Any) -> CallbackFailure:
    if not isinstance(error, dict) or set(error) - {"type", "message"}:
        raise InvalidRequest('error must be an object with "type" and "message"')
    error_type, message = error.get("type"), error.get("message")
    for name, value in (("type", error_type), ("message", message)):
        if not isinstance(value, str) or not value or len(value) > MAX_ERROR_FIELD_LENGTH:
            raise InvalidRequest(f"error.{name} must be a string of 1 to {MAX_ERROR_FIELD_LENGTH} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidRequest(f"error.{name} must be valid Unicode text") from error
    return CallbackFailure(error_type=str(error_type), message=str(message))


def status_view(record: WorkflowRecord, callback_url: str | None = None) -> dict[str, Any]:
    """The ``GET /workflow/{workflowId}`` response body (``callbackUrl``: the token route, while waiting)."""
    view: dict[str, Any] = {"workflowId": record.workflow_id, "status": record.status}
    if record.status == reg.WAITING_FOR_CALLBACK and record.callback_id:
        view["callbackId"] = record.callback_id
        if callback_url:
            view["callbackUrl"] = callback_url
    if record.result is not None:
        view["result"] = record.result
    if record.reason:
        view["reason"] = record.reason
    return view
