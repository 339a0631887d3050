"""`make run`, `make demo` and the confirmer entry points: --help, a clear refusal of a taken port, the demo end to end."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from local.tools import demo
from local.tools.demo import CallbackQueues
from local.runtime.functions import DEFAULT_NAME_PREFIX
from local.services.notifications import QUEUES_FILE, callback_queue_name
from tests.harness import REPO_ROOT, StackProcess

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("module", "expected"), [
    ("local", "--state-dir"), ("local.tools.demo", "--api-url"), ("local.tools.demo", "--queue-url"),
    ("local.tools.confirmer", "--queue-url"),
])
def test_help_of_run_and_demo(module: str, expected: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def run_demo(stack: StackProcess, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local.tools.demo", "--api-url", stack.api_url,
         "--api-keys-file", str(stack.state_dir / "api-keys.json"), "--timeout", "45", *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False,
    )


def test_demo_walks_both_tenants_end_to_end_with_a_confirmer_per_tenant(stack: StackProcess) -> None:
    # Earlier tests' events would be answered first (409s): start from empty queues.
    sqs = boto3.client("sqs", endpoint_url=stack.dynamodb_url, region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    for tenant_id in ("tenant-a", "tenant-b"):
        sqs.purge_queue(QueueUrl=sqs.get_queue_url(QueueName=callback_queue_name(DEFAULT_NAME_PREFIX, tenant_id))["QueueUrl"])

    result = run_demo(stack)  # the stack's callback-queues.json sits next to its api-keys.json

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("-> COMPLETED") == 3
    # each workflow answered by its own tenant's confirmer, with its answer; nobody polled for a callbackId
    assert result.stdout.count("confirmer: tenant-a workflow ") >= 2
    assert result.stdout.count("confirmer: tenant-b workflow ") >= 1
    assert result.stdout.count("-> 200 answered") == 3
    assert '"confirmedBy": "tenant-a-confirmer"' in result.stdout
    assert '"confirmedBy": "tenant-b-confirmer"' in result.stdout
    assert "callbackId=" not in result.stdout
    assert "/callbacks/" not in result.stdout  # the callback URLs hold tokens: never printed
    assert re.search(r"\[x\] tenant-b  GET  /workflow/\S+ \(tenant-a's, with tenant-b's own key\)  -> 404", result.stdout)
    assert "environments shared between tenants: none" in result.stdout
    assert "tenant-b reading tenant-a's workflow: 404, refused as an unknown id" in result.stdout


def test_demo_without_confirmers_answers_with_the_callback_id(stack: StackProcess) -> None:
    result = run_demo(stack, "--no-confirmer")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("-> COMPLETED") == 3
    assert "WAITING_FOR_CALLBACK callbackId=" in result.stdout
    assert "confirmer:" not in result.stdout
    assert re.search(r"\[x\] tenant-b  GET  /workflow/\S+ \(tenant-a's, with tenant-b's own key\)  -> 404", result.stdout)
    assert "environments shared between tenants: none" in result.stdout
    assert "tenant-b reading tenant-a's workflow: 404, refused as an unknown id" in result.stdout


def test_demo_uses_the_queues_file_only_for_the_stack_that_wrote_it(tmp_path: Path) -> None:
    (tmp_path / "api-keys.json").write_text("{}")
    (tmp_path / QUEUES_FILE).write_text(json.dumps({
        "apiUrl": "http://127.0.0.1:3000", "endpointUrl": "http://127.0.0.1:3003", "region": "us-east-1",
        "queues": {"tenant-a": "http://127.0.0.1:3003/q-a", "tenant-b": "http://127.0.0.1:3003/q-b"}}))
    parser_args = ["--api-keys-file", str(tmp_path / "api-keys.json")]

    def resolve(*argv: str) -> CallbackQueues | None:
        args = demo.build_parser().parse_args([*parser_args, *argv])
        return demo.callback_queues(args, dict(pair.split("=", 1) for pair in args.queue_url))

    assert resolve("--api-url", "http://127.0.0.1:3000/") == CallbackQueues(
        {"tenant-a": "http://127.0.0.1:3003/q-a", "tenant-b": "http://127.0.0.1:3003/q-b"}, "http://127.0.0.1:3003")
    # a deployed stage: a stale local file must not point it at loopback
    assert resolve("--api-url", "https://abc.execute-api.us-east-2.amazonaws.com/v1") is None
    # unless the stage's queues are given
    assert resolve("--api-url", "https://abc.execute-api.us-east-2.amazonaws.com/v1",
                   "--queue-url", "tenant-a=https://sqs.us-east-2.amazonaws.com/1/a") == CallbackQueues(
        {"tenant-a": "https://sqs.us-east-2.amazonaws.com/1/a"}, None)
    assert resolve("--api-url", "http://127.0.0.1:3000", "--no-confirmer") is None


def test_demo_explains_an_unreachable_api() -> None:
    result = subprocess.run([sys.executable, "-m", "local.tools.demo", "--api-url", "http://127.0.0.1:9"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 2
    assert "make run" in result.stderr


def test_stack_refuses_a_port_in_use_clearly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "local", "--state-dir", str(tmp_path), "--api-port", str(port),
             "--lambda-port", "0", "--emulator-port", "0", "--dynamodb-port", "0", "--apigateway-port", "0"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
        )

    assert result.returncode == 1
    assert f"api port 127.0.0.1:{port} is in use" in result.stderr
