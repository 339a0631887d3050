"""``make bench``: measure the pattern on this machine and write docs/benchmarks.{md,json,png}.

Eight items, each figure the median of repeated runs with min and max, each
comparison a ratio of two measurements taken in the same repeat:

1. end to end on the local stack against the floor (``bench.floor``), T tenants at once;
2. cold start of the handler module against the bare durable SDK;
3. tenant-data store reads (per 100 workflows of one tenant, per tenant across 20);
4. resident memory of one tenant worker after N workflows against the bare SDK;
5. size of each deployment zip;
6. billed cost per 1,000 workflows, next to a polling design;
7. the idle stack: RSS and CPU of the stack and its workers for 10 minutes after 500 workflows;
8. the wall time for a retried callback to complete after each kind of fault on its path.

It is not part of ``make test``. ``--quick`` runs a smaller subset (fewer repeats
and workflows) in about half the time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench import callback_faults, coldstart, cost, executions, idle, memory, package, report
from bench.e2e import FloorTarget, RoundResult, StackTarget, run_round, run_workflow
from bench.procfs import cpu_seconds, rss_mb
from bench.stats import growth, paired_ratios, percentile, summary, throughput
from local.processes import terminate
from tests.harness import StackProcess, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
ITEMS = ("package", "coldstart", "memory", "e2e", "tenant", "cost", "idle", "faults")
WORKFLOW_FUNCTION_SUFFIX = idle.WORKFLOW_FUNCTION_SUFFIX


@dataclass
class Config:
    """What to run; the defaults are ``make bench``."""

    repeats: int = 3
    tenant_counts: tuple[int, ...] = (1, 5, 20)
    per_tenant: int = 1
    poll_interval: float = 0.1
    tenant_workflows: int = 100
    sequential_workflows: int = 10
    coldstart_runs: int = 9
    idle_workflows: int = idle.WORKFLOWS
    idle_window: float = idle.WINDOW_SECONDS
    build: bool = True
    items: tuple[str, ...] = ITEMS
    out_dir: Path = REPO_ROOT / "docs"
    quick: bool = False
    report_only: Path | None = None
    started_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S %z"))

    def describe(self) -> dict[str, Any]:
        return {
            "repeats": self.repeats, "tenantCounts": list(self.tenant_counts), "workflowsPerTenant": self.per_tenant,
            "pollIntervalSeconds": self.poll_interval, "tenantWorkflows": self.tenant_workflows,
            "sequentialWorkflows": self.sequential_workflows, "coldstartRuns": self.coldstart_runs,
            "idleWorkflows": self.idle_workflows, "idleWindowSeconds": self.idle_window,
            "quick": self.quick, "items": list(self.items), "startedAt": self.started_at,
        }


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__.split("\n\n")[0],
        epilog="Writes docs/benchmarks.md, docs/benchmarks.json and docs/benchmarks-latency.png "
               "(or --out-dir). Needs the dev dependencies (make venv) and, unless --no-build, "
               "network access to PyPI when build/*.zip are older than src/.",
    )
    defaults = Config()
    parser.add_argument("--quick", action="store_true",
                        help="quicker subset: 2 repeats, 40 workflows in the one-tenant run, 3 cold-start runs, "
                             f"{idle.QUICK_WORKFLOWS} workflows then {idle.QUICK_WINDOW_SECONDS:.0f} s idle")
    parser.add_argument("--repeats", type=int, help=f"repeats of every measurement ({defaults.repeats}; --quick: 2)")
    parser.add_argument("--tenants", default=",".join(map(str, defaults.tenant_counts)),
                        help="tenant counts T of the end-to-end rounds, comma-separated (%(default)s)")
    parser.add_argument("--workflows", type=int, default=defaults.per_tenant,
                        help="workflows per tenant W started at once in a warm round (%(default)s)")
    parser.add_argument("--poll-interval", type=float, default=defaults.poll_interval,
                        help="seconds between a client's status reads, on stack and floor alike (%(default)s)")
    parser.add_argument("--tenant-workflows", type=int,
                        help=f"workflows in the one-tenant run, >= 20 ({defaults.tenant_workflows}; --quick: 40)")
    parser.add_argument("--coldstart-runs", type=int,
                        help=f"fresh processes per side and bytecode mode ({defaults.coldstart_runs}; --quick: 3)")
    parser.add_argument("--idle-workflows", type=int,
                        help=f"workflows before the idle window ({defaults.idle_workflows}; --quick: {idle.QUICK_WORKFLOWS})")
    parser.add_argument("--idle-window", type=float,
                        help=f"seconds the idle stack is watched ({defaults.idle_window:.0f}; "
                             f"--quick: {idle.QUICK_WINDOW_SECONDS:.0f})")
    parser.add_argument("--only", default=",".join(ITEMS),
                        help="comma-separated subset of: %(default)s")
    parser.add_argument("--no-build", action="store_true", help="never run make build; fail if the zips are stale")
    parser.add_argument("--out-dir", type=Path, default=Path("docs"), help="where the report files go (%(default)s)")
    parser.add_argument("--report-only", type=Path, metavar="JSON",
                        help="measure nothing: rewrite the report from a benchmarks.json written earlier")
    args = parser.parse_args(argv)
    config = Config(quick=args.quick)
    if args.quick:
        config.repeats, config.tenant_workflows, config.sequential_workflows, config.coldstart_runs = 2, 40, 5, 3
        config.idle_workflows, config.idle_window = idle.QUICK_WORKFLOWS, idle.QUICK_WINDOW_SECONDS
    config.repeats = args.repeats or config.repeats
    config.tenant_counts = tuple(sorted({int(part) for part in args.tenants.split(",") if part.strip()}))
    config.per_tenant = args.workflows
    config.poll_interval = args.poll_interval
    config.tenant_workflows = args.tenant_workflows or config.tenant_workflows
    config.sequential_workflows = min(config.sequential_workflows, config.tenant_workflows)
    config.coldstart_runs = args.coldstart_runs or config.coldstart_runs
    config.idle_workflows = args.idle_workflows or config.idle_workflows
    config.idle_window = args.idle_window or config.idle_window
    config.items = tuple(item for item in ITEMS if item in {part.strip() for part in args.only.split(",")})
    unknown = {part.strip() for part in args.only.split(",")} - set(ITEMS)
    if unknown:
        parser.error(f"unknown item(s) for --only: {', '.join(sorted(unknown))}")
    if config.repeats < 1 or config.per_tenant < 1 or config.tenant_workflows < 20:
        parser.error("--repeats and --workflows must be >= 1, --tenant-workflows >= 20")
    if config.idle_workflows < 10 or config.idle_window < 2 * idle.SAMPLE_INTERVAL_SECONDS:
        parser.error(f"--idle-workflows must be >= 10, --idle-window >= {2 * idle.SAMPLE_INTERVAL_SECONDS:.0f}")
    config.build = not args.no_build
    config.out_dir = args.out_dir if args.out_dir.is_absolute() else REPO_ROOT / args.out_dir
    config.report_only = args.report_only
    return config


class Progress:
    """Timestamped progress lines, flushed at once."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f}s] {message}", flush=True)


# -- processes under test -------------------------------------------------------------------


class FloorProcess:
    """``python -m bench.floor`` as a subprocess."""

    def __init__(self, workdir: Path) -> None:
        self.state_dir = workdir / "floor-state"
        self.ready_file = workdir / "floor-ready.json"
        self.log_path = workdir / "floor.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.urls: dict[str, Any] = {}

    def start(self) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT_URL")}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", "bench.floor", "--state-dir", str(self.state_dir),
                 "--ready-file", str(self.ready_file)], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"floor exited:\n{self.log_path.read_text()[-3000:]}")
            return self.ready_file.exists()

        wait_until(ready, 60, f"floor ready (log: {self.log_path})")
        self.urls = json.loads(self.ready_file.read_text())

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, timeout=30)
            self.process = None


def start_stack(workdir: Path, name: str, extra_args: list[str]) -> StackProcess:
    """A local stack on free ports."""
    stack = StackProcess(workdir / f"{name}-state", workdir / f"{name}.log", extra_args)
    stack.start()
    return stack


def process_cpu(process: Any) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each process of a target, by pid, with the kind of process."""
    kinds = idle.processes(process) if isinstance(process, StackProcess) else {process.pid: "floorProcess"}
    return {pid: (kind, cpu_seconds(pid)) for pid, kind in kinds.items()}


def cpu_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds used between two snapshots, by kind of process.

    A process that started in between counts in full; one that was reclaimed in
    between (an idle worker of an earlier round) is left out: its CPU is gone with it.
    """
    used = {kind: 0.0 for kind, _ in list(before.values()) + list(after.values())}
    for pid, (kind, seconds) in after.items():
        used[kind] += seconds - (before[pid][1] if pid in before else 0.0)
    return used


def driver_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- item 1 (and item 3 across tenants): end to end ---------------------------------------------


def round_record(result: RoundResult, repeat: int, cpu: dict[str, float], driver: float,
                 new_environments: int | None) -> dict[str, Any]:
    starts = [t.start_to_callback_ms for t in result.timings]
    callbacks = [t.callback_to_completed_ms for t in result.timings]
    record: dict[str, Any] = {
        "target": result.target, "phase": result.phase, "repeat": repeat, "tenants": result.tenants,
        "perTenant": result.per_tenant, "completed": len(result.timings), "errors": result.errors[:5],
        "errorCount": len(result.errors), "retries": result.retries, "wallSeconds": result.wall_seconds,
        "workflowsPerSecond": throughput(len(result.timings), result.wall_seconds),
        "cpuSeconds": cpu, "driverCpuSeconds": driver, "newEnvironments": new_environments,
        "statusReadsPerWorkflow": result.status_reads / max(1, len(result.timings)),
    }
    if starts:
        record.update(startP50=percentile(starts, 0.5), startP95=percentile(starts, 0.95),
                      callbackP50=percentile(callbacks, 0.5), callbackP95=percentile(callbacks, 0.95))
    return record


def reads_by_environment(timings: list[Any]) -> dict[str, dict[str, int]]:
    """Per tenant: store reads (cache misses in the results) and environments that served it."""
    per_tenant: dict[str, dict[str, Any]] = {}
    for timing in timings:
        result = timing.result or {}
        envs = result.get("environments") or {}
        flags = result.get("tenantDataFromCache") or {}
        entry = per_tenant.setdefault(timing.tenant_id, {"reads": 0, "environments": set(), "workflows": 0})
        entry["workflows"] += 1
        for step, env_key in (("validate", "validatedIn"), ("finalize", "finalizedIn")):
            if env_key in envs:
                entry["environments"].add(envs[env_key])
            if flags.get(step) is False:
                entry["reads"] += 1
    return {tenant: {"reads": e["reads"], "environments": len(e["environments"]), "workflows": e["workflows"]}
            for tenant, e in per_tenant.items()}


def handler_invocations(stack: StackProcess, tenant_id: str) -> int:
    rows = requests.get(f"{stack.lambda_url}/_local/invocations", timeout=10).json()["invocations"]
    return sum(row["count"] for row in rows if row["functionName"].endswith(WORKFLOW_FUNCTION_SUFFIX)
               and row["tenantId"] == tenant_id and row["kind"] == "handler")


def run_e2e(config: Config, workdir: Path, progress: Progress) -> dict[str, Any]:
    stack_args = ["--snapshot-interval", "0", "--idle-timeout", "180"]
    progress("starting the local stack and the floor")
    stack = start_stack(workdir, "stack", stack_args)
    floor = FloorProcess(workdir)
    floor.start()
    targets: list[tuple[Any, Any]] = [(StackTarget(stack), stack), (FloorTarget(floor.urls), floor)]
    largest = max(config.tenant_counts)
    rounds: list[dict[str, Any]] = []
    tenant_reads: list[dict[str, Any]] = []
    try:
        for repeat in range(config.repeats):
            order = targets if repeat % 2 == 0 else list(reversed(targets))
            for tenant_count in config.tenant_counts:
                tenant_ids = [f"bench-r{repeat}-t{tenant_count}-{index:02d}" for index in range(tenant_count)]
                active = list(order)
                for target, _process in active:
                    for tenant_id in tenant_ids:
                        target.add_tenant(tenant_id)
                all_timings: dict[str, list[Any]] = {target.name: [] for target, _ in active}
                floor_reads_before = FloorTarget(floor.urls).stats()["storeReads"]
                phases = [("cold", 1)] + ([("warm-up", config.per_tenant)] if config.per_tenant > 1 else []) + \
                         [("warm", config.per_tenant)]
                for phase, per_tenant in phases:
                    for target, process in active:
                        is_stack = isinstance(process, StackProcess)
                        cpu_before = process_cpu(process)
                        driver_before = driver_cpu()
                        result = run_round(target, phase, tenant_ids, per_tenant, config.poll_interval)
                        driver_used = driver_cpu() - driver_before
                        cpu_after = process_cpu(process)
                        new_envs = len([pid for pid, (kind, _) in cpu_after.items() if pid not in cpu_before
                                        and kind == "workflowWorkers"]) if is_stack else None
                        all_timings[target.name].extend(result.timings)
                        if phase == "warm-up":
                            continue
                        record = round_record(result, repeat, cpu_used(cpu_before, cpu_after), driver_used, new_envs)
                        if phase == "warm" and tenant_count == largest and result.timings:
                            record["statusRead"] = status_read_cost(target, process, result.timings[0])
                        rounds.append(record)
                        progress(_round_line(record))
                if tenant_count == largest:
                    tenant_reads.append(_tenant_reads(repeat, active, all_timings, floor, floor_reads_before))
    finally:
        stack.stop()
        floor.stop()
    return {"rounds": rounds, "tenantReads": tenant_reads, "summary": summarize_rounds(rounds, config)}


def status_read_cost(target: Any, process: Any, timing: Any, reads: int = 30) -> dict[str, float]:
    """Latency and CPU (all of the target's processes) of one status read, on an otherwise idle target."""
    latencies = []
    before = process_cpu(process)
    for _ in range(reads):
        started = time.perf_counter()
        target.state(timing.tenant_id, timing.workflow_id)
        latencies.append((time.perf_counter() - started) * 1000)
    used = sum(cpu_used(before, process_cpu(process)).values())
    return {"latencyP50Ms": percentile(latencies, 0.5), "cpuMs": used * 1000 / reads}


def _tenant_reads(repeat: int, active: list[tuple[Any, Any]], timings: dict[str, list[Any]], floor: FloorProcess,
                  floor_reads_before: int) -> dict[str, Any]:
    out: dict[str, Any] = {"repeat": repeat}
    for target, process in active:
        per_tenant = reads_by_environment(timings[target.name])
        entry: dict[str, Any] = {"perTenant": per_tenant}
        if isinstance(process, StackProcess):
            entry["handlerInvocations"] = {tenant: handler_invocations(process, tenant) for tenant in per_tenant}
        else:
            entry["storeReadsCounter"] = FloorTarget(floor.urls).stats()["storeReads"] - floor_reads_before
        out[target.name] = entry
    return out


def _round_line(record: dict[str, Any]) -> str:
    if not record["completed"]:
        return f"{record['target']:9s} {record['phase']:5s} T={record['tenants']:<2d} all failed: {record['errors'][:1]}"
    cpu = sum(record["cpuSeconds"].values()) / record["completed"]
    return (f"{record['target']:9s} {record['phase']:5s} T={record['tenants']:<2d} W={record['perTenant']} "
            f"n={record['completed']:<3d} start->callbackId p50 {record['startP50']:6.0f} p95 {record['startP95']:6.0f} ms"
            f" | callback->COMPLETED p50 {record['callbackP50']:6.0f} p95 {record['callbackP95']:6.0f} ms"
            f" | {record['workflowsPerSecond']:5.2f} wf/s | {cpu * 1000:4.0f} ms CPU/wf"
            f"{' | retries ' + str(record['retries']) if record['retries'] else ''}"
            f"{' | errors ' + str(record['errorCount']) if record['errorCount'] else ''}")


METRICS = ("startP50", "startP95", "callbackP50", "callbackP95", "workflowsPerSecond")


def summarize_rounds(rounds: list[dict[str, Any]], config: Config) -> dict[str, Any]:
    """Per target, tenant count and phase: each metric's median/min/max over repeats, and stack/floor ratios."""
    table: dict[str, Any] = {}
    for record in rounds:
        if "startP50" not in record:
            continue
        key = f"{record['target']}|{record['tenants']}|{record['phase']}"
        entry = table.setdefault(key, {"target": record["target"], "tenants": record["tenants"],
                                       "phase": record["phase"], "byRepeat": {}})
        entry["byRepeat"][record["repeat"]] = record
    summary_rows = []
    for entry in table.values():
        repeats = [entry["byRepeat"][r] for r in sorted(entry["byRepeat"])]
        row = {"target": entry["target"], "tenants": entry["tenants"], "phase": entry["phase"]}
        for metric in METRICS:
            row[metric] = summary([r[metric] for r in repeats])
        row["cpuMsPerWorkflow"] = summary([sum(r["cpuSeconds"].values()) * 1000 / r["completed"] for r in repeats])
        row["cpuSplitMsPerWorkflow"] = {part: summary([r["cpuSeconds"][part] * 1000 / r["completed"] for r in repeats])
                                        for part in repeats[0]["cpuSeconds"]}
        row["statusReadsPerWorkflow"] = summary([r["statusReadsPerWorkflow"] for r in repeats])
        reads_cost = [r["statusRead"] for r in repeats if "statusRead" in r]
        if reads_cost:
            row["statusReadCpuMs"] = summary([c["cpuMs"] for c in reads_cost])
            row["statusReadLatencyMs"] = summary([c["latencyP50Ms"] for c in reads_cost])
            row["cpuMsPerWorkflowWithoutReads"] = summary([
                sum(r["cpuSeconds"].values()) * 1000 / r["completed"] - r["statusReadsPerWorkflow"] * r["statusRead"]["cpuMs"]
                for r in repeats if "statusRead" in r])
        row["retries"] = sum(r["retries"] for r in repeats)
        row["errors"] = sum(r["errorCount"] for r in repeats)
        row["newEnvironments"] = [r["newEnvironments"] for r in repeats]
        floor = table.get(f"floor|{entry['tenants']}|{entry['phase']}")
        if entry["target"] != "floor" and floor is not None:
            common = sorted(set(entry["byRepeat"]) & set(floor["byRepeat"]))
            row["ratioToFloor"] = {
                metric: summary(paired_ratios([entry["byRepeat"][r][metric] for r in common],
                                              [floor["byRepeat"][r][metric] for r in common]))
                for metric in METRICS if common
            }
        summary_rows.append(row)
    summary_rows.sort(key=lambda row: (row["phase"] != "cold", row["tenants"], row["target"] != "stack"))
    return {"rows": summary_rows, "targetTenants": max(config.tenant_counts)}


# -- items 3, 4, 6: one tenant, many workflows ---------------------------------------------------


def run_tenant(config: Config, workdir: Path, progress: Progress, baseline_rss: dict[str, Any] | None) -> dict[str, Any]:
    """One fresh tenant per repeat on a stack limited to one environment per tenant.

    Each repeat's first ``sequential_workflows`` run one at a time, on the stack and
    on the floor (their invocation times are the cost input, free of queueing).
    Then every repeat's tenant runs its remaining workflows, ten at a time, all
    tenants at once (each has its own single environment, so the repeats stay
    independent); each worker's RSS is read after every ten of its workflows.
    """
    progress("starting a stack limited to one environment per tenant, and the floor")
    stack = start_stack(workdir, "stack-one-env", ["--snapshot-interval", "0", "--max-workers-per-tenant", "1",
                                                   "--idle-timeout", "900"])
    (workdir / "tenant-floor").mkdir(exist_ok=True)
    floor = FloorProcess(workdir / "tenant-floor")
    floor.start()
    stack_target, floor_target = StackTarget(stack), FloorTarget(floor.urls)
    repeats: list[dict[str, Any]] = []
    try:
        for repeat in range(config.repeats):
            tenant_id = f"bench-solo-{repeat}"
            stack_target.add_tenant(tenant_id)
            floor_target.add_tenant(tenant_id)
            timings = [run_workflow(stack_target, tenant_id, config.poll_interval)
                       for _ in range(config.sequential_workflows)]
            floor_before = floor_target.stats()
            floor_timings = [run_workflow(floor_target, tenant_id, config.poll_interval)
                             for _ in range(config.sequential_workflows)]
            floor_stats = floor_target.stats()
            sequential_ids = [t.workflow_id for t in timings]
            stored = executions.load_executions(stack.state_dir, sequential_ids)
            floor_stored = executions.load_executions(floor.state_dir, [t.workflow_id for t in floor_timings])
            repeats.append({
                "repeat": repeat, "tenantId": tenant_id, "timings": timings, "rss": [],
                "stackInvocationMs": [executions.invocation_durations_ms(stored[i]) for i in sequential_ids
                                      if i in stored],
                "floorInvocationMs": [executions.invocation_durations_ms(e) for e in floor_stored.values()],
                "floorHandlerMs": floor_stats["handlerMs"][len(floor_before["handlerMs"]):],
                "floorStoreReads": floor_stats["storeReads"] - floor_before["storeReads"],
                "durableOperations": [executions.durable_operations(e) for e in stored.values()],
                "dataWrittenBytes": [executions.data_written_bytes(e) for e in stored.values()],
            })
        progress(f"  {config.sequential_workflows} sequential workflows per repeat done; now the rest, "
                 f"{config.repeats} tenants at once")
        errors: list[str] = []
        threads = [threading.Thread(target=_run_solo, args=(config, stack, stack_target, entry, errors))
                   for entry in repeats]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise RuntimeError(f"one-tenant run failed: {errors[:3]}")
        for entry in repeats:
            timings, tenant_id = entry.pop("timings"), entry.pop("tenantId")
            rss = entry.pop("rss")
            reads = reads_by_environment(timings)[tenant_id]
            entry.update(
                workflows=len(timings), storeReads=reads["reads"], environments=reads["environments"],
                workers=len([w for w in stack.workers() if w["tenantId"] == tenant_id]),
                handlerInvocations=handler_invocations(stack, tenant_id),
                rssMb=[[n, mb] for n, mb in rss],
                rssGrowth=growth([sample for sample in rss if sample[0] >= 10]),
                rssSecondHalfChange=rss[-1][1] - min(rss, key=lambda sample: abs(sample[0] - len(timings) / 2))[1],
            )
            ratio = f" ({entry['rssMb'][-1][1] / baseline_rss['median']:.2f}x bare SDK)" if baseline_rss else ""
            progress(f"one tenant, repeat {entry['repeat'] + 1}/{config.repeats}: {entry['workflows']} workflows, "
                     f"{entry['handlerInvocations']} handler invocations, {entry['storeReads']} store read(s) in "
                     f"{entry['environments']} environment(s); worker RSS {entry['rssMb'][0][1]:.1f} MB after "
                     f"{entry['rssMb'][0][0]} -> {entry['rssMb'][-1][1]:.1f} MB after {entry['rssMb'][-1][0]}{ratio}")
    finally:
        stack.stop()
        floor.stop()
    return {"repeats": repeats}


def _run_solo(config: Config, stack: StackProcess, target: StackTarget, entry: dict[str, Any],
              errors: list[str]) -> None:
    """The rest of one repeat's workflows, ten at a time, reading the worker's RSS after every ten."""
    timings, tenant_id, rss = entry["timings"], entry["tenantId"], entry["rss"]
    try:
        if len(timings) % 10 == 0:
            rss.append((len(timings), _worker_rss(stack, tenant_id)))
        while len(timings) < config.tenant_workflows:
            batch = min(10 - len(timings) % 10, config.tenant_workflows - len(timings))
            result = run_round(target, "solo", [tenant_id], batch, config.poll_interval)
            if result.errors:
                raise RuntimeError(result.errors[0])
            timings.extend(result.timings)
            if len(timings) % 10 == 0 or len(timings) == config.tenant_workflows:
                rss.append((len(timings), _worker_rss(stack, tenant_id)))
    except Exception as error:  # noqa: BLE001 - reported by the caller
        errors.append(f"{tenant_id}: {error}")


def _worker_rss(stack: StackProcess, tenant_id: str) -> float:
    workers = [w for w in stack.workers() if w["tenantId"] == tenant_id
               and w["functionName"].endswith(WORKFLOW_FUNCTION_SUFFIX)]
    if len(workers) != 1:
        raise RuntimeError(f"expected one environment for {tenant_id}, found {len(workers)}")
    return rss_mb(workers[0]["pid"])


# -- item 7 ----------------------------------------------------------------------------------------


def run_idle(config: Config, workdir: Path, progress: Progress) -> dict[str, Any]:
    """A fresh stack with default options: ``idle_workflows`` workflows, then ``idle_window`` seconds of nothing."""
    progress("starting a stack with default options (workers outlive the idle window)")
    stack = start_stack(workdir, "stack-idle", idle.stack_args(config.idle_window))
    try:
        figures = idle.measure(stack, config.idle_workflows, config.idle_window, progress)
    finally:
        stack.stop()
    progress(f"  idle {figures['windowSeconds']:.0f} s: RSS {figures['rssFirstMb']:.1f} -> {figures['rssLastMb']:.1f} MB "
             f"({figures['rssGrowthMb']:+.2f} MB), CPU {figures['cpuPercentOfCore']:.2f}% of a core "
             f"over {figures['processes']} processes")
    return figures


# -- item 6 ----------------------------------------------------------------------------------------


def terraform_defaults() -> dict[str, Any]:
    """Default of every variable in variables.tf (names and strings unquoted)."""
    import hcl2

    with (REPO_ROOT / "variables.tf").open() as handle:
        parsed = hcl2.load(handle)
    return {name.strip('"'): spec.get("default").strip('"') if isinstance(spec.get("default"), str)
            else spec.get("default") for block in parsed["variable"] for name, spec in block.items()}


def compute_cost(tenant: dict[str, Any], cold: dict[str, Any] | None) -> dict[str, Any]:
    defaults = terraform_defaults()
    memory_mb, retention_days = int(defaults["workflow_memory_mb"]), int(defaults["durable_retention_days"])
    prices = cost.PriceInputs()
    per_repeat = []
    for entry in tenant["repeats"]:
        handler_split = _split_per_workflow(entry["floorHandlerMs"], entry["floorInvocationMs"])
        usage = cost.workflow_usage(handler_split, entry["durableOperations"], entry["dataWrittenBytes"])
        upper = cost.workflow_usage(entry["stackInvocationMs"], entry["durableOperations"], entry["dataWrittenBytes"])
        check_ms = usage.billed_ms / max(1.0, usage.invocations)
        row = {
            "usage": usage.__dict__, "usageUpperBound": upper.__dict__,
            "durable": cost.durable_cost_per_1000(usage, memory_mb, retention_days, prices),
            "durableUpperBound": cost.durable_cost_per_1000(upper, memory_mb, retention_days, prices),
        }
        for label, wait in (("1h", 3600), ("1d", 86400)):
            row[f"sleeping{label}"] = cost.sleeping_poller_cost_per_1000(wait, usage.billed_ms, memory_mb, prices)
            row[f"recheck{label}"] = cost.rechecking_poller_cost_per_1000(wait, 60, check_ms, usage.billed_ms,
                                                                         memory_mb, prices)
        per_repeat.append(row)
    figures: dict[str, Any] = {}
    for key in per_repeat[0]:
        if key.startswith("usage"):
            figures[key] = {field_name: summary([row[key][field_name] for row in per_repeat])
                            for field_name in per_repeat[0][key]}
        else:
            figures[key] = {part: summary([row[key][part] for row in per_repeat]) for part in per_repeat[0][key]}
    init_ms = None
    if cold:
        init_ms = cold["modes"]["no-bytecode"]["readyMs"]["handler"]["median"]
        figures["initPerEnvironment"] = {
            "initMs": init_ms,
            "cost": cost.compute_cost(cost.billed_ms(init_ms), memory_mb, prices),
        }
    return {"memoryMb": memory_mb, "retentionDays": retention_days, "region": defaults.get("aws_region"),
            "prices": prices.to_dict(),
            "recheckIntervalSeconds": 60, "cpuShareAt256Mb": memory_mb / 1769, "figures": figures}


def _split_per_workflow(handler_ms: list[float], invocation_ms: list[list[float]]) -> list[list[float]]:
    """Group the floor's flat list of in-process handler times like its per-workflow invocation lists."""
    grouped, index = [], 0
    for invocations in invocation_ms:
        grouped.append(handler_ms[index:index + len(invocations)])
        index += len(invocations)
    return [group for group in grouped if group]


# -- main -------------------------------------------------------------------------------------------


def run(config: Config, progress: Progress) -> dict[str, Any]:
    results: dict[str, Any] = {"config": config.describe(), "machine": machine()}
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        if "package" in config.items:
            progress("item 5: deployment zips" + (" (make build if stale)" if config.build else ""))
            results["package"] = package.measure(config.build)
            for name, info in results["package"]["zips"].items():
                progress(f"  {name}.zip {info['zipMb']:.1f} MB ({info['unzippedMb']:.1f} MB unzipped, "
                         f"{info['files']} files)")
        if "coldstart" in config.items:
            progress(f"item 2: cold start, {config.coldstart_runs} fresh processes per side and bytecode mode")
            if "package" not in config.items and not package.zips_are_fresh():
                if not config.build:
                    raise RuntimeError("cold start imports build/workflow: run make build or drop --no-build")
                package.build()
            results["coldstart"] = coldstart.measure(config.coldstart_runs, progress, package.BUILD_DIR / "workflow")
        if "memory" in config.items or "tenant" in config.items:
            progress("item 4: bare-SDK baseline and layer-by-layer RSS")
            results["memory"] = memory.measure(config.repeats)
            progress(f"  bare SDK process RSS {results['memory']['bareSdkRssMb']['median']:.1f} MB")
        if "e2e" in config.items:
            progress(f"item 1: end to end, tenants {config.tenant_counts}, W={config.per_tenant}, "
                     f"{config.repeats} repeats, polling every {config.poll_interval * 1000:.0f} ms")
            results["e2e"] = run_e2e(config, workdir, progress)
        if "tenant" in config.items:
            progress(f"items 3, 4, 6: {config.tenant_workflows} workflows of one tenant, {config.repeats} repeats")
            baseline = results.get("memory", {}).get("bareSdkRssMb")
            results["tenant"] = run_tenant(config, workdir, progress, baseline)
        if "cost" in config.items and "tenant" in results:
            results["cost"] = compute_cost(results["tenant"], results.get("coldstart"))
        if "idle" in config.items:
            progress(f"item 7: idle footprint, {config.idle_workflows} workflows then {config.idle_window:.0f} s idle")
            results["idle"] = run_idle(config, workdir, progress)
        if "faults" in config.items:
            progress(f"item 8: a retried callback after each fault kind, {config.repeats} workflows per cell")
            results["faults"] = callback_faults.run(workdir / "stack-faults", config.repeats, progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["elapsedSeconds"] = progress.started and time.monotonic() - progress.started
    return results


def machine() -> dict[str, Any]:
    import platform

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "pythonDontWriteBytecode": os.environ.get("PYTHONDONTWRITEBYTECODE", "")}


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    progress = Progress()
    if config.report_only is not None:
        results = json.loads(config.report_only.read_text())
    else:
        progress(f"benchmarks: {', '.join(config.items)}{' (quick)' if config.quick else ''}")
        results = run(config, progress)
    results["verdicts"] = report.verdicts(results)
    written = report.write(results, config.out_dir)
    print()
    print(report.console_table(results), flush=True)
    print()
    for path in written:
        print(f"wrote {path}")
    progress(f"done; the measurements took {results['elapsedSeconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
