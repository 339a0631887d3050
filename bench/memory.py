"""Resident memory: the bare-SDK baseline, and what each layer of a workflow environment adds.

The tenant worker itself is sampled by ``bench.run`` while it serves workflows; this
module measures fresh processes that stop after a given stage and report their RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.coldstart import REPO_ROOT, probe_environment
from bench.stats import summary

# Each stage adds to the previous one, in the order a workflow environment loads them.
STAGES = [
    ("python", "pass"),
    ("+ boto3", "import boto3"),
    ("+ durable SDK", "import aws_durable_execution_sdk_python"),
    ("+ Powertools", "import aws_lambda_powertools.logging, aws_lambda_powertools.metrics, "
                     "aws_lambda_powertools.utilities.validation"),
    ("+ workflow.app (import + init)", "import workflow.app"),
    ("+ the SDK's Lambda client", "from aws_durable_execution_sdk_python.lambda_service import LambdaClient; "
                                  "LambdaClient.initialize_client()"),
]
# The baseline (a process that imported the SDK), then the same process once it created the
# Lambda client the SDK builds on its first invocation: what any durable function holds when serving.
BASELINE = [STAGES[2], STAGES[5]]
_REPORT = "import json; print(json.dumps({{'stage': {index}, 'rss': [l for l in open('/proc/self/status') "\
          "if l.startswith('VmRSS:')][0].split()[1]}}), flush=True)"


def _stages_program(stages: list[tuple[str, str]]) -> str:
    lines = []
    for index, (_label, statement) in enumerate(stages):
        lines.append(statement)
        lines.append(_REPORT.format(index=index))
    return "\n".join(lines)


def staged_rss(stages: list[tuple[str, str]], cache_prefix: Path) -> list[float]:
    """RSS in MiB after each stage of one fresh process."""
    completed = subprocess.run([sys.executable, "-c", _stages_program(stages)], env=probe_environment(cache_prefix),
                               cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    values = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{\"stage\"")]
    return [int(value["rss"]) / 1024 for value in values]


def measure(runs: int) -> dict[str, Any]:
    """The bare-SDK baseline (a fresh process that imported the SDK) and the layer decomposition."""
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
        prefix = Path(tmp)
        subprocess.run([sys.executable, "-c", _stages_program(STAGES + BASELINE)],
                       env=probe_environment(prefix, write_bytecode=True), cwd=REPO_ROOT, check=True,
                       capture_output=True)
        baseline_runs = [staged_rss(BASELINE, prefix) for _ in range(runs)]
        decomposition = [staged_rss(STAGES, prefix) for _ in range(runs)]
    layers = []
    for index, (label, _statement) in enumerate(STAGES):
        layers.append({"stage": label, "rssMb": summary([run[index] for run in decomposition])})
    return {"bareSdkRssMb": summary([run[0] for run in baseline_runs]),
            "sdkReadyRssMb": summary([run[1] for run in baseline_runs]), "layers": layers}
