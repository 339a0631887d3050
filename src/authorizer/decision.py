"""Decide an authorizer request from its headers: pure apart from the key-hash lookup it is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.contract import TENANT_HEADER, is_valid_tenant_id
from shared.identity import (
    API_KEY_HEADER,
    IDEMPOTENCY_HEADER,
    api_key_matches,
    mint_workflow_id,
)


@dataclass(frozen=True)
class Verdict:
    """Allow with a verified tenant, Deny (403), or unauthenticated (401)."""

    allowed: bool
    unauthenticated: bool = False
    tenant_id: str | None = None
    workflow_id: str | None = None
    reason: str = ""
    # The API key API Gateway meters and throttles the request against (the
    # tenant's usage plan, api_key_source AUTHORIZER): the key the caller
    # presented, once it is known to be this tenant's.
    usage_identifier_key: str | None = None


def decide(
    header: Callable[[str], str | None],
    request_id: str,
    key_hash_of: Callable[[str], str | None],
) -> Verdict:
    """Check that the API key belongs to the tenant named by the tenant header.

    Args:
        header: Case-insensitive header lookup (Powertools' ``event.headers.get``).
        request_id: API Gateway's request id (the workflow id without an idempotency key).
        key_hash_of: Returns a tenant's stored key hash, None for an unknown tenant.
    """
    api_key = header(API_KEY_HEADER)
    tenant_id = header(TENANT_HEADER)
    if not api_key:
        return Verdict(False, unauthenticated=True, reason="missing API key")
    if not is_valid_tenant_id(tenant_id):
        return Verdict(False, unauthenticated=True, reason="missing or malformed tenant id")
    assert tenant_id is not None  # narrowed by is_valid_tenant_id
    if not api_key_matches(api_key, key_hash_of(tenant_id)):
        return Verdict(False, tenant_id=tenant_id, reason="API key does not belong to this tenant")
    # Any key works: it is hashed into the workflow id (API Gateway caps header size).
    idempotency_key = header(IDEMPOTENCY_HEADER)
    return Verdict(
        True, tenant_id=tenant_id, workflow_id=mint_workflow_id(tenant_id, idempotency_key, request_id),
        usage_identifier_key=api_key,
    )
