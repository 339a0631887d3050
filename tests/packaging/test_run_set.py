"""The run set alone runs the pattern: ``make run`` + ``make demo`` from proving-ground/requirements-run.txt and nothing else.

Every other test runs in ``.venv``, which ``make test`` fills with the test set too, so a
module the stack imports at run time that only the test set installs goes unnoticed
there (moto's EventBridge importing jsonpath_ng when a rule routes an event did). This
test builds a virtualenv with the run set alone (by the Makefile's own run stamp, pointed
at another directory: ``make VENV=<dir> <dir>/.stamp-run``), starts the stack from it as
``make run`` does, and walks ``make demo`` for both demo tenants.

The virtualenv is cached in ``.venv-runset-<key>/`` (git-ignored), keyed by the bytes of
the run set's requirement files, pyproject.toml, the Makefile and the Python version: built once on a
clean clone (seconds, by uv), reused while those files do not change, rebuilt when they
do. An exclusive lock lets one pytest-xdist worker build it while another waits.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.harness import StackProcess
from tests.packaging.test_requirements import read_set

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUN_SET = "proving-ground/requirements-run.txt"
VENV_PREFIX = ".venv-runset-"
INSTALL_TIMEOUT_SECONDS = 900
DEMO_TIMEOUT_SECONDS = 300
# What a virtualenv may hold besides what it was told to install (uv's hold nothing; venv's hold pip).
VENV_OWN = {"pip", "setuptools"}
PROJECT = "tenant-durable-callback-workflow"
# Lines of the stack's output that mean a service could not import what it needs.
IMPORT_FAILURE = re.compile(r"ModuleNotFoundError|ImportError|failed to initialise|local moto server:")


def requirement_files(filename: str) -> list[str]:
    """``filename`` and every file it includes with ``-r``, in order."""
    found = [filename]
    for line in (ROOT / filename).read_text().splitlines():
        if line.strip().startswith("-r "):
            # pip reads an include relative to the including file
            include = ((ROOT / filename).parent / line.strip()[3:].strip()).resolve()
            found += requirement_files(str(include.relative_to(ROOT)))
    return found


def venv_key() -> str:
    """What the run-set virtualenv is built from: the requirement files, pyproject.toml, the Makefile, the Python version."""
    digest = hashlib.sha256(f"python{sys.version_info.major}.{sys.version_info.minor}".encode())
    for name in (*requirement_files(RUN_SET), "pyproject.toml", "Makefile"):
        digest.update(f"\0{name}\0".encode() + (ROOT / name).read_bytes())
    return digest.hexdigest()[:12]


def clean_env() -> dict[str, str]:
    """This environment (pip's settings included) without what would put another virtualenv's packages in reach."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    return {key: value for key, value in os.environ.items()
            if key not in dropped and not key.startswith("AWS_ENDPOINT_URL")}


def build(venv: Path, log: Path) -> None:
    """A fresh virtualenv at ``venv`` with the run set and the project (no dependencies), as ``make run`` installs."""
    shutil.rmtree(venv, ignore_errors=True)
    step = ["make", "--no-print-directory", f"VENV={venv}", f"PYTHON={sys.executable}", f"{venv}/.stamp-run"]
    with log.open("ab") as out:
        completed = subprocess.run(step, cwd=ROOT, env=clean_env(), stdout=out, stderr=subprocess.STDOUT,
                                   timeout=INSTALL_TIMEOUT_SECONDS, check=False)
    if completed.returncode:
        pytest.fail(f"building the run-set virtualenv failed (exit {completed.returncode}):\n"
                    f"{log.read_text(errors='replace')[-3000:]}", pytrace=False)


@pytest.fixture(scope="module")
def runset_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of the cached run-set virtualenv, built first when missing or stale."""
    key = venv_key()
    root = ROOT / f"{VENV_PREFIX}{key}"
    root.mkdir(exist_ok=True)
    venv, ready = root / "venv", root / "ready"
    with (root / "lock").open("w") as lock:
        # Two xdist workers: the second waits here for the first's build, then finds it ready.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():  # never built, or a build cut short: from scratch
            build(venv, tmp_path_factory.mktemp("runset") / "install.log")
            ready.write_text(key)
    for stale in ROOT.glob(f"{VENV_PREFIX}*"):  # earlier requirement files' virtualenvs
        if stale != root and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return venv / "bin" / "python"


class RunSetStack(StackProcess):
    """``make run`` (``python -m local`` with its defaults) from the run-set virtualenv, on free ports."""

    def __init__(self, python: Path, base: Path) -> None:
        super().__init__(base / "state", base / "stack.log")
        self.python = python

    def command(self) -> list[str]:
        return [str(self.python), "-m", "local", "--state-dir", str(self.state_dir),
                *(arg for name in ("api", "lambda", "emulator", "dynamodb")
                  for arg in (f"--{name}-port", str(self.ports[name])))]


@pytest.fixture
def runset_stack(runset_python: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunSetStack]:
    for variable in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        monkeypatch.delenv(variable, raising=False)
    stack = RunSetStack(runset_python, tmp_path)
    stack.start()
    yield stack
    stack.stop()


def test_the_run_set_virtualenv_holds_the_run_set_alone(runset_python: Path) -> None:
    listed = subprocess.run(
        [str(runset_python), "-c", "import importlib.metadata as m, json; "
                                   "print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"],
        env=clean_env(), capture_output=True, text=True, timeout=60, check=True)
    installed = {canonicalize_name(name) for name in json.loads(listed.stdout)}

    assert installed - VENV_OWN == set(read_set(RUN_SET)) | {PROJECT}


def test_make_run_and_make_demo_complete_both_tenants_from_the_run_set_alone(
        runset_python: Path, runset_stack: RunSetStack) -> None:
    # GIVEN make run from the run set WHEN make demo walks its flow (a confirmer per tenant answers from its queue)
    demo = subprocess.run(
        [str(runset_python), "-m", "local.tools.demo", "--api-url", runset_stack.api_url,
         "--api-keys-file", str(runset_stack.state_dir / "api-keys.json")],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=DEMO_TIMEOUT_SECONDS, check=False)
    log = runset_stack.log_path.read_text(errors="replace")
    evidence = f"demo:\n{demo.stdout}{demo.stderr}\nmake run's output (failures):\n" + "\n".join(
        line for line in log.splitlines() if IMPORT_FAILURE.search(line) or "Error" in line)[-4000:]

    # THEN both tenants' workflows end COMPLETED, and nothing in the stack missed a module
    assert demo.returncode == 0, evidence
    for tenant_id in ("tenant-a", "tenant-b"):
        assert re.search(rf"^\[\d\] {tenant_id}  GET  /workflow/\S+  -> COMPLETED$", demo.stdout, re.MULTILINE), evidence
    assert demo.stdout.count("-> COMPLETED") == 3, evidence
    assert not IMPORT_FAILURE.search(log), evidence
