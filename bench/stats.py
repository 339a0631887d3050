"""Summaries of repeated measurements, on top of the standard library's ``statistics``. Pure."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile (0..1), interpolated linearly like ``numpy.percentile``'s default.

    Raises:
        ValueError: No values, or ``fraction`` outside 0..1.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within 0..1, got {fraction}")
    if len(values) < 2:
        return statistics.median(values)  # StatisticsError (a ValueError) for no values
    if fraction in (0.0, 1.0):
        return (min if fraction == 0.0 else max)(values)
    # the 'inclusive' cut points are numpy's linear percentiles; 1000 of them cover every fraction we use
    return statistics.quantiles(values, n=1000, method="inclusive")[round(fraction * 1000) - 1]


def summary(values: Sequence[float]) -> dict[str, Any]:
    """``{"median", "min", "max", "n"}`` of repeated measurements of one figure (ValueError for none)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Ratios of measurements taken in the same repeat; ``inf`` for x/0, 0 for 0/0."""
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} numerators for {len(denominators)} denominators")
    return [a / b if b else (0.0 if a == 0 else math.inf) for a, b in zip(numerators, denominators)]


def throughput(count: int, seconds: float) -> float:
    """Items per second; 0 for an empty or instantaneous round."""
    return count / seconds if seconds > 0 else 0.0


def growth(samples: Sequence[tuple[float, float]]) -> dict[str, float]:
    """First, last, total change and least-squares slope per x of a series ``[(x, y), ...]`` (>= 2 samples)."""
    if len(samples) < 2:
        raise ValueError("growth needs at least two samples")
    xs, ys = [float(x) for x, _ in samples], [float(y) for _, y in samples]
    slope = statistics.linear_regression(xs, ys).slope if len(set(xs)) > 1 else 0.0
    return {"first": ys[0], "last": ys[-1], "change": ys[-1] - ys[0], "slopePerUnit": slope}
