"""TTL cache of tenant configuration."""

from __future__ import annotations

from shared.tenants import TenantConfig
from workflow.tenant_cache import TenantCache

TENANT = TenantConfig("t1", "T1", "ACTIVE", ("EUR",), 10.0, 60)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_second_read_within_ttl_is_served_from_memory() -> None:
    loads: list[str] = []
    cache = TenantCache(lambda tid: loads.append(tid) or TENANT, ttl_seconds=30, clock=FakeClock())
    first, second = cache.get("t1"), cache.get("t1")
    assert (first.hit, second.hit) == (False, True)
    assert second.tenant == TENANT
    assert loads == ["t1"] and cache.store_reads == 1


def test_entry_expires_after_ttl() -> None:
    clock = FakeClock()
    cache = TenantCache(lambda tid: TENANT, ttl_seconds=30, clock=clock)
    cache.get("t1")
    clock.now += 30
    assert cache.get("t1").hit is False
    assert cache.store_reads == 2


def test_unknown_tenant_is_cached_as_none_and_keys_never_mix() -> None:
    cache = TenantCache(lambda tid: TENANT if tid == "t1" else None, ttl_seconds=30, clock=FakeClock())
    assert cache.get("t2").tenant is None
    assert cache.get("t2").hit is True
    assert cache.get("t1").tenant == TENANT
