"""Callback and status rules of the API function: parse, authorize by tenant, decide. No I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared import registry as reg
from shared.contract import CALLBACK_ID_MAX_LENGTH
from shared.registry import WorkflowRecord

# The durable service caps a callback result; refuse bigger bodies up front.
MAX_CALLBACK_BODY_BYTES = 256 * 1024
MAX_ERROR_FIELD_LENGTH = 1024
_CALLBACK_FIELDS = frozenset({"callbackId", "payload", "error", "heartbeat"})
_ANSWER_FIELDS = ("payload", "error", "heartbeat")


class InvalidRequest(ValueError):
    """The request body or a parameter is malformed (400)."""


class Unauthenticated(PermissionError):
    """No verified tenant identity reached the function (401); the authorizer should have refused."""


class RequestTooLarge(ValueError):
    """The body exceeds what the durable service accepts (413)."""


class NotFound(LookupError):
    """Unknown id, or an id that belongs to another tenant (404: never say which)."""


class AlreadyCompleted(RuntimeError):
    """The workflow is no longer waiting for this callback (409)."""


class CallbackExpired(RuntimeError):
    """The callback timed out before it arrived (410)."""


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

    def result_bytes(self) -> bytes:
        """The payload as the durable service expects it: JSON text."""
        return json.dumps(self.payload, separators=(",", ":")).encode("utf-8")


def parse_callback_request(body: str | None) -> CallbackRequest:
    """Parse and validate a ``POST /callback`` body.

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
        data = json.loads(body, parse_constant=_reject_constant)
    except (json.JSONDecodeError, RecursionError, ValueError) as error:
        raise InvalidRequest("request body must be valid JSON") from error
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    unknown = sorted(set(data) - _CALLBACK_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(unknown)}")
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
        return CallbackRequest(callback_id=callback_id, payload=data["payload"])
    return CallbackRequest(callback_id=callback_id, failure=_parse_failure(data["error"]))


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON; Python's parser accepts them unless told not to."""
    raise ValueError(f"{name} is not valid JSON")


def _parse_failure(error: Any) -> CallbackFailure:
    if not isinstance(error, dict) or set(error) - {"type", "message"}:
        raise InvalidRequest('error must be an object with "type" and "message"')
    error_type, message = error.get("type"), error.get("message")
    for name, value in (("type", error_type), ("message", message)):
        if not isinstance(value, str) or not value or len(value) > MAX_ERROR_FIELD_LENGTH:
            raise InvalidRequest(f"error.{name} must be a string of 1 to {MAX_ERROR_FIELD_LENGTH} characters")
    return CallbackFailure(error_type=str(error_type), message=str(message))


def ensure_waiting(record: WorkflowRecord | None) -> WorkflowRecord:
    """Return the record if its workflow still waits for its callback.

    Raises:
        NotFound: No such callback for this tenant.
        CallbackExpired: The workflow timed out.
        AlreadyCompleted: The workflow has already ended otherwise.
    """
    if record is None:
        raise NotFound("callback not found")
    if record.status == reg.TIMED_OUT:
        raise CallbackExpired("callback timed out")
    if record.status != reg.WAITING_FOR_CALLBACK:
        raise AlreadyCompleted(f"workflow is already {record.status}")
    return record


def status_view(record: WorkflowRecord) -> dict[str, Any]:
    """The ``GET /workflow/{workflowId}`` response body."""
    view: dict[str, Any] = {"workflowId": record.workflow_id, "status": record.status}
    if record.status == reg.WAITING_FOR_CALLBACK and record.callback_id:
        view["callbackId"] = record.callback_id
    if record.result is not None:
        view["result"] = record.result
    if record.reason:
        view["reason"] = record.reason
    return view
