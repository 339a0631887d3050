"""The durable backend: the official emulator (``WebRunner``) and a small HTTP client for it.

The emulator keeps executions in its sqlite store in the state directory. It drives
each execution by invoking the handler at the local Lambda service, which it knows
as ``lambda_endpoint``.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aws_durable_execution_sdk_python.lambda_service import (
    OperationStatus,
    OperationType,
)
from aws_durable_execution_sdk_python_testing.runner import WebRunner, WebRunnerConfig
from aws_durable_execution_sdk_python_testing.stores.base import StoreType
from aws_durable_execution_sdk_python_testing.token import CallbackToken
from aws_durable_execution_sdk_python_testing.web.server import WebServiceConfig

from local.backends.emulator_internals import (
    EmulatorInternals,
    use_aws_history,
    use_lambda_execution_arns,
)
from local.runtime.functions import ACCOUNT_ID, FunctionConfig

logger = logging.getLogger(__name__)

DB_FILE = "durable-executions.db"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"}


class DurableEmulator:
    """Hosts the emulator's ``WebRunner`` in this process.

    Args:
        host: Interface to bind.
        port: Port of the emulator's HTTP API.
        lambda_endpoint: URL of the local Lambda service (handler invocations go there).
        state_dir: Directory of the sqlite store.
        region: Region the emulator stands in for.
        invocation_timeout_seconds: Emulated function timeout of one handler invocation.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        lambda_endpoint: str,
        state_dir: Path,
        region: str,
        invocation_timeout_seconds: int,
    ) -> None:
        self.url = f"http://{host}:{port}"
        self._config = WebRunnerConfig(
            web_service=WebServiceConfig(host=host, port=port, log_level=logging.WARNING),
            lambda_endpoint=lambda_endpoint,
            local_runner_region=region,
            store_type=StoreType.SQLITE,
            store_path=str(Path(state_dir) / DB_FILE),
            invocation_timeout_seconds=invocation_timeout_seconds,
        )
        self._runner = WebRunner(self._config)
        self._thread: threading.Thread | None = None
        self._region = region
        self._restore_arns: Any = None
        self._restore_history: Any = None

    def start(self) -> None:
        """Open the store, resume what a previous run left running, and serve the API.

        Each start builds a new runner, so a stopped emulator can be started again
        (the sqlite store on disk is what carries the executions across).
        """
        self._runner = WebRunner(self._config)
        self._restore_arns = use_lambda_execution_arns(self._region, FunctionConfig.executed_version)
        # The history the local Lambda endpoint returns, as AWS records it (docs/emulator-differences.md).
        self._restore_history = use_aws_history()
        self._runner.start()
        resumed = self.resume_running_executions()
        if resumed:
            logger.info("resumed %d running durable execution(s) from %s", resumed, self._config.store_path)
        self._thread = threading.Thread(target=self._runner.serve_forever, name="durable-emulator", daemon=True)
        self._thread.start()

    def resume_running_executions(self) -> int:
        """Re-arm what the emulator keeps only in memory, for executions a previous run left RUNNING.

        The sqlite store keeps every execution, but the emulator's timers live in
        memory: after a restart a waiting callback would never time out (nor for
        want of a heartbeat), the execution timeout would never fire, a pending
        wait or step retry would never wake, and an invocation cut off by the stop
        would never be retried.
        This re-arms each with the time that is left (at once if it is overdue),
        through :class:`local.backends.emulator_internals.EmulatorInternals`.

        Returns:
            How many executions were resumed.
        """
        internals = EmulatorInternals(self._runner)
        executions = internals.running_executions()
        now = datetime.now(UTC)
        for execution in executions:
            arn = execution.durable_execution_arn
            started = execution.get_operation_execution_started().start_timestamp or now
            timeout = execution.start_input.execution_timeout_seconds
            if timeout > 0:
                internals.arm_execution_timeout(arn, _remaining(started, timeout, now),
                                                f"Execution timed out after {timeout} seconds.")
            waiting = [op for op in execution.operations
                       if op.operation_type == OperationType.CALLBACK and op.status == OperationStatus.STARTED]
            for operation in waiting:
                callback_id = operation.callback_details.callback_id if operation.callback_details else None
                options = next((update.callback_options for update in execution.updates
                                if update.operation_id == operation.operation_id and update.callback_options), None)
                if not callback_id or not options:
                    continue
                callback_started = operation.start_timestamp or started
                if options.timeout_seconds > 0:
                    internals.arm_callback_timeout(
                        arn, callback_id, _remaining(callback_started, options.timeout_seconds, now)
                    )
                if options.heartbeat_timeout_seconds > 0:
                    # The emulator does not store when the last heartbeat came (one may have come
                    # just before the stop): a full heartbeat window from now, never an early timeout.
                    internals.arm_heartbeat_timeout(arn, callback_id, float(options.heartbeat_timeout_seconds))
            internals.schedule_pending(arn)  # waits and step retries
            if not waiting and internals.earliest_pending(execution) is None:
                internals.invoke(arn)  # it was cut off mid-invocation
        return len(executions)

    def stop(self) -> None:
        """Stop serving; the sqlite store keeps every execution for the next start."""
        server = getattr(self._runner, "_server", None)  # WebRunner.stop() closes but does not shut down
        if server is not None:
            server.shutdown()
        self._runner.stop()
        if self._restore_arns is not None:
            self._restore_arns()
            self._restore_arns = None
        if self._restore_history is not None:
            self._restore_history()
            self._restore_history = None


def _remaining(started: datetime, timeout_seconds: float, now: datetime) -> float:
    """Seconds left of ``timeout_seconds`` counted from ``started``; 0 when overdue."""
    return max(0.0, timeout_seconds - (now - started).total_seconds())


class DurableBackendError(Exception):
    """The emulator answered with an error."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{status}: {body}")


@dataclass(frozen=True)
class ForwardedResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class DurableBackendClient:
    """What the local Lambda service needs from the durable backend, over its HTTP API."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._timeout = timeout

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> ForwardedResponse:
        """Send one request and return the response as received."""
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
            response = connection.getresponse()
            return ForwardedResponse(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def _json(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps(payload).encode() if payload is not None else b""
        response = self.request(method, path, body, {"Content-Type": "application/json"})
        data = json.loads(response.body or b"{}")
        if response.status >= 400:
            raise DurableBackendError(response.status, data)
        return data

    def start_execution(
        self,
        *,
        function_name: str,
        qualifier: str,
        execution_name: str,
        tenant_id: str | None,
        payload: str,
        execution_timeout_seconds: int,
        retention_days: int,
    ) -> str:
        """Start an execution; returns its ARN."""
        start: dict[str, Any] = {
            "AccountId": ACCOUNT_ID,
            "FunctionName": function_name,
            "FunctionQualifier": qualifier,
            "ExecutionName": execution_name,
            "ExecutionTimeoutSeconds": execution_timeout_seconds,
            "ExecutionRetentionPeriodDays": retention_days,
            "Input": payload,
            **({"TenantId": tenant_id} if tenant_id is not None else {}),
        }
        return self._json("POST", "/start-durable-execution", start)["ExecutionArn"]

    def find_execution(self, function_name: str, execution_name: str) -> dict[str, Any] | None:
        """The execution of ``function_name`` named ``execution_name``, with its input, if any."""
        path = (f"/2025-12-01/functions/{quote(function_name, safe='')}/durable-executions"
                f"?DurableExecutionName={quote(execution_name, safe='')}")
        listed = self._json("GET", path).get("DurableExecutions") or []
        for summary in listed:
            if summary.get("DurableExecutionName") == execution_name:
                return self.get_execution(summary["DurableExecutionArn"])
        return None

    def get_execution(self, arn: str) -> dict[str, Any]:
        """GetDurableExecution."""
        return self._json("GET", f"/2025-12-01/durable-executions/{quote(arn, safe='')}")

    def callback_was_issued(self, callback_id: str) -> bool:
        """Whether ``callback_id`` names a callback its execution started (it may have ended since).

        The emulator's callback ids are tokens naming the execution; its history
        records a ``CallbackStarted`` event for each callback it issued.
        """
        try:
            arn = CallbackToken.from_str(callback_id).execution_arn
        except Exception:  # noqa: BLE001 - not one of the emulator's tokens
            return False
        marker: str | None = None
        try:
            while True:
                query = "?IncludeExecutionData=false" + (f"&Marker={quote(marker, safe='')}" if marker else "")
                page = self._json("GET", f"/2025-12-01/durable-executions/{quote(arn, safe='')}/history{query}")
                for event in page.get("Events") or []:
                    details = event.get("CallbackStartedDetails") or {}
                    if event.get("EventType") == "CallbackStarted" and details.get("CallbackId") == callback_id:
                        return True
                marker = page.get("NextMarker")
                if not marker:
                    return False
        except (DurableBackendError, OSError, ValueError):
            return False

    def wait_for_end(self, arn: str, timeout: float) -> dict[str, Any] | None:
        """Poll until the execution ends; ``None`` if it is still running at ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            execution = self.get_execution(arn)
            if execution.get("Status") in TERMINAL:
                return execution
            time.sleep(0.2)
        return None

    def healthy(self) -> bool:
        try:
            return self.request("GET", "/health").status == 200
        except OSError:
            return False
