"""The floor: the official durable emulator driving the bare workflow handler, in one process.

``python -m bench.floor --state-dir DIR`` starts, in this process:

* DynamoDB (moto's server) with the pattern's two tables, as the local stack does;
* the durable emulator (``WebRunner`` with its sqlite store, via ``local.durable``),
  the same backend the local stack uses;
* a minimal Lambda endpoint that runs ``workflow.app.handler`` in this process,
  on one thread per invocation: no gateway, no authorizer, no api function, no
  per-tenant worker processes, no pipes.

The handler's own checkpoint calls go straight to the emulator. What the local
stack adds on top of this floor is exactly what the benchmark wants to price.

One process serves every tenant, so the handler's tenant binding (defence in
depth for ``PER_TENANT``, see ``workflow.isolation``) would refuse the second
tenant. The floor swaps ``workflow.app.BINDING`` for :class:`SharedEnvironment`,
which still refuses an invocation without a tenant id but binds to none. Nothing
else of the handler changes; the tenant cache is keyed by tenant id, so it keeps
one entry per tenant.

When everything is up, the URLs are written as JSON to ``--ready-file``. SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import local  # noqa: F401 - puts src/ on the import path
from local.functions import DEFAULT_REGION, Names
from local.harness import free_port
from local.worker import LocalLambdaContext

HOST = "127.0.0.1"
FUNCTION_TIMEOUT_SECONDS = 60
STATS_PATH = "/_floor/stats"
RESET_PATH = "/_floor/reset"


def handler_environment(names: Names, dynamodb_url: str, emulator_url: str, cache_ttl: int) -> dict[str, str]:
    """The variables the workflow function gets on the stack, with the floor's endpoints."""
    return {
        "TENANTS_TABLE_NAME": names.tenants_table,
        "WORKFLOWS_TABLE_NAME": names.workflows_table,
        "TENANT_CACHE_TTL_SECONDS": str(cache_ttl),
        "POWERTOOLS_SERVICE_NAME": "workflow",
        "POWERTOOLS_METRICS_NAMESPACE": "TenantDurableWorkflow",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
        "AWS_ENDPOINT_URL_LAMBDA": emulator_url,
        "AWS_REGION": DEFAULT_REGION,
        "AWS_DEFAULT_REGION": DEFAULT_REGION,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }


class FloorStats:
    """Invocation counts and in-process handler durations, for the driver."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.invocations: Counter[str] = Counter()
        self.handler_ms: list[float] = []

    def record(self, tenant_id: str | None, elapsed_ms: float) -> None:
        with self._lock:
            self.invocations[tenant_id or "-"] += 1
            self.handler_ms.append(elapsed_ms)

    def reset(self) -> None:
        with self._lock:
            self.invocations.clear()
            self.handler_ms.clear()

    def snapshot(self, store_reads: int) -> dict[str, Any]:
        with self._lock:
            return {"invocations": dict(self.invocations), "handlerMs": list(self.handler_ms), "storeReads": store_reads}


def make_endpoint(handler: Any, cache: Any, stats: FloorStats, function_name: str) -> type[BaseHTTPRequestHandler]:
    """A request handler class serving Lambda's Invoke path by calling ``handler`` in this process."""

    class MinimalLambdaEndpoint(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # a floor should not wait on delayed ACKs

        def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            if self.path == STATS_PATH:
                self._reply(200, stats.snapshot(cache.store_reads))
            else:
                self._reply(404, {"message": "not found"})

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path == RESET_PATH:
                stats.reset()
                self._reply(200, {})
                return
            if not self.path.endswith("/invocations"):
                self._reply(404, {"message": "not found"})
                return
            tenant_id = self.headers.get("X-Amz-Tenant-Id")
            request_id = str(uuid.uuid4())
            context = LocalLambdaContext(
                aws_request_id=request_id,
                function_name=function_name,
                function_version="1",
                invoked_function_arn=f"arn:aws:lambda:{DEFAULT_REGION}:123456789012:function:{function_name}:live",
                memory_limit_in_mb=256,
                log_group_name=f"/aws/lambda/{function_name}",
                log_stream_name=f"floor/{os.getpid()}",
                tenant_id=tenant_id,
                deadline=time.time() + FUNCTION_TIMEOUT_SECONDS,
            )
            headers = {"x-amzn-RequestId": request_id, "X-Amz-Executed-Version": "1"}
            started = time.perf_counter()
            try:
                result = handler(json.loads(raw or b"{}"), context)
            except Exception as exc:  # noqa: BLE001 - the handler's error is the invocation's error
                stats.record(tenant_id, (time.perf_counter() - started) * 1000)
                headers["X-Amz-Function-Error"] = "Unhandled"
                self._reply(200, {"errorType": type(exc).__name__, "errorMessage": str(exc),
                                  "stackTrace": traceback.format_exception(exc)[1:]}, headers)
                return
            stats.record(tenant_id, (time.perf_counter() - started) * 1000)
            self._reply(200, result, headers)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

    return MinimalLambdaEndpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True, help="sqlite store of the emulator")
    parser.add_argument("--ready-file", type=Path, required=True, help="JSON with the URLs, written when up")
    parser.add_argument("--tenant-cache-ttl", type=int, default=300, help="TENANT_CACHE_TTL_SECONDS")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("aws_durable_execution_sdk_python_testing", "botocore", "werkzeug", "moto"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    args.state_dir.mkdir(parents=True, exist_ok=True)

    names = Names()
    ports = {name: free_port() for name in ("dynamodb", "emulator", "lambda")}
    urls = {name: f"http://{HOST}:{port}" for name, port in ports.items()}
    os.environ.update(handler_environment(names, urls["dynamodb"], urls["emulator"], args.tenant_cache_ttl))
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)

    from local.durable import DurableEmulator
    from local.dynamodb import LocalDynamoDB, pattern_tables

    dynamodb = LocalDynamoDB(host=HOST, port=ports["dynamodb"], state_dir=args.state_dir,
                             tables=pattern_tables(names), region=DEFAULT_REGION, snapshot_interval=0)
    dynamodb.start()

    from workflow import app
    from workflow.isolation import EnvironmentBinding, TenantIsolationViolation

    class SharedEnvironment(EnvironmentBinding):
        """One process for every tenant: refuse a missing tenant id, bind to none."""

        def bind(self, tenant_id: str | None) -> str:
            if not tenant_id:
                raise TenantIsolationViolation("invocation carries no tenant id")
            return tenant_id

    app.BINDING = SharedEnvironment()
    stats = FloorStats()
    server = ThreadingHTTPServer((HOST, ports["lambda"]),
                                 make_endpoint(app.handler, app.TENANT_CACHE, stats, names.workflow_function))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="floor-lambda", daemon=True).start()
    emulator = DurableEmulator(host=HOST, port=ports["emulator"], lambda_endpoint=urls["lambda"],
                               state_dir=args.state_dir, region=DEFAULT_REGION,
                               invocation_timeout_seconds=FUNCTION_TIMEOUT_SECONDS)
    emulator.start()

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    temporary = args.ready_file.with_suffix(".tmp")
    temporary.write_text(json.dumps({**{f"{name}Url": url for name, url in urls.items()}, "pid": os.getpid()}))
    os.replace(temporary, args.ready_file)
    stop.wait()
    for step in (emulator.stop, server.shutdown, dynamodb.stop):
        try:
            step()
        except Exception:  # noqa: BLE001 - stop the rest whatever one of them does
            logging.exception("error while stopping %s", step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
