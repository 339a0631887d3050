"""Stopping child processes politely, then firmly: one rule for workers, the harness and benchmarks."""

from __future__ import annotations

import subprocess


def terminate(process: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM ``process``, wait up to ``timeout`` seconds, then SIGKILL; return its exit code."""
    process.terminate()
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
