"""The pinned requirement sets: Lambda (requirements.txt), running, testing, benchmarking.

Every set pins every package it installs (its dependencies included), the
running set holds no test or benchmark toolchain, and each Make target installs
its own set and no other.
"""

from __future__ import annotations

import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
SETS = {
    "lambda": "requirements.txt", "run": "proving-ground/requirements-run.txt", "test": "proving-ground/requirements-test.txt",
    "bench": "proving-ground/requirements-bench.txt", "dev": "proving-ground/requirements-dev.txt",
}
# What `make run` must not install: the test, lint and benchmark toolchains and what only they pull in.
TOOLCHAIN = {"pytest", "hypothesis", "checkov", "cfn-lint", "matplotlib", "numpy", "pillow", "sympy", "networkx",
             "pydantic", "jsonschema", "rfc3987", "aws-xray-sdk", "openapi-spec-validator", "graphql-core"}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[(?P<extras>[A-Za-z0-9_,-]+)\])?==(?P<version>[A-Za-z0-9.+!-]+)$")


def read_set(filename: str, seen: tuple[str, ...] = ()) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (version, extras) for one file and every file it includes with ``-r``; refuses anything unpinned."""
    assert filename not in seen, f"include cycle through {filename}"
    pins: dict[str, tuple[str, frozenset[str]]] = {}
    for number, raw in enumerate((ROOT / filename).read_text().splitlines(), start=1):
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            # pip reads an include relative to the including file
            include = (ROOT / filename).parent / line[3:].strip()
            included = read_set(str(include.resolve().relative_to(ROOT)), (*seen, filename))
        else:
            match = PIN.match(line)
            assert match, f"{filename}:{number}: not an exact pin: {raw!r}"
            extras = frozenset(filter(None, (match["extras"] or "").split(",")))
            included = {canonicalize_name(match["name"]): (match["version"], extras)}
        for name, (version, extras) in included.items():
            if name in pins:
                assert pins[name][0] == version, f"{filename}: {name} pinned to {pins[name][0]} and {version}"
                extras = extras | pins[name][1]
            pins[name] = (version, extras)
    return pins


@pytest.mark.parametrize("which", sorted(SETS))
def test_every_line_is_an_exact_pin_or_an_include(which: str) -> None:
    assert read_set(SETS[which])


@pytest.mark.parametrize("which", ["lambda", "run", "test", "bench"])
def test_each_set_pins_its_whole_dependency_closure(which: str) -> None:
    """Every dependency of a pinned package (its requested extras included) is pinned in the same set, compatibly.

    Read from the installed packages' metadata (make test installs every set into .venv).
    """
    pins = read_set(SETS[which])
    environment = default_environment()
    problems = []
    for name, (version, extras) in pins.items():
        try:
            installed = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed here")
            continue
        if installed.version != version:
            problems.append(f"{name}: pinned {version}, installed {installed.version}")
        for requirement in map(Requirement, installed.requires or []):
            if requirement.marker and not any(
                requirement.marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""})
            ):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency not in pins:
                problems.append(f"{name} needs {requirement}, which {SETS[which]} does not pin")
            elif not requirement.specifier.contains(pins[dependency][0], prereleases=True):
                problems.append(f"{name} needs {requirement}, {SETS[which]} pins {pins[dependency][0]}")
    assert not problems, "\n".join(problems)


def test_the_running_set_excludes_the_test_and_benchmark_toolchains() -> None:
    run = read_set(SETS["run"])
    assert not TOOLCHAIN & set(run), TOOLCHAIN & set(run)
    # moto's "server" extra pulls every service's dependencies (cfn-lint among them).
    assert "server" not in run["moto"][1]
    # ... and still holds what the local stack imports.
    for needed in ("aws-durable-execution-sdk-python-testing", "moto", "flask", "flask-cors", "requests",
                   "python-hcl2", "airspeed", "jsonpath-ng"):
        assert needed in run, needed
    # moto's extras for the services the stack runs: EventBridge's rule routing imports jsonpath_ng.
    assert {"dynamodb", "events"} <= run["moto"][1]


def test_the_sets_build_on_each_other() -> None:
    lambda_set, run, test, bench = (read_set(SETS[which]) for which in ("lambda", "run", "test", "bench"))
    assert set(lambda_set) < set(run) < set(test)
    assert set(run) < set(bench)
    assert not {"moto", "aws-durable-execution-sdk-python-testing", "requests"} & set(lambda_set)
    assert {"pytest", "hypothesis", "jsonschema"} <= set(test) and "matplotlib" in bench
    assert set(read_set(SETS["dev"])) == set(test) | set(bench)


def installs(target: str, changed: str) -> list[str]:
    """The requirement files `make -n <target>` would install if ``changed`` were newer than every stamp."""
    completed = subprocess.run(["make", "--no-print-directory", "-n", "-W", changed, target], cwd=ROOT,
                               capture_output=True, text=True, timeout=60, check=True)
    return re.findall(r"uv pip install --quiet --python \S+ -r (\S+)", completed.stdout)


@pytest.mark.parametrize(("target", "expected"), [
    ("run", ["proving-ground/requirements-run.txt"]),
    ("demo", ["proving-ground/requirements-run.txt"]),
    ("build", ["proving-ground/requirements-run.txt"]),
    ("test-local", ["proving-ground/requirements-run.txt", "proving-ground/requirements-test.txt"]),
    ("bench", ["proving-ground/requirements-run.txt", "proving-ground/requirements-bench.txt"]),
])
def test_each_target_installs_its_own_set_only(target: str, expected: list[str]) -> None:
    # requirements.txt is included by every set: "changing" it reinstalls each set the target uses.
    assert installs(target, "requirements.txt") == expected
    assert installs(target, "proving-ground/requirements-test.txt") == [name for name in expected if name == "proving-ground/requirements-test.txt"]
    assert installs(target, "proving-ground/requirements-bench.txt") == [name for name in expected if name == "proving-ground/requirements-bench.txt"]


def test_make_test_installs_the_bench_set_too() -> None:
    # tests/bench renders the benchmark's report with matplotlib: a clean clone's `make test` must install it.
    assert set(installs("test", "requirements.txt")) == {
        "proving-ground/requirements-run.txt", "proving-ground/requirements-test.txt", "proving-ground/requirements-bench.txt"}
    assert "proving-ground/requirements-bench.txt" in installs("test", "proving-ground/requirements-bench.txt")
