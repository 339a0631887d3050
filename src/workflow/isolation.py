"""Bind an execution environment to the first tenant it serves and refuse any other."""

from __future__ import annotations

import os
import uuid


class TenantIsolationViolation(RuntimeError):
    """An environment bound to one tenant was asked to serve another (or none)."""


def environment_id() -> str:
    """A stable id for this execution environment (process).

    On Lambda (and in the local stack's workers, which set it too) the log
    stream name is unique per environment; without one, the process id plus a
    random suffix is.
    """
    stream = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
    if stream:
        return stream.rsplit("]", 1)[-1][:32]
    return f"pid{os.getpid()}-{uuid.uuid4().hex[:8]}"


class EnvironmentBinding:
    """Defence in depth for ``PER_TENANT``: Lambda already never shares an
    environment between tenants; this makes a violation loud instead of silent."""

    def __init__(self) -> None:
        self.environment_id = environment_id()
        self.tenant_id: str | None = None

    def bind(self, tenant_id: str | None) -> str:
        """Bind on first use, then accept only the same tenant.

        Returns:
            The tenant id.

        Raises:
            TenantIsolationViolation: No tenant id, or a different tenant than the bound one.
        """
        if not tenant_id:
            raise TenantIsolationViolation("invocation carries no tenant id; the function requires PER_TENANT isolation")
        if self.tenant_id is None:
            self.tenant_id = tenant_id
        elif self.tenant_id != tenant_id:
            raise TenantIsolationViolation(
                f"environment {self.environment_id} is bound to another tenant; refusing tenant {tenant_id}"
            )
        return tenant_id

    def reset(self) -> None:
        """Unbind (tests only: a real environment never changes tenant)."""
        self.tenant_id = None
