"""The admin API's requests and answers: validation of every field and the public view of a tenant. Pure.

Each refusal names the field and its range (the 400's message); the ranges are
the ones docs/tenants.md states.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.contract import is_valid_tenant_id
from shared.tenants import ACTIVE, STATUSES, SUSPENDED, tiers

# The ranges of the tenant's fields.
DISPLAY_NAME_MAX = 128
CURRENCY = re.compile(r"[A-Z]{3}")
CURRENCIES_MAX = 20
# The workflow's request schema allows amounts up to 1,000,000,000.
MAX_AMOUNT_LIMIT = 1_000_000_000
CALLBACK_TIMEOUT_MIN = 1
# The durable execution must outlive the callback wait by this much (the finalize and record steps).
EXECUTION_MARGIN_SECONDS = 300
HEARTBEAT_TIMEOUT_MAX = 86_400
OVERLAP_DEFAULT = 3600
OVERLAP_MAX = 7 * 86_400
LIST_LIMIT_DEFAULT = 20
LIST_LIMIT_MAX = 100
NEXT_TOKEN_MAX = 2048

POLICY_FIELDS = ("displayName", "allowedCurrencies", "maxAmount", "callbackTimeoutSeconds", "heartbeatTimeoutSeconds")
# Who may send to the tenant's start queue (docs/queue-entry.md); absent: this account's principals IAM allows.
PRODUCERS_FIELD = "startQueueProducers"
PRODUCERS_MAX = 10
PRODUCER_ARN = re.compile(r"arn:aws[a-zA-Z-]*:iam::\d{12}:(root|(user|role)/[\w+=,.@/-]{1,512})")
CREATE_FIELDS = frozenset({"tenantId", "tier", PRODUCERS_FIELD, *POLICY_FIELDS})
PATCH_FIELDS = frozenset({"status", "tier", PRODUCERS_FIELD, *POLICY_FIELDS})
ROTATE_FIELDS = frozenset({"overlapSeconds"})


class InvalidField(ValueError):
    """A request field is missing, of the wrong type or out of range (400 naming it)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class Limits:
    """Ranges that depend on the deployment: the workflow's durable execution timeout."""

    execution_timeout_seconds: int = 604_800

    @property
    def callback_timeout_max(self) -> int:
        return max(CALLBACK_TIMEOUT_MIN, self.execution_timeout_seconds - EXECUTION_MARGIN_SECONDS)


def parse_json_object(body: str | None) -> dict[str, Any]:
    """The body as a JSON object; an absent body is ``{}``."""
    if body is None or body.strip() == "":
        return {}
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise InvalidField("body", f"not JSON ({error})") from None
    if not isinstance(value, dict):
        raise InvalidField("body", "must be a JSON object")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unknown(body: dict[str, Any], allowed: frozenset[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise InvalidField(extra[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _integer(body: dict[str, Any], field: str, low: int, high: int) -> int:
    value = body[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise InvalidField(field, f"must be a whole number from {low} to {high}")
    if not low <= value <= high:
        raise InvalidField(field, f"must be from {low} to {high}, not {value:g}")
    return int(value)


def _policy(body: dict[str, Any], limits: Limits, *, required: bool) -> dict[str, Any]:
    """The policy fields present in ``body`` (all but heartbeatTimeoutSeconds required when ``required``)."""
    fields: dict[str, Any] = {}
    for field in POLICY_FIELDS:
        if field not in body:
            if required and field != "heartbeatTimeoutSeconds":
                raise InvalidField(field, "is required")
            continue
        value = body[field]
        if field == "displayName":
            if not isinstance(value, str) or not value.strip() or len(value) > DISPLAY_NAME_MAX \
                    or not value.isprintable():
                raise InvalidField(field, f"must be 1 to {DISPLAY_NAME_MAX} printable characters")
            fields[field] = value
        elif field == "allowedCurrencies":
            if (not isinstance(value, list) or not 1 <= len(value) <= CURRENCIES_MAX
                    or not all(isinstance(code, str) and CURRENCY.fullmatch(code) for code in value)
                    or len(set(value)) != len(value)):
                raise InvalidField(field, f"must be a list of 1 to {CURRENCIES_MAX} distinct ISO 4217 codes (\"EUR\")")
            fields[field] = sorted(value)
        elif field == "maxAmount":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0 < value <= MAX_AMOUNT_LIMIT:
                raise InvalidField(field, f"must be a number greater than 0 and at most {MAX_AMOUNT_LIMIT}")
            fields[field] = value
        elif field == "callbackTimeoutSeconds":
            fields[field] = _integer(body, field, CALLBACK_TIMEOUT_MIN, limits.callback_timeout_max)
        else:
            fields[field] = _integer(body, field, 0, HEARTBEAT_TIMEOUT_MAX)
    if "heartbeatTimeoutSeconds" in fields and "callbackTimeoutSeconds" in fields \
            and fields["heartbeatTimeoutSeconds"] > fields["callbackTimeoutSeconds"]:
        raise InvalidField("heartbeatTimeoutSeconds", "must not exceed callbackTimeoutSeconds")
    return fields


def _producers(body: dict[str, Any]) -> dict[str, Any]:
    """``startQueueProducers`` when present: 1 to 10 distinct IAM principal ARNs (account root, user or role)."""
    if PRODUCERS_FIELD not in body:
        return {}
    value = body[PRODUCERS_FIELD]
    if (not isinstance(value, list) or not 1 <= len(value) <= PRODUCERS_MAX or len(set(map(str, value))) != len(value)
            or not all(isinstance(arn, str) and PRODUCER_ARN.fullmatch(arn) for arn in value)):
        raise InvalidField(PRODUCERS_FIELD, f"must be a list of 1 to {PRODUCERS_MAX} distinct IAM principal ARNs "
                                            "(arn:aws:iam::<account>:root, :role/<name> or :user/<name>)")
    return {PRODUCERS_FIELD: sorted(value)}


def _tier(body: dict[str, Any]) -> str:
    value = body.get("tier")
    if not isinstance(value, str) or value not in tiers():
        raise InvalidField("tier", f"must be one of {', '.join(sorted(tiers()))}")
    return value


@dataclass(frozen=True)
class CreateRequest:
    """``POST /tenants``."""

    tenant_id: str
    tier: str
    policy: dict[str, Any]


def parse_create(body: dict[str, Any], limits: Limits) -> CreateRequest:
    """Validate an onboarding request."""
    _unknown(body, CREATE_FIELDS)
    tenant_id = body.get("tenantId")
    if not is_valid_tenant_id(tenant_id):
        raise InvalidField("tenantId", "is required: 1 to 64 letters, digits, '.', '_' or '-'")
    tier = _tier(body)
    return CreateRequest(str(tenant_id), tier, {**_policy(body, limits, required=True), **_producers(body)})


@dataclass(frozen=True)
class PatchRequest:
    """``PATCH /tenants/{tenantId}``: any of status, tier and policy fields."""

    status: str | None
    tier: str | None
    policy: dict[str, Any]


def parse_patch(body: dict[str, Any], limits: Limits) -> PatchRequest:
    """Validate a change; at least one field."""
    _unknown(body, PATCH_FIELDS)
    if not body:
        raise InvalidField("body", f"name at least one of {', '.join(sorted(PATCH_FIELDS))}")
    status = body.get("status")
    if "status" in body and status not in (ACTIVE, SUSPENDED):
        raise InvalidField("status", f"must be {ACTIVE} or {SUSPENDED}")
    tier = _tier(body) if "tier" in body else None
    return PatchRequest(status, tier, {**_policy(body, limits, required=False), **_producers(body)})


def parse_overlap(body: dict[str, Any]) -> int:
    """``POST /tenants/{tenantId}/api-keys``: how long the previous key keeps working."""
    _unknown(body, ROTATE_FIELDS)
    if "overlapSeconds" not in body:
        return OVERLAP_DEFAULT
    return _integer(body, "overlapSeconds", 0, OVERLAP_MAX)


@dataclass(frozen=True)
class ListRequest:
    """``GET /tenants``: page size, where to go on, which status."""

    limit: int
    start_key: dict[str, Any] | None
    status: str | None


def parse_list(query: dict[str, str]) -> ListRequest:
    """Validate the query string of ``GET /tenants``."""
    unknown = sorted(set(query) - {"limit", "nextToken", "status"})
    if unknown:
        raise InvalidField(unknown[0], "unknown query parameter (allowed: limit, nextToken, status)")
    raw_limit = query.get("limit")
    limit = LIST_LIMIT_DEFAULT
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= LIST_LIMIT_MAX:
            raise InvalidField("limit", f"must be a whole number from 1 to {LIST_LIMIT_MAX}")
        limit = int(raw_limit)
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise InvalidField("status", f"must be one of {', '.join(STATUSES)}")
    return ListRequest(limit, decode_next_token(query.get("nextToken")), status)


def encode_next_token(last_key: dict[str, Any] | None) -> str | None:
    """The opaque ``nextToken`` for a page that ended at ``last_key``."""
    if not last_key:
        return None
    return base64.urlsafe_b64encode(json.dumps(last_key, sort_keys=True).encode()).decode()


def decode_next_token(token: str | None) -> dict[str, Any] | None:
    """Inverse of :func:`encode_next_token`; a token it did not make is a 400."""
    if token is None:
        return None
    try:
        if len(token) > NEXT_TOKEN_MAX:
            raise ValueError("too long")
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidField("nextToken", "is not a token a previous page returned") from None
    if not (isinstance(value, dict) and set(value) == {"tenantId"} and is_valid_tenant_id(value["tenantId"])):
        raise InvalidField("nextToken", "is not a token a previous page returned")
    return value


# -- answers --------------------------------------------------------------------------------------

# What GET /tenants/{tenantId} shows; never a key, a key hash or the metering key.
VIEW_FIELDS = ("tenantId", "status", "tier", *POLICY_FIELDS, "callbackQueueUrl", "startQueueUrl", PRODUCERS_FIELD,
               "createdAt", "updatedAt", "reason")


def tenant_view(item: dict[str, Any]) -> dict[str, Any]:
    """The public form of a tenant item: :data:`VIEW_FIELDS` only, numbers as JSON numbers."""
    view = {field: _plain(item[field]) for field in VIEW_FIELDS if field in item}
    view.setdefault("callbackQueueUrl", None)
    view.setdefault("startQueueUrl", None)
    return view


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (list, tuple, set)):
        return [_plain(element) for element in sorted(value) if element is not None] if isinstance(value, set) \
            else [_plain(element) for element in value]
    return value
