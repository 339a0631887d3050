"""``make run`` as a user runs it: piped into ``tee`` or ``head``, stopped with Ctrl-C or kill,
and its log read by eye.

Each test starts its own ``python -m local`` with its stdout piped into another
process, as ``make run | tee out`` does, so that the pipe can break under it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.runtime.functions import DEFAULT_NAME_PREFIX
from local.services.notifications import callback_queue_name
from shared.contract import demo_tenants
from tests.harness import STOP_TIMEOUT, StackProcess, wait_until


def process_gone(pid: int) -> bool:
    """No such process, or only its zombie (an orphan PID 1 has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class PipedStack(StackProcess):
    """The stack with its stdout piped into ``reader`` (a command) and its stderr in a file."""

    def __init__(self, base: Path, reader: list[str], extra_args: list[str] | None = None) -> None:
        super().__init__(base / "state", base / "stderr.log", extra_args)
        self.reader_command = reader
        self.reader: subprocess.Popen[bytes] | None = None
        self.default_logging = False

    def command(self) -> list[str]:
        command = super().command()
        if self.default_logging:  # as `make run`: no --log-level
            at = command.index("--log-level")
            del command[at:at + 2]
        return command

    def start(self) -> None:
        # Ctrl-C must reach the reader as it reaches a terminal's foreground job, even when this
        # run inherited SIGINT ignored (a shell's `cmd &` starts its job so): its default restored.
        self.reader = subprocess.Popen(self.reader_command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,  # noqa: S603
                                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
        with self.log_path.open("ab") as log:
            # Its own process group, as a terminal's foreground job: Ctrl-C reaches the
            # stack and its workers at once.
            self.process = subprocess.Popen(  # noqa: S603 - our own module
                self.command(), cwd=Path(__file__).resolve().parents[2], stdout=self.reader.stdin, stderr=log,
                start_new_session=True,
            )
        self.reader.stdin.close()  # the stack holds the only write end
        wait_until(self._healthy, 45, f"local stack healthy (log: {self.log_path})")

    def signal_group(self, signum: int) -> int:
        """Send ``signum`` to the stack's process group; its exit code."""
        assert self.process is not None
        os.killpg(self.process.pid, signum)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        finally:
            self.process = None


@pytest.fixture(name="piped")
def piped_fixture(tmp_path: Path) -> Iterator[Any]:
    started: list[PipedStack] = []

    def start(reader: list[str], extra_args: list[str] | None = None, *, default_logging: bool = False) -> PipedStack:
        base = tmp_path / f"stack-{len(started)}"
        base.mkdir()
        stack = PipedStack(base, reader, extra_args)
        stack.default_logging = default_logging
        started.append(stack)
        stack.start()
        return stack

    yield start
    for stack in started:
        if stack.process is not None:
            stack.stop()
        if stack.reader is not None and stack.reader.poll() is None:
            stack.reader.kill()
            stack.reader.wait()


def run_a_workflow(stack: StackProcess) -> list[dict[str, Any]]:
    """Start one workflow (so tenant-a's environment exists) and return the live workers."""
    workflow_id = stack.start_workflow("tenant-a")
    stack.wait_for_status("tenant-a", workflow_id, "WAITING_FOR_CALLBACK")
    workers = stack.workers()
    assert any(worker["tenantId"] == "tenant-a" for worker in workers), workers
    return workers


def assert_stopped_cleanly(stack: PipedStack, code: int, workers: list[dict[str, Any]]) -> None:
    log = stack.log_path.read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert "BrokenPipeError" not in log, log[-3000:]
    wait_until(lambda: all(process_gone(worker["pid"]) for worker in workers), 10, f"workers gone: {workers}")
    leftovers = [worker["tmpdir"] for worker in workers if Path(worker["tmpdir"]).exists()]
    assert not leftovers, leftovers
    roots = {str(Path(worker["tmpdir"]).parent) for worker in workers}
    assert not [root for root in roots if Path(root).exists()], roots


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_reader_that_is_gone_before_the_stop_breaks_nothing(piped: Any, signum: int) -> None:
    """``make run | tee out`` and Ctrl-C: tee dies first, then the stack prints into a broken pipe."""
    stack = piped(["cat"])
    workers = run_a_workflow(stack)
    stack.reader.send_signal(signal.SIGINT)  # the terminal's Ctrl-C reaches tee first
    stack.reader.wait(timeout=10)
    assert_stopped_cleanly(stack, stack.signal_group(signum), workers)


def test_a_reader_that_stopped_reading_at_the_start_changes_nothing(piped: Any) -> None:
    """``make run | head``: the banner breaks the pipe; workflows still run; Ctrl-C stops it all."""
    stack = piped(["head", "-c", "100"], extra_args=["--log-level", "INFO"])
    wait_until(lambda: stack.reader.poll() is not None, 10, "head read its 100 bytes and exited")
    # With the functions' INFO logs and metrics (JSON lines on stdout) into the broken pipe.
    workers = run_a_workflow(stack)
    assert_stopped_cleanly(stack, stack.signal_group(signal.SIGINT), workers)


def test_a_second_ctrl_c_does_not_cut_the_stop_short(piped: Any) -> None:
    stack = piped(["cat"])
    workers = run_a_workflow(stack)
    assert stack.process is not None
    os.killpg(stack.process.pid, signal.SIGINT)
    time.sleep(0.05)
    assert_stopped_cleanly(stack, stack.signal_group(signal.SIGINT), workers)


def test_the_log_is_one_line_per_request_and_a_401_is_no_failure(piped: Any, tmp_path: Path) -> None:
    """As `make run` logs: the stack's lines (INFO), one per request; refusals are neither warnings nor failures."""
    stdout = tmp_path / "stdout.log"
    stack = piped(["tee", str(stdout)], default_logging=True)
    response = requests.post(f"{stack.api_url}/workflow", json={"amount": 1, "currency": "EUR"},
                             headers={"x-tenant-id": "tenant-a"}, timeout=30)
    assert response.status_code == 401
    assert requests.get(f"{stack.api_url}/workflow/abc", headers={"x-tenant-id": "tenant-a", "x-api-key": "wrong"},
                        timeout=30).status_code == 403
    workflow_id = stack.start_workflow("tenant-a")
    stack.wait_for_status("tenant-a", workflow_id, "WAITING_FOR_CALLBACK")
    code = stack.signal_group(signal.SIGTERM)
    log = stack.log_path.read_text(errors="replace")
    assert code == 0, log[-3000:]
    access = [line for line in log.splitlines() if " local.access: " in line]
    assert any(line.endswith(" ms") and " POST /workflow 401 tenant=tenant-a " in line for line in access), access
    assert any(" GET /workflow/abc 403 tenant=tenant-a " in line for line in access), access
    assert any(" POST /workflow 202 tenant=tenant-a " in line for line in access), access
    assert "Traceback" not in log and "stackTrace" not in log, log[-3000:]
    assert not [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line], log[-3000:]
    # The functions' JSON logs (stdout) at their default level, WARNING: nothing for these requests.
    assert not [line for line in stdout.read_text().splitlines() if '"level":' in line], stdout.read_text()[-3000:]
    # The banner names each demo tenant's callback queue (its URL on moto), one line per tenant.
    banner = stdout.read_text()
    for tenant_id in (tenant["tenantId"] for tenant in demo_tenants()):
        queue = callback_queue_name(DEFAULT_NAME_PREFIX, tenant_id)
        assert re.search(rf"^\s+{re.escape(tenant_id)}\s+http://\S+/{re.escape(queue)}$", banner, re.MULTILINE), banner
