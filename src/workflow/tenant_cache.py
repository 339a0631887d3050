"""In-memory tenant configuration cache with a TTL, for one execution environment."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.tenants import TenantConfig


@dataclass(frozen=True)
class CacheRead:
    """A cache lookup: the tenant (None if unknown) and whether memory answered."""

    tenant: TenantConfig | None
    hit: bool


class TenantCache:
    """Caches tenant configurations for ``ttl_seconds``.

    Under ``PER_TENANT`` isolation one environment serves one tenant, so the
    cache holds that tenant's data only; it is keyed by tenant id anyway, so a
    bug elsewhere can never serve one tenant another's data.
    """

    def __init__(
        self,
        loader: Callable[[str], TenantConfig | None],
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: dict[str, tuple[TenantConfig | None, float]] = {}
        self.store_reads = 0

    def get(self, tenant_id: str) -> CacheRead:
        """Return the tenant from memory if fresh, else load and remember it."""
        now = self._clock()
        entry = self._entries.get(tenant_id)
        if entry is not None and now - entry[1] < self._ttl_seconds:
            return CacheRead(entry[0], hit=True)
        tenant = self._loader(tenant_id)
        self.store_reads += 1
        self._entries[tenant_id] = (tenant, now)
        return CacheRead(tenant, hit=False)

    def clear(self) -> None:
        """Forget every entry (tests and benchmarks)."""
        self._entries.clear()
        self.store_reads = 0
