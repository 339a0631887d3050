"""Which Python does what: proving-ground/scripts/runtime_python.sh finds the Lambda runtime's, and the Makefile runs the unit suite under it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FINDER = ROOT / "proving-ground" / "scripts" / "runtime_python.sh"
RUNTIME_PYTHON = subprocess.run([str(FINDER), "3.13"], capture_output=True, text=True, check=False).stdout.strip() or None
needs_runtime_python = pytest.mark.skipif(RUNTIME_PYTHON is None, reason="no python3.13 on PATH or under pyenv")
# Targets whose install steps these tests must never run: treat the stamps as up to date.
STAMPS = (".venv/.stamp-run", ".venv/.stamp-test", ".venv/.stamp-bench", ".venv-3.13/.stamp-test")


def find(*args: str, env: dict[str, str]) -> str:
    completed = subprocess.run([str(FINDER), *args], env=env, capture_output=True, text=True, timeout=60, check=True)
    return completed.stdout.strip()


def isolated_env(tmp_path: Path, path: list[Path]) -> dict[str, str]:
    """No pyenv on PATH, an empty pyenv root unless one is made: only what the test puts there can be found."""
    (tmp_path / "pyenv").mkdir(exist_ok=True)
    return {"PATH": os.pathsep.join([*map(str, path), "/usr/bin", "/bin"]), "HOME": str(tmp_path),
            "PYENV_ROOT": str(tmp_path / "pyenv")}


def fake_python(folder: Path, name: str, real: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f'#!/bin/sh\nexec "{real}" "$@"\n')
    script.chmod(0o755)
    return script


def test_a_python313_on_path_that_is_not_313_is_not_taken(tmp_path: Path) -> None:
    fake_python(tmp_path / "bin", "python3.13", sys.executable)
    assert sys.version_info[:2] != (3, 13)
    assert find("3.13", env=isolated_env(tmp_path, [tmp_path / "bin"])) == ""


def test_an_explicit_candidate_is_checked_and_nothing_else_is_searched(tmp_path: Path) -> None:
    env = isolated_env(tmp_path, [])
    assert find("3.13", "/nonexistent/python3.13", env=env) == ""
    version = "%d.%d" % sys.version_info[:2]
    assert Path(find(version, sys.executable, env=env)).resolve() == Path(sys.executable).resolve()


@needs_runtime_python
def test_python313_is_found_on_path_then_under_pyenv(tmp_path: Path) -> None:
    on_path = fake_python(tmp_path / "bin", "python3.13", str(RUNTIME_PYTHON))
    env = isolated_env(tmp_path, [on_path.parent])
    # The interpreter reports its own executable (the fake is a wrapper that execs it).
    assert Path(find("3.13", env=env)).resolve() == Path(str(RUNTIME_PYTHON)).resolve()
    pyenv_python = fake_python(tmp_path / "pyenv" / "versions" / "3.13.99" / "bin", "python3.13", str(RUNTIME_PYTHON))
    assert pyenv_python.exists()
    assert Path(find("3.13", env=isolated_env(tmp_path, []))).resolve() == Path(str(RUNTIME_PYTHON)).resolve()


def make_quietly(*args: str) -> str:
    """Run make with stand-ins for the interpreters (``true`` / ``echo``), never installing anything."""
    command = ["make", "--no-print-directory", *[flag for stamp in STAMPS for flag in ("-o", stamp)], *args]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


@needs_runtime_python
@pytest.mark.parametrize("target", ["test", "test-unit"])
def test_make_test_runs_the_unit_suite_under_the_runtime_python_too(target: str) -> None:
    output = make_quietly(target, "VPY=echo dev", "RUNTIME_VPY=echo runtime")
    lines = output.splitlines()
    assert any(line.startswith("dev -m pytest") for line in lines), output
    # The unit suite only: after the first run for test-unit, alongside the main suite for test.
    assert any(line.startswith("runtime -m pytest -q") and line.endswith(" tests/unit") for line in lines), output
    assert "python3.13, the Lambda runtime's Python" in output
    if target == "test":
        assert "run alongside" in output and "--basetemp=" in output


@pytest.mark.parametrize("target", ["test", "test-unit"])
def test_without_python313_make_test_says_so_in_one_line_and_continues(target: str) -> None:
    output = make_quietly(target, "VPY=echo dev", "RUNTIME_VPY=echo runtime", "RUNTIME_PYTHON=/nonexistent/python3.13")
    assert [line for line in output.splitlines() if line.startswith("No python3.13 found")] != []
    assert "runtime -m pytest" not in output
    assert any(line.startswith("dev -m pytest") for line in output.splitlines())


@pytest.mark.parametrize("target", ["test", "test-unit"])
def test_make_test_fails_when_the_runtime_run_fails_even_if_the_first_passed(target: str) -> None:
    command = ["make", "--no-print-directory", *[flag for stamp in STAMPS for flag in ("-o", stamp)],
               target, "VPY=true", "RUNTIME_VPY=false", f"RUNTIME_PYTHON={RUNTIME_PYTHON or sys.executable}"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    if RUNTIME_PYTHON is None:
        assert completed.returncode == 0  # no second run at all
    else:
        assert completed.returncode != 0, completed.stdout


@needs_runtime_python
def test_the_unit_suite_collects_tests_under_the_runtime_virtualenv() -> None:
    """pytest under .venv-3.13 finds the unit tests (it must never exit 5, "no tests collected")."""
    runtime_vpy = ROOT / ".venv-3.13" / "bin" / "python"
    if not runtime_vpy.exists():
        pytest.skip(".venv-3.13 is made by `make test`; not made yet")
    completed = subprocess.run([str(runtime_vpy), "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                "tests/unit"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert int(completed.stdout.strip().splitlines()[-1].split()[0]) > 100


def test_ctrl_c_on_make_test_stops_the_runtime_run_alongside_too(tmp_path: Path) -> None:
    """A script's background job ignores SIGINT: the recipe itself must stop the python3.13 run on Ctrl-C."""
    marker = f"make-test-sleeper-{uuid.uuid4().hex[:12]}"
    fake = fake_python(tmp_path / "bin", "python", "/bin/sleep")
    fake.write_text(f'#!/bin/bash\nexec -a "{marker}" sleep 60\n')  # a sleep named for this test

    def sleepers() -> list[str]:
        # -ww: never cut at the terminal's width (COLUMNS)
        listed = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
        return [line for line in listed.splitlines() if marker in line]

    command = ["make", "--no-print-directory", *[flag for stamp in STAMPS for flag in ("-o", stamp)], "test",
               f"VPY={fake}", f"RUNTIME_VPY={fake}", f"RUNTIME_PYTHON={RUNTIME_PYTHON or sys.executable}"]
    # Ctrl-C's default action back, whatever this run inherited (a shell's `cmd &` ignores it).
    make = subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 30
        while len(sleepers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(sleepers()) == 2, "the main run and the run alongside both started"
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole process group
        assert make.wait(timeout=30) != 0
        deadline = time.monotonic() + 10
        while sleepers() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sleepers() == []
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
        for line in sleepers():
            os.kill(int(line.split()[0]), signal.SIGKILL)
