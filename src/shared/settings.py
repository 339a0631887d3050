"""Runtime settings read from the environment that Terraform and the local stack set."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_TENANT_CACHE_TTL_SECONDS = 300
# Registry items outlive their workflow by this long, then DynamoDB TTL removes them.
DEFAULT_REGISTRY_RETENTION_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Settings:
    """Names and tunables shared by both functions."""

    tenants_table: str
    workflows_table: str
    tenant_cache_ttl_seconds: int
    registry_retention_seconds: int
    # Callback tokens and notification (the authorizer needs none of them).
    callback_signing_secret: str | None = None
    callback_base_url: str | None = None
    event_bus_name: str | None = None


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed."""


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from ``environ`` (default: ``os.environ``).

    Raises:
        SettingsError: When a table name is missing or a number is not a positive integer.
    """
    env = os.environ if environ is None else environ
    missing = [name for name in ("TENANTS_TABLE_NAME", "WORKFLOWS_TABLE_NAME") if not env.get(name)]
    if missing:
        raise SettingsError(f"missing environment variables: {', '.join(missing)}")
    return Settings(
        tenants_table=env["TENANTS_TABLE_NAME"],
        workflows_table=env["WORKFLOWS_TABLE_NAME"],
        tenant_cache_ttl_seconds=_positive_int(env, "TENANT_CACHE_TTL_SECONDS", DEFAULT_TENANT_CACHE_TTL_SECONDS),
        registry_retention_seconds=_positive_int(
            env, "REGISTRY_RETENTION_SECONDS", DEFAULT_REGISTRY_RETENTION_SECONDS
        ),
        callback_signing_secret=env.get("CALLBACK_SIGNING_SECRET_NAME") or None,
        callback_base_url=env.get("CALLBACK_BASE_URL") or None,
        event_bus_name=env.get("EVENT_BUS_NAME") or None,
    )


def _positive_int(env: dict[str, str] | os._Environ[str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from error
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value
