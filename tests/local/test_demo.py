"""`make run` and `make demo` entry points: --help, a clear refusal of a taken port, the demo end to end."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import REPO_ROOT, StackProcess

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("module", "expected"), [("local.stack", "--state-dir"), ("local.demo", "--api-url")])
def test_help_of_run_and_demo(module: str, expected: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_demo_walks_both_tenants_end_to_end(stack: StackProcess) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "local.demo", "--api-url", stack.api_url,
         "--api-keys-file", str(stack.state_dir / "api-keys.json"), "--timeout", "45"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("-> COMPLETED") == 3
    assert "WAITING_FOR_CALLBACK callbackId=" in result.stdout
    assert "environments shared between tenants: none" in result.stdout


def test_demo_explains_an_unreachable_api() -> None:
    result = subprocess.run([sys.executable, "-m", "local.demo", "--api-url", "http://127.0.0.1:9"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 2
    assert "make run" in result.stderr


def test_stack_refuses_a_port_in_use_clearly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "local.stack", "--state-dir", str(tmp_path), "--api-port", str(port),
             "--lambda-port", "0", "--emulator-port", "0", "--dynamodb-port", "0"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
        )

    assert result.returncode == 1
    assert f"api port 127.0.0.1:{port} is in use" in result.stderr
