"""The two items measured on the local stack alone.

Item 7, idle footprint: :func:`drive` runs N workflows (a tenth left ``WAITING_FOR_CALLBACK``), :func:`watch` samples
VmRSS and CPU of the stack process and its workers, :func:`idle_figures` (pure) turns the samples into growth, slope
and CPU share. The stack keeps its default snapshot interval; workers outlive the window.

Item 8, :func:`faults`: on a ``--fault-injection`` stack, each fault kind aimed at the durable service call of
``POST /callback`` and at the lease write; a client retries as the README says, timed from its first POST to its
final 200 and to the workflow reading ``COMPLETED``.
"""
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import requests

from bench.e2e import StackTarget, run_round
from bench.stats import cpu_seconds, growth, rss_mb, summary
from local.testing.faults import FAILS_EVERY_ATTEMPT, FAILS_ONCE, KILLED_AFTER, LANDS_LATE, fault_rule as plan_rule
from tests.harness import StackProcess, post_with_retries

SAMPLE_INTERVAL_SECONDS, SETTLE_SECONDS, GROWTH_TARGET_MB, CPU_TARGET_PERCENT = 5.0, 10.0, 5.0, 2.0
TENANTS, PER_TENANT, WAITING_FRACTION = 5, 10, 0.1  # 50 workflows at once; a tenth left waiting
Progress = Callable[[str], None]


class Sample(NamedTuple):
    """One reading of every process: seconds since the window opened, kind, MiB and CPU seconds by pid."""

    at: float
    kinds: dict[int, str]
    rss_mb: dict[int, float]
    cpu_seconds: dict[int, float]


def read_sample(kinds: dict[int, str], at: float) -> Sample:
    """RSS and CPU of ``kinds``' processes now; a process that is gone is left out."""
    rss = {pid: value for pid in kinds if (value := rss_mb(pid)) is not None}
    return Sample(at, {pid: kinds[pid] for pid in rss}, rss, {pid: cpu_seconds(pid) for pid in rss})


def idle_figures(samples: Sequence[Sample]) -> dict[str, Any]:
    """Growth and CPU over the window, in total and by kind of process.

    Only processes present in every sample count (one that came or went would show up as a step, not as growth);
    ``processes`` says how many that is and ``processesChanged`` whether any came or went.
    """
    first, last = samples[0], samples[-1]
    common = set(first.rss_mb).intersection(*(sample.rss_mb for sample in samples[1:]))
    groups: dict[str, set[int]] = {"total": common}
    for pid in sorted(common):
        groups.setdefault(first.kinds[pid], set()).add(pid)
    figures: dict[str, Any] = {}
    for name, pids in groups.items():
        trend = growth([(sample.at, sum(sample.rss_mb[pid] for pid in pids)) for sample in samples])
        cpu = sum(last.cpu_seconds[pid] - first.cpu_seconds[pid] for pid in pids)
        figures[name] = {"processes": len(pids), "rssFirstMb": trend["first"], "rssLastMb": trend["last"],
                         "rssGrowthMb": trend["change"], "rssSlopeMbPerMinute": trend["slopePerUnit"] * 60,
                         "cpuSeconds": cpu, "cpuPercentOfCore": cpu / (last.at - first.at) * 100}
    total = figures.pop("total")
    return {"windowSeconds": last.at - first.at, "samples": len(samples),
            "processesChanged": any(set(sample.rss_mb) != common for sample in samples), "byKind": figures, **total,
            "meetsTargets": total["rssGrowthMb"] < GROWTH_TARGET_MB and total["cpuPercentOfCore"] < CPU_TARGET_PERCENT}


def drive(target: StackTarget, workflows: int, progress: Progress, poll_interval: float = 0.2) -> dict[str, int]:
    """``workflows`` workflows: a tenth left waiting for their callback, the rest completed; how many of each."""
    tenants = [f"bench-idle-{index:02d}" for index in range(TENANTS)]
    for tenant in tenants:
        target.add_tenant(tenant)
    waiting = int(workflows * WAITING_FRACTION)
    to_complete, completed = workflows - waiting, 0
    while completed < to_complete:
        left = to_complete - completed
        per_tenant = max(1, min(PER_TENANT, left // len(tenants)))
        result = run_round(target, "idle-load", tenants[:left] if per_tenant * len(tenants) > left else tenants,
                           per_tenant, poll_interval)
        if result["errors"]:
            raise RuntimeError(f"idle benchmark load failed: {result['errors'][:3]}")
        completed += len(result["timings"])
        progress(f"  {completed}/{to_complete} workflows completed")
    started = [(tenants[index % len(tenants)], target.start(tenants[index % len(tenants)])) for index in range(waiting)]
    deadline = time.monotonic() + 120
    for tenant, workflow_id in started:
        while not target.state(tenant, workflow_id)[1]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"workflow {workflow_id} never reached WAITING_FOR_CALLBACK")
            time.sleep(poll_interval)
    progress(f"  {waiting} more workflows left waiting for their callback")
    return {"completed": completed, "waiting": waiting}


def watch(target: StackTarget, window_seconds: float, progress: Progress,
          interval: float = SAMPLE_INTERVAL_SECONDS) -> list[Sample]:
    """Sample the stack and its workers every ``interval`` seconds for ``window_seconds``."""
    kinds, began, next_report = target.processes(), time.monotonic(), 60.0
    samples = [read_sample(kinds, 0.0)]
    while samples[-1].at < window_seconds:
        time.sleep(max(0.0, min(interval, began + window_seconds - time.monotonic())))
        samples.append(read_sample(kinds, time.monotonic() - began))
        if samples[-1].at >= next_report:
            progress(f"  idle {samples[-1].at:4.0f}s: {len(samples[-1].rss_mb)} processes, "
                     f"{sum(samples[-1].rss_mb.values()):.1f} MB RSS")
            next_report += 60.0
    return samples


def measure(running_stack: Callable[..., Any], workflows: int, window_seconds: float,
            progress: Progress) -> dict[str, Any]:
    """Item 7 on a stack with default options but workers that outlive the window: drive ``workflows`` workflows,
    let it settle, then watch it idle."""
    progress("starting a stack with default options (workers outlive the idle window)")
    with running_stack("stack-idle", ["--idle-timeout", str(int(window_seconds + 300))]) as stack:
        began, target = time.monotonic(), StackTarget(stack)
        load = drive(target, workflows, progress)
        load_seconds = time.monotonic() - began
        time.sleep(SETTLE_SECONDS)
        samples = watch(target, window_seconds, progress)
    figures = idle_figures(samples)
    progress(f"  idle {figures['windowSeconds']:.0f} s: RSS {figures['rssFirstMb']:.1f} -> "
             f"{figures['rssLastMb']:.1f} MB ({figures['rssGrowthMb']:+.2f} MB), CPU "
             f"{figures['cpuPercentOfCore']:.2f}% of a core over {figures['processes']} processes")
    return {"workflows": load, "loadSeconds": load_seconds, "settleSeconds": SETTLE_SECONDS,
            "targets": {"growthMb": GROWTH_TARGET_MB, "cpuPercentOfCore": CPU_TARGET_PERCENT},
            "rssSeries": [[round(sample.at, 1), round(sum(sample.rss_mb.values()), 2)] for sample in samples],
            **figures}


# -- item 8: a retried callback after each fault on its path ---------------------------------------

# The report's labels for the fault kinds of proving-ground/local/testing/faults.py (None: no fault).
FAULTS = {"none": None, "fails once": FAILS_ONCE, "fails on every attempt": FAILS_EVERY_ATTEMPT,
          "lands, answers late": LANDS_LATE, "killed right after": KILLED_AFTER}
# Where each fault is aimed: target, operation, what the call's body contains (an id by its name, or text).
CALLS = {"durable service call": ("durable", "SendDurableExecutionCallbackSuccess", ["callback-id"]),
         "lease write": ("dynamodb", "UpdateItem", ["callback-key", "claimOwner"])}


def fault_rule(fault: str, call: str, ids: dict[str, str]) -> dict[str, Any] | None:
    """The fault-plan rule for one fault kind aimed at one call of one workflow (None: no fault)."""
    if FAULTS[fault] is None:
        return None
    target, operation, markers = CALLS[call]
    return plan_rule(FAULTS[fault], target=target, operation=operation,
                     body_contains=[ids.get(marker, marker) for marker in markers])


def measure_one(stack: StackProcess, faults_url: str, fault: str, call: str) -> dict[str, float]:
    """One workflow: wait for its callback, arm the fault, answer with retries; time it."""
    workflow_id = stack.start_workflow("tenant-a")
    callback_id = stack.wait_for_status("tenant-a", workflow_id, "WAITING_FOR_CALLBACK")["callbackId"]
    ids = {"callback-id": callback_id, "callback-key": "callback#" + hashlib.sha256(callback_id.encode()).hexdigest()}
    if (rule := fault_rule(fault, call, ids)) is not None:
        requests.post(f"{faults_url}/_faults", json=rule, timeout=10).raise_for_status()
    started = time.monotonic()
    seen = post_with_retries(requests.Session(), f"{stack.api_url}/callback",
                             {"callbackId": callback_id, "payload": {"bench": fault}}, stack.headers("tenant-a"))
    answered = time.monotonic() - started
    if seen[-1] != 200:
        raise RuntimeError(f"{call} / {fault}: the callback ended with {seen}")
    stack.wait_for_status("tenant-a", workflow_id, "COMPLETED", timeout=120)
    return {"answeredSeconds": answered, "completedSeconds": time.monotonic() - started, "attempts": len(seen)}


def faults(running_stack: Callable[..., Any], repeats: int, progress: Progress) -> dict[str, Any]:
    """Every (call, fault) ``repeats`` times on one fault-injection stack; medians, min and max."""
    rows = []
    with running_stack("stack-faults", ["--fault-injection"]) as stack:
        line = next(line for line in stack.log_path.read_text().splitlines() if "Fault injection" in line)
        faults_url = line.split()[-1].removesuffix("/_faults")
        for call, fault in ((call, fault) for call in CALLS for fault in FAULTS):
            samples = [measure_one(stack, faults_url, fault, call) for _ in range(repeats)]
            rows.append({"call": call, "fault": fault, **{key: summary([sample[key] for sample in samples])
                                                          for key in samples[0]}})
            progress(f"  retried callback, {call} / {fault}: answered in {rows[-1]['answeredSeconds']['median']:.2f} "
                     f"s, workflow COMPLETED in {rows[-1]['completedSeconds']['median']:.2f} s (median of {repeats})")
    return {"repeats": repeats, "rows": rows}
