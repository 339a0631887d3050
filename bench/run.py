"""``make bench``: measure the pattern on this machine and write docs/benchmarks.{md,json,png}.

Eight items, each figure the median of repeated runs with min and max, each comparison a ratio of two measurements
taken in the same repeat: 1. end to end on the local stack against the floor (``bench.floor``), T tenants at once;
2. cold start of the handler module against the bare durable SDK; 3. tenant-data store reads; 4. resident memory of
one tenant worker against the bare SDK; 5. size of each deployment zip; 6. billed cost per 1,000 workflows next to a
polling design; 7. the idle stack's RSS and CPU after 500 workflows; 8. the time for a retried callback to complete
after each kind of fault on its path. Not part of ``make test``; ``--quick`` runs smaller in about half the time.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field, fields
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench import REPO_ROOT, WORKFLOW_SUFFIX, cost, idle, probes, report
from bench.e2e import FloorProcess, FloorTarget, RoundResult, StackTarget, run_round, run_workflow
from bench.stats import growth, p95, paired_ratios, rss_mb, cpu_seconds, summary
from tests.harness import StackProcess

ITEMS = ("package", "coldstart", "memory", "e2e", "tenant", "cost", "idle", "faults")
METRICS = ("startP50", "startP95", "callbackP50", "callbackP95", "workflowsPerSecond")
STARTED = time.monotonic()


def _option(default: Any, help: str, quick: Any = None, parse: Any = None) -> Any:  # noqa: A002
    return field(default=default, metadata={"help": help, "quick": quick, "parse": parse})


def _tenants(text: str) -> tuple[int, ...]:
    return tuple(sorted({int(part) for part in text.split(",") if part.strip()}))


def _items(text: str) -> tuple[str, ...]:
    chosen = {part.strip() for part in text.split(",")}
    if chosen - set(ITEMS):
        raise argparse.ArgumentTypeError(f"unknown item(s): {', '.join(sorted(chosen - set(ITEMS)))}")
    return tuple(item for item in ITEMS if item in chosen)


@dataclass
class Config:
    """What to run, one ``--flag`` per field; the defaults are ``make bench``."""

    quick: bool = _option(False, "quicker subset: each option's --quick value below")
    repeats: int = _option(3, "repeats of every measurement", 2)
    tenants: tuple[int, ...] = _option((1, 5, 20), "tenant counts T of the end-to-end rounds, comma-separated",
                                       parse=_tenants)
    workflows: int = _option(1, "workflows per tenant W started at once in a warm round")
    poll_interval: float = _option(0.1, "seconds between a client's status reads, on stack and floor alike")
    tenant_workflows: int = _option(100, "workflows in the one-tenant run, >= 20", 40)
    sequential_workflows: int = _option(10, "of which run one at a time, on the stack and the floor", 5)
    coldstart_runs: int = _option(9, "fresh processes per side and bytecode mode", 3)
    idle_workflows: int = _option(500, "workflows before the idle window, >= 10", 100)
    idle_window: float = _option(600.0, "seconds the idle stack is watched, >= 10", 120.0)
    only: tuple[str, ...] = _option(ITEMS, "comma-separated subset of the items", parse=_items)
    no_build: bool = _option(False, "never run make build; fail if the zips are stale")
    out_dir: Path = _option(REPO_ROOT / "docs", "where the report files go")
    report_only: Path | None = _option(None, "measure nothing: rewrite the report from a benchmarks.json", parse=Path)
    started_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S %z"))

    def describe(self) -> dict[str, Any]:
        keys = dict(repeats="repeats", tenantCounts="tenants", workflowsPerTenant="workflows",
                    pollIntervalSeconds="poll_interval", tenantWorkflows="tenant_workflows",
                    sequentialWorkflows="sequential_workflows", coldstartRuns="coldstart_runs",
                    idleWorkflows="idle_workflows", idleWindowSeconds="idle_window", quick="quick", items="only",
                    startedAt="started_at")
        return {key: getattr(self, name) for key, name in keys.items()}


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    options = [option for option in fields(Config) if "help" in option.metadata]
    for option in options:
        meta, flag = option.metadata, "--" + option.name.replace("_", "-")
        if isinstance(option.default, bool):
            parser.add_argument(flag, action="store_true", help=meta["help"])
        else:
            quick = "" if meta["quick"] is None else f"; --quick: {meta['quick']}"
            parser.add_argument(flag, type=meta["parse"] or type(option.default),
                                help=f"{meta['help']} ({option.default}{quick})")
    args, config = parser.parse_args(argv), Config()
    for option in options:
        if getattr(args, option.name) not in (None, False):
            setattr(config, option.name, getattr(args, option.name))
        elif args.quick and option.metadata["quick"] is not None:
            setattr(config, option.name, option.metadata["quick"])
    config.sequential_workflows = min(config.sequential_workflows, config.tenant_workflows)
    config.out_dir = REPO_ROOT / config.out_dir  # unchanged when absolute
    if min(config.repeats, config.workflows) < 1 or config.tenant_workflows < 20 or config.idle_workflows < 10 \
            or config.idle_window < 2 * idle.SAMPLE_INTERVAL_SECONDS:
        parser.error("--repeats and --workflows must be >= 1, --tenant-workflows >= 20, --idle-workflows >= 10, "
                     f"--idle-window >= {2 * idle.SAMPLE_INTERVAL_SECONDS:.0f}")
    return config


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


@contextlib.contextmanager
def running_stack(workdir: Path, name: str, extra_args: list[str]) -> Iterator[StackProcess]:
    stack = StackProcess(workdir / f"{name}-state", workdir / f"{name}.log", extra_args)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@contextlib.contextmanager
def stack_and_floor(workdir: Path, name: str, stack_args: list[str]) -> Iterator[tuple[StackProcess, FloorProcess]]:
    """A stack without table snapshots (the floor has none) and a floor, stopped on the way out."""
    with running_stack(workdir, name, ["--snapshot-interval", "0", *stack_args]) as stack:
        floor = FloorProcess(workdir / f"{name}-floor")
        try:
            yield stack, floor
        finally:
            floor.stop()


def process_cpu(process: Any) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each process of a target, by pid, with the kind of process."""
    kinds = idle.processes(process) if isinstance(process, StackProcess) else {process.pid: "floorProcess"}
    return {pid: (kind, cpu_seconds(pid)) for pid, kind in kinds.items()}


def cpu_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds used between two snapshots, by kind of process: a process that started in between counts in
    full; one reclaimed in between (an idle worker of an earlier round) is left out, its CPU gone with it."""
    used = {kind: 0.0 for kind, _ in [*before.values(), *after.values()]}
    for pid, (kind, seconds) in after.items():
        used[kind] += seconds - before.get(pid, (kind, 0.0))[1]
    return used


def driver_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    rows = requests.get(f"{stack.lambda_url}/_local/invocations", timeout=10).json()["invocations"]
    return sum(row["count"] for row in rows if row["functionName"].endswith(WORKFLOW_SUFFIX)
               and row["tenantId"] == tenant_id and row["kind"] == "handler")


# -- item 1 (and item 3 across tenants): end to end ---------------------------------------------


def round_record(result: RoundResult, repeat: int, cpu: dict[str, float], driver: float,
                 new_environments: int | None) -> dict[str, Any]:
    starts = [t.start_to_callback_ms for t in result.timings]
    callbacks = [t.callback_to_completed_ms for t in result.timings]
    completed = len(result.timings)
    record: dict[str, Any] = {
        "target": result.target, "phase": result.phase, "repeat": repeat, "tenants": result.tenants,
        "perTenant": result.per_tenant, "completed": completed, "errors": result.errors[:5],
        "errorCount": len(result.errors), "retries": result.retries, "wallSeconds": result.wall_seconds,
        "workflowsPerSecond": completed / result.wall_seconds if result.wall_seconds > 0 else 0.0,
        "cpuSeconds": cpu, "driverCpuSeconds": driver, "newEnvironments": new_environments,
        "statusReadsPerWorkflow": result.status_reads / max(1, completed)}
    if starts:
        record.update(startP50=summary(starts)["median"], startP95=p95(starts),
                      callbackP50=summary(callbacks)["median"], callbackP95=p95(callbacks))
        progress(f"{record['target']:9s} {record['phase']:5s} T={record['tenants']:<2d} n={completed:<3d} "
                 f"start->callbackId p50 {record['startP50']:6.0f} p95 {record['startP95']:6.0f} ms | callback->"
                 f"COMPLETED p50 {record['callbackP50']:6.0f} p95 {record['callbackP95']:6.0f} ms | "
                 f"{record['workflowsPerSecond']:5.2f} wf/s | {sum(cpu.values()) * 1000 / completed:4.0f} ms CPU/wf"
                 f" | retries {result.retries} | errors {len(result.errors)}")
    else:
        progress(f"{record['target']} {record['phase']} T={record['tenants']} all failed: {result.errors[:1]}")
    return record


def status_read_cost(target: Any, process: Any, timing: Any, reads: int = 30) -> dict[str, float]:
    """Latency and CPU (all of the target's processes) of one status read, on an otherwise idle target."""
    latencies, before = [], process_cpu(process)
    for _ in range(reads):
        started = time.perf_counter()
        target.state(timing.tenant_id, timing.workflow_id)
        latencies.append((time.perf_counter() - started) * 1000)
    return {"latencyP50Ms": summary(latencies)["median"],
            "cpuMs": sum(cpu_used(before, process_cpu(process)).values()) * 1000 / reads}


def run_e2e(config: Config, workdir: Path) -> dict[str, Any]:
    progress("starting the local stack and the floor")
    rounds: list[dict[str, Any]] = []
    tenant_reads: list[dict[str, Any]] = []
    phases = [("cold", 1)] + [("warm-up", config.workflows)] * (config.workflows > 1) + [("warm", config.workflows)]
    with stack_and_floor(workdir, "stack", ["--idle-timeout", "180"]) as (stack, floor):
        targets: list[tuple[Any, Any]] = [(StackTarget(stack), stack), (FloorTarget(floor.urls), floor)]
        for repeat in range(config.repeats):
            order = targets if repeat % 2 == 0 else targets[::-1]
            for tenant_count in config.tenants:
                largest = tenant_count == max(config.tenants)
                tenant_ids = [f"bench-r{repeat}-t{tenant_count}-{index:02d}" for index in range(tenant_count)]
                for (target, _), tenant_id in ((t, i) for t in order for i in tenant_ids):
                    target.add_tenant(tenant_id)
                timings: dict[str, list[Any]] = {target.name: [] for target, _ in order}
                floor_reads_before = targets[1][0].stats()["storeReads"]
                for (phase, per_tenant), (target, process) in ((p, t) for p in phases for t in order):
                    cpu_before, driver_before = process_cpu(process), driver_cpu()
                    result = run_round(target, phase, tenant_ids, per_tenant, config.poll_interval)
                    driver_used, cpu_after = driver_cpu() - driver_before, process_cpu(process)
                    new_envs = len([pid for pid, (kind, _) in cpu_after.items() if pid not in cpu_before
                                    and kind == "workflowWorkers"]) if process is stack else None
                    timings[target.name].extend(result.timings)
                    if phase == "warm-up":
                        continue
                    record = round_record(result, repeat, cpu_used(cpu_before, cpu_after), driver_used, new_envs)
                    if phase == "warm" and largest and result.timings:
                        record["statusRead"] = status_read_cost(target, process, result.timings[0])
                    rounds.append(record)
                if largest:
                    entry: dict[str, Any] = {"repeat": repeat}
                    for target, process in order:
                        per_tenant_reads = reads_by_environment(timings[target.name])
                        entry[target.name] = {"perTenant": per_tenant_reads, **(
                            {"handlerInvocations": {t: handler_invocations(stack, t) for t in per_tenant_reads}}
                            if process is stack else
                            {"storeReadsCounter": target.stats()["storeReads"] - floor_reads_before})}
                    tenant_reads.append(entry)
    return {"rounds": rounds, "tenantReads": tenant_reads, "summary": summarize_rounds(rounds, config)}


def summarize_rounds(rounds: list[dict[str, Any]], config: Config) -> dict[str, Any]:
    """Per target, tenant count and phase: each metric's median/min/max over repeats, and stack/floor ratios."""
    table: dict[tuple[str, int, str], dict[int, dict[str, Any]]] = {}
    for record in rounds:
        if "startP50" in record:
            table.setdefault((record["target"], record["tenants"], record["phase"]), {})[record["repeat"]] = record
    rows = []
    for (target, tenants, phase), by_repeat in table.items():
        repeats = [by_repeat[r] for r in sorted(by_repeat)]
        cpu_ms = [sum(r["cpuSeconds"].values()) * 1000 / r["completed"] for r in repeats]
        row: dict[str, Any] = {
            "target": target, "tenants": tenants, "phase": phase,
            **{metric: summary([r[metric] for r in repeats]) for metric in METRICS},
            "cpuMsPerWorkflow": summary(cpu_ms),
            "cpuSplitMsPerWorkflow": {part: summary([r["cpuSeconds"][part] * 1000 / r["completed"] for r in repeats])
                                      for part in repeats[0]["cpuSeconds"]},
            "statusReadsPerWorkflow": summary([r["statusReadsPerWorkflow"] for r in repeats]),
            "retries": sum(r["retries"] for r in repeats), "errors": sum(r["errorCount"] for r in repeats),
            "newEnvironments": [r["newEnvironments"] for r in repeats]}
        read = [(r, ms) for r, ms in zip(repeats, cpu_ms) if "statusRead" in r]
        if read:
            row["statusReadCpuMs"] = summary([r["statusRead"]["cpuMs"] for r, _ in read])
            row["statusReadLatencyMs"] = summary([r["statusRead"]["latencyP50Ms"] for r, _ in read])
            row["cpuMsPerWorkflowWithoutReads"] = summary([ms - r["statusReadsPerWorkflow"] * r["statusRead"]["cpuMs"]
                                                           for r, ms in read])
        floor = table.get(("floor", tenants, phase))
        common = sorted(set(by_repeat) & set(floor or {}))
        if target != "floor" and common:
            row["ratioToFloor"] = {metric: summary(paired_ratios([by_repeat[r][metric] for r in common],
                                                                 [floor[r][metric] for r in common]))
                                   for metric in METRICS}
        rows.append(row)
    rows.sort(key=lambda row: (row["phase"] != "cold", row["tenants"], row["target"] != "stack"))
    return {"rows": rows, "targetTenants": max(config.tenants)}


# -- items 3, 4, 6: one tenant, many workflows ---------------------------------------------------


def run_tenant(config: Config, workdir: Path, baseline_rss: dict[str, Any] | None) -> dict[str, Any]:
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
        stack_target, floor_target = StackTarget(stack), FloorTarget(floor.urls)
        for repeat in range(config.repeats):
            tenant_id = f"bench-solo-{repeat}"
            stack_target.add_tenant(tenant_id)
            floor_target.add_tenant(tenant_id)
            timings = [run_workflow(stack_target, tenant_id, config.poll_interval)
                       for _ in range(config.sequential_workflows)]
            floor_before = floor_target.stats()
            floor_ids = [run_workflow(floor_target, tenant_id, config.poll_interval).workflow_id
                         for _ in range(config.sequential_workflows)]
            floor_stats = floor_target.stats()
            stored = cost.load_executions(stack.state_dir, [t.workflow_id for t in timings])
            repeats.append({
                "repeat": repeat, "tenantId": tenant_id, "timings": timings, "rss": [],
                "stackInvocationMs": [cost.invocation_durations_ms(e) for e in stored.values()],
                "floorInvocationMs": [cost.invocation_durations_ms(e)
                                      for e in cost.load_executions(floor.state_dir, floor_ids).values()],
                "floorHandlerMs": floor_stats["handlerMs"][len(floor_before["handlerMs"]):],
                "floorStoreReads": floor_stats["storeReads"] - floor_before["storeReads"],
                "durableOperations": [len(e.get("Operations", [])) for e in stored.values()],
                "dataWrittenBytes": [cost.data_written_bytes(e) for e in stored.values()]})
        progress(f"  {config.sequential_workflows} sequential workflows per repeat done; now the rest, "
                 f"{config.repeats} tenants at once")
        with ThreadPoolExecutor(len(repeats)) as pool:  # the first error, if any, is raised here
            list(pool.map(lambda entry: _run_solo(config, stack, stack_target, entry), repeats))
        for entry in repeats:
            timings, tenant_id, rss = entry.pop("timings"), entry.pop("tenantId"), entry.pop("rss")
            reads = reads_by_environment(timings)[tenant_id]
            entry.update(
                workflows=len(timings), storeReads=reads["reads"], environments=reads["environments"],
                workers=len([w for w in stack.workers() if w["tenantId"] == tenant_id]),
                handlerInvocations=handler_invocations(stack, tenant_id), rssMb=[list(sample) for sample in rss],
                rssGrowth=growth([sample for sample in rss if sample[0] >= 10]),
                rssSecondHalfChange=rss[-1][1] - min(rss, key=lambda sample: abs(sample[0] - len(timings) / 2))[1])
            ratio = f" ({rss[-1][1] / baseline_rss['median']:.2f}x bare SDK)" if baseline_rss else ""
            progress(f"one tenant, repeat {entry['repeat'] + 1}/{config.repeats}: {entry['workflows']} workflows, "
                     f"{entry['handlerInvocations']} handler invocations, {entry['storeReads']} store read(s) in "
                     f"{entry['environments']} environment(s); worker RSS {rss[0][1]:.1f} MB after {rss[0][0]} -> "
                     f"{rss[-1][1]:.1f} MB after {rss[-1][0]}{ratio}")
    return {"repeats": repeats}


def _run_solo(config: Config, stack: StackProcess, target: StackTarget, entry: dict[str, Any]) -> None:
    """The rest of one repeat's workflows, ten at a time, reading the worker's RSS after every ten."""
    timings, tenant_id, rss = entry["timings"], entry["tenantId"], entry["rss"]

    def read_rss() -> None:
        workers = [w for w in stack.workers() if w["tenantId"] == tenant_id and w["functionName"].endswith(WORKFLOW_SUFFIX)]
        if len(workers) != 1:
            raise RuntimeError(f"expected one environment for {tenant_id}, found {len(workers)}")
        rss.append((len(timings), rss_mb(workers[0]["pid"])))

    if len(timings) % 10 == 0:
        read_rss()
    while len(timings) < config.tenant_workflows:
        batch = min(10 - len(timings) % 10, config.tenant_workflows - len(timings))
        result = run_round(target, "solo", [tenant_id], batch, config.poll_interval)
        if result.errors:
            raise RuntimeError(f"one-tenant run, {tenant_id}: {result.errors[0]}")
        timings.extend(result.timings)
        if len(timings) % 10 == 0 or len(timings) == config.tenant_workflows:
            read_rss()


# -- main -------------------------------------------------------------------------------------------


def run(config: Config) -> dict[str, Any]:
    results: dict[str, Any] = {"config": config.describe(), "machine": {
        "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
        "pythonDontWriteBytecode": os.environ.get("PYTHONDONTWRITEBYTECODE", "")}}
    workdir, items = Path(tempfile.mkdtemp(prefix="bench-")), config.only
    stack_in_workdir = lambda name, args: running_stack(workdir, name, args)  # noqa: E731
    try:
        if "package" in items:
            progress("item 5: deployment zips" + ("" if config.no_build else " (make build if stale)"))
            results["package"] = probes.package(not config.no_build)
            for name, info in results["package"]["zips"].items():
                progress(f"  {name}.zip {info['zipMb']:.1f} MB ({info['unzippedMb']:.1f} MB unzipped, "
                         f"{info['files']} files)")
        if "coldstart" in items:
            progress(f"item 2: cold start, {config.coldstart_runs} fresh processes per side and bytecode mode")
            probes.fresh_zips(not config.no_build)  # cold start imports build/workflow
            results["coldstart"] = probes.coldstart(config.coldstart_runs, progress, probes.BUILD_DIR / "workflow")
        if "memory" in items or "tenant" in items:
            progress("item 4: bare-SDK baseline and layer-by-layer RSS")
            results["memory"] = probes.memory(config.repeats)
            progress(f"  bare SDK process RSS {results['memory']['bareSdkRssMb']['median']:.1f} MB")
        if "e2e" in items:
            progress(f"item 1: end to end, tenants {config.tenants}, W={config.workflows}, "
                     f"{config.repeats} repeats, polling every {config.poll_interval * 1000:.0f} ms")
            results["e2e"] = run_e2e(config, workdir)
        if "tenant" in items:
            progress(f"items 3, 4, 6: {config.tenant_workflows} workflows of one tenant, {config.repeats} repeats")
            results["tenant"] = run_tenant(config, workdir, results["memory"]["bareSdkRssMb"])
        if "cost" in items and "tenant" in results:
            results["cost"] = cost.per_1000(results["tenant"], results.get("coldstart"))
        if "idle" in items:
            progress(f"item 7: idle footprint, {config.idle_workflows} workflows then {config.idle_window:.0f} s idle")
            results["idle"] = idle.measure(stack_in_workdir, config.idle_workflows, config.idle_window, progress)
        if "faults" in items:
            progress(f"item 8: a retried callback after each fault kind, {config.repeats} workflows per cell")
            results["faults"] = idle.faults(stack_in_workdir, config.repeats, progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["elapsedSeconds"] = time.monotonic() - STARTED
    return results


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    if config.report_only is not None:
        results = json.loads(config.report_only.read_text())
    else:
        progress(f"benchmarks: {', '.join(config.only)}{' (quick)' if config.quick else ''}")
        results = run(config)
    results["verdicts"] = report.verdicts(results)
    written = report.write(results, config.out_dir)
    print("\n" + report.console_table(results) + "\n", flush=True)
    for path in written:
        print(f"wrote {path}")
    progress(f"done; the measurements took {results['elapsedSeconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
