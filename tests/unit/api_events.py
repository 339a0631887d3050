"""API Gateway proxy events for the unit tests, built from the sample events in events/."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


@cache
def _template() -> dict[str, Any]:
    return json.loads((EVENTS_DIR / "send-callback.json").read_text())


def proxy_event(
    *,
    method: str,
    resource: str,
    path: str,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    body: Any = None,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A REST proxy event shaped as events/send-callback.json, for another route, headers or body.

    Args:
        body: Text as sent, or a value to send as JSON.
        authorizer: The authorizer's context; None for a request that never passed one.
    """
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    event = copy.deepcopy(_template())
    headers = dict(headers or {})
    event.update(
        resource=resource, path=path, httpMethod=method, headers=headers,
        multiValueHeaders={name: [value] for name, value in headers.items()},
        pathParameters=path_parameters, body=body,
    )
    context = event["requestContext"]
    context.update(resourcePath=resource, httpMethod=method, path=f"/{context['stage']}{path}")
    if authorizer is None:
        context.pop("authorizer", None)
    else:
        context["authorizer"] = dict(authorizer)
    return event
