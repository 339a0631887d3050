"""``make bench``: measure the pattern on this machine and write docs/benchmarks.{md,json,png}.

Twelve items by default, each figure the median of repeated runs with min and max, each comparison a ratio of two
measurements taken in the same repeat: 1. end to end on the local stack against the floor (``bench.floor``), T tenants
at once; 2. cold start under python3.13 of the shipped zip against source-only and against the bare durable SDK;
3. tenant-data store reads; 4. resident memory of one tenant worker against the bare SDK; 5. size of each deployment
zip; 6. billed cost per 1,000 workflows next to a polling design; 7. the idle stack's RSS and CPU after 500 workflows;
8. the time for a retried callback to complete after each kind of fault on its path; 9. one tenant's latency while
another floods the API over its usage plan; 11. the approval page and the pending list (``bench.page``);
12. onboarding and offboarding a tenant (``bench.lifecycle``); 13. the queue entry against ``POST /workflow``, send to
``WAITING_FOR_CALLBACK`` and starts per second, with an idle start queue's monthly cost (``bench.queue``). Opt in
(``--only freshrun``, minutes): 10. a fresh clone's first ``make run``. Not part of ``make test``; ``--quick`` runs
smaller in about half the time. A run replaces its items' results in the out-dir's benchmarks.json and keeps the
others (each with the date it was measured), then rewrites the report.
"""
import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench import REPO_ROOT, WORKFLOW_SUFFIX, cost, idle, lifecycle, page, probes, queue, report
from scripts.measure_flood import measure_flood
from bench.e2e import FloorTarget, StackTarget, Target, WorkflowTiming, run_round, run_workflow
from bench.stats import cpu_seconds, growth, p95, paired_ratios, rss_mb, summary
from tests.harness import StackProcess

ITEMS = ("package", "coldstart", "memory", "e2e", "tenant", "cost", "idle", "faults", "flood", "page", "lifecycle",
         "queue", "freshrun")
DEFAULT_ITEMS = ITEMS[:-1]  # freshrun clones and installs, minutes per ref: only when asked for
METRICS = ("startP50", "startP95", "callbackP50", "callbackP95", "workflowsPerSecond")
STARTED = time.monotonic()
# flag, dest (benchmarks.json's config records it camel-cased), default, --quick value, help
OPTIONS = (("--repeats", "repeats", 3, 2, "repeats of every measurement"),
           ("--tenants", "tenant_counts", (1, 5, 20), None,
            "tenant counts T of the end-to-end rounds, comma-separated"),
           ("--workflows", "workflows_per_tenant", 1, None, "workflows per tenant W started at once in a warm round"),
           ("--poll-interval", "poll_interval_seconds", 0.1, None,
            "seconds between a client's status reads, on stack and floor alike"),
           ("--tenant-workflows", "tenant_workflows", 100, 40, "workflows in the one-tenant run, >= 20"),
           ("--sequential-workflows", "sequential_workflows", 10, 5, "of which run one at a time, on stack and floor"),
           ("--coldstart-runs", "coldstart_runs", 9, 3, "fresh processes per side (python3.13)"),
           ("--idle-workflows", "idle_workflows", 500, 100, "workflows before the idle window, >= 10"),
           ("--idle-window", "idle_window_seconds", 600.0, 120.0, "seconds the idle stack is watched, >= 10"),
           ("--flood-seconds", "flood_seconds", 10.0, 5.0, "length of each repeat's flood"),
           ("--queue-starts", "queue_starts", 10, 5,
            "item 13: starts one at a time through each entry (HTTP, start queue) per repeat"),
           ("--queue-burst", "queue_burst", 40, 20, "item 13: starts sent at once through each entry per repeat"),
           ("--fresh-run-before", "fresh_run_before", probes.FRESH_RUN_BEFORE, None,
            "the git ref whose first make run item 10 compares HEAD's with"),
           ("--only", "items", DEFAULT_ITEMS, None, f"comma-separated subset of: {', '.join(ITEMS)}"),
           ("--out-dir", "out_dir", REPO_ROOT / "docs", None, "where the report files go"),
           ("--report-only", "report_only", None, None, "measure nothing: rewrite the report from a benchmarks.json"))
NOT_RECORDED = ("out_dir", "report_only", "no_build")


def _items(text: str) -> tuple[str, ...]:
    chosen = {part.strip() for part in text.split(",")}
    if chosen - set(ITEMS):
        raise argparse.ArgumentTypeError(f"unknown item(s): {', '.join(sorted(chosen - set(ITEMS)))}")
    return tuple(item for item in ITEMS if item in chosen)


PARSE = {"tenant_counts": lambda text: tuple(sorted({int(part) for part in text.split(",") if part.strip()})),
         "items": _items, "report_only": Path}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The run's options: one ``--flag`` per figure that sizes a run; the defaults are ``make bench``."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="quicker subset: each option's --quick value below")
    parser.add_argument("--no-build", action="store_true", help="never run make build; fail if the zips are stale")
    for flag, dest, default, quick, text in OPTIONS:
        parser.add_argument(flag, dest=dest, default=default, type=PARSE.get(dest, type(default)),
                            help=f"{text} ({default}{'' if quick is None else f'; --quick: {quick}'})")
    config = parser.parse_args(argv)
    if config.quick:  # the --quick values become the defaults, so an option given still wins
        parser.set_defaults(**{dest: quick for _, dest, _, quick, _ in OPTIONS if quick is not None})
        config = parser.parse_args(argv)
    config.sequential_workflows = min(config.sequential_workflows, config.tenant_workflows)
    config.out_dir = REPO_ROOT / config.out_dir  # unchanged when absolute
    config.started_at = time.strftime("%Y-%m-%d %H:%M:%S %z")
    if min(config.repeats, config.workflows_per_tenant, config.queue_starts, config.queue_burst) < 1 \
            or config.tenant_workflows < 20 \
            or config.idle_workflows < 10 or config.idle_window_seconds < 2 * idle.SAMPLE_INTERVAL_SECONDS:
        parser.error("--repeats, --workflows, --queue-starts and --queue-burst must be >= 1, --tenant-workflows >= 20, "
                     "--idle-workflows >= 10, "
                     f"--idle-window >= {2 * idle.SAMPLE_INTERVAL_SECONDS:.0f}")
    return config


def describe(config: argparse.Namespace) -> dict[str, Any]:
    """The options that shape the figures, as benchmarks.json records them (camel-cased)."""
    return {re.sub(r"_(\w)", lambda match: match[1].upper(), name): value
            for name, value in vars(config).items() if name not in NOT_RECORDED}


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


@contextlib.contextmanager
def running_stack(workdir: Path, name: str, extra_args: list[str]) -> Iterator[StackProcess]:
    """``python -m local`` with its state and log in ``workdir``, stopped on the way out."""
    stack = StackProcess(workdir / f"{name}-state", workdir / f"{name}.log", extra_args)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@contextlib.contextmanager
def stack_and_floor(workdir: Path, name: str, stack_args: list[str]) -> Iterator[tuple[StackTarget, FloorTarget]]:
    """A stack without table snapshots (the floor has none) and a floor, as targets; stopped on the way out."""
    with running_stack(workdir, name, ["--snapshot-interval", "0", *stack_args]) as stack:
        floor = FloorTarget(workdir / f"{name}-floor")
        try:
            yield StackTarget(stack), floor
        finally:
            floor.stop()


def process_cpu(target: Any) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each process of a target, by pid, with the kind of process."""
    return {pid: (kind, cpu_seconds(pid)) for pid, kind in target.processes().items()}


def cpu_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds used between two snapshots, by kind of process: a process that started in between counts in
    full; one reclaimed in between (an idle worker of an earlier round) is left out, its CPU gone with it."""
    used = {kind: 0.0 for kind, _ in [*before.values(), *after.values()]}
    for pid, (kind, seconds) in after.items():
        used[kind] += seconds - before.get(pid, (kind, 0.0))[1]
    return used


def reads_by_environment(timings: list[Any]) -> dict[str, dict[str, int]]:
    """Per tenant: store reads (cache misses reported in the results), environments that served it, workflows."""
    per_tenant: dict[str, dict[str, Any]] = {}
    for timing in timings:
        result = timing.result or {}
        envs, flags = result.get("environments") or {}, result.get("tenantDataFromCache") or {}
        entry = per_tenant.setdefault(timing.tenant_id, {"reads": 0, "environments": set(), "workflows": 0})
        entry["workflows"] += 1
        entry["environments"] |= {envs[key] for key in ("validatedIn", "finalizedIn") if key in envs}
        entry["reads"] += sum(flags.get(step) is False for step in ("validate", "finalize"))
    return {tenant: {**entry, "environments": len(entry["environments"])} for tenant, entry in per_tenant.items()}


def handler_invocations(stack: StackProcess, tenant_id: str) -> int:
    """Invocations of the workflow handler for ``tenant_id`` (replays included), as the Lambda service counted them."""
    rows = requests.get(f"{stack.lambda_url}/_local/invocations", timeout=10).json()["invocations"]
    return sum(row["count"] for row in rows if row["functionName"].endswith(WORKFLOW_SUFFIX)
               and row["tenantId"] == tenant_id and row["kind"] == "handler")


# -- item 1 (and item 3 across tenants): end to end ---------------------------------------------


def measured_round(target: Target, phase: str, tenant_ids: list[str], per_tenant: int, repeat: int,
                   poll_interval: float) -> tuple[dict[str, Any], list[WorkflowTiming]]:
    """One round (:func:`bench.e2e.run_round`) with the CPU its target and this driver used: its record, its timings."""
    cpu_before, driver_before = process_cpu(target), resource.getrusage(resource.RUSAGE_SELF)
    result = run_round(target, phase, tenant_ids, per_tenant, poll_interval)
    driver_after, cpu_after = resource.getrusage(resource.RUSAGE_SELF), process_cpu(target)
    timings, errors, reads = result.pop("timings"), result.pop("errors"), result.pop("statusReads")
    completed, wall, cpu = len(timings), result["wallSeconds"], cpu_used(cpu_before, cpu_after)
    record = {**result, "repeat": repeat, "completed": completed, "errors": errors[:5], "errorCount": len(errors),
              "workflowsPerSecond": completed / wall if wall > 0 else 0.0, "cpuSeconds": cpu,
              "driverCpuSeconds": sum(driver_after[:2]) - sum(driver_before[:2]),
              "statusReadsPerWorkflow": reads / max(1, completed),
              "newEnvironments": len([pid for pid, (kind, _) in cpu_after.items() if pid not in cpu_before
                                      and kind == "workflowWorkers"]) if target.name == "stack" else None}
    if not timings:
        progress(f"{target.name} {phase} T={len(tenant_ids)} all failed: {errors[:1]}")
        return record, timings
    starts, callbacks = [t.start_to_callback_ms for t in timings], [t.callback_to_completed_ms for t in timings]
    record.update(startP50=summary(starts)["median"], startP95=p95(starts),
                  callbackP50=summary(callbacks)["median"], callbackP95=p95(callbacks))
    progress(f"{target.name:9s} {phase:5s} T={len(tenant_ids):<2d} n={completed:<3d} start->callbackId p50 "
             f"{record['startP50']:6.0f} p95 {record['startP95']:6.0f} ms | callback->COMPLETED p50 "
             f"{record['callbackP50']:6.0f} p95 {record['callbackP95']:6.0f} ms | {record['workflowsPerSecond']:5.2f}"
             f" wf/s | {sum(cpu.values()) * 1000 / completed:4.0f} ms CPU/wf | retries {record['retries']} | "
             f"errors {len(errors)}")
    return record, timings


def status_read_cost(target: Target, timing: WorkflowTiming, reads: int = 30) -> dict[str, float]:
    """Latency and CPU (all of the target's processes) of one status read, on an otherwise idle target."""
    latencies, before = [], process_cpu(target)
    for _ in range(reads):
        started = time.perf_counter()
        target.state(timing.tenant_id, timing.workflow_id)
        latencies.append((time.perf_counter() - started) * 1000)
    return {"latencyP50Ms": summary(latencies)["median"],
            "cpuMs": sum(cpu_used(before, process_cpu(target)).values()) * 1000 / reads}


def run_e2e(config: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Every tenant count in turn, a cold then a warm round on each target, fresh tenants in every repeat."""
    progress("starting the local stack and the floor")
    rounds, tenant_reads, per_tenant = [], [], config.workflows_per_tenant
    phases = [("cold", 1)] + [("warm-up", per_tenant)] * (per_tenant > 1) + [("warm", per_tenant)]
    with stack_and_floor(workdir, "stack", ["--idle-timeout", "180"]) as targets:
        stack, floor = targets
        for repeat in range(config.repeats):
            order = targets if repeat % 2 == 0 else targets[::-1]
            for tenant_count in config.tenant_counts:
                largest = tenant_count == max(config.tenant_counts)
                tenant_ids = [f"bench-r{repeat}-t{tenant_count}-{index:02d}" for index in range(tenant_count)]
                for target, tenant_id in ((t, i) for t in order for i in tenant_ids):
                    target.add_tenant(tenant_id)
                timings: dict[str, list[WorkflowTiming]] = {target.name: [] for target in order}
                floor_reads_before = floor.stats()["storeReads"]
                for (phase, workflows), target in ((p, t) for p in phases for t in order):
                    record, round_timings = measured_round(target, phase, tenant_ids, workflows, repeat,
                                                           config.poll_interval_seconds)
                    timings[target.name] += round_timings
                    if phase == "warm" and largest and round_timings:
                        record["statusRead"] = status_read_cost(target, round_timings[0])
                    if phase != "warm-up":  # a warm-up only starts the environments a warm round of W needs
                        rounds.append(record)
                if largest:
                    reads = {target.name: reads_by_environment(timings[target.name]) for target in order}
                    invocations = {tenant: handler_invocations(stack.stack, tenant) for tenant in reads["stack"]}
                    floor_reads = floor.stats()["storeReads"] - floor_reads_before
                    tenant_reads.append({"repeat": repeat,
                                         "stack": {"perTenant": reads["stack"], "handlerInvocations": invocations},
                                         "floor": {"perTenant": reads["floor"], "storeReadsCounter": floor_reads}})
    return {"rounds": rounds, "tenantReads": tenant_reads, "summary": summarize_rounds(rounds, config)}


def summarize_rounds(rounds: list[dict[str, Any]], config: argparse.Namespace) -> dict[str, Any]:
    """Per target, tenant count and phase: each metric's median/min/max over repeats, and stack/floor ratios."""
    table: dict[tuple[str, int, str], dict[int, dict[str, Any]]] = {}
    for record in rounds:
        if "startP50" in record:
            table.setdefault((record["target"], record["tenants"], record["phase"]), {})[record["repeat"]] = record

    def per_workflow(record: dict[str, Any], part: str | None = None) -> float:  # CPU ms, of one kind or all
        cpu = record["cpuSeconds"]
        return (cpu[part] if part else sum(cpu.values())) * 1000 / record["completed"]

    rows = []
    for (target, tenants, phase), by_repeat in table.items():
        repeats = [by_repeat[r] for r in sorted(by_repeat)]
        row: dict[str, Any] = {
            "target": target, "tenants": tenants, "phase": phase,
            **{metric: summary([r[metric] for r in repeats]) for metric in METRICS},
            "cpuMsPerWorkflow": summary([per_workflow(r) for r in repeats]),
            "cpuSplitMsPerWorkflow": {part: summary([per_workflow(r, part) for r in repeats])
                                      for part in repeats[0]["cpuSeconds"]},
            "statusReadsPerWorkflow": summary([r["statusReadsPerWorkflow"] for r in repeats]),
            "retries": sum(r["retries"] for r in repeats), "errors": sum(r["errorCount"] for r in repeats),
            "newEnvironments": [r["newEnvironments"] for r in repeats]}
        if read := [r for r in repeats if "statusRead" in r]:
            row["statusReadCpuMs"] = summary([r["statusRead"]["cpuMs"] for r in read])
            row["statusReadLatencyMs"] = summary([r["statusRead"]["latencyP50Ms"] for r in read])
            row["cpuMsPerWorkflowWithoutReads"] = summary(
                [per_workflow(r) - r["statusReadsPerWorkflow"] * r["statusRead"]["cpuMs"] for r in read])
        floor = table.get(("floor", tenants, phase), {})
        if target != "floor" and (common := sorted(set(by_repeat) & set(floor))):
            row["ratioToFloor"] = {metric: summary(paired_ratios([by_repeat[r][metric] for r in common],
                                                                 [floor[r][metric] for r in common]))
                                   for metric in METRICS}
        rows.append(row)
    rows.sort(key=lambda row: (row["phase"] != "cold", row["tenants"], row["target"] != "stack"))
    return {"rows": rows, "targetTenants": max(config.tenant_counts)}


# -- items 3, 4, 6: one tenant, many workflows ---------------------------------------------------


def run_tenant(config: argparse.Namespace, workdir: Path, baseline_rss: dict[str, Any] | None) -> dict[str, Any]:
    """One fresh tenant per repeat on a stack limited to one environment per tenant.

    Each repeat's first ``sequential_workflows`` run one at a time, on the stack and on the floor (their invocation
    times are the cost input, free of queueing). Then every repeat's tenant runs its remaining workflows, ten at a
    time, all tenants at once (each has its own single environment, so the repeats stay independent); each
    worker's RSS is read after every ten of its workflows.
    """
    progress("starting a stack limited to one environment per tenant, and the floor")
    repeats: list[dict[str, Any]] = []
    with stack_and_floor(workdir, "stack-one-env", ["--max-workers-per-tenant", "1", "--idle-timeout", "900"]) as (
            stack, floor):
        for repeat in range(config.repeats):
            tenant_id, floor_before, timings, stored = f"bench-solo-{repeat}", floor.stats(), {}, {}
            for target in (stack, floor):
                target.add_tenant(tenant_id)
                timings[target.name] = [run_workflow(target, tenant_id, config.poll_interval_seconds)
                                        for _ in range(config.sequential_workflows)]
                stored[target.name] = cost.load_executions(target.state_dir,
                                                           [timing.workflow_id for timing in timings[target.name]])
            floor_after, stack_stored = floor.stats(), stored["stack"]
            repeats.append({
                "repeat": repeat, "tenantId": tenant_id, "timings": timings["stack"], "rss": [],
                "stackInvocationMs": [cost.invocation_durations_ms(e) for e in stack_stored],
                "floorInvocationMs": [cost.invocation_durations_ms(e) for e in stored["floor"]],
                "floorHandlerMs": floor_after["handlerMs"][len(floor_before["handlerMs"]):],
                "floorStoreReads": floor_after["storeReads"] - floor_before["storeReads"],
                "durableOperations": [len(e.get("Operations", [])) for e in stack_stored],
                "dataWrittenBytes": [cost.data_written_bytes(e) for e in stack_stored]})
        progress(f"  {config.sequential_workflows} sequential workflows per repeat done; now the rest, "
                 f"{config.repeats} tenants at once")
        with ThreadPoolExecutor(len(repeats)) as pool:  # the first error, if any, is raised here
            list(pool.map(lambda entry: _run_solo(config, stack, entry), repeats))
        for entry in repeats:
            timings, tenant_id, rss = entry.pop("timings"), entry.pop("tenantId"), entry.pop("rss")
            reads = reads_by_environment(timings)[tenant_id]
            entry.update(
                workflows=len(timings), storeReads=reads["reads"], environments=reads["environments"],
                workers=len([w for w in stack.stack.workers() if w["tenantId"] == tenant_id]),
                handlerInvocations=handler_invocations(stack.stack, tenant_id), rssMb=[list(s) for s in rss],
                rssGrowth=growth([sample for sample in rss if sample[0] >= 10]),
                rssSecondHalfChange=rss[-1][1] - min(rss, key=lambda sample: abs(sample[0] - len(timings) / 2))[1])
            ratio = f" ({rss[-1][1] / baseline_rss['median']:.2f}x bare SDK)" if baseline_rss else ""
            progress(f"one tenant, repeat {entry['repeat'] + 1}/{config.repeats}: {entry['workflows']} workflows, "
                     f"{entry['handlerInvocations']} handler invocations, {entry['storeReads']} store read(s) in "
                     f"{entry['environments']} environment(s); worker RSS {rss[0][1]:.1f} MB after {rss[0][0]} -> "
                     f"{rss[-1][1]:.1f} MB after {rss[-1][0]}{ratio}")
    return {"repeats": repeats}


def _run_solo(config: argparse.Namespace, target: StackTarget, entry: dict[str, Any]) -> None:
    """The rest of one repeat's workflows, ten at a time, reading the worker's RSS after every ten."""
    timings, tenant_id, rss = entry["timings"], entry["tenantId"], entry["rss"]
    while True:
        if len(timings) % 10 == 0 or len(timings) == config.tenant_workflows:
            workers = [w for w in target.stack.workers()
                       if w["tenantId"] == tenant_id and w["functionName"].endswith(WORKFLOW_SUFFIX)]
            if len(workers) != 1:
                raise RuntimeError(f"expected one environment for {tenant_id}, found {len(workers)}")
            rss.append((len(timings), rss_mb(workers[0]["pid"])))
        if len(timings) >= config.tenant_workflows:
            return
        batch = min(10 - len(timings) % 10, config.tenant_workflows - len(timings))
        result = run_round(target, "solo", [tenant_id], batch, config.poll_interval_seconds)
        if result["errors"]:
            raise RuntimeError(f"one-tenant run, {tenant_id}: {result['errors'][0]}")
        timings.extend(result["timings"])


# -- item 9: a noisy neighbour ----------------------------------------------------------------------


def run_flood(config: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """``scripts.measure_flood`` against one stack with the usage plans on, once per repeat, each flood starting
    with the flooder's bucket full; the tenants' plans from the file the stack reads them from."""
    tenants = json.loads((REPO_ROOT / "src" / "shared" / "demo_tenants.json").read_text())
    tiers = json.loads((REPO_ROOT / "src" / "shared" / "tiers.json").read_text())["tiers"]
    plans = {t["tenantId"]: {"rate": tiers[t["tier"]]["rateLimit"], "burst": tiers[t["tier"]]["burstLimit"]}
             for t in tenants}
    repeats = []
    with running_stack(workdir, "flood", ["--throttle", "on"]) as stack:
        for repeat in range(config.repeats):
            time.sleep(plans["tenant-b"]["burst"] / plans["tenant-b"]["rate"])  # a full bucket again
            repeats.append(measure_flood(stack.api_url, stack.api_keys, flood_seconds=config.flood_seconds).as_dict())
            alone, during = repeats[-1]["baseline"], repeats[-1]["flood"]
            progress(f"  repeat {repeat + 1}: tenant-a p50 {alone['p50_ms']} ms alone, {during['tenant-a']['p50_ms']}"
                     f" ms in the flood, answers {during['tenant-a']['statuses']}; "
                     f"tenant-b {during['tenant-b']['statuses']}")
    return {"plans": plans, "repeats": repeats}


def merge(previous: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new``'s items over a previous benchmarks.json: the others stay, each with the date it was measured
    (``measuredAt``); the header (options, machine, duration) is the last run that measured every default item."""
    measured = [item for item in ITEMS if item in new]
    since = {item: previous["config"]["startedAt"] for item in ITEMS if item in previous}
    merged = {**previous, **{item: new[item] for item in measured}}
    if set(DEFAULT_ITEMS) <= set(new["config"]["items"]):
        merged.update({key: new[key] for key in ("config", "machine", "elapsedSeconds")})
    merged["measuredAt"] = {**since, **previous.get("measuredAt", {}),
                            **dict.fromkeys(measured, new["config"]["startedAt"])}
    return merged


# -- main -------------------------------------------------------------------------------------------


def run(config: argparse.Namespace) -> dict[str, Any]:
    """Measure the items of ``config.items`` in turn; the results as benchmarks.json keeps them."""
    results: dict[str, Any] = {"config": describe(config), "machine": {
        "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
        "pythonDontWriteBytecode": os.environ.get("PYTHONDONTWRITEBYTECODE", "")}}
    workdir, items = Path(tempfile.mkdtemp(prefix="bench-")), config.items
    stack_in_workdir = lambda name, args: running_stack(workdir, name, args)  # noqa: E731
    try:
        if "package" in items or "coldstart" in items:
            progress("make build if the zips are stale" + (" (--no-build: fail instead)" if config.no_build else ""))
            probes.fresh_zips(not config.no_build)
        if "package" in items:
            progress("item 5: deployment zips, as shipped and source-only")
            results["package"] = probes.package()
            for row in results["package"]["zips"]:
                progress(f"  {row['zip']} {row['zip_bytes'] / 2**20:.1f} MB ({row['unzipped_bytes'] / 2**20:.1f} MB "
                         f"unzipped, {row['pyc_files']} .pyc)")
        if "coldstart" in items:
            progress(f"item 2: cold start under python3.13, {config.coldstart_runs} rounds of 4 fresh processes")
            results["coldstart"] = probes.coldstart(config.coldstart_runs, progress)
        if "memory" in items or "tenant" in items:
            progress("item 4: bare-SDK baseline and layer-by-layer RSS")
            results["memory"] = probes.memory(config.repeats)
            progress(f"  bare SDK process RSS {results['memory']['bareSdkRssMb']['median']:.1f} MB")
        if "e2e" in items:
            progress(f"item 1: end to end, tenants {config.tenant_counts}, W={config.workflows_per_tenant}, "
                     f"{config.repeats} repeats, polling every {config.poll_interval_seconds * 1000:.0f} ms")
            results["e2e"] = run_e2e(config, workdir)
        if "tenant" in items:
            progress(f"items 3, 4, 6: {config.tenant_workflows} workflows of one tenant, {config.repeats} repeats")
            results["tenant"] = run_tenant(config, workdir, results["memory"]["bareSdkRssMb"])
        if "cost" in items and "tenant" in results:
            results["cost"] = cost.per_1000(results["tenant"])
        if "idle" in items:
            progress(f"item 7: idle footprint, {config.idle_workflows} workflows then "
                     f"{config.idle_window_seconds:.0f} s idle")
            results["idle"] = idle.measure(stack_in_workdir, config.idle_workflows, config.idle_window_seconds,
                                           progress)
        if "faults" in items:
            progress(f"item 8: a retried callback after each fault kind, {config.repeats} workflows per cell")
            results["faults"] = idle.faults(stack_in_workdir, config.repeats, progress)
        if "flood" in items:
            progress(f"item 9: tenant-b floods for {config.flood_seconds:.0f} s while tenant-a reads, "
                     f"{config.repeats} repeats")
            results["flood"] = run_flood(config, workdir)
        if "page" in items:
            progress(f"item 11: the approval page (render, template engines under python3.13, {config.coldstart_runs} "
                     f"fresh processes each) and the pending list at {', '.join(map(str, page.SIZES))} waiting workflows")
            results["page"] = page.measure(stack_in_workdir, page.runtime_python(), config.repeats,
                                           config.coldstart_runs, progress)
        if "lifecycle" in items:
            progress(f"item 12: onboarding and offboarding a tenant through the admin API, {config.repeats} repeats")
            results["lifecycle"] = lifecycle.measure(stack_in_workdir, config.repeats, progress)
        if "queue" in items:
            progress(f"item 13: the queue entry against POST /workflow, {config.queue_starts} starts one at a time and "
                     f"{config.queue_burst} at once through each, {config.repeats} repeats")
            results["queue"] = {**queue.measure(stack_in_workdir, config.queue_starts, config.queue_burst,
                                                config.repeats, progress), "idleCost": cost.idle_start_queues()}
        if "freshrun" in items:
            head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                  text=True, check=True).stdout.strip()
            progress(f"item 10: a fresh clone's first make run, at {head} (HEAD) and at {config.fresh_run_before}")
            results["freshrun"] = probes.freshrun((head, config.fresh_run_before), progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["elapsedSeconds"] = time.monotonic() - STARTED
    return results


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    if config.report_only is not None:
        results = json.loads(config.report_only.read_text())
    else:
        progress(f"benchmarks: {', '.join(config.items)}{' (quick)' if config.quick else ''}")
        results = run(config)
        if (previous := config.out_dir / report.JSON_FILE).is_file():
            results = merge(json.loads(previous.read_text()), results)
    results["verdicts"] = report.verdicts(results)
    written = report.write(results, config.out_dir)
    print("\n" + report.console_table(results) + "\n", flush=True)
    for path in written:
        print(f"wrote {path}")
    progress(f"done in {(time.monotonic() - STARTED) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
