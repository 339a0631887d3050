"""Per-tenant usage plans: the local gateway throttles a tenant over its demo tier, and that tenant only.

The limits are the rate, burst and
``dailyQuota`` of their tier in ``src/shared/tiers.json``, the same numbers operations.tf
gives their API Gateway usage plans (tests/infra checks that side).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
import requests

from local import cli as local_cli
from local.services.contract import ERROR_TYPE, load_gateway_responses
from local.services.throttle import (
    FORBIDDEN,
    MethodThrottle,
    QUOTA_EXCEEDED,
    THROTTLED,
    TokenBucket,
    UsageLimits,
    UsagePlans,
    UsageRefusal,
    usage_limits,
)
from scripts.measure_flood import measure_flood
from shared.contract import DEMO_TENANTS_FILE
from tests.harness import REPO_ROOT, StackProcess
from tests.infra import hcl

DEMO_TENANTS = json.loads(DEMO_TENANTS_FILE.read_text())
LIMITS = usage_limits(DEMO_TENANTS)
# The throttled stack's token-route throttle (--callback-throttling-*).
TOKEN_ROUTE_RATE, TOKEN_ROUTE_BURST = 5, 10


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def status(refusal: UsageRefusal) -> int:
    """The status the gateway answers a usage-plan refusal with (main.tf's gateway responses)."""
    return load_gateway_responses().resolve(refusal.response_type).status


def test_every_429_of_the_gateway_carries_retry_after() -> None:
    # main.tf's THROTTLED and QUOTA_EXCEEDED responses, the ones the local gateway renders.
    for refusal in (THROTTLED, QUOTA_EXCEEDED):
        response = load_gateway_responses().resolve(refusal.response_type)
        # Retry-After, and the security headers every gateway response carries (gateway_responses.json).
        assert (response.status, response.headers["Retry-After"]) == (429, "'1'")
        assert response.headers["Cache-Control"] == "'no-store'"


def body(refusal: UsageRefusal) -> dict:
    """The JSON body the gateway renders for a refusal (main.tf's template: {"message": ...})."""
    return {"message": refusal.message}


# --- the demo tiers ---


def test_every_demo_tenant_has_a_tier_and_the_tiers_differ() -> None:
    assert set(LIMITS) == {tenant["tenantId"] for tenant in DEMO_TENANTS}
    rates = {limits.rate for limits in LIMITS.values()}
    assert len(rates) >= 2, LIMITS
    # The lowest tier is a few requests per second: a quick curl loop shows its 429.
    assert min(rates) <= 5
    assert all(limits.burst >= limits.rate and limits.daily_quota >= 1000 for limits in LIMITS.values()), LIMITS


def test_a_tenant_record_without_a_known_tier_is_refused_by_name() -> None:
    with pytest.raises(KeyError, match="tenant-x.*tier"):
        usage_limits([{"tenantId": "tenant-x", "tier": "gold"}])
    with pytest.raises(ValueError, match="rate"):
        UsageLimits(rate=0, burst=1, daily_quota=1)


# --- token bucket and quota, on a hand-moved clock ---


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 60  # refills to the burst, never above it
    assert sum(bucket.take() for _ in range(10)) == 3


def test_over_its_rate_a_tenant_gets_429_too_many_requests_and_another_tenant_does_not() -> None:
    clock = Clock()
    plans = UsagePlans({"key-a": ("tenant-a", UsageLimits(10, 20, 1000)), "key-b": ("tenant-b", UsageLimits(1, 2, 1000))},
                       clock=clock)
    answers_b = [plans.admit("key-b") for _ in range(5)]
    assert answers_b[:2] == [None, None]
    for refusal in answers_b[2:]:
        assert refusal is not None and status(refusal) == 429 and refusal == THROTTLED
        assert ERROR_TYPE[refusal.response_type] == "TooManyRequestsException"
    # tenant-a's bucket is its own: all 20 of its burst go through in the same instant.
    assert [plans.admit("key-a") for _ in range(20)] == [None] * 20
    assert plans.usage()["tenant-b"] == {"tier": "", "rateLimit": 1, "burstLimit": 2, "dailyQuota": 1000,
                                        "usedToday": 2, "throttled": 3}


def test_over_its_daily_quota_a_tenant_gets_429_limit_exceeded_until_the_next_utc_day() -> None:
    clock, day = Clock(), [date(2026, 1, 1)]
    plans = UsagePlans({"key-b": ("tenant-b", UsageLimits(100, 100, 3))}, clock=clock, today=lambda: day[0])
    assert [plans.admit("key-b") for _ in range(3)] == [None] * 3
    refusal = plans.admit("key-b")
    assert refusal is not None and status(refusal) == 429 and refusal == QUOTA_EXCEEDED
    day[0] = date(2026, 1, 2)
    assert plans.admit("key-b") is None


@pytest.mark.parametrize("key", [None, "", "a-key-in-no-usage-plan"])
def test_a_key_in_no_usage_plan_is_forbidden(key: str | None) -> None:
    plans = UsagePlans({"key-a": ("tenant-a", UsageLimits(1, 1, 1))})
    refusal = plans.admit(key)
    assert refusal is not None and status(refusal) == 403 and refusal == FORBIDDEN


def test_plans_are_built_from_the_tenants_records_and_keys() -> None:
    plans = UsagePlans.from_tenants(DEMO_TENANTS, {"tenant-a": "key-a", "tenant-b": "key-b"})
    usage = plans.usage()
    assert set(usage) == {"tenant-a", "tenant-b"}
    for tenant_id in usage:
        limits = LIMITS[tenant_id]
        assert (usage[tenant_id]["rateLimit"], usage[tenant_id]["burstLimit"], usage[tenant_id]["dailyQuota"]) == (
            limits.rate, limits.burst, limits.daily_quota)
    assert any("tenant-b" in line and f"burst {LIMITS['tenant-b'].burst}" in line for line in plans.describe())


def test_the_token_routes_method_throttle_is_the_stages_default_and_one_bucket_per_route() -> None:
    # The defaults main.tf gives the route when callback_throttling_* are null: the stage's.
    stage = {name: body["default"] for name, body in hcl.variables().items()}
    throttle = MethodThrottle.from_variables(clock=Clock())
    assert (throttle.rate, throttle.burst) == (stage["throttling_rate_limit"], stage["throttling_burst_limit"])
    assert [throttle.admit("callbackByToken") for _ in range(throttle.burst + 1)] == [None] * throttle.burst + [THROTTLED]
    # Another route's bucket is its own.
    assert throttle.admit("another-public-route") is None


# --- the stack's switch ---


def test_make_run_throttles_by_default_and_can_be_told_not_to() -> None:
    assert local_cli.parse_args([]).throttle is True
    assert local_cli.parse_args(["--throttle", "off"]).throttle is False
    assert local_cli.parse_args(["--throttle", "off", "--throttle", "on"]).throttle is True
    with pytest.raises(SystemExit):
        local_cli.parse_args(["--throttle", "maybe"])


def test_measure_flood_has_help() -> None:
    result = subprocess.run([sys.executable, "-m", "scripts.measure_flood", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--start-stack" in result.stdout and "--flooder" in result.stdout


# --- end to end: a flood on the local stack ---


@pytest.fixture(scope="module")
def throttled_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    base = tmp_path_factory.mktemp("throttled")
    # The token route's throttle set low (as main.tf's callback_throttling_* variables
    # can), so a few dozen requests from this machine overrun it.
    process = StackProcess(base / "state", base / "stack.log", extra_args=[
        "--throttle", "on", "--callback-throttling-rate-limit", str(TOKEN_ROUTE_RATE),
        "--callback-throttling-burst-limit", str(TOKEN_ROUTE_BURST)])
    process.start()
    yield process
    process.stop()


def test_a_flooding_tenant_is_throttled_and_the_other_tenant_is_not(throttled_stack: StackProcess) -> None:
    # GIVEN tenant-b (lowest tier) flooding from 6 threads while tenant-a reads steadily
    flooder, bystander = "tenant-b", "tenant-a"
    report = measure_flood(throttled_stack.api_url, throttled_stack.api_keys, flooder=flooder, bystander=bystander,
                           flood_seconds=3.0, flood_threads=6, bystander_interval=0.05, baseline_seconds=1.0)
    flood, calm = report.flood[flooder], report.flood[bystander]
    limits = LIMITS[flooder]
    # THEN tenant-b got API Gateway's 429 {"message": "Too Many Requests"}, and was admitted
    # no more than its burst plus its rate over the window (one token of slack for timing)
    assert flood.statuses.get("429", 0) > 0, flood
    assert flood.messages.get(THROTTLED.message, 0) == flood.statuses["429"], flood
    admitted = flood.statuses.get("404", 0)
    assert admitted <= limits.burst + limits.rate * report.flood_seconds + 1, (admitted, report)
    assert set(flood.statuses) <= {"404", "429"}, flood
    # AND every one of tenant-a's reads in the same window got its ordinary answer
    assert calm.requests >= 5, calm
    assert calm.statuses == {"404": calm.requests}, calm
    assert report.baseline.statuses == {"404": report.baseline.requests}


def test_a_tenant_whose_key_is_in_no_usage_plan_is_forbidden(throttled_stack: StackProcess) -> None:
    # A tenant onboarded in the table only (no API Gateway key in a usage plan): API Gateway answers 403.
    throttled_stack.put_tenant({"tenantId": "tenant-unplanned", "displayName": "Unplanned", "status": "ACTIVE",
                                "allowedCurrencies": ["EUR"], "maxAmount": 10, "callbackTimeoutSeconds": 60},
                               api_key="unplanned-key-" + "x" * 30)
    response = throttled_stack.status("tenant-unplanned", "no-such-workflow")
    assert (response.status_code, response.json()) == (403, body(FORBIDDEN))


def test_the_banner_lists_the_plans_and_a_curl_loop_that_shows_the_429(throttled_stack: StackProcess) -> None:
    log = throttled_stack.log_path.read_text()
    # One plan per tier (src/shared/tiers.json), as operations.tf deploys them.
    for limits in LIMITS.values():
        assert re.search(rf"{limits.tier}: {limits.rate:g} req/s, burst {limits.burst}, {limits.daily_quota}/day", log)
    method_throttle = MethodThrottle.from_variables(rate=TOKEN_ROUTE_RATE, burst=TOKEN_ROUTE_BURST)
    assert re.search(rf"POST /callbacks/{{callbackToken}}\s+{method_throttle.rate:g} req/s, burst {method_throttle.burst}", log)
    lines = log.splitlines()
    index = next(number for number, line in enumerate(lines) if "for i in $(seq 30)" in line)
    assert f"{throttled_stack.api_url}/workflow/none" in lines[index]
    assert f"x-tenant-id: tenant-b' -H 'x-api-key: {throttled_stack.api_keys['tenant-b']}'" in lines[index + 1]


def test_the_token_route_is_throttled_by_its_own_method_settings(throttled_stack: StackProcess) -> None:
    # GIVEN the token route's burst (no tenant key, no usage plan: one bucket for every caller)
    burst = TOKEN_ROUTE_BURST
    url = f"{throttled_stack.api_url}/callbacks/{'A' * 43}"
    # WHEN three bursts' worth of made-up tokens arrive at once, from 10 clients
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: requests.post(url, json={"payload": {}}, timeout=30), range(3 * burst)))
    # THEN at least the burst got the token route's own 404 and the rest 429 with Retry-After
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) == {404, 429} and statuses.count(404) >= burst, statuses
    throttled = next(answer for answer in answers if answer.status_code == 429)
    assert (throttled.json(), throttled.headers["Retry-After"]) == (body(THROTTLED), "1")
    # AND a tenant's own routes are not metered by that bucket
    assert throttled_stack.status("tenant-a", "no-such-workflow").status_code == 404


def test_make_demo_completes_under_the_demo_tiers(throttled_stack: StackProcess) -> None:
    # make demo against make run's defaults: tenant-b's polls stay inside its plan.
    result = subprocess.run(
        [sys.executable, "-m", "local.tools.demo", "--api-url", throttled_stack.api_url,
         "--api-keys-file", str(throttled_stack.state_dir / "api-keys.json"), "--timeout", "45"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("-> COMPLETED") == 3
    # As a status, not inside a workflow id (a UUID may contain the digits 429).
    assert not re.search(r"(?<![0-9a-f-])429(?![0-9a-f-])", result.stdout), result.stdout

