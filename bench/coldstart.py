"""Cold start: a fresh process importing and initialising the workflow handler, against the bare SDK.

Each run is a new interpreter importing from ``build/workflow/`` (the unpacked zip, as
``/var/task``) under two bytecode settings, ``no-bytecode`` (Lambda's case) and
``bytecode-cached``; bench/report.md (item 2) says what each figure means.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import paired_ratios, summary

REPO_ROOT = Path(__file__).resolve().parent.parent
SRC_DIR = REPO_ROOT / "src"
HANDLER_MODULE = "workflow.app"
SDK_MODULE = "aws_durable_execution_sdk_python"
MODES = ("no-bytecode", "bytecode-cached")

_PROBE = """
import json, time
started, started_cpu = time.perf_counter(), time.process_time()
import {module}
imported, imported_cpu = time.perf_counter(), time.process_time()
from aws_durable_execution_sdk_python.lambda_service import LambdaClient
LambdaClient.initialize_client()
ready, ready_cpu = time.perf_counter(), time.process_time()
print(json.dumps({{"importMs": (imported - started) * 1000, "readyMs": (ready - started) * 1000,
                  "importCpuMs": (imported_cpu - started_cpu) * 1000, "readyCpuMs": (ready_cpu - started_cpu) * 1000}}))
"""

# Module families for the -X importtime breakdown: the first dotted name decides.
GROUPS = {
    "boto3": "boto3, botocore and their dependencies", "botocore": "boto3, botocore and their dependencies",
    "s3transfer": "boto3, botocore and their dependencies", "urllib3": "boto3, botocore and their dependencies",
    "dateutil": "boto3, botocore and their dependencies", "jmespath": "boto3, botocore and their dependencies",
    "six": "boto3, botocore and their dependencies",
    "aws_durable_execution_sdk_python": "durable execution SDK",
    "aws_lambda_powertools": "Powertools (+ fastjsonschema)", "fastjsonschema": "Powertools (+ fastjsonschema)",
    "typing_extensions": "Powertools (+ fastjsonschema)",
    "workflow": "ours: workflow.* and shared.* (module bodies, incl. creating the DynamoDB resource)",
    "shared": "ours: workflow.* and shared.* (module bodies, incl. creating the DynamoDB resource)",
}
OTHER = "standard library and the rest"


def probe_environment(cache_prefix: Path | None, write_bytecode: bool = False,
                      code_dir: Path = SRC_DIR) -> dict[str, str]:
    """The environment of a probe: the workflow function's settings, ``code_dir`` first on the path.

    Args:
        cache_prefix: ``PYTHONPYCACHEPREFIX``; None to use (and never write) ``__pycache__`` beside the sources.
        write_bytecode: Let the probe write ``.pyc`` (to fill a cache prefix).
        code_dir: What the function's zip would hold (default: ``src``, with the dependencies installed).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "PYTHON"))}
    env.update(
        PYTHONPATH=str(code_dir),
        TENANTS_TABLE_NAME="tenant-durable-tenants",
        WORKFLOWS_TABLE_NAME="tenant-durable-workflows",
        POWERTOOLS_SERVICE_NAME="workflow",
        POWERTOOLS_METRICS_NAMESPACE="TenantDurableWorkflow",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
    )
    if cache_prefix is not None:
        env["PYTHONPYCACHEPREFIX"] = str(cache_prefix)
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_probe(module: str, env: dict[str, str]) -> dict[str, float]:
    """One fresh interpreter: in-process import/ready times and the whole process's wall time."""
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", _PROBE.format(module=module)], env=env, cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True)
    wall_ms = (time.perf_counter() - started) * 1000
    return {**json.loads(completed.stdout.strip().splitlines()[-1]), "processMs": wall_ms}


def parse_importtime(stderr: str) -> list[tuple[str, float]]:
    """``(module, self microseconds)`` from ``python -X importtime`` output."""
    rows = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if match:
            rows.append((match.group(3), float(match.group(1))))
    return rows


def group_importtime(rows: list[tuple[str, float]]) -> dict[str, float]:
    """Self time in ms summed by module family (see ``GROUPS``)."""
    totals: dict[str, float] = {}
    for module, self_us in rows:
        group = GROUPS.get(module.split(".", 1)[0], OTHER)
        totals[group] = totals.get(group, 0.0) + self_us / 1000
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def importtime_breakdown(module: str, env: dict[str, str]) -> dict[str, Any]:
    """Grouped ``-X importtime`` self times of importing ``module``, plus the slowest single modules."""
    completed = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], env=env,
                               cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    rows = parse_importtime(completed.stderr)
    slowest = sorted(rows, key=lambda row: -row[1])[:8]
    return {"groupsMs": group_importtime(rows), "slowestSelfMs": [[name, us / 1000] for name, us in slowest]}


def clean_task_dir(task_dir: Path) -> int:
    """Remove any ``__pycache__`` from the unpacked zip (the zip has none); returns how many."""
    caches = [path for path in task_dir.rglob("__pycache__") if path.is_dir()]
    for path in caches:
        shutil.rmtree(path)
    return len(caches)


def measure(runs: int, progress: Callable[[str], None], task_dir: Path) -> dict[str, Any]:
    """Cold start of the handler module against the bare SDK, in both bytecode modes.

    Runs alternate handler and SDK so drift affects both; each ratio pairs the
    handler run with the SDK run next to it.

    Args:
        runs: Fresh processes per side and mode.
        progress: Receives one line per mode.
        task_dir: The unpacked workflow zip (``build/workflow``).
    """
    results: dict[str, Any] = {"runs": runs, "taskDir": str(task_dir.relative_to(REPO_ROOT)), "modes": {}}
    clean_task_dir(task_dir)
    with tempfile.TemporaryDirectory(prefix="bench-pyc-") as tmp:
        warm_prefix = Path(tmp) / "warm"
        for module in (HANDLER_MODULE, SDK_MODULE):  # fill the cached mode's prefix
            subprocess.run([sys.executable, "-c", f"import {module}; import boto3; boto3.client('lambda')"],
                           env=probe_environment(warm_prefix, write_bytecode=True, code_dir=task_dir),
                           cwd=REPO_ROOT, check=True)
        for mode in MODES:
            env = probe_environment(warm_prefix if mode == "bytecode-cached" else None, code_dir=task_dir)
            samples: dict[str, list[dict[str, float]]] = {"handler": [], "sdk": []}
            for _ in range(runs):
                samples["handler"].append(run_probe(HANDLER_MODULE, env))
                samples["sdk"].append(run_probe(SDK_MODULE, env))
            figures: dict[str, Any] = {}
            for key in ("importMs", "importCpuMs", "readyMs", "readyCpuMs", "processMs"):
                handler = [sample[key] for sample in samples["handler"]]
                sdk = [sample[key] for sample in samples["sdk"]]
                figures[key] = {"handler": summary(handler), "sdk": summary(sdk),
                                "ratio": summary(paired_ratios(handler, sdk))}
            figures["importtime"] = {"handler": importtime_breakdown(HANDLER_MODULE, env),
                                     "sdk": importtime_breakdown(SDK_MODULE, env)}
            results["modes"][mode] = figures
            progress(f"cold start [{mode}]: handler import+init {figures['importCpuMs']['handler']['median']:.0f} ms, "
                     f"SDK import {figures['importCpuMs']['sdk']['median']:.0f} ms CPU, "
                     f"ratio {figures['importCpuMs']['ratio']['median']:.2f}x CPU / "
                     f"{figures['importMs']['ratio']['median']:.2f}x wall "
                     f"(ready to serve {figures['readyCpuMs']['ratio']['median']:.2f}x CPU)")
        results["dynamodbHandle"] = resource_vs_client(runs, probe_environment(warm_prefix, code_dir=task_dir))
    if any(task_dir.rglob("__pycache__")):
        raise RuntimeError(f"a probe wrote bytecode into {task_dir}")
    return results


_HANDLE_PROBE = """
import json, time
import aws_durable_execution_sdk_python, boto3
started = time.process_time()
handle = {expression}
made = time.process_time()
print(json.dumps({{"ms": (made - started) * 1000}}))
"""


def resource_vs_client(runs: int, env: dict[str, str]) -> dict[str, Any]:
    """CPU ms of creating the DynamoDB handle after importing the SDK: a boto3 resource ``Table``, a plain client."""
    values: dict[str, list[float]] = {"resource": [], "client": []}
    for _ in range(runs):
        for label, expression in (("resource", "boto3.resource('dynamodb').Table('t')"),
                                  ("client", "boto3.client('dynamodb')")):
            completed = subprocess.run([sys.executable, "-c", _HANDLE_PROBE.format(expression=expression)], env=env,
                                       cwd=REPO_ROOT, capture_output=True, text=True, check=True)
            values[label].append(json.loads(completed.stdout)["ms"])
    return {"resource": summary(values["resource"]), "client": summary(values["client"]),
            "resourcePremiumMs": summary([a - b for a, b in zip(values["resource"], values["client"])])}
