"""Deliver a callback to the durable execution service (the I/O edge of POST /callback)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from api.callbacks import AlreadyCompleted, CallbackExpired, CallbackRequest


class DurableServiceBusy(RuntimeError):
    """The durable service throttled the call (429); the caller may retry."""


class DurableServiceUnavailable(RuntimeError):
    """The durable service failed; nothing was delivered (502)."""


# What the service says when the callback exists no more, or no longer waits:
# the registry saw it waiting a moment ago, so another delivery won the race.
_NO_LONGER_WAITING = frozenset({"ResourceNotFoundException", "InvalidParameterValueException"})


def deliver_callback(lambda_client: Any, request: CallbackRequest) -> str:
    """Send the callback success or failure; return ``"success"`` or ``"failure"``.

    Raises:
        CallbackExpired: The service reports the callback timed out.
        AlreadyCompleted: The callback was completed by someone else first.
        DurableServiceBusy: Throttled.
        DurableServiceUnavailable: Any other service error.
    """
    try:
        if request.failure is not None:
            lambda_client.send_durable_execution_callback_failure(
                CallbackId=request.callback_id,
                Error={"ErrorType": request.failure.error_type, "ErrorMessage": request.failure.message},
            )
            return "failure"
        lambda_client.send_durable_execution_callback_success(
            CallbackId=request.callback_id, Result=request.result_bytes()
        )
        return "success"
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "CallbackTimeoutException":
            raise CallbackExpired("callback timed out") from error
        if code in _NO_LONGER_WAITING:
            raise AlreadyCompleted("callback is no longer waiting") from error
        if code == "TooManyRequestsException":
            raise DurableServiceBusy("durable execution service is busy, retry later") from error
        raise DurableServiceUnavailable("durable execution service failed") from error
