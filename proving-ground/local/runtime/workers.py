"""Execution environments for the local Lambda service: one OS process each.

A pool is keyed by ``(function name, tenant id)``; a PER_TENANT function gets one
pool per tenant, a plain function one pool (tenant ``None``). A worker is created
for its pool's tenant and never moves to another pool, so an environment never
serves two tenants. Each worker has its own temporary directory (``TMPDIR``),
removed when the worker goes. Idle workers are reclaimed after ``idle_timeout``;
concurrent invocations of one pool get more workers of that pool; a worker that
died is dropped and replaced on the next invocation.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local import REPO_ROOT
from local.runtime.functions import ALIAS, FunctionConfig
from local.runtime.processes import terminate
from local.runtime.worker import read_frame, write_frame

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
INIT_TIMEOUT_SECONDS = 30.0
ENVIRONMENT_UA_PREFIX = "env-"
_TIMED_OUT = object()


class WorkerCapacityError(Exception):
    """No worker of the pool became free in time (Lambda: TooManyRequestsException)."""


@dataclass(frozen=True)
class InvocationResult:
    """What one invocation returned: the payload, and Lambda's FunctionError if it failed.

    ``body`` is the response exactly as the runtime marshalled it (a ``Decimal``
    keeps its digits); ``payload`` is that body parsed, or the error payload.
    """

    payload: Any
    function_error: str | None = None
    environment_id: str | None = None
    body: bytes | None = None


@dataclass(frozen=True)
class InvocationContext:
    """Per-invocation values of the Lambda context."""

    request_id: str
    tenant_id: str | None
    function_version: str
    invoked_function_arn: str


class Worker:
    """One execution environment process bound to one function and one tenant."""

    def __init__(self, function: FunctionConfig, tenant_id: str | None, *, region: str, tmp_root: Path) -> None:
        self.function = function
        self.tenant_id = tenant_id
        self.environment_id = uuid.uuid4().hex
        label = _UNSAFE.sub("_", tenant_id or "shared")[:40]
        self.tmpdir = tempfile.mkdtemp(prefix=f"{function.name}-{label}-", dir=tmp_root)
        today = time.strftime("%Y/%m/%d")
        self.log_group = f"/aws/lambda/{function.name}"
        self.log_stream = f"{today}/[{FunctionConfig.executed_version(ALIAS)}]{self.environment_id}"
        self.created = time.time()
        self.last_used = time.monotonic()
        self.busy = False
        self.invocations = 0
        parent_in, child_out = os.pipe()
        child_in, parent_out = os.pipe()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(function.code_dir),
            "PYTHONUNBUFFERED": "1",
            "TMPDIR": self.tmpdir,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": FunctionConfig.executed_version(ALIAS),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "LOCAL_LAMBDA_ENVIRONMENT_ID": self.environment_id,
            # botocore appends "app/<id>" to its User-Agent: the fault injector
            # (proving-ground/local/testing/faults.py) tells which environment made a call by it.
            "AWS_SDK_UA_APP_ID": f"{ENVIRONMENT_UA_PREFIX}{self.environment_id}",
            "_HANDLER": function.handler,
            **function.environment,
        }
        command = [sys.executable, "-m", "local.runtime.worker", "--handler", function.handler,
                   "--fd-in", str(child_in), "--fd-out", str(child_out)]
        if tenant_id is not None:
            command += ["--tenant", tenant_id]
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command, cwd=REPO_ROOT, env=env, pass_fds=(child_in, child_out), stdin=subprocess.DEVNULL
            )
        finally:
            os.close(child_in)
            os.close(child_out)
        self._in = parent_in
        self._out = parent_out
        self.pid = self.process.pid
        self.reported_tmpdir: str | None = None
        self.init_error: dict[str, Any] | None = None

    def wait_ready(self, timeout: float = INIT_TIMEOUT_SECONDS) -> None:
        """Wait for the init phase (handler import). Sets :attr:`init_error` when it failed."""
        frame = self._read(time.time() + timeout)
        if frame is None or frame is _TIMED_OUT:
            self.init_error = {"errorType": "Runtime.ExitError", "errorMessage": "Runtime exited during init"}
        elif frame.get("type") == "init_error":
            self.init_error = frame["error"]
        else:
            self.reported_tmpdir = frame.get("tmpdir")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: Any, context: InvocationContext) -> InvocationResult:
        """Run the handler once in this process."""
        deadline = time.time() + self.function.timeout_seconds
        request = {
            "event": event,
            "deadline": deadline,
            "context": {
                "aws_request_id": context.request_id,
                "function_name": self.function.name,
                "function_version": context.function_version,
                "invoked_function_arn": context.invoked_function_arn,
                "memory_limit_in_mb": self.function.memory_mb,
                "log_group_name": self.log_group,
                "log_stream_name": self.log_stream,
                "tenant_id": context.tenant_id,
            },
        }
        self.invocations += 1
        try:
            write_frame(self._out, request)
            frame = self._read(deadline)
        except OSError:
            frame = None
        if frame is _TIMED_OUT:  # still running past its deadline: Lambda stops the environment
            self.terminate()
            return self._error("Sandbox.Timedout",
                               f"{context.request_id} Task timed out after {self.function.timeout_seconds:.2f} seconds")
        if frame is None:  # the process went away mid-invocation
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            reason = self._exit_reason()
            self.terminate()
            return self._error("Runtime.ExitError",
                               f"RequestId: {context.request_id} Error: Runtime exited with error: {reason}")
        if frame.get("fatal"):
            self.terminate()
        if frame.get("ok"):
            if frame.get("binary"):
                body = base64.b64decode(frame["body"])
                return InvocationResult(body, environment_id=self.environment_id, body=body)
            return InvocationResult(json.loads(frame["body"]), environment_id=self.environment_id,
                                    body=frame["body"].encode())
        return InvocationResult(frame["error"], "Unhandled", self.environment_id)

    def _error(self, error_type: str, message: str) -> InvocationResult:
        return InvocationResult({"errorType": error_type, "errorMessage": message}, "Unhandled", self.environment_id)

    def _exit_reason(self) -> str:
        code = self.process.poll()
        if code is not None and code < 0:
            return f"signal: {signal.Signals(-code).name.lower().removeprefix('sig')}"
        return f"exit status {code}"

    def _read(self, deadline: float) -> Any:
        """The next frame; ``None`` when the process closed its pipe; ``_TIMED_OUT`` at the deadline."""
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                return _TIMED_OUT
            ready, _, _ = select.select([self._in], [], [], min(remaining, 1.0))
            if ready:
                return read_frame(self._in)
            if not self.alive:
                return None

    def terminate(self) -> None:
        """Stop the process and remove its temporary directory."""
        if self.alive:
            terminate(self.process, timeout=3)
        for fd in (self._in, self._out):
            try:
                os.close(fd)
            except OSError:
                pass
        self._in = self._out = -1
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        return {
            "functionName": self.function.name,
            "tenantId": self.tenant_id,
            "environmentId": self.environment_id,
            "logStreamName": self.log_stream,
            "pid": self.pid,
            "tmpdir": self.reported_tmpdir or self.tmpdir,
            "busy": self.busy,
            "alive": self.alive,
            "invocations": self.invocations,
            "createdAt": self.created,
        }


class WorkerPools:
    """The function runner of the local Lambda service: worker pools keyed by (function, tenant).

    Args:
        region: Region reported to the handlers.
        tmp_root: Parent of the workers' temporary directories.
        idle_timeout: Seconds an idle worker is kept warm.
        max_workers_per_pool: Concurrent workers of one (function, tenant).
        capacity_wait: Seconds an invocation waits for a free worker when the pool is full.
    """

    def __init__(
        self,
        *,
        region: str,
        tmp_root: Path,
        idle_timeout: float = 300.0,
        max_workers_per_pool: int = 4,
        capacity_wait: float = 30.0,
    ) -> None:
        self._region = region
        self._tmp_root = Path(tmp_root)
        self._tmp_root.mkdir(parents=True, exist_ok=True)
        self._idle_timeout = idle_timeout
        self._max = max_workers_per_pool
        self._capacity_wait = capacity_wait
        self._pools: dict[tuple[str, str | None], list[Worker]] = {}
        self._starting: dict[tuple[str, str | None], int] = {}
        # (function, errorType, errorMessage) of every init error already reported: once each.
        self._reported_init_errors: set[tuple[str, str, str]] = set()
        self._cond = threading.Condition()
        self._closed = False
        self._reaper = threading.Thread(target=self._reap_forever, name="worker-reaper", daemon=True)
        self._reaper.start()

    def invoke(self, function: FunctionConfig, event: Any, context: InvocationContext) -> InvocationResult:
        """Run ``function`` once for ``context.tenant_id`` in a worker of that tenant only."""
        key = (function.name, context.tenant_id if function.per_tenant else None)
        worker = self._acquire(function, key)
        try:
            if worker.init_error is not None:  # as the runtime reports it: no request id yet ("")
                return InvocationResult(worker.init_error, "Unhandled", worker.environment_id)
            return worker.invoke(event, context)
        finally:
            self._release(key, worker)

    def _acquire(self, function: FunctionConfig, key: tuple[str, str | None]) -> Worker:
        deadline = time.monotonic() + self._capacity_wait
        with self._cond:
            while True:
                if self._closed:
                    raise WorkerCapacityError("the local Lambda service is shutting down")
                pool = self._pools.setdefault(key, [])
                for worker in list(pool):
                    if not worker.alive and not worker.busy:
                        logger.warning("worker %s (pid %s, tenant %s) died; replacing it",
                                       worker.environment_id, worker.pid, worker.tenant_id)
                        pool.remove(worker)
                        worker.terminate()
                for worker in pool:
                    if not worker.busy:
                        worker.busy = True
                        return worker
                if len(pool) + self._starting.get(key, 0) < self._max:
                    self._starting[key] = self._starting.get(key, 0) + 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WorkerCapacityError(f"all {self._max} environments of {key} are busy")
                self._cond.wait(remaining)
        try:
            worker = Worker(function, key[1], region=self._region, tmp_root=self._tmp_root)
            worker.wait_ready()
        finally:
            with self._cond:
                self._starting[key] -= 1
        worker.busy = True
        with self._cond:
            self._pools[key].append(worker)
        if worker.init_error is not None:
            self._report_init_error(function, worker.init_error)
        else:
            logger.info("started environment %s (pid %s) for %s tenant=%s",
                        worker.environment_id, worker.pid, function.name, key[1])
        return worker

    def _report_init_error(self, function: FunctionConfig, error: dict[str, Any]) -> None:
        """One clear line in the stack's output per distinct init error of a function.

        The caller only gets the error payload (and the durable backend's caller, none at
        all: the workflow just ends FAILED), so the person running the stack must see it
        here; once, as every new environment of the function fails the same way.
        """
        error_type, message = str(error.get("errorType", "")), str(error.get("errorMessage", ""))
        with self._cond:
            if (function.name, error_type, message) in self._reported_init_errors:
                return
            self._reported_init_errors.add((function.name, error_type, message))
        logger.error("local lambda: function %s failed to initialise: %s: %s (every invocation fails with this "
                     "error until it is fixed)", function.name, error_type, message)

    def _release(self, key: tuple[str, str | None], worker: Worker) -> None:
        with self._cond:
            worker.busy = False
            worker.last_used = time.monotonic()
            if not worker.alive or worker.init_error is not None:
                if worker in self._pools.get(key, []):
                    self._pools[key].remove(worker)
                worker.terminate()
            self._cond.notify_all()

    def kill_environment(self, environment_id: str) -> bool:
        """SIGKILL the worker of ``environment_id`` (fault injection: a crash, an OOM, a timeout)."""
        with self._cond:
            victim = next((worker for pool in self._pools.values() for worker in pool
                           if worker.environment_id == environment_id), None)
        if victim is None or not victim.alive:
            return False
        logger.warning("killing environment %s (pid %s, tenant %s)", environment_id, victim.pid, victim.tenant_id)
        victim.process.kill()
        return True

    def function_of_environment(self, environment_id: str) -> str | None:
        """The function name of the live worker ``environment_id``; None if there is none."""
        with self._cond:
            return next((worker.function.name for pool in self._pools.values() for worker in pool
                         if worker.environment_id == environment_id), None)

    def describe(self) -> list[dict[str, Any]]:
        """Every live worker, for the debug endpoint."""
        with self._cond:
            return [worker.describe() for pool in self._pools.values() for worker in pool]

    def _reap_forever(self) -> None:
        interval = max(0.2, min(5.0, self._idle_timeout / 4))
        while not self._closed:
            time.sleep(interval)
            self.reap()

    def reap(self) -> None:
        """Stop workers idle for longer than the idle timeout, and drop dead ones."""
        now = time.monotonic()
        doomed: list[Worker] = []
        with self._cond:
            for pool in self._pools.values():
                for worker in list(pool):
                    if worker.busy:
                        continue
                    if not worker.alive or now - worker.last_used > self._idle_timeout:
                        pool.remove(worker)
                        doomed.append(worker)
        for worker in doomed:
            logger.info("reclaiming environment %s (pid %s, tenant %s)", worker.environment_id, worker.pid, worker.tenant_id)
            worker.terminate()

    def shutdown(self) -> None:
        """Stop every worker and remove their temporary directories."""
        with self._cond:
            self._closed = True
            workers = [worker for pool in self._pools.values() for worker in pool]
            self._pools.clear()
            self._cond.notify_all()
        for worker in workers:
            worker.terminate()
