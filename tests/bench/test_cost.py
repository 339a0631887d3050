"""Billed-cost arithmetic: rounding, GB-seconds, the pattern against polling designs."""

from __future__ import annotations

import pytest

from bench.cost import (
    PriceInputs,
    WorkflowUsage,
    billed_ms,
    compute_cost,
    durable_cost_per_1000,
    poller_costs_per_1000,
    request_cost,
    workflow_usage,
)

PRICES = PriceInputs()


def test_duration_is_billed_rounded_up_to_the_millisecond() -> None:
    assert billed_ms(0.2) == 1
    assert billed_ms(12.0) == 12
    assert billed_ms(12.01) == 13


def test_compute_cost_is_gb_seconds_times_price() -> None:
    # 1,000 ms at 1,024 MB is exactly one GB-second.
    assert compute_cost(1000, 1024, PRICES) == pytest.approx(PRICES.arm_gb_second)
    assert compute_cost(1000, 256, PRICES) == pytest.approx(PRICES.arm_gb_second / 4)


def test_request_cost_is_per_million() -> None:
    assert request_cost(1_000_000, PRICES) == pytest.approx(0.20)


def test_workflow_usage_takes_medians_of_per_workflow_sums() -> None:
    usage = workflow_usage([[10.2, 5.0], [20.0, 1.1], [3.0, 3.0]], operations=[6, 6, 7], written_bytes=[100, 200, 300])
    # billed per workflow: 11 + 5 = 16, 20 + 2 = 22, 3 + 3 = 6 -> median 16
    assert usage == WorkflowUsage(invocations=2, billed_ms=16, durable_operations=6, data_written_bytes=200)
    with pytest.raises(ValueError):
        workflow_usage([], [], [])


def test_durable_cost_adds_up_its_parts_and_ignores_the_wait() -> None:
    usage = WorkflowUsage(invocations=2, billed_ms=100, durable_operations=6, data_written_bytes=1024**3 / 1000)
    parts = durable_cost_per_1000(usage, memory_mb=256, retention_days=30, prices=PRICES)
    assert parts["compute"] == pytest.approx(100 * 1000 / 1000 * 0.25 * PRICES.arm_gb_second)
    assert parts["requests"] == pytest.approx(2000 * 0.20 / 1_000_000)
    assert parts["durableOperations"] == pytest.approx(6000 * 8 / 1_000_000)
    assert parts["dataWritten"] == pytest.approx(0.25)  # 1 GB written by 1,000 workflows
    assert parts["dataRetained"] == pytest.approx(0.15)  # 1 GB kept 30 days = one GB-month
    assert parts["total"] == pytest.approx(sum(v for k, v in parts.items() if k != "total"))


def test_sleeping_poller_pays_for_the_whole_wait() -> None:
    usage = WorkflowUsage(invocations=2, billed_ms=20, durable_operations=6, data_written_bytes=0)
    hour = poller_costs_per_1000(3600, usage, memory_mb=1024, prices=PRICES)["sleeping"]
    assert hour["compute"] == pytest.approx((3600 * 1000 + 20) * PRICES.arm_gb_second)
    assert hour["invocationsPerWorkflow"] == 5  # four 15-minute invocations, then the one that acts


def test_rechecking_poller_pays_per_check() -> None:
    usage = WorkflowUsage(invocations=2, billed_ms=20, durable_operations=6, data_written_bytes=0)
    day = poller_costs_per_1000(86400, usage, memory_mb=1024, prices=PRICES)["recheck"]
    assert day["invocationsPerWorkflow"] == 1441  # a check a minute, then the one that acts
    # each check billed like one of the pattern's invocations (20 / 2 ms), plus the pattern's own 20 ms
    assert day["compute"] == pytest.approx((1440 * 10 + 20) / 1000 * 1000 * PRICES.arm_gb_second)
    assert day["requests"] == pytest.approx(1441 * 1000 * 0.20 / 1_000_000)


def test_an_idle_mapping_makes_one_request_per_poller_and_long_poll() -> None:
    from bench.cost import idle_mapping_requests_per_month

    # 30 days of 20 s long polls: 129,600 per poller
    assert idle_mapping_requests_per_month(1, 20) == 129_600
    assert idle_mapping_requests_per_month(5, 20) == 648_000
    assert idle_mapping_requests_per_month(5, 1) == 12_960_000  # a short wait multiplies it


def test_an_idle_start_queue_costs_its_pollers_requests_and_a_shared_queue_wins_from_the_second_tenant() -> None:
    from bench.cost import IdleQueueInputs, idle_start_queues, shared_queue_cheaper_from

    idle = idle_start_queues(IdleQueueInputs(), tenant_counts=(1, 2, 1000))
    assert idle["perTenantUsd"] == pytest.approx(0.2592)  # 648,000 x $0.40 per million
    assert idle["perTenantUsdLow"] == pytest.approx(0.10368)  # the documented floor of two pollers
    assert idle["freeTierMappings"] == pytest.approx(1_000_000 / 648_000)
    assert idle["sharedCheaperFrom"] == 2
    rows = {row["tenants"]: row for row in idle["rows"]}
    assert rows[1]["differenceUsd"] == 0 and rows[2]["differenceUsd"] == pytest.approx(0.2592)
    assert rows[1000]["perTenantQueuesUsd"] == pytest.approx(259.2) and rows[1000]["sharedQueueUsd"] == pytest.approx(
        0.2592)
    cheaper = idle_start_queues(IdleQueueInputs(sqs_request_per_million=0.80, pollers=2, long_poll_seconds=10))
    assert cheaper["perTenantUsd"] == pytest.approx(2 * 259_200 / 1e6 * 0.80)
    # a shared queue dearer than one tenant's (say, more pollers for its traffic) wins later
    assert shared_queue_cheaper_from(0.26, 0.26 * 3) == 4
    assert shared_queue_cheaper_from(0.0, 0.26) is None
