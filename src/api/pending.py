"""``GET /workflows``: the calling tenant's workflows, newest first, one DynamoDB Query per page. Pure: no I/O.

``nextToken`` is opaque to the client and bound to the request that made it:
the page's ``LastEvaluatedKey``, the tenant and the status filter, signed with
HMAC-SHA256 under a key derived from the callback signing key. A token that
was altered, forged, made for another tenant or another filter, or signed
before a key rotation is refused with 400, and the registry is never asked
with it; its key is checked once more against the tenant's own partition.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from api.callbacks import InvalidRequest
from shared import registry as reg
from shared.registry import WorkflowPage, WorkflowRecord

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# A token holds one LastEvaluatedKey (ids of at most 128 and 64 characters): far below this.
MAX_TOKEN_CHARS = 2048
_PARAMETERS = frozenset({"status", "limit", "nextToken"})
_KEY_DOMAIN = b"workflow-list-token/v1"
_INVALID_TOKEN = "nextToken is not valid for this request (it is bound to the tenant and the status filter)"


@dataclass(frozen=True)
class ListRequest:
    """A parsed ``GET /workflows``: the status filter (None: every open workflow), page size, where to start."""

    status: str | None
    limit: int
    start_key: dict[str, str] | None = None


def list_key(signing_key: bytes) -> bytes:
    """The key that signs ``nextToken``: derived from the callback signing key, so a callback token never verifies as one."""
    return hmac.new(signing_key, _KEY_DOMAIN, hashlib.sha256).digest()


def parse_list_request(query: Mapping[str, list[str]] | None, tenant_id: str,
                       key: Callable[[], bytes]) -> ListRequest:
    """Validate the query string (each parameter at most once).

    Args:
        query: The multi-value query string parameters.
        tenant_id: The verified calling tenant (a ``nextToken`` must be its own).
        key: The ``nextToken`` key (:func:`list_key`), read only when a token is presented.

    Raises:
        InvalidRequest: An unknown or repeated parameter, an unknown status, a
            limit outside 1..100, or a ``nextToken`` not made for this tenant and filter.
    """
    values = dict(query or {})
    unknown = sorted(set(values) - _PARAMETERS)
    if unknown:
        raise InvalidRequest(f"unknown query parameters: {', '.join(unknown)} (allowed: limit, nextToken, status)")
    repeated = sorted(name for name, given in values.items() if len(given) != 1)
    if repeated:
        raise InvalidRequest(f"give each query parameter once: {', '.join(repeated)}")
    single = {name: given[0] for name, given in values.items()}
    status = single.get("status")
    if status is not None and status not in reg.OPEN_STATUSES | reg.FINAL_STATUSES:
        allowed = ", ".join(sorted(reg.OPEN_STATUSES | reg.FINAL_STATUSES))
        raise InvalidRequest(f"status must be one of {allowed}")
    limit = _limit(single.get("limit"))
    token = single.get("nextToken")
    start_key = read_next_token(key(), token, tenant_id, status) if token is not None else None
    return ListRequest(status=status, limit=limit, start_key=start_key)


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def next_token(key: bytes, tenant_id: str, status: str | None, last_key: dict[str, str]) -> str:
    """The opaque ``nextToken`` of a page whose Query stopped at ``last_key``."""
    body = json.dumps({"t": tenant_id, "s": status, "k": last_key}, sort_keys=True, separators=(",", ":")).encode()
    return f"{_b64(body)}.{_b64(hmac.new(key, body, hashlib.sha256).digest())}"


def read_next_token(key: bytes, token: str, tenant_id: str, status: str | None) -> dict[str, str]:
    """The ``LastEvaluatedKey`` inside ``token``, if this tenant and filter's request made it.

    Raises:
        InvalidRequest: Malformed, altered, signed with another key, or made for another tenant or filter.
    """
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise InvalidRequest(_INVALID_TOKEN)
    encoded_body, encoded_mac = token.split(".")
    try:
        body, mac = _unb64(encoded_body), _unb64(encoded_mac)
    except (binascii.Error, ValueError) as error:
        raise InvalidRequest(_INVALID_TOKEN) from error
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
        raise InvalidRequest(_INVALID_TOKEN)
    try:
        data = json.loads(body)
    except ValueError as error:  # signed by us, so never: refused all the same
        raise InvalidRequest(_INVALID_TOKEN) from error
    last_key = data.get("k") if isinstance(data, dict) else None
    if (not isinstance(data, dict) or data.get("t") != tenant_id or data.get("s") != status
            or not _is_tenant_key(last_key, tenant_id, status)):
        raise InvalidRequest(_INVALID_TOKEN)
    return dict(last_key)


def _is_tenant_key(last_key: Any, tenant_id: str, status: str | None) -> bool:
    """Defence in depth: the start key lies in this tenant's partition of the index its filter reads."""
    _index, attribute, value = reg.list_index(tenant_id, status)
    return (isinstance(last_key, dict) and set(last_key) == {"tenantId", "recordId", attribute, "createdKey"}
            and all(isinstance(item, str) for item in last_key.values())
            and last_key["tenantId"] == tenant_id and last_key[attribute] == value)


def list_item(record: WorkflowRecord, callback_url: str | None) -> dict[str, Any]:
    """One listed workflow: ``workflowId``, ``status``, ``createdAt`` and, while it waits, ``callbackDeadline``, ``callbackUrl``."""
    item: dict[str, Any] = {"workflowId": record.workflow_id, "status": record.status, "createdAt": record.created_at}
    if record.status == reg.WAITING_FOR_CALLBACK:
        if record.callback_deadline is not None:
            item["callbackDeadline"] = record.callback_deadline
        if callback_url:
            item["callbackUrl"] = callback_url
    return item


def list_view(page: WorkflowPage, url_for: Callable[[WorkflowRecord], str | None],
              token_for: Callable[[dict[str, str]], str]) -> dict[str, Any]:
    """The response body: ``{"workflows": [...], "nextToken"?}`` (no ``nextToken`` on the last page)."""
    view: dict[str, Any] = {"workflows": [list_item(record, url_for(record)) for record in page.records]}
    if page.last_key:
        view["nextToken"] = token_for(page.last_key)
    return view
