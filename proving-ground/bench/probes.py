"""Fresh interpreters: RSS layer by layer (item 4); cold start (item 2), the zips (item 5) and a fresh clone's first
``make run`` (item 10) through ``proving-ground/scripts/measure_cold_start.py``, the one copy of that measuring code."""
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import REPO_ROOT
from bench.stats import summary
from scripts import measure_cold_start as cold

SDK, HANDLER = "import aws_durable_execution_sdk_python", "import workflow.app"
READY = "from aws_durable_execution_sdk_python.lambda_service import LambdaClient; LambdaClient.initialize_client()"
# Item 4: each stage adds to the previous one, in the order a workflow environment loads them.
STAGES = [("python", "pass"), ("+ boto3", "import boto3"), ("+ durable SDK", SDK),
          ("+ Powertools", "import aws_lambda_powertools.logging, aws_lambda_powertools.metrics, "
                           "aws_lambda_powertools.utilities.validation"),
          ("+ workflow.app (import + init)", HANDLER), ("+ the SDK's Lambda client", READY)]
_PROBE = """import json, time
marks, started, started_cpu = [], time.perf_counter(), time.process_time()
for statement in {statements!r}:
    exec(statement)
    marks.append([(time.perf_counter() - started) * 1000, (time.process_time() - started_cpu) * 1000,
                  int([l for l in open('/proc/self/status') if l.startswith('VmRSS:')][0].split()[1]) / 1024])
print(json.dumps(marks))
"""
BUILD_DIR = REPO_ROOT / "build"
FUNCTIONS = ("workflow", "api", "authorizer")
FRESH_RUN_BEFORE = "6f37ca6"  # the commit before `make run` installed only what running needs (issue 13)


def environment(cache_prefix: Path | None, code_dir: Path, write_bytecode: bool = False) -> dict[str, str]:
    """A probe's environment: the workflow function's settings, ``code_dir`` first on the path, the bytecode mode."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "PYTHON"))}
    env.update(PYTHONPATH=str(code_dir), TENANTS_TABLE_NAME="tenant-durable-tenants",
               WORKFLOWS_TABLE_NAME="tenant-durable-workflows", POWERTOOLS_SERVICE_NAME="workflow",
               POWERTOOLS_METRICS_NAMESPACE="TenantDurableWorkflow", AWS_REGION="us-east-1",
               AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local")
    env.update({"PYTHONPYCACHEPREFIX": str(cache_prefix)} if cache_prefix else {})
    env.update({} if write_bytecode else {"PYTHONDONTWRITEBYTECODE": "1"})
    return env


def probe(statements: list[str], env: dict[str, str]) -> list[list[float]]:
    """One fresh interpreter running ``statements`` in turn: after each, [wall ms, CPU ms, RSS MiB] since its start."""
    done = subprocess.run([sys.executable, "-c", _PROBE.format(statements=statements)], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def fill_cache(prefix: Path, code_dir: Path) -> None:
    """Compile every module the probes import into ``prefix``."""
    probe([statement for _, statement in STAGES], environment(prefix, code_dir, write_bytecode=True))


def memory(runs: int) -> dict[str, Any]:
    """RSS of a fresh process that imported the SDK (the baseline), the same once it made the Lambda client the SDK
    makes on its first invocation, and what each stage of a workflow environment adds (bytecode cached, src/)."""
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as prefix:
        env, src = environment(Path(prefix), REPO_ROOT / "src"), REPO_ROOT / "src"
        fill_cache(Path(prefix), src)
        baseline = [probe([SDK, READY], env) for _ in range(runs)]
        stages = [probe([statement for _, statement in STAGES], env) for _ in range(runs)]
    return {"bareSdkRssMb": summary([run[0][2] for run in baseline]),
            "sdkReadyRssMb": summary([run[1][2] for run in baseline]),
            "layers": [{"stage": label, "rssMb": summary([run[index][2] for run in stages])}
                       for index, (label, _) in enumerate(STAGES)]}


def zips_are_fresh() -> bool:
    """True when every zip exists and is newer than everything that goes into it."""
    zips = [BUILD_DIR / f"{name}.zip" for name in FUNCTIONS]
    sources = [REPO_ROOT / "requirements.txt", REPO_ROOT / "Makefile",
               *(path for path in (REPO_ROOT / "src").rglob("*") if path.is_file() and "__pycache__" not in path.parts)]
    return all(z.is_file() for z in zips) and min(z.stat().st_mtime for z in zips) >= max(
        path.stat().st_mtime for path in sources)


def fresh_zips(allow_build: bool) -> bool:
    """Make sure ``build/`` is up to date (``make build`` when stale and allowed); True when it rebuilt."""
    if zips_are_fresh():
        return False
    if not allow_build:
        raise RuntimeError("build/*.zip are missing or older than src/: run `make build` or drop --no-build")
    subprocess.run(["make", "--no-print-directory", "build"], cwd=REPO_ROOT, check=True)  # fetches wheels from PyPI
    return True




def runtime_python(progress: Callable[[str], None]) -> str | None:
    """The runtime's Python as ``make build`` finds it; None, after saying so, when there is none."""
    if not (python := cold.runtime_python()):
        progress(f"  skipped: no python{cold.LAMBDA_PY} found (PATH, pyenv), and the runtime's bytecode can only be "
                 "measured under it; install it and run `make build` again")
    return python


def coldstart(runs: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Item 2: ``proving-ground/scripts/measure_cold_start.py`` on build/workflow.zip, bytecode against source-only and handler
    against the bare SDK, with the import breakdown above the SDK; ``{"skipped": why}`` when it cannot run."""
    if not (python := runtime_python(progress)):
        return {"skipped": f"no python{cold.LAMBDA_PY} found"}
    try:
        results = cold.measure(cold.parse_args(["--python", python, "--runs", str(runs), "--breakdown"]))
    except SystemExit as refusal:  # the zip holds no python3.13 bytecode
        progress(f"  skipped: {refusal}")
        return {"skipped": str(refusal)}
    results.pop("zips")  # item 5's
    return results


def package() -> dict[str, Any]:
    """Item 5: each zip's size and unzipped size, as shipped and source-only (``measure_cold_start.zip_sizes``)."""
    with tempfile.TemporaryDirectory(prefix="bench-zips-") as scratch:
        return {"limits": {"directUploadZipMb": 50, "unzippedMb": cold.UNZIPPED_LIMIT_BYTES // cold.MB},  # Lambda's
                "zips": cold.zip_sizes(BUILD_DIR, Path(scratch))}


def freshrun(refs: tuple[str, ...], progress: Callable[[str], None]) -> dict[str, Any]:
    """Item 10: a fresh clone's first ``make run`` at each ref (``measure_cold_start.fresh_run``), minutes each."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as scratch:
        for ref in refs:
            progress(f"  cloning {ref} and running its first make run (installs its .venv) ...")
            runs.append(cold.fresh_run(ref, Path(scratch), timeout=900.0))
            progress(f"  {ref}: banner after {runs[-1]['seconds_to_banner']:.1f} s, .venv "
                     f"{runs[-1]['venv_bytes'] / cold.MB:.0f} MB, {runs[-1]['packages']} packages")
    return {"runs": runs}
