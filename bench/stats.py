"""Summaries of repeated measurements: percentiles, median with min and max, ratios. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def percentile(values: Iterable[float], fraction: float) -> float:
    """The ``fraction`` percentile (0..1) with linear interpolation between closest ranks.

    The same definition as ``numpy.percentile(..., method="linear")``: p50 of an
    even count is the mean of the two middle values.

    Raises:
        ValueError: No values, or ``fraction`` outside 0..1.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within 0..1, got {fraction}")
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Iterable[float]) -> float:
    """The 50th percentile."""
    return percentile(values, 0.5)


def summary(values: Sequence[float]) -> dict[str, Any]:
    """``{"median", "min", "max", "n"}`` of repeated measurements of one figure.

    Raises:
        ValueError: No values.
    """
    if not values:
        raise ValueError("summary of no values")
    return {"median": median(values), "min": min(values), "max": max(values), "n": len(values)}


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; ``inf`` when the denominator is 0 and the numerator is not."""
    if denominator == 0:
        return 0.0 if numerator == 0 else math.inf
    return numerator / denominator


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Ratios of measurements taken in the same repeat (index by index).

    Raises:
        ValueError: The sequences differ in length.
    """
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} numerators for {len(denominators)} denominators")
    return [ratio(a, b) for a, b in zip(numerators, denominators)]


def throughput(count: int, seconds: float) -> float:
    """Items per second; 0 for an empty or instantaneous round."""
    return count / seconds if seconds > 0 else 0.0


def growth(samples: Sequence[tuple[int, float]]) -> dict[str, float]:
    """How a series ``[(x, y), ...]`` grows: first, last, total change and least-squares slope per x.

    Used for memory after N workflows: a flat series has a slope near 0.

    Raises:
        ValueError: Fewer than two samples.
    """
    if len(samples) < 2:
        raise ValueError("growth needs at least two samples")
    xs = [float(x) for x, _ in samples]
    ys = [float(y) for _, y in samples]
    mean_x = sum(xs) / len(xs)
    mean_y = sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread if spread else 0.0
    return {"first": ys[0], "last": ys[-1], "change": ys[-1] - ys[0], "slopePerUnit": slope}
