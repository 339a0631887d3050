"""Fresh interpreters: cold start against the bare SDK (item 2), RSS layer by layer (item 4); the zips (item 5).

Cold start: each run is a new interpreter importing from ``build/workflow/`` (the unpacked zip, as ``/var/task``)
under two bytecode settings, ``no-bytecode`` (Lambda's case) and ``bytecode-cached``; bench/report.md says what
each figure means.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import REPO_ROOT
from bench.stats import paired_ratios, summary

HANDLER, SDK = "import workflow.app", "import aws_durable_execution_sdk_python"
SIDES = (("handler", HANDLER), ("sdk", SDK))
READY = "from aws_durable_execution_sdk_python.lambda_service import LambdaClient; LambdaClient.initialize_client()"
MODES = ("no-bytecode", "bytecode-cached")
# Item 4: each stage adds to the previous one, in the order a workflow environment loads them.
STAGES = [("python", "pass"), ("+ boto3", "import boto3"), ("+ durable SDK", SDK),
          ("+ Powertools", "import aws_lambda_powertools.logging, aws_lambda_powertools.metrics, "
                           "aws_lambda_powertools.utilities.validation"),
          ("+ workflow.app (import + init)", HANDLER), ("+ the SDK's Lambda client", READY)]
HANDLES = (("resource", "boto3.resource('dynamodb').Table('t')"), ("client", "boto3.client('dynamodb')"))
_BOTO, _POWERTOOLS = "boto3, botocore and their dependencies", "Powertools (+ fastjsonschema)"
_OURS = "ours: workflow.* and shared.* (module bodies, incl. creating the DynamoDB resource)"
# Module families for the -X importtime breakdown: the first dotted name decides.
GROUPS = {**dict.fromkeys(("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "jmespath", "six"), _BOTO),
          **dict.fromkeys(("aws_lambda_powertools", "fastjsonschema", "typing_extensions"), _POWERTOOLS),
          "workflow": _OURS, "shared": _OURS, "aws_durable_execution_sdk_python": "durable execution SDK"}
OTHER = "standard library and the rest"
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
AWS_SDK_PARTS = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")  # the runtime has them
MB = 1024 * 1024


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


def probe(statements: list[str], env: dict[str, str], *flags: str) -> tuple[list[list[float]], float, str]:
    """One fresh interpreter running ``statements`` in turn: after each, [wall ms, CPU ms, RSS MiB] since its start;
    the whole process's wall ms; its stderr."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *flags, "-c", _PROBE.format(statements=statements)], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1]), (time.perf_counter() - started) * 1000, done.stderr


def fill_cache(prefix: Path, code_dir: Path) -> None:
    """Compile every module the probes import into ``prefix``."""
    probe([statement for _, statement in STAGES] + [HANDLES[0][1]], environment(prefix, code_dir, write_bytecode=True))


def parse_importtime(stderr: str) -> list[tuple[str, float]]:
    """``(module, self microseconds)`` from ``python -X importtime`` output."""
    return [(match[3], float(match[1])) for match in re.finditer(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", stderr)]


def group_importtime(rows: list[tuple[str, float]]) -> dict[str, float]:
    """Self time in ms summed by module family (see ``GROUPS``), largest first."""
    totals: dict[str, float] = {}
    for module, self_us in rows:
        group = GROUPS.get(module.split(".", 1)[0], OTHER)
        totals[group] = totals.get(group, 0.0) + self_us / 1000
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def coldstart(runs: int, progress: Callable[[str], None], task_dir: Path) -> dict[str, Any]:
    """Cold start of the handler module against the bare SDK, in both bytecode modes; runs alternate the two sides
    so drift affects both, and each ratio pairs a handler run with the SDK run next to it. Last, the CPU ms of
    creating the DynamoDB handle after importing the SDK: a boto3 resource ``Table`` against a plain client."""
    results: dict[str, Any] = {"runs": runs, "taskDir": str(task_dir.relative_to(REPO_ROOT)), "modes": {}}
    for cache in task_dir.rglob("__pycache__"):  # the zip ships none
        shutil.rmtree(cache)
    with tempfile.TemporaryDirectory(prefix="bench-pyc-") as prefix:
        fill_cache(Path(prefix), task_dir)
        for mode in MODES:
            env = environment(Path(prefix) if mode == "bytecode-cached" else None, task_dir)
            samples: dict[str, list[dict[str, float]]] = {"handler": [], "sdk": []}
            for _, (side, statement) in ((run, side) for run in range(runs) for side in SIDES):
                (imported, ready), process_ms, _ = probe([statement, READY], env)
                samples[side].append({"importMs": imported[0], "importCpuMs": imported[1], "readyMs": ready[0],
                                      "readyCpuMs": ready[1], "processMs": process_ms})
            series = {key: [[sample[key] for sample in samples[side]] for side, _ in SIDES]
                      for key in samples["sdk"][0]}
            figures = results["modes"][mode] = {key: {"handler": summary(handler), "sdk": summary(sdk),
                                                      "ratio": summary(paired_ratios(handler, sdk))}
                                                for key, (handler, sdk) in series.items()}
            figures["importtime"] = {side: {"groupsMs": group_importtime(parse_importtime(
                probe([statement], env, "-X", "importtime")[2]))} for side, statement in SIDES}
            progress(f"cold start [{mode}]: handler import+init {figures['importCpuMs']['handler']['median']:.0f} ms, "
                     f"SDK import {figures['importCpuMs']['sdk']['median']:.0f} ms CPU, ratio "
                     f"{figures['importCpuMs']['ratio']['median']:.2f}x CPU / "
                     f"{figures['importMs']['ratio']['median']:.2f}x wall (ready to serve "
                     f"{figures['readyCpuMs']['ratio']['median']:.2f}x CPU)")
        handles: dict[str, list[float]] = {label: [] for label, _ in HANDLES}
        for _, (label, expression) in ((run, handle) for run in range(runs) for handle in HANDLES):
            (imported, made), _, _ = probe([SDK + ", boto3", expression], environment(Path(prefix), task_dir))
            handles[label].append(made[1] - imported[1])
    results["dynamodbHandle"] = {**{label: summary(values) for label, values in handles.items()},
                                 "resourcePremiumMs": summary([a - b for a, b in zip(*handles.values())])}
    if any(task_dir.rglob("__pycache__")):
        raise RuntimeError(f"a probe wrote bytecode into {task_dir}")
    return results


def memory(runs: int) -> dict[str, Any]:
    """RSS of a fresh process that imported the SDK (the baseline), the same once it made the Lambda client the SDK
    makes on its first invocation, and what each stage of a workflow environment adds (bytecode cached, src/)."""
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as prefix:
        env, src = environment(Path(prefix), REPO_ROOT / "src"), REPO_ROOT / "src"
        fill_cache(Path(prefix), src)
        baseline = [probe([SDK, READY], env)[0] for _ in range(runs)]
        stages = [probe([statement for _, statement in STAGES], env)[0] for _ in range(runs)]
    return {"bareSdkRssMb": summary([run[0][2] for run in baseline]),
            "sdkReadyRssMb": summary([run[1][2] for run in baseline]),
            "layers": [{"stage": label, "rssMb": summary([run[index][2] for run in stages])}
                       for index, (label, _) in enumerate(STAGES)]}


def describe_zip(path: Path) -> dict[str, Any]:
    """Compressed and unpacked size, file count, the largest top-level entries and the AWS SDK share."""
    with zipfile.ZipFile(path) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
    by_top: dict[str, list[int]] = {}
    for info in infos:  # by package, module or dist-info directory
        top = info.filename.split("/", 1)[0]
        sizes = by_top.setdefault(top.split("-", 1)[0] + " (metadata)" if top.endswith((".dist-info", ".data"))
                                  else top, [0, 0])
        sizes[0], sizes[1] = sizes[0] + info.compress_size, sizes[1] + info.file_size
    largest = sorted(by_top.items(), key=lambda item: -item[1][1])[:6]
    return {"zipMb": path.stat().st_size / MB, "unzippedMb": sum(info.file_size for info in infos) / MB,
            "files": len(infos), "largest": [{"entry": name, "compressedMb": sizes[0] / MB,
                                              "unzippedMb": sizes[1] / MB} for name, sizes in largest],
            "awsSdkShareOfZip": sum(by_top[name][0] for name in AWS_SDK_PARTS if name in by_top)
            / max(1, sum(info.compress_size for info in infos)),
            "ownCodeKb": sum(by_top[name][1] for name in (*FUNCTIONS, "shared") if name in by_top) / 1024}


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


def package(allow_build: bool) -> dict[str, Any]:
    """Sizes of ``build/<function>.zip``, rebuilding them first when stale (and allowed)."""
    return {"rebuilt": fresh_zips(allow_build), "limits": {"directUploadZipMb": 50, "unzippedMb": 250},  # Lambda's
            "zips": {name: describe_zip(BUILD_DIR / f"{name}.zip") for name in FUNCTIONS}}
