"""Resident memory and CPU time of a process, from Linux ``/proc``."""

from __future__ import annotations

import os
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_vm_rss_mb(status_text: str) -> float:
    """``VmRSS`` of a ``/proc/<pid>/status`` text, in MiB.

    Raises:
        ValueError: The text has no ``VmRSS`` line.
    """
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError("no VmRSS line")


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB."""
    return parse_vm_rss_mb(Path(f"/proc/{pid}/status").read_text())


def parse_cpu_seconds(stat_text: str) -> float:
    """User + system CPU seconds of a ``/proc/<pid>/stat`` text."""
    fields = stat_text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used; 0 when it is gone."""
    try:
        return parse_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
