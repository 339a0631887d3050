"""Percentiles, summaries, paired ratios and growth of the benchmark figures."""

from __future__ import annotations

import math

import pytest

from bench.stats import growth, p95, paired_ratios, summary


def test_p95_interpolates_linearly_like_numpy() -> None:
    assert p95([40, 10, 30, 20]) == pytest.approx(38.5)  # unsorted on purpose; 30 + 0.85 * 10
    assert p95(range(1, 101)) == pytest.approx(95.05)
    assert p95([7.5]) == 7.5
    with pytest.raises(ValueError):
        p95([])


def test_summary_gives_median_min_max_and_count() -> None:
    assert summary([5, 1, 3]) == {"median": 3, "min": 1, "max": 5, "n": 3}
    with pytest.raises(ValueError):
        summary([])


def test_paired_ratios_divide_same_repeat_measurements_and_handle_zero_denominators() -> None:
    assert paired_ratios([2, 9], [1, 3]) == [2, 3]
    assert paired_ratios([3, 0, 1], [2, 0, 0]) == [1.5, 0.0, math.inf]
    with pytest.raises(ValueError):
        paired_ratios([1], [1, 2])


def test_growth_reports_change_and_slope_of_a_series() -> None:
    flat = growth([(10, 50.0), (20, 50.0), (30, 50.0)])
    assert flat == {"first": 50.0, "last": 50.0, "change": 0.0, "slopePerUnit": 0.0}
    leaking = growth([(10, 50.0), (20, 51.0), (30, 52.0)])
    assert leaking["change"] == 2.0
    assert leaking["slopePerUnit"] == pytest.approx(0.1)
