"""Summaries of repeated measurements (pure), and a process's RSS and CPU time from Linux ``/proc``."""
import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def p95(values: Sequence[float]) -> float:
    """The 95th percentile, interpolated linearly like ``numpy.percentile``'s default."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def summary(values: Sequence[float]) -> dict[str, Any]:
    """``{"median", "min", "max", "n"}`` of repeated measurements of one figure (ValueError for none)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Ratios of measurements taken in the same repeat; ``inf`` for x/0, 0 for 0/0."""
    return [a / b if b else (0.0 if a == 0 else math.inf) for a, b in zip(numerators, denominators, strict=True)]


def growth(samples: Sequence[tuple[float, float]]) -> dict[str, float]:
    """First, last, change and least-squares slope per x of a series ``[(x, y), ...]``."""
    xs, ys = [x for x, _ in samples], [y for _, y in samples]
    slope = statistics.linear_regression(xs, ys).slope if len(set(xs)) > 1 else 0.0
    return {"first": ys[0], "last": ys[-1], "change": ys[-1] - ys[0], "slopePerUnit": slope}


def parse_rss_mb(status_text: str) -> float:
    """``VmRSS`` of a ``/proc/<pid>/status`` text in MiB (StopIteration when it has none)."""
    return next(int(line.split()[1]) for line in status_text.splitlines() if line.startswith("VmRSS:")) / 1024


def parse_cpu_seconds(stat_text: str) -> float:
    """User + system CPU seconds of a ``/proc/<pid>/stat`` text (the command name may hold spaces and parentheses)."""
    fields = stat_text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float | None:
    """VmRSS of ``pid`` in MiB; None when it is gone."""
    try:
        return parse_rss_mb(Path(f"/proc/{pid}/status").read_text())
    except FileNotFoundError:
        return None


def cpu_seconds(pid: int) -> float:
    """CPU seconds ``pid`` has used; 0 when it is gone."""
    try:
        return parse_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())
    except FileNotFoundError:
        return 0.0
