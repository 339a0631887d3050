"""Deliver a callback to the durable execution service (the I/O edge of POST /callback)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from api.callbacks import AlreadyCompleted, CallbackExpired, CallbackRequest
from shared.registry import WorkflowRegistry


class DurableServiceBusy(RuntimeError):
    """The durable service throttled the call (429); the caller may retry."""


class DurableServiceUnavailable(RuntimeError):
    """The durable service failed; nothing was delivered (502)."""


# What the service says when the callback exists no more, or no longer waits:
# the registry saw it waiting a moment ago, so another delivery won the race.
_NO_LONGER_WAITING = frozenset({"ResourceNotFoundException", "InvalidParameterValueException"})


def deliver_once(registry: WorkflowRegistry, lambda_client: Any, tenant_id: str, request: CallbackRequest) -> str:
    """Deliver a callback answer at most once; heartbeats may repeat.

    The registry claim makes concurrent duplicates lose with 409 before they
    reach the durable service. A delivery that did not reach a final answer
    (throttling, a service or network error, anything unexpected) releases the
    claim again, so the caller can retry.

    Returns:
        ``"success"``, ``"failure"`` or ``"heartbeat"``.
    """
    if request.heartbeat:
        _call(lambda: lambda_client.send_durable_execution_callback_heartbeat(CallbackId=request.callback_id))
        return "heartbeat"
    if not registry.claim_callback(tenant_id, request.callback_id):
        raise AlreadyCompleted("callback was already answered")
    try:
        return deliver_callback(lambda_client, request)
    except (AlreadyCompleted, CallbackExpired):
        raise  # final answers: the claim stays
    except Exception:
        registry.release_callback(tenant_id, request.callback_id)
        raise


def deliver_callback(lambda_client: Any, request: CallbackRequest) -> str:
    """Send the callback success or failure; return ``"success"`` or ``"failure"``.

    Raises:
        CallbackExpired: The service reports the callback timed out.
        AlreadyCompleted: The callback was completed by someone else first.
        DurableServiceBusy: Throttled.
        DurableServiceUnavailable: Any other service error.
    """
    if request.failure is not None:
        failure = request.failure
        _call(lambda: lambda_client.send_durable_execution_callback_failure(
            CallbackId=request.callback_id,
            Error={"ErrorType": failure.error_type, "ErrorMessage": failure.message},
        ))
        return "failure"
    _call(lambda: lambda_client.send_durable_execution_callback_success(
        CallbackId=request.callback_id, Result=request.result_bytes()
    ))
    return "success"


def _call(send: Any) -> None:
    """Run one durable-service call, translating its errors into the API's."""
    try:
        send()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "CallbackTimeoutException":
            raise CallbackExpired("callback timed out") from error
        if code in _NO_LONGER_WAITING:
            raise AlreadyCompleted("callback is no longer waiting") from error
        if code == "TooManyRequestsException":
            raise DurableServiceBusy("durable execution service is busy, retry later") from error
        raise DurableServiceUnavailable("durable execution service failed") from error
    except BotoCoreError as error:  # connection refused, timeouts: nothing was delivered
        raise DurableServiceUnavailable("durable execution service unreachable") from error
