"""Turn the measured results into docs/benchmarks.md, docs/benchmarks.json and the latency plot.

The prose is ``bench/report.md``: one ``string.Template`` chunk per part, each after a
``<!-- name -->`` line. For each chunk a function of :data:`PARTS` turns the results
into the chunk's values (tables and figures), or ``None`` when the part has no data.
Everything here is pure except :func:`write`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from string import Template
from typing import Any, Callable

from bench.idle import CPU_TARGET_PERCENT, GROWTH_TARGET_MB, SAMPLE_INTERVAL_SECONDS
from bench.stats import summary

TEMPLATE = Path(__file__).with_name("report.md")
MD_FILE, JSON_FILE, PNG_FILE = "benchmarks.md", "benchmarks.json", "benchmarks-latency.png"
E2E_TARGET, COLDSTART_TARGET, MEMORY_TARGET = 1.3, 1.25, 1.3
FLAT_MB = 2.0  # growth from workflow 10 to the last that still counts as flat
COLDSTART_KEY = "importCpuMs"  # verdict on CPU time: immune to other processes on a shared machine
Values = dict[str, Any]


# -- formatting ---------------------------------------------------------------------------------


def fmt_num(value: float | None, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "–"
    return "∞" if math.isinf(value) else f"{value:,.{digits}f}"


def fmt_summary(figure: dict[str, Any] | None, digits: int = 0, unit: str = "") -> str:
    """``median (min–max)`` of a summary dict; ``–`` when missing."""
    if not figure:
        return "–"
    text = fmt_num(figure["median"], digits) + (f" {unit}" if unit else "")
    if figure.get("n", 1) == 1 or figure["min"] == figure["max"]:
        return text
    return f"{text} ({fmt_num(figure['min'], digits)}–{fmt_num(figure['max'], digits)})"


def fmt_ratio(figure: dict[str, Any] | None) -> str:
    return f"{figure['median']:.2f}× ({figure['min']:.2f}–{figure['max']:.2f})" if figure else "–"


def fmt_usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:.3f}" if value >= 0.01 else f"${value:.5f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def at_most(ratio_value: float, target: float) -> bool:
    """A ratio meets a ``≤ target`` at the precision the report shows (two decimals)."""
    return round(ratio_value, 2) <= target


def straddles(figure: dict[str, Any], target: float) -> bool:
    """True when some repeats meet ``≤ target`` and others do not: the verdict is not stable here."""
    return at_most(figure["min"], target) and not at_most(figure["max"], target)


def verdict_mark(met: bool | None, note: str | None = None) -> str:
    return note or {True: "met", False: "**missed**", None: "n/a"}[met]


# -- derived figures ----------------------------------------------------------------------------


def e2e_row(results: dict[str, Any], target: str, phase: str, tenants: int | None = None) -> dict[str, Any] | None:
    e2e = results.get("e2e")
    if not e2e:
        return None
    tenants = tenants if tenants is not None else e2e["summary"]["targetTenants"]
    return next((row for row in e2e["summary"]["rows"]
                 if (row["target"], row["phase"], row["tenants"]) == (target, phase, tenants)), None)


def reads_across(results: dict[str, Any]) -> dict[str, Any] | None:
    """Store reads per tenant in the end-to-end rounds at the largest tenant count, and the floor's cross-check."""
    entries = [entry for entry in (results.get("e2e") or {}).get("tenantReads", []) if entry.get("stack")]
    rows = [(figures, entry["stack"]["handlerInvocations"].get(tenant, 0))
            for entry in entries for tenant, figures in entry["stack"]["perTenant"].items()]
    if not rows:
        return None
    floors = [entry["floor"] for entry in entries if "floor" in entry]
    return {
        "tenants": len(entries[0]["stack"]["perTenant"]),
        **{f"{key}PerTenant": summary([figures[key] for figures, _ in rows])
           for key in ("reads", "environments", "workflows")},
        "invocationsPerTenant": summary([invocations for _, invocations in rows]),
        "maxReadsPerEnvironment": max(f["reads"] / max(1, f["environments"]) for f, _ in rows),
        "floorStoreReadsCounter": [floor.get("storeReadsCounter") for floor in floors],
        "floorReportedMisses": [sum(f["reads"] for f in floor["perTenant"].values()) for floor in floors],
    }


# -- verdicts (the summary table): the "verdict" of each item's part ---------------------------------


ITEMS = {"e2e_why": "end to end", "coldstart": "cold start", "reads": "tenant data reads", "memory": "memory",
         "package": "package", "cost": "cost per 1,000 workflows", "idle": "idle footprint"}


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per item with data: the headline figure, the target and whether it was met."""
    lines = [(item, name, (PARTS[part](results) or {}).get("verdict")) for item, (part, name) in
             enumerate(ITEMS.items(), 1)]
    return [{"item": item, "name": name, "note": None, **line} for item, name, line in lines if line]


def console_table(results: dict[str, Any]) -> str:
    """The verdicts, printed at the end of ``make bench`` (the tables are in benchmarks.md)."""
    return "\n".join(f"{v['item']}. {v['name']}: {v['figure']}  [target: {v['target']}: "
                     f"{verdict_mark(v['met'], v.get('note')).replace('*', '')}]" for v in results.get("verdicts", []))


# -- the parts of benchmarks.md (bench/report.md) -------------------------------------------------


def _header(results: dict[str, Any]) -> Values:
    config, machine = results["config"], results["machine"]
    return {"quick": " --quick" if config["quick"] else "", "started": config["startedAt"], "cpus": machine["cpus"],
            "python": machine["python"], "platform": machine["platform"], "repeats": config["repeats"],
            "minutes": f"{results['elapsedSeconds'] / 60:.1f}",
            "table": table(["#", "item", "target", "measured", "result"],
                           [[str(v["item"]), v["name"], v["target"], v["figure"], verdict_mark(v["met"], v.get("note"))]
                            for v in results.get("verdicts", [])])}


def _e2e(results: dict[str, Any]) -> Values | None:
    e2e = results.get("e2e")
    if not e2e:
        return None
    rows, tenants = e2e["summary"]["rows"], e2e["summary"]["targetTenants"]
    ratio = [row.get("ratioToFloor") or {} for row in rows]
    return {
        "per_tenant": results["config"]["workflowsPerTenant"], "tenants": tenants,
        "poll_ms": f"{results['config']['pollIntervalSeconds'] * 1000:.0f}",
        "rounds": table(["target", "phase", "T", "start→callbackId p50 ms", "p95 ms", "callback→COMPLETED p50 ms",
                         "p95 ms", "workflows/s", "start p50 ÷ floor", "callback p50 ÷ floor", "CPU ms per workflow"],
                        [[row["target"], row["phase"], str(row["tenants"]),
                          *(fmt_summary(row[key]) for key in ("startP50", "startP95", "callbackP50", "callbackP95")),
                          fmt_summary(row["workflowsPerSecond"], 2), fmt_ratio(r.get("startP50")),
                          fmt_ratio(r.get("callbackP50")), fmt_summary(row["cpuMsPerWorkflow"])]
                         for row, r in zip(rows, ratio)]),
        "cpu": table(["target", "CPU ms per workflow", "by process (ms)", "status reads per workflow", "CPU ms per read",
                      "read latency ms", "CPU ms per workflow without reads"],
                     [[row["target"], fmt_summary(row["cpuMsPerWorkflow"]),
                       ", ".join(f"{part} {fmt_num(f['median'])}" for part, f in row["cpuSplitMsPerWorkflow"].items()),
                       fmt_summary(row.get("statusReadsPerWorkflow"), 1), fmt_summary(row.get("statusReadCpuMs"), 1),
                       fmt_summary(row.get("statusReadLatencyMs"), 1), fmt_summary(row.get("cpuMsPerWorkflowWithoutReads"))]
                      for row in rows if row["phase"] == "warm" and row["tenants"] == tenants]),
        "retries": sum(row["retries"] for row in rows), "errors": sum(row["errors"] for row in rows),
        "new_envs": sum(n or 0 for row in rows if row["phase"] == "warm" and row["target"] != "floor"
                        for n in row["newEnvironments"])}


def _e2e_why(results: dict[str, Any]) -> Values | None:
    warm, floor = e2e_row(results, "stack", "warm"), e2e_row(results, "floor", "warm")
    if not warm or not floor or "ratioToFloor" not in warm:
        return None
    median = lambda row, key: f"{row[key]['median']:.0f}" if row.get(key) else "–"  # noqa: E731
    start, callback = warm["ratioToFloor"]["startP50"], warm["ratioToFloor"]["callbackP50"]
    met = at_most(start["median"], E2E_TARGET) and at_most(callback["median"], E2E_TARGET)
    figure = f"start→callbackId {fmt_ratio(start)}, callback→COMPLETED {fmt_ratio(callback)}"
    low = e2e_row(results, "stack", "warm", min(results["config"]["tenantCounts"]))
    if low and "ratioToFloor" in low:
        figure += (f"; at {low['tenants']} tenant(s) {fmt_ratio(low['ratioToFloor']['startP50'])} and "
                   f"{fmt_ratio(low['ratioToFloor']['callbackP50'])}")
    return {"tenants": results["e2e"]["summary"]["targetTenants"], "target": E2E_TARGET,
            "verdict": {"target": f"warm p50 ≤ {E2E_TARGET}× floor at {results['e2e']['summary']['targetTenants']} "
                                  "tenants", "figure": figure, "met": met,
                        "note": f"{verdict_mark(met)} by the median; the repeats straddle the target, so not a stable "
                                "verdict on this machine" if straddles(start, E2E_TARGET)
                                or straddles(callback, E2E_TARGET) else None},
            "start_ratio": fmt_ratio(start), "callback_ratio": fmt_ratio(callback),
            "stack_cpu": median(warm, "cpuMsPerWorkflow"), "floor_cpu": median(floor, "cpuMsPerWorkflow"),
            "split": ", ".join(f"{part} {f['median']:.0f} ms" for part, f in warm["cpuSplitMsPerWorkflow"].items()),
            "stack_without": median(warm, "cpuMsPerWorkflowWithoutReads"),
            "floor_without": median(floor, "cpuMsPerWorkflowWithoutReads"),
            "stack_read": median(warm, "statusReadCpuMs"), "floor_read": median(floor, "statusReadCpuMs"),
            "stack_rate": fmt_summary(warm["workflowsPerSecond"], 2), "floor_rate": fmt_summary(floor["workflowsPerSecond"], 2)}


COLDSTART_MEASURES = (("importMs", "import + init, wall"), ("importCpuMs", "import + init, CPU"),
                      ("readyMs", "ready to serve, wall"), ("readyCpuMs", "ready to serve, CPU"),
                      ("processMs", "whole process, wall"))


def _coldstart(results: dict[str, Any]) -> Values | None:
    cold = results.get("coldstart")
    if not cold:
        return None
    modes = cold["modes"]
    ratios = {mode: figures[COLDSTART_KEY]["ratio"] for mode, figures in modes.items()}
    met = {mode: at_most(r["median"], COLDSTART_TARGET) for mode, r in ratios.items()}
    groups = lambda mode, side: modes[mode]["importtime"][side]["groupsMs"]  # noqa: E731
    group_rows = [[name] + [cell for mode in modes for cell in (
        fmt_num(groups(mode, "handler").get(name, 0.0)), fmt_num(groups(mode, "sdk").get(name, 0.0)),
        f"{groups(mode, 'handler').get(name, 0.0) - groups(mode, 'sdk').get(name, 0.0):+,.0f}")]
        for name in groups(next(iter(modes)), "handler")]
    return {"runs": cold["runs"], "task_dir": cold.get("taskDir", "build/workflow"),
            "measures": table(["bytecode", "measure", "workflow.app ms", "bare SDK ms", "ratio"],
                              [[mode, label, fmt_summary(figures[key]["handler"]), fmt_summary(figures[key]["sdk"]),
                                fmt_ratio(figures[key]["ratio"])]
                               for mode, figures in modes.items() for key, label in COLDSTART_MEASURES if key in figures]),
            "groups": table(["package"] + [f"{mode}: {column}" for mode in modes
                                           for column in ("workflow.app ms", "bare SDK ms", "extra")], group_rows),
            "verdict": {"target": f"import+init ≤ {COLDSTART_TARGET}× bare SDK import",
                        "figure": "CPU time ratio " + ", ".join(
                            f"{mode} {fmt_ratio(r)} ({'met' if met[mode] else 'missed'}"
                            f"{', repeats straddle the target' if straddles(r, COLDSTART_TARGET) else ''})"
                            for mode, r in ratios.items()),
                        "met": all(met.values()) if len(set(met.values())) == 1 else None,
                        "note": "met without bytecode (as on Lambda with our zip); **missed** with cached bytecode"
                        if met.get("no-bytecode") and not met.get("bytecode-cached") else None}}


def _coldstart_handle(results: dict[str, Any]) -> Values | None:
    handle = (results.get("coldstart") or {}).get("dynamodbHandle")
    return {"resource": fmt_summary(handle["resource"]), "client": fmt_summary(handle["client"]),
            "premium": fmt_summary(handle["resourcePremiumMs"])} if handle else None


def _bytecode(results: dict[str, Any]) -> Values | None:
    """The handler's CPU time to ready without bytecode and with cached bytecode (medians)."""
    modes = (results.get("coldstart") or {}).get("modes", {})
    if "no-bytecode" not in modes or "bytecode-cached" not in modes:
        return None
    ready, cached = (modes[mode]["readyCpuMs"]["handler"]["median"] for mode in ("no-bytecode", "bytecode-cached"))
    return {"saved": fmt_num(ready - cached), "ready": fmt_num(ready), "share": f"{(ready - cached) / ready * 100:.0f}",
            "uncached": fmt_num(ready), "cached": fmt_num(cached)}


def _reads(results: dict[str, Any]) -> Values | None:
    if not results.get("tenant"):
        return None
    solo, across = results["tenant"]["repeats"], reads_across(results)
    figure = (f"{solo[0]['workflows']} workflows of one tenant: {fmt_summary(summary([r['storeReads'] for r in solo]))} "
              f"read(s) in {fmt_summary(summary([r['environments'] for r in solo]))} environment(s), "
              f"{fmt_summary(summary([r['handlerInvocations'] for r in solo]))} handler invocations")
    if across:
        figure += (f"; {across['tenants']} tenants: {fmt_summary(across['readsPerTenant'])} read(s) per tenant, "
                   f"at most {across['maxReadsPerEnvironment']} per environment")
    return {"sequential": results["config"].get("sequentialWorkflows", 10),
            "verdict": {"target": "one read per environment per cache TTL", "figure": figure,
                        "met": all(r["storeReads"] == r["environments"] for r in solo)
                        and (across is None or across["maxReadsPerEnvironment"] == 1)},
            "floor_reads": ", ".join(str(r["floorStoreReads"]) for r in solo),
            "table": table(["run", "workflows", "handler invocations (replays)", "store reads", "environments"],
                           [[f"one tenant, repeat {r['repeat'] + 1}", str(r["workflows"]), str(r["handlerInvocations"]),
                             str(r["storeReads"]), str(r["environments"])] for r in solo])}


def _reads_across(results: dict[str, Any]) -> Values | None:
    across = reads_across(results) if results.get("tenant") else None
    if not across:
        return None
    agree = across["floorStoreReadsCounter"] == across["floorReportedMisses"]
    return {"tenants": across["tenants"], "workflows": fmt_summary(across["workflowsPerTenant"]),
            "invocations": fmt_summary(across["invocationsPerTenant"]), "reads": fmt_summary(across["readsPerTenant"]),
            "environments": fmt_summary(across["environmentsPerTenant"]),
            "max_per_env": f"{across['maxReadsPerEnvironment']:.0f}",
            "floor_counter": ", ".join(map(str, across["floorStoreReadsCounter"])),
            "floor_flags": ", ".join(map(str, across["floorReportedMisses"])),
            "agreement": "the two counts agree, which is what lets the results stand in for a counter inside the "
                         "stack's workers." if agree else
                         "**the two counts differ**, so the stack's figures above may undercount."}


def _memory(results: dict[str, Any]) -> Values | None:
    """Worker RSS after the last workflow, its ratio to the bare SDK and its growth, over repeats."""
    tenant, mem = results.get("tenant"), results.get("memory")
    if not tenant or not mem:
        return None
    repeats, layers, ready = tenant["repeats"], mem["layers"], mem.get("sdkReadyRssMb")
    workflows, final = repeats[0]["workflows"], [r["rssMb"][-1][1] for r in repeats]
    ratio = summary([mb / mem["bareSdkRssMb"]["median"] for mb in final])
    ratio_ready = summary([mb / ready["median"] for mb in final]) if ready else None
    change = summary([r["rssGrowth"]["change"] for r in repeats])
    flat, ratio_met = change["median"] <= FLAT_MB, at_most(ratio["median"], MEMORY_TARGET)
    medians = [None] + [layer["rssMb"]["median"] for layer in layers]
    return {"workflows": workflows, "target": MEMORY_TARGET, "flat": f"{FLAT_MB:.0f}",
            "baseline": fmt_summary(mem["bareSdkRssMb"], 1, "MB"), "last": fmt_summary(summary(final), 1, "MB"),
            "ratio": fmt_ratio(ratio), "ratio_ready": fmt_ratio(ratio_ready), "ready": fmt_summary(ready, 1, "MB"),
            "change": fmt_summary(change, 1, "MB"),
            "slope": fmt_summary(summary([r["rssGrowth"]["slopePerUnit"] * 100 for r in repeats]), 2, "MB"),
            "second_half": fmt_summary(summary([r.get("rssSecondHalfChange", 0.0) for r in repeats]), 2, "MB"),
            "samples": table(["RSS MB after workflow"] + [str(n) for n, _ in repeats[0]["rssMb"]],
                             [[f"repeat {r['repeat'] + 1}"] + [f"{mb:.1f}" for _, mb in r["rssMb"]] for r in repeats]),
            "layers": table(["stage", "RSS MB", "added"],
                            [[layer["stage"], fmt_summary(layer["rssMb"], 1),
                              "" if before is None else f"{now - before:+.1f}"]
                             for layer, before, now in zip(layers, medians, medians[1:])]),
            "verdict": {"target": f"≤ {MEMORY_TARGET}× bare SDK, flat from 10 to {workflows} workflows",
                        "figure": f"{fmt_summary(summary(final), 1, 'MB')} after {workflows} = {fmt_ratio(ratio)} the "
                                  f"bare SDK import ({fmt_ratio(ratio_ready)} the SDK once it made its Lambda client); "
                                  f"{fmt_summary(change, 1, 'MB')} from workflow 10 to {workflows}",
                        "met": ratio_met and flat,
                        "note": "**missed** on the ratio to the bare import (met against the SDK once it serves: "
                                f"{fmt_ratio(ratio_ready)}); flat: met" if flat and not ratio_met and ratio_ready
                                and at_most(ratio_ready["median"], MEMORY_TARGET) else None}}


def _package(results: dict[str, Any]) -> Values | None:
    pkg = results.get("package")
    if not pkg:
        return None
    return {"zip_limit": pkg["limits"]["directUploadZipMb"], "unzipped_limit": pkg["limits"]["unzippedMb"],
            "table": table(["zip", "MB", "unzipped MB", "files", "own code KB", "boto3 & deps share",
                            "largest entries (unzipped MB)"],
                           [[f"`build/{name}.zip`", f"{info['zipMb']:.2f}", f"{info['unzippedMb']:.1f}",
                             str(info["files"]), f"{info['ownCodeKb']:.0f}", f"{info['awsSdkShareOfZip'] * 100:.0f} %",
                             ", ".join(f"{e['entry']} {e['unzippedMb']:.1f}" for e in info["largest"][:4])]
                            for name, info in pkg["zips"].items()]),
            "verdict": {"target": "(none; Lambda limits 50 MB zip / 250 MB unzipped)", "met": None,
                        "figure": ", ".join(f"{name} {info['zipMb']:.1f} MB" for name, info in pkg["zips"].items())}}


COST_COMPONENTS = (("compute", "compute"), ("requests", "requests"), ("durable operations", "durableOperations"),
                   ("data written", "dataWritten"), ("data retained", "dataRetained"), ("**total**", "total"))
POLLERS = (("sleeping poller, 1-hour wait (runs throughout, re-invoked every 15 min)", "sleeping1h"),
           ("sleeping poller, 1-day wait", "sleeping1d"),
           ("re-checking poller, 1-hour wait (one check a minute)", "recheck1h"),
           ("re-checking poller, 1-day wait", "recheck1d"))
PRICES = (("Lambda duration, arm64", "arm_gb_second", "${:.10f} per GB-second"),
          ("Lambda requests", "request_per_million", "${:.2f} per million"),
          ("durable operations", "durable_operation_per_million", "${:.2f} per million"),
          ("durable data written", "durable_data_written_per_gb", "${:.2f} per GB"),
          ("durable data retained", "durable_data_retained_per_gb_month", "${:.2f} per GB-month"))


def _cost(results: dict[str, Any]) -> Values | None:
    costs = results.get("cost")
    if not costs:
        return None
    figures, prices = costs["figures"], costs["prices"]
    usage, durable = figures["usage"], figures["durable"]
    usd = lambda key, part: fmt_usd(figures[key][part]["median"])  # noqa: E731
    total, compute = durable["total"]["median"], durable["compute"]["median"]
    times = lambda key: figures[key]["total"]["median"] / total  # noqa: E731
    scale = 1 / costs["cpuShareAt256Mb"]
    return {"total": fmt_usd(total), "durable_share": f"{durable['durableOperations']['median'] / total * 100:.0f}",
            "sleep_hour": f"{times('sleeping1h'):,.0f}", "sleep_day": f"{times('sleeping1d'):,.0f}",
            "recheck_hour": f"{times('recheck1h'):.1f}", "recheck_day": f"{times('recheck1d'):.0f}",
            "cpu_share": f"{costs['cpuShareAt256Mb'] * 100:.0f}", "scale": f"{scale:.1f}",
            "scaled_total": fmt_usd(compute * scale + total - compute), "region": costs.get("region") or "see variables.tf",
            "memory": costs["memoryMb"], "retention": costs["retentionDays"], "source": prices["source"],
            "prices": table(["price input", "value"], [[label, text.format(prices[key])] for label, key, text in PRICES]),
            "invocations": fmt_summary(usage["invocations"]), "billed": fmt_summary(usage["billed_ms"]),
            "billed_upper": fmt_summary(figures["usageUpperBound"]["billed_ms"]),
            "operations": fmt_summary(usage["durable_operations"]), "written": fmt_summary(usage["data_written_bytes"]),
            "components": table(["component", "this pattern, per 1,000 workflows", "upper-bound durations"],
                                [[name, usd("durable", key), usd("durableUpperBound", key)]
                                 for name, key in COST_COMPONENTS]),
            "designs": table(["design", "compute", "requests", "total per 1,000 workflows"], [
                ["this pattern (suspended while waiting), any wait", usd("durable", "compute"),
                 usd("durable", "requests"), usd("durable", "total") + " (incl. durable charges)"],
                *([label, usd(key, "compute"), usd(key, "requests"), usd(key, "total") +
                   f" ({fmt_usd(figures[key]['total']['min'])}–{fmt_usd(figures[key]['total']['max'])})"]
                  for label, key in POLLERS)]),
            "verdict": {"target": "(none; compared with polling)", "met": None,
                        "figure": f"this pattern {usd('durable', 'total')} whatever the wait; a sleeping poller "
                                  f"{usd('sleeping1h', 'total')} (1 h wait) / {usd('sleeping1d', 'total')} (1 day)"}}


def _cost_init(results: dict[str, Any]) -> Values | None:
    init = (results.get("cost") or {}).get("figures", {}).get("initPerEnvironment")
    return {"init_ms": f"{init['initMs']:.0f}", "init_cost": fmt_usd(init["cost"] * 1000)} if init else None


def _idle(results: dict[str, Any]) -> Values | None:
    idle = results.get("idle")
    if not idle:
        return None
    stack = idle["byKind"].get("stackProcess", {})
    return {"completed": idle["workflows"]["completed"], "waiting": idle["workflows"]["waiting"],
            "load_seconds": f"{idle['loadSeconds']:.0f}", "settle": f"{idle['settleSeconds']:.0f}",
            "interval": f"{SAMPLE_INTERVAL_SECONDS:.0f}", "minutes": f"{idle['windowSeconds'] / 60:.1f}",
            "samples": idle["samples"],
            "changed": "; some processes came or went, only those present throughout count"
            if idle["processesChanged"] else "",
            "table": table(["processes", "count", "RSS first (MB)", "RSS last (MB)", "growth (MB)", "slope (MB/min)",
                            "CPU (% of a core)"],
                           [[kind, str(v["processes"]), f"{v['rssFirstMb']:.1f}", f"{v['rssLastMb']:.1f}",
                             f"{v['rssGrowthMb']:+.2f}", f"{v['rssSlopeMbPerMinute']:+.3f}", f"{v['cpuPercentOfCore']:.2f}"]
                            for kind, v in [*idle["byKind"].items(), ("total", idle)]]),
            "verdict": {"target": f"< {GROWTH_TARGET_MB:g} MB RSS growth and < {CPU_TARGET_PERCENT:g}% "
                                  f"of a core over {idle['windowSeconds'] / 60:.0f} min idle",
                        "figure": f"after {sum(idle['workflows'].values())} workflows: {idle['rssGrowthMb']:+.1f} MB "
                                  f"({idle['rssSlopeMbPerMinute']:+.2f} MB/min) and {idle['cpuPercentOfCore']:.2f}% "
                                  f"of a core over {idle['processes']} processes (stack process "
                                  f"{stack.get('rssGrowthMb', 0.0):+.1f} MB, {stack.get('cpuPercentOfCore', 0.0):.2f}%)",
                        "met": idle["meetsTargets"]}}


def _faults(results: dict[str, Any]) -> Values | None:
    faults = results.get("faults")
    if not faults:
        return None
    cell = lambda f: f"{f['median']:.2f} ({f['min']:.2f}–{f['max']:.2f})"  # noqa: E731
    return {"repeats": faults["repeats"],
            "table": table(["call", "fault", "answered (s)", "workflow COMPLETED (s)", "attempts"],
                           [[row["call"], row["fault"], cell(row["answeredSeconds"]), cell(row["completedSeconds"]),
                             f"{row['attempts']['median']:.0f}"] for row in faults["rows"]])}


PARTS: dict[str, Callable[[dict[str, Any]], Values | None]] = {
    "header": _header, "e2e": _e2e, "e2e_why": _e2e_why, "coldstart": _coldstart, "coldstart_handle": _coldstart_handle,
    "coldstart_bytecode": _bytecode, "reads": _reads, "reads_across": _reads_across, "memory": _memory,
    "package": _package, "cost": _cost, "cost_init": _cost_init, "cost_summary": _cost, "idle": _idle,
    "faults": _faults, "actions": _bytecode}


def template_parts() -> dict[str, Template]:
    """The chunks of bench/report.md by name, in order."""
    pieces = re.split(r"^<!-- (\w+) -->\n", TEMPLATE.read_text(), flags=re.MULTILINE)[1:]
    return {name: Template(text.strip()) for name, text in zip(pieces[::2], pieces[1::2])}


def part(name: str, results: dict[str, Any]) -> str | None:
    """One part of benchmarks.md, or None when the results have no data for it."""
    values = PARTS[name](results)
    return None if values is None else template_parts()[name].substitute(values)


def markdown(results: dict[str, Any]) -> str:
    """docs/benchmarks.md: every part of the template that has data, in the template's order."""
    return "\n\n".join(text for text in (part(name, results) for name in template_parts()) if text) + "\n"


# -- plot and files -----------------------------------------------------------------------------------


def plot(results: dict[str, Any], path: Path) -> bool:
    """Latency (p50, min–max over repeats) against concurrent tenants; False when matplotlib is missing."""
    if not results.get("e2e"):
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, metric, title in zip(axes, ("startP50", "callbackP50"), ("start → callbackId", "callback → COMPLETED")):
        for (target, color), (phase, style) in ((t, p) for t in (("stack", "tab:red"), ("floor", "tab:blue"))
                                                for p in (("warm", "-o"), ("cold", ":s"))):
            rows = sorted((row for row in results["e2e"]["summary"]["rows"]
                           if (row["target"], row["phase"]) == (target, phase)), key=lambda row: row["tenants"])
            axis.errorbar([row["tenants"] for row in rows], [row[metric]["median"] for row in rows], fmt=style,
                          yerr=[[row[metric][side] * sign - row[metric]["median"] * sign for row in rows]
                                for side, sign in (("min", -1), ("max", 1))],
                          color=color, capsize=3, label=f"{target} {phase}")
        axis.set(title=f"{title} (p50 ms, min–max over repeats)", xlabel="concurrent tenants", xscale="log",
                 yscale="log", xticks=results["config"]["tenantCounts"], xticklabels=results["config"]["tenantCounts"])
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"Local stack vs floor, {results['config']['workflowsPerTenant']} workflow(s) per tenant, "
                    f"{results['machine']['cpus']} CPUs")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write the JSON, the plot and the markdown; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / JSON_FILE).write_text(json.dumps(results, indent=1, sort_keys=True, default=str) + "\n")
    written = [out_dir / JSON_FILE] + ([out_dir / PNG_FILE] if plot(results, out_dir / PNG_FILE) else [])
    (out_dir / MD_FILE).write_text(markdown(results))
    return written + [out_dir / MD_FILE]
