"""The report writer: verdicts against the targets, markdown, JSON and plot from a results dict."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.cost import PriceInputs, idle_start_queues


def s(median: float, low: float | None = None, high: float | None = None) -> dict[str, Any]:
    return {"median": median, "min": median if low is None else low, "max": median if high is None else high, "n": 3}


def e2e_row(target: str, phase: str, tenants: int, start: float, callback: float,
            ratio: tuple[float, float] | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "target": target, "phase": phase, "tenants": tenants,
        "startP50": s(start, start * 0.9, start * 1.1), "startP95": s(start * 1.5),
        "callbackP50": s(callback), "callbackP95": s(callback * 1.5), "workflowsPerSecond": s(3.5),
        "cpuMsPerWorkflow": s(300), "cpuSplitMsPerWorkflow": {"stackProcess": s(200), "workflowWorkers": s(100)},
        "retries": 0, "errors": 0, "newEnvironments": [0, 0, 0],
    }
    if ratio:
        row["ratioToFloor"] = {"startP50": s(ratio[0]), "callbackP50": s(ratio[1]), "startP95": s(1),
                               "callbackP95": s(1), "workflowsPerSecond": s(1)}
    return row


def usage(billed: float) -> dict[str, Any]:
    return {"invocations": s(2), "billed_ms": s(billed), "durable_operations": s(6), "data_written_bytes": s(1600)}


def costs(total: float) -> dict[str, Any]:
    return {"compute": s(total / 2), "requests": s(total / 4), "durableOperations": s(total / 8),
            "dataWritten": s(total / 16), "dataRetained": s(total / 16), "total": s(total)}


COLD_SIDES = {"handler_bytecode": 400.0, "handler_source": 1000.0, "sdk_bytecode": 380.0, "sdk_source": 950.0}


def coldstart(bytecode_ratio: float = 0.4, handler_ratio: float = 1.05) -> dict[str, Any]:
    """measure_cold_start.measure()'s shape: per side and metric a summary, per pair and metric a ratio."""
    metrics = [f"{m}{clock}_ms" for m in ("import", "ready", "first_table") for clock in ("", "_cpu")]
    ratio = {"handler_bytecode/handler_source": bytecode_ratio, "handler_bytecode/sdk_bytecode": handler_ratio,
             "handler_source/sdk_source": 1.05, "sdk_bytecode/sdk_source": 0.4}
    return {"python": "/usr/bin/python3.13", "runs": 9, "function": "workflow", "module": "workflow.app",
            "sides": {side: {metric: s(ms) for metric in [*metrics, "process_ms"]} for side, ms in COLD_SIDES.items()},
            "ratios": {f"{pair}:{metric}": s(value, value * 0.9, value * 1.1)
                       for pair, value in ratio.items() for metric in metrics},
            "breakdown_above_sdk_us": {"workflow": 9000, "shared": 4000, "tiny": 10}}


def page_figures(small_ms: float = 8.0, large_ms: float = 9.0, scanned: int = 20) -> dict[str, Any]:
    """bench.page.measure()'s shape."""
    lists = [{"waiting": count, "firstPageMs": s(ms), "walkMs": s(ms * pages), "pagesPerWalk": pages,
              "perPageMs": ms, "queryMs": s(ms / 2), "scannedPerQuery": min(count, scanned)}
             for count, ms, pages in ((10, small_ms, 1), (1000, large_ms, 10))]
    return {"render": {"renders": 2000, "renderUs": s(40), "bytes": 2500}, "getMs": s(12),
            "templates": {"python": "/usr/bin/python3.13", "runs": 9, "stdlibMs": s(3), "jinja2Ms": s(80),
                          "jinja2PackageBytes": 600 * 1024},
            "lists": lists}


def test_the_page_item_reports_the_list_at_both_sizes_and_the_engine_choice() -> None:
    data = results()
    text = report.part("page", data)
    assert "| 1000 | 9.0 | 90 | 10 | 9.0 | 4.5 | 20 |" in text and "Jinja2 with autoescape | 80.0" in text
    (verdict,) = [v for v in report.verdicts(data) if v["name"] == "the approval page and the pending list"]
    assert verdict["met"] is True and "at most 20 items at 1000" in verdict["figure"]
    data["page"] = page_figures(scanned=1000)  # a Query that read the whole partition
    (verdict,) = [v for v in report.verdicts(data) if v["name"] == "the approval page and the pending list"]
    assert verdict["met"] is False


def queue_figures(http_p50: float = 190.0, queue_p50: float = 1230.0) -> dict[str, Any]:
    """bench.queue.measure()'s shape (its summary), with the idle cost run.py adds."""
    def entry(p50: float, rate: float) -> dict[str, Any]:
        return {"p50Ms": s(p50), "p95Ms": s(p50 * 1.3), "startedSeconds": s(4.0), "waitingSeconds": s(40 / rate),
                "startsPerSecond": s(rate)}

    return {"sequential": 10, "burst": 40, "tenant": "tenant-a", "pollSeconds": 0.05, "batchingWindowSeconds": 1,
            "httpRetries": 0, "rounds": [{}, {}, {}],
            "summary": {"http": entry(http_p50, 3.8), "queue": entry(queue_p50, 3.7),
                        "queueOverHttp": {"p50Ms": s(queue_p50 / http_p50), "p95Ms": s(queue_p50 / http_p50),
                                          "startsPerSecond": s(3.7 / 3.8)},
                        "addedP50Ms": s(queue_p50 - http_p50, 1000, 1100)},
            "idleCost": idle_start_queues()}


def tenant_figures(requests: int, statuses: dict[str, int], p50: float) -> dict[str, Any]:
    return {"requests": requests, "statuses": statuses, "p50_ms": p50, "p95_ms": p50 * 2, "max_ms": p50 * 3}


def flood(a_statuses: dict[str, int] | None = None, b_admitted: int = 55) -> dict[str, Any]:
    """measure_flood's FloodReport.as_dict() per repeat, and the tenants' plans."""
    repeat = {"flooder": "tenant-b", "bystander": "tenant-a", "flood_seconds": 10.0, "flood_threads": 6,
              "baseline": tenant_figures(30, {"404": 30}, 20.0),
              "flood": {"tenant-a": tenant_figures(40, a_statuses or {"404": 40}, 60.0),
                        "tenant-b": tenant_figures(900, {"404": b_admitted, "429": 845}, 40.0)}}
    return {"plans": {"tenant-a": {"rate": 50, "burst": 100}, "tenant-b": {"rate": 5, "burst": 10}},
            "repeats": [repeat, repeat]}


def results(warm_ratio: float = 1.2, worker_mb: float = 45.0) -> dict[str, Any]:
    rows = [e2e_row("stack", "warm", t, 400 * t, 300, (warm_ratio, warm_ratio)) for t in (1, 20)]
    rows += [e2e_row("floor", "warm", t, 300 * t, 250, None) for t in (1, 20)]
    rows += [e2e_row("stack", "cold", 20, 9000, 700, (3.0, 2.0)), e2e_row("floor", "cold", 20, 3000, 400, None)]
    solo = {"repeat": 0, "workflows": 100, "storeReads": 1, "environments": 1, "workers": 1, "handlerInvocations": 200,
            "rssMb": [[10, worker_mb], [100, worker_mb + 0.3]],
            "rssGrowth": {"first": worker_mb, "last": worker_mb + 0.3, "change": 0.3, "slopePerUnit": 0.003},
            "floorStoreReads": 1}
    zip_row = {"zip_bytes": 20 * 2**20, "unzipped_bytes": 33 * 2**20, "pyc_files": 596,
               "source_only_zip_bytes": 18 * 2**20, "source_only_unzipped_bytes": 27 * 2**20,
               "unzipped_limit_bytes": 250 * 2**20}
    return {
        "config": {"repeats": 3, "tenantCounts": [1, 20], "workflowsPerTenant": 1, "pollIntervalSeconds": 0.1,
                   "quick": False, "startedAt": "2026-01-01 00:00:00 +0000"},
        "machine": {"cpus": 2, "python": "3.11.7", "platform": "Linux"},
        "elapsedSeconds": 420.0,
        "package": {"limits": {"directUploadZipMb": 50, "unzippedMb": 250},
                    "zips": [{"zip": f"{name}.zip", **zip_row} for name in ("api", "authorizer", "workflow")]},
        "coldstart": coldstart(),
        "flood": flood(),
        "page": page_figures(),
        "queue": queue_figures(),
        "lifecycle": {"repeats": 3, "onboardSeconds": s(0.32), "offboardSeconds": s(0.35),
                      "calls": {"onboard": {"provisioner sqs:CreateQueue": 2}, "offboard": {"provisioner sqs:DeleteQueue": 2}}},
        "memory": {"bareSdkRssMb": s(40.0), "sdkReadyRssMb": s(48.0),
                   "layers": [{"stage": "python", "rssMb": s(10)}, {"stage": "+ boto3", "rssMb": s(34)}]},
        "e2e": {"summary": {"rows": rows, "targetTenants": 20},
                "tenantReads": [{"repeat": 0,
                                 "stack": {"perTenant": {"a": {"reads": 1, "environments": 1, "workflows": 2}},
                                           "handlerInvocations": {"a": 4}},
                                 "floor": {"perTenant": {}, "storeReadsCounter": 1}}]},
        "tenant": {"repeats": [solo]},
        "cost": {"memoryMb": 256, "retentionDays": 7, "region": "us-east-2", "prices": asdict(PriceInputs()), "recheckIntervalSeconds": 60,
                 "cpuShareAt256Mb": 256 / 1769,
                 "figures": {"usage": usage(300), "usageUpperBound": usage(450), "durable": costs(0.05),
                             "durableUpperBound": costs(0.06), "sleeping1h": costs(12.0), "sleeping1d": costs(288.0),
                             "recheck1h": costs(0.05), "recheck1d": costs(1.1)}},
    }


def by_item(verdicts: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {verdict["item"]: verdict for verdict in verdicts}


def test_verdicts_compare_each_item_with_its_target() -> None:
    verdicts = by_item(report.verdicts(results(warm_ratio=1.2, worker_mb=45.0)))
    assert verdicts[1]["met"] is True  # 1.2x <= 1.3x at 20 tenants
    assert verdicts[2]["met"] is True  # 0.4x <= 0.5x source only, 1.05x <= 1.15x bare SDK
    assert verdicts[3]["met"] is True  # one read in one environment
    assert verdicts[4]["met"] is True  # 45.3 / 40 = 1.13x, +0.3 MB
    assert verdicts[5]["met"] is True and verdicts[6]["met"] is None  # 33 MB unzipped < 250 MB
    assert verdicts[9]["met"] is True  # no 429 for tenant-a; tenant-b 55 of 10 + 5 x 10 allowed
    assert 8 not in verdicts and 10 not in verdicts  # faults have no target; the fresh run was not measured


def test_verdicts_report_misses() -> None:
    verdicts = by_item(report.verdicts(results(warm_ratio=2.5, worker_mb=60.0)))
    assert verdicts[1]["met"] is False
    assert verdicts[4]["met"] is False  # 60.3 / 40 = 1.5x


@pytest.mark.parametrize(("bytecode_ratio", "handler_ratio"), [(0.55, 1.05), (0.4, 1.2)])
def test_the_cold_start_verdict_needs_both_targets(bytecode_ratio: float, handler_ratio: float) -> None:
    data = {**results(), "coldstart": coldstart(bytecode_ratio, handler_ratio)}
    assert by_item(report.verdicts(data))[2]["met"] is False


@pytest.mark.parametrize("change", ["bystander throttled", "flooder over its plan", "package over the limit"])
def test_flood_and_package_verdicts_report_misses(change: str) -> None:
    data = results()
    if change == "bystander throttled":
        data["flood"] = flood(a_statuses={"404": 39, "429": 1})
    elif change == "flooder over its plan":
        data["flood"] = flood(b_admitted=61)  # 10 + 5 x 10 = 60 allowed
    else:
        data["package"]["zips"][0]["unzipped_bytes"] = 251 * 2**20
    assert by_item(report.verdicts(data))[9 if "flood" in change or "bystander" in change else 5]["met"] is False


def test_a_skipped_cold_start_says_why_and_has_no_verdict() -> None:
    data = {**results(), "coldstart": {"skipped": "no python3.13 found"}}
    assert by_item(report.verdicts(data))[2]["met"] is None
    text = report.markdown(data)
    assert "Not measured: no python3.13 found" in text and "| workflow.app, shipped bytecode |" not in text


def fresh_run(ref: str, banner: float, first: float, mb: int, status: str = "COMPLETED",
              reason: str | None = None) -> dict[str, object]:
    return {"ref": ref, "seconds_to_banner": banner, "seconds_to_first_final": first, "first_workflow_status": status,
            "first_workflow_reason": reason, "venv_bytes": mb * 2**20, "packages": 40}


def test_the_fresh_run_compares_head_with_the_commit_before_up_to_the_first_completed_workflow() -> None:
    data = results()
    data["freshrun"] = {"runs": [fresh_run("abc1234", 25.0, 29.0, 200), fresh_run("6f37ca6", 58.8, 64.0, 518)]}
    verdict = by_item(report.verdicts(data))[10]
    assert verdict["met"] is True
    assert verdict["figure"] == ("29.0 s to the first workflow COMPLETED (0.45×; banner 25.0 s, 0.43×), "
                                 ".venv 200 MB (0.39×)")
    text = report.markdown(data)
    assert "## 10. A fresh clone's first `make run`" in text
    assert "| `abc1234` | 25.0 | 29.0 | COMPLETED | 200 | 40 |" in text


@pytest.mark.parametrize(("change", "value"), [
    ("seconds_to_first_final", 33.0),  # 0.52x: the banner alone (0.43x) is not the target
    ("venv_bytes", 270 * 2**20),  # 0.52x
])
def test_the_fresh_run_misses_when_a_ratio_is_over_half(change: str, value: float) -> None:
    data = results()
    data["freshrun"] = {"runs": [fresh_run("abc1234", 25.0, 29.0, 200), fresh_run("6f37ca6", 58.8, 64.0, 518)]}
    data["freshrun"]["runs"][0][change] = value
    assert by_item(report.verdicts(data))[10]["met"] is False


def test_a_fresh_run_whose_first_workflow_fails_misses_however_fast() -> None:
    data = results()
    data["freshrun"] = {"runs": [fresh_run("abc1234", 25.0, 27.0, 90, "FAILED", "could not register the callback"),
                                 fresh_run("6f37ca6", 58.8, 64.0, 518)]}
    verdict = by_item(report.verdicts(data))[10]
    assert verdict["met"] is False
    assert verdict["figure"].startswith("first workflow FAILED (could not register the callback) after 27.0 s")
    assert "| `abc1234` | 25.0 | 27.0 | FAILED (could not register the callback) | 90 | 40 |" in report.markdown(data)


def test_items_measured_by_a_later_partial_run_are_named_under_the_summary() -> None:
    data = {**results(), "measuredAt": {"e2e": "2026-01-01 00:00:00 +0000"}}  # the full run's date
    assert report.part("header_later", data) is None
    data["measuredAt"] = {"e2e": data["config"]["startedAt"], "flood": "2026-02-02 00:00:00 +0000",
                          "coldstart": "2026-02-02 00:00:00 +0000"}
    assert "a noisy neighbour, cold start on 2026-02-02" in (report.part("header_later", data) or "")


def test_format_helpers() -> None:
    assert report.fmt_summary(s(1234.4, 1000, 1500)) == "1,234 (1,000–1,500)"
    assert report.fmt_summary(s(5.0), 1, "MB") == "5.0 MB"
    assert report.fmt_ratio(s(1.234, 1.1, 1.3)) == "1.23× (1.10–1.30)"
    assert report.fmt_usd(288.016) == "$288.02" and report.fmt_usd(0.05) == "$0.050"
    assert report.table(["a", "b"], [["1", "2"]]).splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]


def test_write_produces_markdown_json_and_plot(tmp_path: Path) -> None:
    data = results()
    data["verdicts"] = report.verdicts(data)
    written = report.write(data, tmp_path)
    assert [path.name for path in written] == [report.JSON_FILE, report.PNG_FILE, report.MD_FILE]
    assert json.loads((tmp_path / report.JSON_FILE).read_text())["e2e"]["summary"]["targetTenants"] == 20
    assert (tmp_path / report.PNG_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (tmp_path / report.MD_FILE).read_text()
    for heading in ("## Summary", "## 1. End to end", "## 2. Cold start", "## 3. Tenant data reads", "## 4. Memory",
                    "## 5. Package", "## 6. Cost per 1,000 workflows", "## 9. A noisy neighbour"):
        assert heading in text
    assert f"]({report.PNG_FILE})" in text
    assert "$0.0000133334 per GB-second" in text


def test_every_part_of_the_template_has_its_values_and_every_placeholder_is_filled() -> None:
    parts = report.template_parts()
    assert list(parts)[0] == "header" and {name.split("_")[0] for name in parts} == set(report.PARTS)
    data = results()
    data["verdicts"] = report.verdicts(data)
    for name in set(parts) - {"idle", "faults", "freshrun", "header_later", "coldstart_skipped"}:  # no data for those
        assert report.part(name, data), name


def test_figures_in_the_prose_come_from_the_data() -> None:
    data = results()
    text = report.part("cost_summary", data)
    assert text is not None and "So this pattern costs $0.050 per 1,000 workflows" in text
    data["cost"]["figures"]["durable"]["total"] = s(0.07)
    assert "So this pattern costs $0.070 per 1,000 workflows" in (report.part("cost_summary", data) or "")


def test_report_skips_items_that_were_not_run() -> None:
    data = results()
    for item in ("e2e", "tenant", "cost", "memory"):
        del data[item]
    data["verdicts"] = report.verdicts(data)
    text = report.markdown(data)
    assert "## 2. Cold start" in text and "## 1. End to end" not in text and "## 4. Memory" not in text
    assert report.plot(data, Path("unused.png")) is False


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_numbers_print_as_symbols(value: float) -> None:
    assert report.fmt_num(value) in ("∞", "–")


def test_a_chunk_is_left_out_when_the_results_lack_one_of_its_values() -> None:
    data = results()
    assert report.part("cost_init", data) and "400 ms measured here" in (report.part("cost_init", data) or "")
    del data["coldstart"]
    assert report.part("cost_init", data) is None and "## 6. Cost per 1,000 workflows" in report.markdown(data)


def test_the_lifecycle_part_shows_each_phases_seconds_and_calls() -> None:
    text = report.part("lifecycle", results())
    assert text is not None and "## 12. Onboarding and offboarding a tenant" in text
    assert "| onboard | 0.32" in text and "provisioner sqs:CreateQueue 2" in text
    assert "| offboard | 0.35" in text and "provisioner sqs:DeleteQueue 2" in text


def test_the_queue_entry_shows_both_entries_paired_and_an_idle_queues_monthly_cost() -> None:
    data = results()
    text = report.part("queue", data)
    assert text is not None and "## 13. The queue entry" in text
    assert "| `POST /workflow` | 190 | 247 |" in text and "| start queue (`SendMessage`) | 1,230 | 1,599 |" in text
    assert "| queue − HTTP, paired | 1,040 (1,000–1,100) |  |" in text
    assert "The queue adds 1,040 (1,000–1,100) ms at the median; its p50 is 6.47×" in text
    assert "batching window (1 s" in text and "the queue reached 3.70 starts/s and HTTP 3.80" in text
    cost = report.part("queue_cost", data)
    assert cost is not None and "648,000 requests a month = **$0.259 a month per idle tenant**" in cost
    assert "cheaper from 2 idle tenants on" in cost and "| 1,000 | $259.20 | $0.259 | $258.94 |" in cost
    assert "| 1 | $0.259 | $0.259 | none |" in cost
    (verdict,) = [v for v in report.verdicts(data) if v["item"] == 13]
    assert verdict["name"] == "the queue entry" and verdict["met"] is None
    assert "the queue adds 1,040 (1,000–1,100) ms" in verdict["figure"] and "cheaper from 2 tenants" in verdict["figure"]


def test_without_the_queue_item_its_section_and_summary_line_are_left_out() -> None:
    data = results()
    del data["queue"]
    data["verdicts"] = report.verdicts(data)
    assert "## 13." not in report.markdown(data) and 13 not in by_item(data["verdicts"])
