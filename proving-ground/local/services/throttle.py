"""The usage plans of the local gateway: what API Gateway does with the deployed ones.

operations.tf creates one usage plan per tier of ``src/shared/tiers.json`` (rate,
burst, daily quota); the provisioner puts each tenant's metering key in its
tier's plan at runtime (locally in proving-ground/local/services/apigateway.py,
which these plans read on every request: a key created, moved or deleted at
runtime is metered, or refused, at once). The request authorizer returns the
tenant's metering key as ``usageIdentifierKey`` (``api_key_source =
"AUTHORIZER"``), and API Gateway meters the request against that key's plan,
after the authorizer and before the request validator and the integration:

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

from shared.tenants import Tier, tiers

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

@dataclass(frozen=True)
class UsageLimits:
    """One usage plan: requests per second, burst, requests per UTC day."""

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
    def of_tier(cls, tier: Tier) -> UsageLimits:
        """The limits of a tier of tiers.json (its usage plan)."""
        return cls(rate=tier.rate_limit, burst=tier.burst_limit, daily_quota=tier.daily_quota, tier=tier.name)

    def describe(self) -> str:
        """``business: 50 req/s, burst 100, 500000/day``."""
        rate = f"{self.rate:g}"
        return f"{self.tier or 'plan'}: {rate} req/s, burst {self.burst}, {self.daily_quota}/day"


def usage_limits(tenants: Iterable[Mapping[str, Any]]) -> dict[str, UsageLimits]:
    """Each tenant's limits by tenant id: its tier's (``KeyError`` names an unknown tier)."""
    known = tiers()
    limits = {}
    for tenant in tenants:
        tier = known.get(str(tenant.get("tier")))
        if tier is None:
            raise KeyError(f"tenant {tenant.get('tenantId')!r} has no tier of tiers.json (its usage plan)")
        limits[str(tenant["tenantId"])] = UsageLimits.of_tier(tier)
    return limits


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


# Which plan a key is in, looked up on every request: ``(label, limits)`` or None (no plan).
PlanResolver = Callable[[str], "tuple[str, UsageLimits] | None"]


class UsagePlans:
    """The usage plans of the local gateway, keyed by API key.

    Args:
        plans: ``{api_key: (label, limits)}``, fixed (tests); or
        resolver: looked up on every request (the stack: the local API Gateway's keys and plans).
        clock: Monotonic seconds for the buckets.
        today: The current UTC day for the quotas (API Gateway's ``DAY`` period).
    """

    def __init__(
        self,
        plans: Mapping[str, tuple[str, UsageLimits]] | None = None,
        *,
        resolver: PlanResolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], date] = _utc_today,
    ) -> None:
        self._fixed = dict(plans or {})
        self._resolver = resolver
        self._clock = clock
        self._plans: dict[str, _Plan] = {}
        self._lock = threading.Lock()
        self._today = today
        for key, (label, limits) in self._fixed.items():
            self._plans[key] = _Plan(label, limits, clock)

    @classmethod
    def from_tenants(
        cls,
        tenants: Iterable[Mapping[str, Any]],
        api_keys: Mapping[str, str],
        **kwargs: Any,
    ) -> UsagePlans:
        """A fixed plan per tenant that has an API key, its tier's (as operations.tf builds them)."""
        limits = usage_limits(tenants)
        return cls({api_keys[tenant_id]: (tenant_id, plan) for tenant_id, plan in limits.items() if tenant_id in api_keys}, **kwargs)

    @classmethod
    def from_store(cls, store: Any, **kwargs: Any) -> UsagePlans:
        """Plans read from the local API Gateway's keys (proving-ground/local/services/apigateway.py)."""
        def resolve(value: str) -> tuple[str, UsageLimits] | None:
            found = store.plan_of_value(value)
            return None if found is None else (found[1], UsageLimits.of_tier(found[2]))

        return cls(resolver=resolve, **kwargs)

    def _plan(self, key: str) -> _Plan | None:
        found = self._fixed.get(key) or (self._resolver(key) if self._resolver else None)
        if found is None:
            return None
        label, limits = found
        with self._lock:
            plan = self._plans.get(key)
            if plan is None or plan.limits != limits:  # a new key, or a key moved to another tier's plan
                plan = self._plans[key] = _Plan(label, limits, self._clock)
            return plan

    def admit(self, usage_identifier_key: str | None) -> UsageRefusal | None:
        """None when the request may go on; else the refusal API Gateway answers with (403 or 429)."""
        plan = self._plan(usage_identifier_key) if usage_identifier_key else None
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
        """Today's admitted and refused requests and the limits, by the key's label (tenant or key name)."""
        report = {}
        with self._lock:
            plans = list(self._plans.values())
        for plan in plans:
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
        """One line per plan for the banner: ``starter: 5 req/s, burst 10, 10000/day``, or per fixed key."""
        if self._fixed:
            return [f"{plan.tenant_id:<18} {plan.limits.describe()}" for plan in self._plans.values()]
        return [UsageLimits.of_tier(tier).describe() for tier in tiers().values()]


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
