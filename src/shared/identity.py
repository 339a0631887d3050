"""Tenant API keys and workflow ids: hashing, constant-time checks, idempotent id minting. Pure."""

from __future__ import annotations

import hashlib
import hmac

from shared.contract import api_contract

# Keys are 256-bit random tokens, not passwords: a plain SHA-256 is enough to
# make the stored value useless to a reader of the table, and it is what
# Terraform's sha256() can compute when it seeds the demo tenants.
API_KEY_HEADER: str = api_contract()["apiKeyHeader"]
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_API_KEY_LENGTH = 256


def hash_api_key(api_key: str) -> str:
    """Hex SHA-256 of an API key, as stored in the tenants table (``apiKeyHash``)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def api_key_matches(presented: str | None, stored_hash: object) -> bool:
    """True when ``presented`` hashes to ``stored_hash``; constant time in the hash comparison."""
    if not presented or not isinstance(stored_hash, str) or len(presented) > MAX_API_KEY_LENGTH:
        return False
    return hmac.compare_digest(hash_api_key(presented), stored_hash)


def mint_workflow_id(tenant_id: str, idempotency_key: str | None, request_id: str) -> str:
    """The workflow id (= durable execution name) for a start request.

    Without an idempotency key it is the API Gateway request id. With one it is
    derived from the tenant *and* the key, so a retry returns the same workflow
    and the same key sent by two tenants can never name the same execution
    (execution names are unique per function, across tenants).
    """
    if not idempotency_key:
        return request_id
    digest = hashlib.sha256(f"{tenant_id}\n{idempotency_key}".encode()).hexdigest()
    return f"idem-{digest[:40]}"


# A credential is 32 random bytes, URL-safe base64 (43 characters).
API_KEY_BYTES = 32


def new_api_key() -> str:
    """A new tenant credential (shown to the operator once; only its hash is stored)."""
    import secrets  # noqa: PLC0415 - only the control plane mints keys

    return secrets.token_urlsafe(API_KEY_BYTES)


def credential_matches(presented: str | None, item: dict[str, object], now: float) -> bool:
    """True when ``presented`` is the tenant's current key, or its previous one before that one's expiry.

    During a rotation the tenant item holds ``apiKeyHash`` (the new key) and
    ``previousApiKeyHash`` with ``previousApiKeyExpiresAt`` (epoch seconds).
    Both comparisons always run, in constant time, so the answer's timing does
    not say which key matched.
    """
    current = api_key_matches(presented, item.get("apiKeyHash"))
    previous = api_key_matches(presented, item.get("previousApiKeyHash"))
    expires_at = item.get("previousApiKeyExpiresAt")
    try:
        previous_valid = expires_at is not None and now < float(expires_at)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        previous_valid = False
    return current or (previous and previous_valid)
