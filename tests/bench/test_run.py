"""The pure parts of the benchmark driver: options, CPU accounting, reads per environment."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.run import cpu_used, parse_args, reads_by_environment


def test_defaults_and_quick_subset() -> None:
    full, quick = parse_args([]), parse_args(["--quick"])
    assert (full.repeats, full.tenants, full.tenant_workflows) == (3, (1, 5, 20), 100)
    assert (quick.repeats, quick.tenant_workflows, quick.coldstart_runs) == (2, 40, 3)
    assert parse_args(["--quick", "--repeats", "4"]).repeats == 4


def test_only_selects_items_and_refuses_unknown_ones() -> None:
    assert parse_args(["--only", "coldstart,memory"]).only == ("coldstart", "memory")
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
