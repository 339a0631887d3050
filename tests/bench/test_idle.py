"""The stack-only items: idle growth and CPU from samples, the retried callback's fault rules; options, report. Pure."""

from __future__ import annotations

import pytest

from bench import idle, report
from bench.e2e import StackTarget
from bench.idle import Sample, idle_figures
from bench.run import parse_args

STACK, WORKERS = "stackProcess", "workflowWorkers"


def sample(at: float, rss: dict[int, float], cpu: dict[int, float]) -> Sample:
    return Sample(at, {pid: STACK if pid == 1 else WORKERS for pid in rss}, rss, cpu)


def test_growth_slope_and_cpu_share_in_total_and_by_kind() -> None:
    # the stack grows 1 MB a minute and uses 6 of 600 s of CPU; the two workers stay flat and still
    samples = [sample(t, {1: 100 + t / 60, 2: 50.0, 3: 40.0}, {1: t / 100, 2: 3.0, 3: 4.0}) for t in range(0, 601, 60)]

    figures = idle_figures(samples)

    assert figures["windowSeconds"] == 600
    assert figures["processes"] == 3 and not figures["processesChanged"]
    assert figures["rssFirstMb"] == 190 and figures["rssLastMb"] == 200
    assert figures["rssGrowthMb"] == pytest.approx(10)
    assert figures["rssSlopeMbPerMinute"] == pytest.approx(1)
    assert figures["cpuPercentOfCore"] == pytest.approx(1)
    assert figures["byKind"][STACK]["rssGrowthMb"] == pytest.approx(10)
    assert figures["byKind"][WORKERS] == {
        "processes": 2, "rssFirstMb": 90, "rssLastMb": 90, "rssGrowthMb": 0, "rssSlopeMbPerMinute": 0,
        "cpuSeconds": 0, "cpuPercentOfCore": 0}
    assert not figures["meetsTargets"]  # 10 MB is over the 5 MB target


def test_targets_are_growth_under_5_mb_and_cpu_under_2_percent() -> None:
    def figures(growth: float, cpu_seconds: float) -> dict:
        return idle_figures([sample(0, {1: 100.0}, {1: 0.0}), sample(600, {1: 100 + growth}, {1: cpu_seconds})])

    assert figures(4.9, 11.9)["meetsTargets"]
    assert not figures(5.0, 0.0)["meetsTargets"]
    assert not figures(0.0, 12.0)["meetsTargets"]  # 12 s of 600 s is 2% of a core
    assert figures(-30.0, 0.0)["meetsTargets"]  # memory given back is no growth


def test_only_processes_present_throughout_count() -> None:
    samples = [
        sample(0, {1: 100.0, 2: 50.0}, {1: 1.0, 2: 1.0}),
        sample(30, {1: 100.0, 2: 50.0, 3: 500.0}, {1: 1.5, 2: 1.0, 3: 9.0}),  # a worker came ...
        sample(60, {1: 101.0}, {1: 1.6}),  # ... and both workers went
    ]

    figures = idle_figures(samples)

    assert figures["processesChanged"]
    assert (figures["processes"], figures["rssGrowthMb"]) == (1, 1.0)
    assert figures["cpuSeconds"] == pytest.approx(0.6)
    assert list(figures["byKind"]) == [STACK]


def test_options_default_to_500_workflows_and_10_minutes_and_quick_is_shorter() -> None:
    full, quick = parse_args([]), parse_args(["--quick"])
    assert "idle" in full.items
    assert (full.idle_workflows, full.idle_window_seconds) == (500, 600)
    assert (quick.idle_workflows, quick.idle_window_seconds) == (100, 120)
    assert parse_args(["--only", "idle", "--idle-workflows", "50", "--idle-window", "60"]).idle_window_seconds == 60
    with pytest.raises(SystemExit):
        parse_args(["--idle-window", "1"])


def test_report_has_a_verdict_and_a_section_for_the_idle_item() -> None:
    figures = idle_figures([sample(0, {1: 150.0, 2: 50.0}, {1: 0.0, 2: 0.0}),
                            sample(600, {1: 150.5, 2: 50.0}, {1: 1.2, 2: 0.0})])
    results = {"idle": {"workflows": {"completed": 450, "waiting": 50}, "loadSeconds": 150.0, "settleSeconds": 10.0,
                        **figures}}

    (line,) = report.verdicts(results)

    assert (line["item"], line["met"]) == (7, True)
    assert "after 500 workflows: +0.5 MB" in line["figure"] and "0.20% of a core" in line["figure"]
    section = report.part("idle", results)
    assert section is not None and section.startswith("## 7. Idle footprint")
    assert "| total | 2 | 200.0 | 200.5 | +0.50 |" in section


IDS = {"callback-id": "cb-1", "callback-key": "callback#abc"}


def test_no_fault_arms_no_rule() -> None:
    assert idle.fault_rule("none", "durable service call", IDS) is None


def test_every_attempt_fails_as_many_times_as_the_client_tries() -> None:
    durable = idle.fault_rule("fails on every attempt", "durable service call", IDS)
    lease = idle.fault_rule("fails on every attempt", "lease write", IDS)
    assert durable is not None and durable["count"] == 2 and durable["body_contains"] == ["cb-1"]
    assert lease is not None and lease["count"] == 3 and lease["body_contains"] == ["callback#abc", "claimOwner"]


def test_late_answer_outlasts_the_callers_read_timeout() -> None:
    rule = idle.fault_rule("lands, answers late", "lease write", IDS)
    assert rule is not None and rule["after_landing"] and rule["delay_seconds"] > 5


def test_section_lists_every_cell() -> None:
    cell = {"median": 1.0, "min": 0.5, "max": 2.0}
    rows = [{"call": call, "fault": fault, "answeredSeconds": cell, "completedSeconds": cell, "attempts": cell}
            for call in idle.CALLS for fault in idle.FAULTS]
    text = report.part("faults", {"faults": {"repeats": 3, "rows": rows}})
    assert text is not None and text.startswith("## 8. A retried callback")
    assert text.count("1.00 (0.50–2.00)") == 2 * len(rows)
    for fault in idle.FAULTS:
        assert f"| {fault} |" in text


def test_processes_are_the_stack_and_its_workers_by_kind() -> None:
    from types import SimpleNamespace

    stack = SimpleNamespace(process=SimpleNamespace(pid=1), state_dir=None, workers=lambda: [
        {"pid": 2, "functionName": "tenant-durable-workflow"}, {"pid": 3, "functionName": "tenant-durable-api"}])
    assert StackTarget(stack).processes() == {1: STACK, 2: "workflowWorkers", 3: "apiAndAuthorizerWorkers"}
