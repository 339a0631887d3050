"""The pure parts of the benchmark driver: options, CPU accounting, reads per environment."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.e2e import Target, run_round
from bench.run import cpu_used, parse_args, reads_by_environment


def test_defaults_and_quick_subset() -> None:
    full, quick = parse_args([]), parse_args(["--quick"])
    assert (full.repeats, full.tenant_counts, full.tenant_workflows) == (3, (1, 5, 20), 100)
    assert (quick.repeats, quick.tenant_workflows, quick.coldstart_runs) == (2, 40, 3)
    assert parse_args(["--quick", "--repeats", "4"]).repeats == 4


def test_only_selects_items_and_refuses_unknown_ones() -> None:
    assert parse_args(["--only", "coldstart,memory"]).items == ("coldstart", "memory")
    assert "freshrun" not in parse_args([]).items and "flood" in parse_args([]).items  # the fresh run is opt-in
    assert parse_args(["--only", "freshrun"]).items == ("freshrun",)
    with pytest.raises(SystemExit):
        parse_args(["--only", "coldstart,speed"])


def test_cpu_used_counts_new_processes_and_ignores_reclaimed_ones() -> None:
    before = {1: ("stackProcess", 10.0), 2: ("workflowWorkers", 3.0), 3: ("workflowWorkers", 7.0)}
    after = {1: ("stackProcess", 12.5), 2: ("workflowWorkers", 3.5), 4: ("workflowWorkers", 1.0)}  # 3 reclaimed
    assert cpu_used(before, after) == {"stackProcess": 2.5, "workflowWorkers": 1.5}


def timing(tenant: str, validated_in: str, finalized_in: str, validate_hit: bool, finalize_hit: bool) -> SimpleNamespace:
    return SimpleNamespace(tenant_id=tenant, result={
        "environments": {"validatedIn": validated_in, "finalizedIn": finalized_in},
        "tenantDataFromCache": {"validate": validate_hit, "finalize": finalize_hit},
    })


def test_reads_by_environment_counts_cache_misses_and_environments_per_tenant() -> None:
    timings = [
        timing("a", "env1", "env1", False, True),   # first workflow of a: one read in env1
        timing("a", "env2", "env1", False, True),   # a second environment of a: one more read
        timing("a", "env1", "env2", True, True),
        timing("b", "env3", "env3", False, True),
    ]
    assert reads_by_environment(timings) == {
        "a": {"reads": 2, "environments": 2, "workflows": 3},
        "b": {"reads": 1, "environments": 1, "workflows": 1},
    }


def test_stale_zips_are_rebuilt_only_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import probes

    calls: list[list[str]] = []
    monkeypatch.setattr(probes, "zips_are_fresh", lambda: False)
    monkeypatch.setattr(probes.subprocess, "run", lambda command, **_: calls.append(command))
    assert probes.fresh_zips(True) is True and calls == [["make", "--no-print-directory", "build"]]
    with pytest.raises(RuntimeError):
        probes.fresh_zips(False)
    monkeypatch.setattr(probes, "zips_are_fresh", lambda: True)
    assert probes.fresh_zips(False) is False and len(calls) == 1


def test_the_recorded_options_carry_the_names_the_report_reads() -> None:
    from bench.run import describe

    config = describe(parse_args(["--tenants", "2,1", "--poll-interval", "0.2"]))
    assert config["tenantCounts"] == (1, 2) and config["pollIntervalSeconds"] == 0.2
    assert {"repeats", "workflowsPerTenant", "sequentialWorkflows", "idleWindowSeconds", "quick", "items",
            "startedAt"} <= set(config)
    assert not {"outDir", "reportOnly", "noBuild"} & set(config)


class FakeTarget(Target):
    """Answers every status read with the callbackId, then COMPLETED; tenant "bad" never gets one."""

    name, answered = "fake", False

    def start(self, tenant_id: str) -> str:
        return f"wf-{tenant_id}"

    def state(self, tenant_id: str, workflow_id: str) -> tuple:
        self.count("reads")
        if tenant_id == "bad":
            return "FAILED", None, None
        return ("COMPLETED", "cb", {"ok": True}) if self.answered else ("WAITING", "cb", None)

    def callback(self, tenant_id: str, callback_id: str) -> None:
        self.answered = True


def test_a_round_times_every_workflow_and_reports_the_ones_that_failed() -> None:
    result = run_round(FakeTarget(Path(".")), "warm", ["a", "bad"], 2, poll_interval=0.001)
    assert (result["tenants"], result["perTenant"], result["phase"]) == (2, 2, "warm")
    assert [timing.tenant_id for timing in result["timings"]] == ["a", "a"]
    assert all(timing.result == {"ok": True} for timing in result["timings"])
    assert len(result["errors"]) == 2 and "ended FAILED" in result["errors"][0]
    assert result["statusReads"] >= 4 and result["retries"] == 0 and result["wallSeconds"] > 0


def test_a_partial_run_replaces_its_items_and_keeps_the_others_with_their_dates() -> None:
    from bench.run import DEFAULT_ITEMS, merge

    full = {"config": {"startedAt": "day 1", "items": list(DEFAULT_ITEMS)}, "machine": {"cpus": 2},
            "elapsedSeconds": 1400.0, "e2e": {"old": True}, "coldstart": {"old": True}, "verdicts": []}
    partial = {"config": {"startedAt": "day 2", "items": ["coldstart", "flood"]}, "machine": {"cpus": 2},
               "elapsedSeconds": 60.0, "coldstart": {"new": True}, "flood": {"new": True}}
    merged = merge(full, partial)
    assert merged["e2e"] == {"old": True} and merged["coldstart"] == {"new": True} and merged["flood"] == {"new": True}
    assert merged["config"]["startedAt"] == "day 1" and merged["elapsedSeconds"] == 1400.0  # the full run's header
    assert merged["measuredAt"] == {"e2e": "day 1", "coldstart": "day 2", "flood": "day 2"}
    fresh = {"config": {"startedAt": "day 3", "items": ["freshrun"]}, "machine": {}, "elapsedSeconds": 1.0,
             "freshrun": {"runs": []}}
    again = merge(merge(merged, fresh), {**full, "config": {"startedAt": "day 4", "items": list(DEFAULT_ITEMS)}})
    assert again["config"]["startedAt"] == "day 4" and again["freshrun"] == {"runs": []}  # opt-in item kept
    assert again["measuredAt"] == {"e2e": "day 4", "coldstart": "day 4", "flood": "day 2", "freshrun": "day 3"}


def test_a_run_merges_into_the_out_dirs_benchmarks_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import json

    from bench import run

    kept = {"limits": {"directUploadZipMb": 50, "unzippedMb": 250}, "zips": []}
    (tmp_path / "benchmarks.json").write_text(json.dumps({
        "config": {"startedAt": "day 1", "items": list(run.DEFAULT_ITEMS), "quick": False, "repeats": 3},
        "machine": {"cpus": 2, "python": "3.11", "platform": "Linux"}, "elapsedSeconds": 60.0, "package": kept}))
    monkeypatch.setattr(run, "run", lambda config: {"config": run.describe(config), "machine": {}, "elapsedSeconds": 1.0,
                                                    "coldstart": {"skipped": "no python3.13 found"}})
    assert run.main(["--only", "coldstart", "--out-dir", str(tmp_path)]) == 0
    written = json.loads((tmp_path / "benchmarks.json").read_text())
    assert written["package"] == kept and written["coldstart"] == {"skipped": "no python3.13 found"}
    assert "Not measured: no python3.13 found" in (tmp_path / "benchmarks.md").read_text()


def test_cold_start_without_python313_or_its_bytecode_is_skipped_with_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import probes

    said: list[str] = []
    monkeypatch.setattr(probes.cold, "runtime_python", lambda: None)
    assert probes.coldstart(3, said.append) == {"skipped": "no python3.13 found"} and "no python3.13" in said[0]

    def refuse(args: object) -> None:
        raise SystemExit("build/workflow.zip holds no cpython-313 bytecode")

    monkeypatch.setattr(probes.cold, "runtime_python", lambda: "/usr/bin/python3.13")
    monkeypatch.setattr(probes.cold, "measure", refuse)
    assert "no cpython-313 bytecode" in probes.coldstart(3, said.append)["skipped"] and len(said) == 2


def test_the_queue_item_runs_by_default_with_a_quick_size_and_refuses_empty_runs() -> None:
    full, quick = parse_args([]), parse_args(["--quick"])
    assert "queue" in full.items and (full.queue_starts, full.queue_burst) == (10, 40)
    assert (quick.queue_starts, quick.queue_burst) == (5, 20)
    assert parse_args(["--only", "queue", "--queue-burst", "7"]).queue_burst == 7
    for flag in ("--queue-starts", "--queue-burst"):
        with pytest.raises(SystemExit):
            parse_args([flag, "0"])
