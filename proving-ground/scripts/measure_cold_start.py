"""Cold-start cost of the workflow function as `make build` ships it, measured under the runtime's Python.

Unzips ``build/workflow.zip`` twice: as shipped (with the ``cpython-313`` bytecode
`make build` compiles) and source-only (the same tree without ``__pycache__``,
what the zips held before). Then, in rounds of fresh processes (``-B``: nothing
is written back, as on Lambda's read-only task directory), it times four sides
in a shuffled order per round:

* the handler's import + init (``import workflow.app``) and "ready to serve"
  (that, plus the durable SDK's Lambda client, which the first invocation creates),
  with bytecode and from source;
* the same for a bare durable SDK import packaged the same way (same tree,
  ``import aws_durable_execution_sdk_python`` and its Lambda client).

Each round pairs the sides, so the ratios are medians of per-round ratios. It
also prints every zip's size and unzipped size, and optionally (``--breakdown``)
what the handler's import spends above the bare SDK, per top-level package, from
``-X importtime``; and (``--fresh-run REF``, slow) a fresh clone's first
``make run``: time to the banner and to its first workflow's end (COMPLETED, or the status it ended
with), the virtualenv's size and package count.

Run ``make build`` first (with python3.13 available, so the zip carries bytecode).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from shared.registry import FINAL_STATUSES

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDA_PY = "3.13"
SDK_MODULE = "aws_durable_execution_sdk_python"
# Lambda's limit for a function's unzipped deployment package.
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
MB = 1024 * 1024

# Runs in each fresh process: sys.path as Lambda sets it (the task root first),
# the module's import (its init included), then the SDK's Lambda client.
# Then what a first step needs before its first DynamoDB call: the handler's
# tables, when the module creates them lazily (``tenants_table()``, ``registry()``);
# for a module without them (the bare SDK, or tables made at import) nothing.
# Wall and CPU time: CPU time is what other processes on a shared machine cannot inflate.
PROBE = """
import importlib, json, sys, time
def now():
    return time.perf_counter(), time.process_time()
marks = [now()]
sys.path.insert(0, {tree!r})
module = importlib.import_module({module!r})
marks.append(now())
from aws_durable_execution_sdk_python.lambda_service import LambdaClient
LambdaClient.initialize_client()
marks.append(now())
for name in ("tenants_table", "registry"):
    getattr(module, name, lambda: None)()
marks.append(now())
result = {{}}
for index, metric in enumerate(("import", "ready", "first_table"), start=1):
    result[metric + "_ms"] = (marks[index][0] - marks[0][0]) * 1000
    result[metric + "_cpu_ms"] = (marks[index][1] - marks[0][1]) * 1000
print(json.dumps(result))
"""
METRICS = ("import_ms", "ready_ms", "first_table_ms", "import_cpu_ms", "ready_cpu_ms", "first_table_cpu_ms")


def runtime_python() -> str | None:
    """The runtime's Python as the Makefile finds it (PATH, then pyenv), or None."""
    found = subprocess.run([str(REPO_ROOT / "proving-ground" / "scripts" / "runtime_python.sh"), LAMBDA_PY],
                           capture_output=True, text=True, check=False).stdout.strip()
    return found or None


def lambda_env(home: Path) -> dict[str, str]:
    """Roughly what Lambda sets for the workflow function; dummy credentials, no user config."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
        "AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "us-east-2",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token",
        "AWS_LAMBDA_FUNCTION_NAME": "tenant-durable-workflow", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "TENANTS_TABLE_NAME": "tenant-durable-tenants", "WORKFLOWS_TABLE_NAME": "tenant-durable-workflows",
        "POWERTOOLS_SERVICE_NAME": "workflow", "LOG_LEVEL": "INFO",
    }


def probe(python: str, tree: Path, module: str, env: dict[str, str], cwd: Path) -> dict[str, float]:
    """One fresh process: import + init and ready-to-serve times in ms, and the process's wall time."""
    started = time.perf_counter()
    # -I -S: nothing but the tree and the standard library; -B: write no bytecode.
    completed = subprocess.run([python, "-B", "-I", "-S", "-c", PROBE.format(tree=str(tree), module=module)],
                               env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    wall_ms = (time.perf_counter() - started) * 1000
    if completed.returncode != 0:
        raise RuntimeError(f"probe of {module} in {tree} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_ms"] = wall_ms
    return result


def import_breakdown(python: str, tree: Path, module: str, env: dict[str, str], cwd: Path, runs: int) -> dict[str, int]:
    """Self time (µs) per imported module, from ``-X importtime``: each module's minimum over ``runs`` processes."""
    code = f"import sys; sys.path.insert(0, {str(tree)!r}); import {module}"
    times: dict[str, int] = {}
    for _ in range(runs):
        completed = subprocess.run([python, "-B", "-I", "-S", "-X", "importtime", "-c", code],
                                   env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=True)
        for line in completed.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, _, name = line[len("import time:"):].split("|")
            times[name.strip()] = min(int(self_us), times.get(name.strip(), int(self_us)))
    return times


def tree_size(root: Path, *, with_bytecode: bool = True) -> tuple[int, int]:
    """(bytes, files) under root; without bytecode: skipping ``__pycache__``."""
    total = count = 0
    for path in root.rglob("*"):
        if path.is_file() and (with_bytecode or "__pycache__" not in path.parts):
            total += path.stat().st_size
            count += 1
    return total, count


def zip_sizes(build: Path, scratch: Path) -> list[dict[str, Any]]:
    """Each zip's size and unzipped size, with bytecode (as shipped) and source-only (rezipped the same way)."""
    sys.path.insert(0, str(REPO_ROOT))
    from scripts.deterministic_zip import zip_directory  # noqa: PLC0415 - the repository's own zipper

    rows = []
    for archive in sorted(build.glob("*.zip")):
        with zipfile.ZipFile(archive) as opened:
            infos = opened.infolist()
            unzipped = sum(info.file_size for info in infos)
            source_infos = [info for info in infos if "__pycache__/" not in info.filename]
            pycs = len(infos) - len(source_infos)
            source_tree = scratch / f"{archive.stem}-source"
            for info in source_infos:
                opened.extract(info, source_tree)
        source_zip = scratch / f"{archive.stem}-source.zip"
        zip_directory(source_tree, source_zip)
        rows.append({
            "zip": archive.name, "zip_bytes": archive.stat().st_size, "unzipped_bytes": unzipped, "pyc_files": pycs,
            "source_only_zip_bytes": source_zip.stat().st_size,
            "source_only_unzipped_bytes": sum(info.file_size for info in source_infos),
            "unzipped_limit_bytes": UNZIPPED_LIMIT_BYTES,
        })
        shutil.rmtree(source_tree)
    return rows


def summarize(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def paired_ratios(rounds: list[dict[str, dict[str, float]]], top: str, bottom: str, metric: str) -> dict[str, float]:
    return summarize([r[top][metric] / r[bottom][metric] for r in rounds])


# A fresh clone's first workflow: tenant-a's, answered with its callbackId as the README's
# "as the tenant itself" step does (the routes and headers every compared ref serves).
FIRST_ORDER = {"amount": 120, "currency": "EUR", "description": "first run"}
FIRST_ANSWER = {"approved": True}
FIRST_TENANT = "tenant-a"
_API_LINE = re.compile(r"REST API\s+(http://\S+)")


def first_workflow(banner: str, state_dir: Path, deadline: float, poll: float = 0.1) -> dict[str, Any]:
    """Run one workflow on a stack that just printed ``banner``: start, answer, read until it ends.

    Returns ``{"status": <its last status>, "reason": ...}``; "no answer" when the API never
    answered the step, or "timeout" at ``deadline`` (a ``time.perf_counter()`` value).
    """
    import requests  # noqa: PLC0415 - only the fresh run needs an HTTP client

    found = _API_LINE.search(banner)
    if found is None:
        return {"status": "no answer", "reason": "no REST API URL in the banner"}
    api = found.group(1)
    keys = json.loads((state_dir / "api-keys.json").read_text())
    headers = {"x-tenant-id": FIRST_TENANT, "x-api-key": keys[FIRST_TENANT]}
    session = requests.Session()
    started = session.post(f"{api}/workflow", json=FIRST_ORDER, headers=headers, timeout=30)
    if started.status_code != 202:
        return {"status": "no answer", "reason": f"POST /workflow {started.status_code} {started.text[:200]}"}
    workflow_id, answered = started.json()["workflowId"], False
    while time.perf_counter() < deadline:
        read = session.get(f"{api}/workflow/{workflow_id}", headers=headers, timeout=30)
        status = read.json() if read.status_code == 200 else {}
        if status.get("status") in FINAL_STATUSES:
            return {"status": status["status"], "reason": status.get("reason")}
        if status.get("status") == "WAITING_FOR_CALLBACK" and not answered:
            answer = session.post(f"{api}/callback", headers=headers, timeout=30,
                                  json={"callbackId": status["callbackId"], "payload": FIRST_ANSWER})
            answered = answer.status_code == 200
        time.sleep(poll)
    return {"status": "timeout", "reason": f"not final by the deadline (workflow {workflow_id})"}


def fresh_run(ref: str, scratch: Path, timeout: float) -> dict[str, Any]:
    """Clone ``ref`` into scratch, run its first ``make run``, time the banner and the first workflow, measure the virtualenv.

    From the start of ``make run`` (which installs the run set): seconds until the banner,
    then until a first workflow (tenant-a's, answered at once) is final; its status says
    whether it COMPLETED. The installer's cache is whatever this machine has (warm after the first install).
    """
    clone = scratch / f"clone-{ref.replace('/', '_')}"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", ref], check=True)
    ports = "--api-port 0 --lambda-port 0 --emulator-port 0 --dynamodb-port 0"
    command = ["make", "--no-print-directory", "run", f"RUN_ARGS={ports} --state-dir {clone / '.state'}"]
    log = (clone / "run.log").open("w+")
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=clone, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    banner_s: float | None = None
    first: dict[str, Any] | None = None
    try:
        while time.perf_counter() - started < timeout:
            if "KEY=" in (clone / "run.log").read_text(errors="replace"):
                banner_s = time.perf_counter() - started
                break
            if process.poll() is not None:
                break
            time.sleep(0.2)
        if banner_s is not None:
            first = first_workflow((clone / "run.log").read_text(errors="replace"), clone / ".state",
                                   started + timeout)
            first["seconds"] = time.perf_counter() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
    if banner_s is None or first is None:
        raise RuntimeError(f"make run at {ref} printed no banner:\n{(clone / 'run.log').read_text()[-3000:]}")
    venv_bytes, _ = tree_size(clone / ".venv")
    # Counted from the installed metadata: a virtualenv made by uv has no pip to list them.
    packages = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c",
                               "import importlib.metadata as m; print(*{d.metadata['Name'] for d in m.distributions()})"],
                              capture_output=True, text=True, check=True).stdout.split()
    result = {"ref": ref, "seconds_to_banner": banner_s, "seconds_to_first_final": first["seconds"],
              "first_workflow_status": first["status"], "first_workflow_reason": first.get("reason"),
              "venv_bytes": venv_bytes, "packages": len(packages)}
    shutil.rmtree(clone, ignore_errors=True)
    return result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    build: Path = args.build
    archive = build / f"{args.function}.zip"
    if not archive.is_file():
        raise SystemExit(f"{archive} is missing: run `make build` first")
    tag = f"cpython-{LAMBDA_PY.replace('.', '')}"
    with zipfile.ZipFile(archive) as opened:
        if not any(name.endswith(f".{tag}.pyc") for name in opened.namelist()):
            raise SystemExit(f"{archive} holds no {tag} bytecode: build it with python{LAMBDA_PY} available")
    results: dict[str, Any] = {"python": args.python, "runs": args.runs, "function": args.function,
                               "module": args.module}
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch_name:
        scratch = Path(scratch_name)
        shipped, source = scratch / "shipped", scratch / "source"
        zipfile.ZipFile(archive).extractall(shipped)
        shutil.copytree(shipped, source, ignore=shutil.ignore_patterns("__pycache__"))
        home = scratch / "home"
        home.mkdir()
        env = lambda_env(home)
        sides = {
            "handler_bytecode": (shipped, args.module), "handler_source": (source, args.module),
            "sdk_bytecode": (shipped, SDK_MODULE), "sdk_source": (source, SDK_MODULE),
        }
        rng = random.Random(args.seed)
        rounds: list[dict[str, dict[str, float]]] = []
        for number in range(1, args.runs + 1):
            order = list(sides)
            rng.shuffle(order)
            rounds.append({side: probe(args.python, *sides[side], env, home) for side in order})
            print(f"  round {number}/{args.runs}: " + ", ".join(
                f"{side} {rounds[-1][side]['ready_ms']:.0f} ms" for side in sides), file=sys.stderr, flush=True)
        results["sides"] = {side: {metric: summarize([r[side][metric] for r in rounds])
                                   for metric in (*METRICS, "process_ms")} for side in sides}
        results["ratios"] = {
            f"{top}/{bottom}:{metric}": paired_ratios(rounds, top, bottom, metric)
            for top, bottom in (("handler_bytecode", "handler_source"), ("handler_bytecode", "sdk_bytecode"),
                                ("handler_source", "sdk_source"), ("sdk_bytecode", "sdk_source"))
            for metric in METRICS
        }
        results["rounds"] = rounds
        if args.breakdown:
            handler = import_breakdown(args.python, shipped, args.module, env, home, args.runs)
            sdk = import_breakdown(args.python, shipped, SDK_MODULE, env, home, args.runs)
            above: dict[str, int] = defaultdict(int)
            for name, self_us in handler.items():
                if name not in sdk:
                    above[name.split(".")[0]] += self_us
            results["breakdown_above_sdk_us"] = dict(sorted(above.items(), key=lambda item: -item[1]))
        results["zips"] = zip_sizes(build, scratch)
        results["fresh_runs"] = [fresh_run(ref, scratch, args.fresh_run_timeout) for ref in args.fresh_run]
    return results


def report(results: dict[str, Any]) -> str:
    lines = [f"Cold start of {results['function']} ({results['module']}) under {results['python']}, "
             f"{results['runs']} fresh processes per side, paired (median [min-max]):"]
    lines.append("  (import: import + init; ready: + the SDK's Lambda client; first_table: + the DynamoDB tables"
                 " a first step uses; process: the whole interpreter, wall)")
    for clock in ("wall", "cpu"):
        for side, metrics in results["sides"].items():
            shown = [m for m in metrics if (m.endswith("_cpu_ms") if clock == "cpu" else not m.endswith("_cpu_ms"))]
            figures = ", ".join(f"{m.removesuffix('_ms').removesuffix('_cpu')} {metrics[m]['median']:.0f} ms"
                                f" [{metrics[m]['min']:.0f}-{metrics[m]['max']:.0f}]" for m in shown)
            lines.append(f"  {clock:<4} {side:<17} {figures}")
    targets = {"handler_bytecode/handler_source": "target <= 0.5", "handler_bytecode/sdk_bytecode": "target <= 1.15"}
    lines.append("Paired ratios, median of per-round ratios [min-max], wall / cpu:")
    for pair in dict.fromkeys(name.split(":")[0] for name in results["ratios"]):
        for metric in ("import", "ready", "first_table"):
            wall, cpu = results["ratios"][f"{pair}:{metric}_ms"], results["ratios"][f"{pair}:{metric}_cpu_ms"]
            note = f"  ({targets[pair]})" if pair in targets else ""
            lines.append(f"  {pair:<34} {metric:<12} {wall['median']:.2f}x [{wall['min']:.2f}-{wall['max']:.2f}]"
                         f" / {cpu['median']:.2f}x [{cpu['min']:.2f}-{cpu['max']:.2f}]{note}")
    if "breakdown_above_sdk_us" in results:
        above = results["breakdown_above_sdk_us"]
        lines.append(f"Import self time above the bare SDK (-X importtime, bytecode, each module's minimum over the runs): "
                     f"{sum(above.values()) / 1000:.1f} ms")
        lines += [f"  {name:<24} {us / 1000:7.1f} ms" for name, us in above.items() if us >= 500]
    lines.append("Zips (as shipped / source-only; Lambda's unzipped limit 250 MB):")
    for row in results["zips"]:
        lines.append(f"  {row['zip']:<15} zip {row['zip_bytes'] / MB:5.1f} MB / {row['source_only_zip_bytes'] / MB:5.1f} MB,"
                     f" unzipped {row['unzipped_bytes'] / MB:5.1f} MB / {row['source_only_unzipped_bytes'] / MB:5.1f} MB,"
                     f" {row['pyc_files']} .pyc")
    for run in results["fresh_runs"]:
        lines.append(f"Fresh clone at {run['ref']}: first make run {run['seconds_to_banner']:.1f} s to the banner, "
                     f"{run['seconds_to_first_final']:.1f} s to its first workflow {run['first_workflow_status']}, "
                     f".venv {run['venv_bytes'] / MB:.0f} MB, {run['packages']} packages")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options (``--help``); what :func:`measure` takes. Exits with a message when no python3.13 is found."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=None,
                        help=f"the runtime's interpreter (default: python{LAMBDA_PY} as the Makefile finds it)")
    parser.add_argument("--build", type=Path, default=REPO_ROOT / "build", help="make build's output directory")
    parser.add_argument("--function", default="workflow", help="which zip to measure (default: workflow)")
    parser.add_argument("--module", default="workflow.app", help="the handler's module (default: workflow.app)")
    parser.add_argument("--runs", type=int, default=9, help="fresh processes per side (default: 9)")
    parser.add_argument("--seed", type=int, default=13, help="seed of the per-round order of the sides")
    parser.add_argument("--breakdown", action="store_true",
                        help="also print what the handler's import spends above the bare SDK, per package")
    parser.add_argument("--fresh-run", action="append", default=[], metavar="REF",
                        help="also time a fresh clone's first `make run` at this git ref (repeatable; minutes each)")
    parser.add_argument("--fresh-run-timeout", type=float, default=900.0, help="seconds to wait for the banner and the first workflow")
    parser.add_argument("--json", type=Path, help="also write every figure (and each round) to this file")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.python = args.python or runtime_python()
    if not args.python:
        parser.error(f"no python{LAMBDA_PY} found (PATH or pyenv); pass --python")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = measure(args)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
