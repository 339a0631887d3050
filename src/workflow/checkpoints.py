"""What the workflow's steps checkpoint, as typed values, and how they go to and from checkpoint text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext

from shared import strict_json
from shared.tenants import TenantConfig


@dataclass(frozen=True)
class Validation:
    """The outcome of step one: was the request accepted, and with which tenant data.

    Attributes:
        accepted: The tenant's policy accepted the request.
        duplicate: Another execution already owns this workflow id (nothing was done).
        reason: Why the request was rejected, if it was.
        environment_id: The execution environment that ran the step.
        tenant_data_from_cache: The tenant came from this environment's memory.
        tenant: The tenant's configuration as validated (None for an unknown tenant).
    """

    accepted: bool
    environment_id: str
    duplicate: bool = False
    reason: str | None = None
    tenant_data_from_cache: bool = False
    tenant: TenantConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        """The checkpointed form (JSON object)."""
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "reason": self.reason,
            "environmentId": self.environment_id,
            "tenantDataFromCache": self.tenant_data_from_cache,
            "tenant": self.tenant.to_dict() if self.tenant else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Validation:
        """Read the checkpointed form back."""
        tenant = data.get("tenant")
        return cls(
            accepted=bool(data["accepted"]),
            duplicate=bool(data.get("duplicate", False)),
            reason=data.get("reason"),
            environment_id=str(data["environmentId"]),
            tenant_data_from_cache=bool(data.get("tenantDataFromCache", False)),
            tenant=TenantConfig.from_dict(tenant) if tenant else None,
        )


class ValidationSerDes(SerDes[Validation]):
    """Checkpoints step one's :class:`Validation` as a JSON object."""

    def serialize(self, value: Validation, serdes_context: SerDesContext) -> str:  # noqa: ARG002
        return json.dumps(value.to_dict())

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Validation:  # noqa: ARG002
        return Validation.from_dict(json.loads(data))


def decode_confirmation(raw: Any) -> Any:
    """Callback results arrive as raw strings: decode JSON, keep anything else as text.

    Non-finite numbers (``NaN``, ``1e400``) are not JSON and could never be served
    back as JSON, so such a result is kept as the text it arrived as.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        try:
            return strict_json.loads(raw)
        except (ValueError, RecursionError):
            return raw
    return raw


class ConfirmationSerDes(SerDes[Any]):
    """The callback's serdes: the external system's raw result text becomes a decoded value.

    It also serializes the callback submitter's result (None), as plain JSON.
    """

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:  # noqa: ARG002
        return json.dumps(value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:  # noqa: ARG002
        return decode_confirmation(data)
