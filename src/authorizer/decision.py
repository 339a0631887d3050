"""Decide an authorizer request from its headers: pure apart from the tenant lookup it is given."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.contract import TENANT_HEADER, is_valid_tenant_id
from shared.identity import (
    API_KEY_HEADER,
    IDEMPOTENCY_HEADER,
    credential_matches,
    mint_workflow_id,
)
from shared.tenants import ACTIVE

# The attributes of the tenant item the decision reads (the authorizer's projection).
TENANT_FIELDS = ("status", "apiKeyHash", "previousApiKeyHash", "previousApiKeyExpiresAt", "meteringKey")


@dataclass(frozen=True)
class Verdict:
    """Allow with a verified tenant, Deny (403), or unauthenticated (401)."""

    allowed: bool
    unauthenticated: bool = False
    tenant_id: str | None = None
    workflow_id: str | None = None
    reason: str = ""
    # The API key API Gateway meters and throttles the request against (the
    # tenant's tier's usage plan, api_key_source AUTHORIZER): the tenant's
    # internal metering key, never the credential the caller presented. It is
    # no credential: with api_key_source AUTHORIZER, API Gateway reads it only
    # from this answer, never from a request.
    usage_identifier_key: str | None = None


def decide(
    header: Callable[[str], str | None],
    request_id: str,
    tenant_of: Callable[[str], Mapping[str, Any] | None],
    now: Callable[[], float] = time.time,
) -> Verdict:
    """Check that the API key belongs to the tenant named by the tenant header, and that it is ACTIVE.

    Args:
        header: Case-insensitive header lookup (Powertools' ``event.headers.get``).
        request_id: API Gateway's request id (the workflow id without an idempotency key).
        tenant_of: Returns the tenant's item (at least :data:`TENANT_FIELDS`), None for an unknown tenant.
        now: Epoch seconds (the previous key's expiry is compared with it).
    """
    api_key = header(API_KEY_HEADER)
    tenant_id = header(TENANT_HEADER)
    if not api_key:
        return Verdict(False, unauthenticated=True, reason="missing API key")
    if not is_valid_tenant_id(tenant_id):
        return Verdict(False, unauthenticated=True, reason="missing or malformed tenant id")
    assert tenant_id is not None  # narrowed by is_valid_tenant_id
    item = tenant_of(tenant_id) or {}
    if not credential_matches(api_key, dict(item), now()):
        return Verdict(False, tenant_id=tenant_id, reason="API key does not belong to this tenant")
    if item.get("status") != ACTIVE:
        # Suspension and offboarding take effect on the tenant's next request:
        # the item is read (strongly consistent) on every request, never cached.
        return Verdict(False, tenant_id=tenant_id, reason=f"tenant is {str(item.get('status', 'unknown')).lower()}")
    # Any key works: it is hashed into the workflow id (API Gateway caps header size).
    idempotency_key = header(IDEMPOTENCY_HEADER)
    metering_key = item.get("meteringKey")
    return Verdict(
        True, tenant_id=tenant_id, workflow_id=mint_workflow_id(tenant_id, idempotency_key, request_id),
        usage_identifier_key=metering_key if isinstance(metering_key, str) and metering_key else None,
    )
