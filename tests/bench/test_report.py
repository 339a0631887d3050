"""The report writer: verdicts against the targets, markdown, JSON and plot from a results dict."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.cost import PriceInputs


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


def results(warm_ratio: float = 1.2, worker_mb: float = 45.0) -> dict[str, Any]:
    rows = [e2e_row("stack", "warm", t, 400 * t, 300, (warm_ratio, warm_ratio)) for t in (1, 20)]
    rows += [e2e_row("floor", "warm", t, 300 * t, 250, None) for t in (1, 20)]
    rows += [e2e_row("stack", "cold", 20, 9000, 700, (3.0, 2.0)), e2e_row("floor", "cold", 20, 3000, 400, None)]
    groups = {"durable execution SDK": 120.0, "ours": 40.0}
    cold_mode = {
        "importMs": {"handler": s(450), "sdk": s(400), "ratio": s(1.12, 1.1, 1.2)},
        "importCpuMs": {"handler": s(440), "sdk": s(395), "ratio": s(1.11, 1.1, 1.2)},
        "readyMs": {"handler": s(500), "sdk": s(480), "ratio": s(1.04)},
        "readyCpuMs": {"handler": s(495), "sdk": s(470), "ratio": s(1.05)},
        "processMs": {"handler": s(520), "sdk": s(470), "ratio": s(1.1)},
        "importtime": {"handler": {"groupsMs": groups, "slowestSelfMs": []},
                       "sdk": {"groupsMs": {"durable execution SDK": 120.0}, "slowestSelfMs": []}},
    }
    solo = {"repeat": 0, "workflows": 100, "storeReads": 1, "environments": 1, "workers": 1, "handlerInvocations": 200,
            "rssMb": [[10, worker_mb], [100, worker_mb + 0.3]],
            "rssGrowth": {"first": worker_mb, "last": worker_mb + 0.3, "change": 0.3, "slopePerUnit": 0.003},
            "floorStoreReads": 1}
    zip_info = {"zipMb": 17.6, "unzippedMb": 26.7, "files": 2600, "ownCodeKb": 60.0, "awsSdkShareOfZip": 0.95,
                "largest": [{"entry": "botocore", "compressedMb": 16.0, "unzippedMb": 24.0}]}
    return {
        "config": {"repeats": 3, "tenantCounts": [1, 20], "workflowsPerTenant": 1, "pollIntervalSeconds": 0.1,
                   "quick": False, "startedAt": "2026-01-01 00:00:00 +0000"},
        "machine": {"cpus": 2, "python": "3.11.7", "platform": "Linux"},
        "elapsedSeconds": 420.0,
        "package": {"limits": {"directUploadZipMb": 50, "unzippedMb": 250},
                    "zips": {"workflow": zip_info, "api": zip_info, "authorizer": zip_info}},
        "coldstart": {"runs": 5, "modes": {"no-bytecode": cold_mode, "bytecode-cached": cold_mode},
                      "dynamodbHandle": {"resource": s(150), "client": s(100), "resourcePremiumMs": s(50)}},
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
                             "recheck1h": costs(0.05), "recheck1d": costs(1.1),
                             "initPerEnvironment": {"initMs": 2000.0, "cost": 0.0000067}}},
    }


def by_item(verdicts: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {verdict["item"]: verdict for verdict in verdicts}


def test_verdicts_compare_each_item_with_its_target() -> None:
    verdicts = by_item(report.verdicts(results(warm_ratio=1.2, worker_mb=45.0)))
    assert verdicts[1]["met"] is True  # 1.2x <= 1.3x at 20 tenants
    assert verdicts[2]["met"] is True  # 1.12x <= 1.25x in both modes
    assert verdicts[3]["met"] is True  # one read in one environment
    assert verdicts[4]["met"] is True  # 45.3 / 40 = 1.13x, +0.3 MB
    assert verdicts[5]["met"] is None and verdicts[6]["met"] is None


def test_verdicts_report_misses() -> None:
    verdicts = by_item(report.verdicts(results(warm_ratio=2.5, worker_mb=60.0)))
    assert verdicts[1]["met"] is False
    assert verdicts[4]["met"] is False  # 60.3 / 40 = 1.5x


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
                    "## 5. Package", "## 6. Cost per 1,000 workflows"):
        assert heading in text
    assert f"]({report.PNG_FILE})" in text
    assert "$0.0000133334 per GB-second" in text


def test_every_part_of_the_template_has_its_values_and_every_placeholder_is_filled() -> None:
    parts = report.template_parts()
    assert list(parts)[0] == "header" and {name.split("_")[0] for name in parts} == set(report.PARTS)
    data = results()
    data["verdicts"] = report.verdicts(data)
    for name in set(parts) - {"idle", "faults"}:  # the results above have no data for those two
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
    del data["coldstart"]["dynamodbHandle"]
    assert report.part("coldstart", data) and report.part("coldstart_handle", data) is None
    data["coldstart"]["modes"].pop("bytecode-cached")
    assert report.part("coldstart_bytecode", data) is None and "## 2. Cold start" in report.markdown(data)
