"""Tenant configuration: the typed record and its read from the tenants table."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

ACTIVE = "ACTIVE"


@dataclass(frozen=True)
class TenantConfig:
    """A tenant's policy as stored in the tenants table."""

    tenant_id: str
    display_name: str
    status: str
    allowed_currencies: tuple[str, ...]
    max_amount: float
    callback_timeout_seconds: int
    heartbeat_timeout_seconds: int = 0

    @property
    def is_active(self) -> bool:
        """True when the tenant may start workflows."""
        return self.status == ACTIVE

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, used for durable checkpoints."""
        data = asdict(self)
        data["allowed_currencies"] = list(self.allowed_currencies)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TenantConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tenant_id=data["tenant_id"],
            display_name=data["display_name"],
            status=data["status"],
            allowed_currencies=tuple(data["allowed_currencies"]),
            max_amount=float(data["max_amount"]),
            callback_timeout_seconds=int(data["callback_timeout_seconds"]),
            heartbeat_timeout_seconds=int(data.get("heartbeat_timeout_seconds", 0)),
        )

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> TenantConfig:
        """Build from a DynamoDB item (or an entry of ``demo_tenants.json``)."""
        return cls(
            tenant_id=str(item["tenantId"]),
            display_name=str(item.get("displayName", item["tenantId"])),
            status=str(item["status"]),
            allowed_currencies=tuple(sorted(str(c) for c in item.get("allowedCurrencies", []))),
            max_amount=float(item["maxAmount"]),
            callback_timeout_seconds=int(item["callbackTimeoutSeconds"]),
            heartbeat_timeout_seconds=int(item.get("heartbeatTimeoutSeconds", 0)),
        )


def read_tenant_status(tenants_table: Any, tenant_id: str) -> str | None:
    """Read only a tenant's status (strongly consistent); None when the tenant does not exist.

    The token route needs nothing else, and a partial item (a tenant being
    onboarded) must not fail it.
    """
    response = tenants_table.get_item(Key={"tenantId": tenant_id}, ConsistentRead=True,
                                      ProjectionExpression="#status", ExpressionAttributeNames={"#status": "status"})
    item = response.get("Item")
    return str(item["status"]) if item and "status" in item else None


def tenant_item(tenant: dict[str, Any]) -> dict[str, Any]:
    """Turn a ``demo_tenants.json`` entry into an item for ``Table.put_item`` (numbers as Decimal)."""
    return {
        key: Decimal(str(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        for key, value in tenant.items()
    }


def read_tenant(tenants_table: Any, tenant_id: str) -> TenantConfig | None:
    """Read one tenant with a strongly consistent GetItem; None when it does not exist."""
    response = tenants_table.get_item(Key={"tenantId": tenant_id}, ConsistentRead=True)
    item = response.get("Item")
    return TenantConfig.from_item(item) if item else None
