"""Tell the external party that a workflow waits for it: one EventBridge event per wait (I/O edge)."""

from __future__ import annotations

import json
from typing import Any

from shared.contract import callback_waiting_event


class NotificationFailed(RuntimeError):
    """EventBridge did not accept the event (the submitter step retries)."""


def waiting_event(bus_name: str, tenant_id: str, workflow_id: str, callback_url: str, expires_at: int) -> dict[str, Any]:
    """The ``PutEvents`` entry: detail ``{tenantId, workflowId, callbackUrl, expiresAt}``."""
    shape = callback_waiting_event()
    return {
        "EventBusName": bus_name,
        "Source": shape["source"],
        "DetailType": shape["detailType"],
        "Detail": json.dumps({"tenantId": tenant_id, "workflowId": workflow_id,
                              "callbackUrl": callback_url, "expiresAt": expires_at}),
    }


def publish(events_client: Any, entry: dict[str, Any]) -> None:
    """Put one event; raise :class:`NotificationFailed` if EventBridge refused it."""
    response = events_client.put_events(Entries=[entry])
    if response.get("FailedEntryCount"):
        failed = (response.get("Entries") or [{}])[0]
        raise NotificationFailed(f"EventBridge refused the event: {failed.get('ErrorCode', 'unknown error')}")
