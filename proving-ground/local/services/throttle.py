"""Per-tenant usage plans of the local gateway: what API Gateway does with the deployed ones.

main.tf gives every demo tenant's API key a usage plan of its own, whose rate,
burst and daily quota are the tenant's ``throttleRateLimit``,
``throttleBurstLimit`` and ``dailyQuota`` in ``src/shared/demo_tenants.json``.
The request authorizer returns the key it verified as ``usageIdentifierKey``
(``api_key_source = "AUTHORIZER"``), and API Gateway meters the request against
that key's plan, after the authorizer and before the request validator and the
integration:

* a token bucket per key: ``burst`` tokens, refilled at ``rate`` per second;
  an empty bucket is gateway response ``THROTTLED``: ``429 {"message": "Too Many Requests"}``;
* a count per key and UTC day: over ``dailyQuota`` it is ``QUOTA_EXCEEDED``:
  ``429 {"message": "Limit Exceeded"}``;
* a key in no usage plan (or no key at all) is ``INVALID_API_KEY``: ``403 {"message": "Forbidden"}``.

The gateway renders each refusal from main.tf's gateway responses, as it does every other one.

Each key has its own bucket and count, so one tenant's flood never throttles
another tenant. The routes without the authorizer (``POST
/callbacks/{callbackToken}``) carry no key: like the deployed stage's method
settings for them, :class:`MethodThrottle` gives each such route one bucket
shared by every caller, at the stage's default method throttle (the defaults of
``throttling_rate_limit`` and ``throttling_burst_limit`` in variables.tf, which
main.tf deploys for the route unless ``callback_throttling_*`` override them); an
empty bucket is ``THROTTLED`` too.

Locally the counts live in memory: a restart of ``make run`` resets them.
``python -m local --throttle off`` switches the plans and the method throttle off (the test
harness does, so that tests sending many requests per tenant stay reliable).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from scripts.terraform_tables import variable_default

__all__ = [
    "FORBIDDEN",
    "MethodThrottle",
    "QUOTA_EXCEEDED",
    "THROTTLED",
    "TokenBucket",
    "UsageLimits",
    "UsageRefusal",
    "UsagePlans",
    "usage_limits",
]

# The stage's default method throttle: these variables' defaults in variables.tf.
STAGE_RATE_VARIABLE, STAGE_BURST_VARIABLE = "throttling_rate_limit", "throttling_burst_limit"

@dataclass(frozen=True)
class UsageRefusal:
    """API Gateway's refusal of a metered request: its gateway response type and ``$context.error.message``."""

    response_type: str
    message: str


THROTTLED = UsageRefusal("THROTTLED", "Too Many Requests")
QUOTA_EXCEEDED = UsageRefusal("QUOTA_EXCEEDED", "Limit Exceeded")
FORBIDDEN = UsageRefusal("INVALID_API_KEY", "Forbidden")

# The fields of a tenant record (demo_tenants.json) that make its usage plan.
RATE_FIELD = "throttleRateLimit"
BURST_FIELD = "throttleBurstLimit"
QUOTA_FIELD = "dailyQuota"
TIER_FIELD = "tier"


@dataclass(frozen=True)
class UsageLimits:
    """One tenant's usage plan: requests per second, burst, requests per UTC day."""

    rate: float
    burst: int
    daily_quota: int
    tier: str = ""

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"rate must be a positive number of requests per second, not {self.rate!r}")
        if self.burst < 1 or self.daily_quota < 1:
            raise ValueError(f"burst and daily quota must be at least 1, not {self.burst!r} and {self.daily_quota!r}")

    @classmethod
    def from_tenant(cls, tenant: Mapping[str, Any]) -> UsageLimits:
        """The limits in a tenant record; ``KeyError`` names a missing field."""
        missing = [name for name in (RATE_FIELD, BURST_FIELD, QUOTA_FIELD) if name not in tenant]
        if missing:
            raise KeyError(f"tenant {tenant.get('tenantId')!r} has no {', '.join(missing)} (its usage plan)")
        return cls(
            rate=float(tenant[RATE_FIELD]),
            burst=int(tenant[BURST_FIELD]),
            daily_quota=int(tenant[QUOTA_FIELD]),
            tier=str(tenant.get(TIER_FIELD, "")),
        )

    def describe(self) -> str:
        """``business: 50 req/s, burst 100, 500000/day``."""
        rate = f"{self.rate:g}"
        return f"{self.tier or 'plan'}: {rate} req/s, burst {self.burst}, {self.daily_quota}/day"


def usage_limits(tenants: Iterable[Mapping[str, Any]]) -> dict[str, UsageLimits]:
    """Each tenant's limits by tenant id (the tenants of ``demo_tenants.json``)."""
    return {str(tenant["tenantId"]): UsageLimits.from_tenant(tenant) for tenant in tenants}


class TokenBucket:
    """``burst`` tokens, ``rate`` more per second; a request takes one or is throttled.

    Args:
        rate: Tokens added per second.
        burst: Capacity; the bucket starts full.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def take(self) -> bool:
        """Take a token: True when there was one (the request goes on), False when throttled."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class _Plan:
    """The state of one API key: its bucket and today's count."""

    def __init__(self, tenant_id: str, limits: UsageLimits, clock: Callable[[], float]) -> None:
        self.tenant_id = tenant_id
        self.limits = limits
        self.bucket = TokenBucket(limits.rate, limits.burst, clock)
        self.day: date | None = None
        self.used = 0
        self.throttled = 0
        self.lock = threading.Lock()


def _utc_today() -> date:
    return datetime.now(UTC).date()


class UsagePlans:
    """The usage plans of the local gateway, keyed by API key.

    Args:
        plans: ``{api_key: (tenant_id, limits)}``.
        clock: Monotonic seconds for the buckets.
        today: The current UTC day for the quotas (API Gateway's ``DAY`` period).
    """

    def __init__(
        self,
        plans: Mapping[str, tuple[str, UsageLimits]],
        *,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], date] = _utc_today,
    ) -> None:
        self._plans = {key: _Plan(tenant_id, limits, clock) for key, (tenant_id, limits) in plans.items()}
        self._today = today

    @classmethod
    def from_tenants(
        cls,
        tenants: Iterable[Mapping[str, Any]],
        api_keys: Mapping[str, str],
        **kwargs: Any,
    ) -> UsagePlans:
        """A plan per tenant that has an API key, from its record's limits (as main.tf builds them)."""
        limits = usage_limits(tenants)
        return cls({api_keys[tenant_id]: (tenant_id, plan) for tenant_id, plan in limits.items() if tenant_id in api_keys}, **kwargs)

    def admit(self, usage_identifier_key: str | None) -> UsageRefusal | None:
        """None when the request may go on; else the refusal API Gateway answers with (403 or 429)."""
        plan = self._plans.get(usage_identifier_key) if usage_identifier_key else None
        if plan is None:
            return FORBIDDEN
        with plan.lock:
            if not plan.bucket.take():
                plan.throttled += 1
                return THROTTLED
            today = self._today()
            if plan.day != today:
                plan.day, plan.used = today, 0
            if plan.used >= plan.limits.daily_quota:
                plan.throttled += 1
                return QUOTA_EXCEEDED
            plan.used += 1
        return None

    def usage(self) -> dict[str, dict[str, Any]]:
        """Today's admitted and refused requests and the limits, by tenant id."""
        report = {}
        for plan in self._plans.values():
            with plan.lock:
                used = plan.used if plan.day == self._today() else 0
                report[plan.tenant_id] = {
                    "tier": plan.limits.tier,
                    "rateLimit": plan.limits.rate,
                    "burstLimit": plan.limits.burst,
                    "dailyQuota": plan.limits.daily_quota,
                    "usedToday": used,
                    "throttled": plan.throttled,
                }
        return report

    def describe(self) -> list[str]:
        """One line per tenant for the banner: ``tenant-b  starter: 5 req/s, burst 10, 10000/day``."""
        return [f"{plan.tenant_id:<18} {plan.limits.describe()}" for plan in self._plans.values()]


class MethodThrottle:
    """API Gateway's method throttle of the routes without a usage plan: one bucket per route.

    Args:
        rate: Requests per second of each route.
        burst: Each route's burst.
        clock: Monotonic seconds for the buckets.
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_variables(cls, *, rate: float | None = None, burst: int | None = None, **kwargs: Any) -> MethodThrottle:
        """The throttle main.tf gives ``aws_api_gateway_method_settings.public_routes``.

        ``rate`` and ``burst`` as main.tf's ``callback_throttling_*`` variables; each
        that is None is the stage's default method throttle: the default of
        ``throttling_rate_limit`` or ``throttling_burst_limit`` in variables.tf.
        """
        rate = variable_default(STAGE_RATE_VARIABLE) if rate is None else rate
        burst = variable_default(STAGE_BURST_VARIABLE) if burst is None else burst
        if rate is None or burst is None:
            raise ValueError(f"variables.tf has no default for {STAGE_RATE_VARIABLE} or {STAGE_BURST_VARIABLE}")
        return cls(float(rate), int(burst), **kwargs)

    def admit(self, route: str) -> UsageRefusal | None:
        """None when ``route`` has a token left (the request goes on), else ``THROTTLED``."""
        with self._lock:
            bucket = self._buckets.setdefault(route, TokenBucket(self.rate, self.burst, self._clock))
            return None if bucket.take() else THROTTLED

    def describe(self) -> str:
        """``100 req/s, burst 200`` for the banner."""
        return f"{self.rate:g} req/s, burst {self.burst}"
