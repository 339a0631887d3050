"""Noisy neighbour: one tenant floods the API while another keeps calling it; both tenants' answers and latency.

    python -m scripts.measure_flood --help
    python -m scripts.measure_flood --start-stack            # a throwaway local stack, usage plans on
    python -m scripts.measure_flood --api-url http://127.0.0.1:3000 --keys-file .state/api-keys.json

During the flood the flooder (default tenant-b, the lowest tier) sends
``GET /workflow/<unknown id>`` from ``--flood-threads`` threads as fast as it
can; the bystander (default tenant-a) sends the same read every
``--bystander-interval`` seconds, well inside its own plan. Before the flood
the bystander alone sets the baseline. Every answer is counted by status; a
read the plan admits is a 404 (no such workflow), a throttled one 429.

``measure_flood()`` (a running API) and ``measure_flood_on_local_stack()`` (a
throwaway ``--throttle on`` stack) are what a benchmark calls: they return a
:class:`FloodReport` (``.as_dict()``); ``--json`` prints the same.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.stats import p95  # the one p95 of every benchmark figure
from shared.contract import TENANT_HEADER
from shared.identity import API_KEY_HEADER

PROBE_PATH = "/workflow/flood-probe-no-such-workflow"


@dataclass
class TenantFigures:
    """One tenant's answers in one phase: count by status and latency in milliseconds."""

    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    max_ms: float | None = None
    admitted_per_second: float | None = None
    messages: dict[str, int] = field(default_factory=dict)


@dataclass
class FloodReport:
    """Baseline of the bystander alone, then both tenants during the flood."""

    flooder: str
    bystander: str
    flood_seconds: float
    flood_threads: int
    baseline: TenantFigures
    flood: dict[str, TenantFigures]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Recorder:
    """Answers of one tenant, from several threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.messages: Counter[str] = Counter()

    def record(self, status: int | str, latency_ms: float, message: str | None) -> None:
        with self.lock:
            self.latencies.append(latency_ms)
            self.statuses[str(status)] += 1
            if message is not None:
                self.messages[message] += 1

    def figures(self, seconds: float, admitted_status: str = "404") -> TenantFigures:
        with self.lock:
            return TenantFigures(
                requests=len(self.latencies),
                statuses=dict(self.statuses),
                p50_ms=round(statistics.median(self.latencies), 2) if self.latencies else None,
                p95_ms=round(p95(self.latencies), 2) if self.latencies else None,
                max_ms=round(max(self.latencies), 2) if self.latencies else None,
                admitted_per_second=round(self.statuses.get(admitted_status, 0) / seconds, 2) if seconds else None,
                messages=dict(self.messages),
            )


def _read(session: requests.Session, url: str, headers: dict[str, str], recorder: _Recorder) -> None:
    started = time.perf_counter()
    try:
        response = session.get(url, headers=headers, timeout=30)
        status: int | str = response.status_code
        message = None
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message"))
            except ValueError:
                message = response.text[:80]
    except requests.RequestException as error:
        status, message = type(error).__name__, None
    recorder.record(status, (time.perf_counter() - started) * 1000, message)


def _headers(tenant_id: str, api_key: str) -> dict[str, str]:
    return {TENANT_HEADER: tenant_id, API_KEY_HEADER: api_key}


def measure_flood(
    api_url: str,
    api_keys: Mapping[str, str],
    *,
    flooder: str = "tenant-b",
    bystander: str = "tenant-a",
    flood_seconds: float = 3.0,
    flood_threads: int = 6,
    bystander_interval: float = 0.05,
    baseline_seconds: float = 1.5,
    warmup_reads: int = 3,
) -> FloodReport:
    """Flood ``api_url`` as ``flooder`` while ``bystander`` reads at a steady pace.

    Args:
        api_url: The API's base URL (local gateway or deployed stage).
        api_keys: API keys by tenant id (``.state/api-keys.json``, ``terraform output -json demo_api_keys``).
        flooder: The tenant that floods.
        bystander: The tenant whose answers must not change.
        flood_seconds: How long the flood lasts.
        flood_threads: Concurrent flooding callers.
        bystander_interval: Seconds between the bystander's reads.
        baseline_seconds: How long the bystander reads alone first (its undisturbed latency).
        warmup_reads: Reads per flooding thread, as the bystander, before anything is measured.
    """
    url = api_url.rstrip("/") + PROBE_PATH
    bystander_headers = _headers(bystander, api_keys[bystander])
    flooder_headers = _headers(flooder, api_keys[flooder])

    def steady(recorder: _Recorder, until: float) -> None:
        with requests.Session() as session:
            while time.monotonic() < until:
                _read(session, url, bystander_headers, recorder)
                time.sleep(bystander_interval)

    # Warm up: as many concurrent callers as the flood will have, as the bystander (whose
    # plan has room), so the authorizer's and the api function's environments are started
    # before anything is measured and the flooder's bucket is still full.
    warmup = _Recorder()

    def warm() -> None:
        with requests.Session() as session:
            for _ in range(warmup_reads):
                _read(session, url, bystander_headers, warmup)

    warmers = [threading.Thread(target=warm, daemon=True) for _ in range(flood_threads)]
    for thread in warmers:
        thread.start()
    for thread in warmers:
        thread.join(timeout=120)

    baseline = _Recorder()
    steady(baseline, time.monotonic() + baseline_seconds)

    flood_recorder, bystander_recorder = _Recorder(), _Recorder()
    until = time.monotonic() + flood_seconds

    def flood() -> None:
        with requests.Session() as session:
            while time.monotonic() < until:
                _read(session, url, flooder_headers, flood_recorder)

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(flood_threads)]
    threads.append(threading.Thread(target=steady, args=(bystander_recorder, until), daemon=True))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=flood_seconds + 60)
    elapsed = time.monotonic() - started
    return FloodReport(
        flooder=flooder,
        bystander=bystander,
        flood_seconds=round(elapsed, 2),
        flood_threads=flood_threads,
        baseline=baseline.figures(baseline_seconds),
        flood={flooder: flood_recorder.figures(elapsed), bystander: bystander_recorder.figures(elapsed)},
    )


def measure_flood_on_local_stack(workdir: Path | None = None, **options: Any) -> FloodReport:
    """:func:`measure_flood` against a throwaway local stack with the usage plans on.

    Starts ``python -m local --throttle on`` on free ports (state in
    ``workdir``, a temporary directory when None), measures, stops it. ``options``
    are :func:`measure_flood`'s keyword arguments.
    """
    from tests.harness import StackProcess

    with tempfile.TemporaryDirectory(prefix="measure-flood-") as temporary:
        base = Path(workdir or temporary)
        stack = StackProcess(base / "state", base / "stack.log", ["--throttle", "on"])
        stack.start()
        try:
            return measure_flood(stack.api_url, stack.api_keys, **options)
        finally:
            stack.stop()


def _summary(report: FloodReport) -> str:
    lines = [f"Flood: {report.flooder} from {report.flood_threads} threads for {report.flood_seconds}s; "
             f"{report.bystander} reads every so often (404 = admitted, 429 = throttled)."]
    base = report.baseline
    lines.append(f"  {report.bystander} alone        {base.requests:5d} requests  p50 {base.p50_ms} ms  p95 {base.p95_ms} ms  {base.statuses}")
    for tenant, figures in report.flood.items():
        lines.append(f"  {tenant} in the flood {figures.requests:5d} requests  p50 {figures.p50_ms} ms  "
                     f"p95 {figures.p95_ms} ms  admitted {figures.admitted_per_second}/s  {figures.statuses}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.measure_flood",
        description="Flood the API as one tenant and measure both tenants' answers and latency (per-tenant usage plans).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--api-url", help="base URL of a running API (make run: http://127.0.0.1:3000)")
    target.add_argument("--start-stack", action="store_true",
                        help="start a throwaway local stack (python -m local --throttle on) on free ports")
    parser.add_argument("--keys-file", type=Path, default=Path(".state/api-keys.json"),
                        help="API keys by tenant id (with --api-url)")
    parser.add_argument("--flooder", default="tenant-b", help="tenant that floods")
    parser.add_argument("--bystander", default="tenant-a", help="tenant that keeps reading")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the flood")
    parser.add_argument("--threads", type=int, default=6, help="flooding threads")
    parser.add_argument("--bystander-interval", type=float, default=0.05, help="seconds between the bystander's reads")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    options = dict(flooder=args.flooder, bystander=args.bystander, flood_seconds=args.seconds,
                   flood_threads=args.threads, bystander_interval=args.bystander_interval)
    if args.start_stack:
        report = measure_flood_on_local_stack(**options)
    else:
        if not args.keys_file.is_file():
            parser.error(f"{args.keys_file} does not exist (make run writes it; or pass --keys-file)")
        report = measure_flood(args.api_url, json.loads(args.keys_file.read_text()), **options)
    print(json.dumps(report.as_dict(), indent=2) if args.json else _summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
