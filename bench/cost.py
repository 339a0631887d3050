"""Billed cost per 1,000 workflows: this pattern (durable, suspended while waiting) against polling. Pure.

Every price is an input (:class:`PriceInputs`) with its source, so the report
lists exactly what was used. Lambda bills duration per invocation rounded up to
the next millisecond, at the function's memory size in GB (MB / 1024).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from statistics import median

LAMBDA_MAX_INVOCATION_SECONDS = 900  # 15 minutes: a sleeping poller must re-invoke itself this often
WORKFLOWS = 1000
SECONDS_PER_MONTH = 30 * 24 * 3600


@dataclass(frozen=True)
class PriceInputs:
    """Prices used, US East (N. Virginia), on-demand, no free tier, no savings plan."""

    arm_gb_second: float = 0.0000133334
    request_per_million: float = 0.20
    durable_operation_per_million: float = 8.00
    durable_data_written_per_gb: float = 0.25
    durable_data_retained_per_gb_month: float = 0.15
    source: str = (
        "https://aws.amazon.com/lambda/pricing/ (arm64 duration, requests; durable functions: "
        "operations, data written, data retained), as transcribed by secondary sources found "
        "with the search tool; no AWS call was made"
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def billed_ms(duration_ms: float) -> int:
    """Lambda's billed duration: rounded up to the next millisecond (at least 1)."""
    return max(1, math.ceil(duration_ms - 1e-9))


def gb(memory_mb: int) -> float:
    """Memory size in GB as Lambda bills it."""
    return memory_mb / 1024


def compute_cost(billed_milliseconds: float, memory_mb: int, prices: PriceInputs) -> float:
    """Duration charge of ``billed_milliseconds`` at ``memory_mb``."""
    return billed_milliseconds / 1000 * gb(memory_mb) * prices.arm_gb_second


def request_cost(invocations: float, prices: PriceInputs) -> float:
    """Request charge of ``invocations``."""
    return invocations * prices.request_per_million / 1_000_000


@dataclass(frozen=True)
class WorkflowUsage:
    """What one workflow of the pattern uses, as measured."""

    invocations: float
    billed_ms: float
    durable_operations: float
    data_written_bytes: float


def workflow_usage(invocation_durations_ms: Sequence[Sequence[float]], operations: Sequence[int],
                   written_bytes: Sequence[int]) -> WorkflowUsage:
    """Median usage per workflow from per-workflow measurements.

    Args:
        invocation_durations_ms: For each workflow, the duration of each of its invocations.
        operations: For each workflow, its durable operations.
        written_bytes: For each workflow, the checkpoint data it wrote.

    Raises:
        ValueError: No workflows.
    """
    if not invocation_durations_ms:
        raise ValueError("no workflows measured")
    return WorkflowUsage(
        invocations=median([len(durations) for durations in invocation_durations_ms]),
        billed_ms=median([sum(billed_ms(d) for d in durations) for durations in invocation_durations_ms]),
        durable_operations=median(operations) if operations else 0.0,
        data_written_bytes=median(written_bytes) if written_bytes else 0.0,
    )


def durable_cost_per_1000(usage: WorkflowUsage, memory_mb: int, retention_days: int,
                          prices: PriceInputs) -> dict[str, float]:
    """Cost of 1,000 workflows of this pattern, by component; the wait itself costs nothing."""
    written_gb = usage.data_written_bytes * WORKFLOWS / 1024**3
    parts = {
        "compute": compute_cost(usage.billed_ms * WORKFLOWS, memory_mb, prices),
        "requests": request_cost(usage.invocations * WORKFLOWS, prices),
        "durableOperations": usage.durable_operations * WORKFLOWS * prices.durable_operation_per_million / 1_000_000,
        "dataWritten": written_gb * prices.durable_data_written_per_gb,
        "dataRetained": written_gb * prices.durable_data_retained_per_gb_month * retention_days * 86400
        / SECONDS_PER_MONTH,
    }
    return {**parts, "total": sum(parts.values())}


def sleeping_poller_cost_per_1000(wait_seconds: float, work_billed_ms: float, memory_mb: int,
                                  prices: PriceInputs) -> dict[str, float]:
    """A function that stays running while it waits (re-invoking itself every 15 minutes).

    It is billed for the whole wait, plus the same work as the pattern does.
    """
    invocations = max(1, math.ceil(wait_seconds / LAMBDA_MAX_INVOCATION_SECONDS)) + 1
    parts = {
        "compute": compute_cost((wait_seconds * 1000 + work_billed_ms) * WORKFLOWS, memory_mb, prices),
        "requests": request_cost(invocations * WORKFLOWS, prices),
    }
    return {**parts, "total": sum(parts.values()), "invocationsPerWorkflow": invocations}


def rechecking_poller_cost_per_1000(wait_seconds: float, interval_seconds: float, check_billed_ms: float,
                                    work_billed_ms: float, memory_mb: int, prices: PriceInputs) -> dict[str, float]:
    """A function invoked every ``interval_seconds`` to check whether the answer arrived.

    Each check is billed ``check_billed_ms``; the scheduler's own charge is not included.
    """
    checks = max(1, math.ceil(wait_seconds / interval_seconds))
    parts = {
        "compute": compute_cost((checks * check_billed_ms + work_billed_ms) * WORKFLOWS, memory_mb, prices),
        "requests": request_cost((checks + 1) * WORKFLOWS, prices),
    }
    return {**parts, "total": sum(parts.values()), "invocationsPerWorkflow": checks + 1}
