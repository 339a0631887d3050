"""Demo API keys for the local stack's request authorizer.

The tenants table stores only ``apiKeyHash`` (hex SHA-256 of the key). Locally each
demo tenant gets a random key, kept in ``<state dir>/api-keys.json`` so it stays
valid across restarts; the banner, the demo and the tests read it from there.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from shared.identity import API_KEY_HEADER, hash_api_key

__all__ = ["API_KEY_HEADER", "KEYS_FILE", "ensure_api_keys", "hash_api_key", "load_api_keys", "with_key_hashes"]

KEYS_FILE = "api-keys.json"


def load_api_keys(path: Path) -> dict[str, str]:
    """Keys by tenant id from a keys file; empty when it does not exist."""
    return json.loads(path.read_text()) if path.is_file() else {}


def ensure_api_keys(state_dir: Path, tenant_ids: list[str]) -> dict[str, str]:
    """The demo keys of ``tenant_ids``, minting and saving any that are missing."""
    path = Path(state_dir) / KEYS_FILE
    keys = load_api_keys(path)
    missing = [tenant_id for tenant_id in tenant_ids if tenant_id not in keys]
    if missing:
        keys.update({tenant_id: secrets.token_urlsafe(32) for tenant_id in missing})
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(keys, indent=2))
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    return keys


def with_key_hashes(tenants: list[dict[str, Any]], keys: dict[str, str]) -> list[dict[str, Any]]:
    """Tenant items with ``apiKeyHash`` set from ``keys`` (an item's own hash is kept)."""
    return [
        {**tenant, "apiKeyHash": tenant.get("apiKeyHash") or hash_api_key(keys[tenant["tenantId"]])}
        if tenant["tenantId"] in keys else tenant
        for tenant in tenants
    ]
