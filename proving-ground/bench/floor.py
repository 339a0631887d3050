"""The floor: the official durable emulator driving the bare workflow handler, in one process.

``python -m bench.floor --state-dir DIR --ready-file FILE``: moto's DynamoDB with the pattern's tables, the durable
emulator (``local.backends.durable``) and the local Lambda service with an :class:`InProcessRunner` (the handler on the
service's request thread: no gateway, authorizer, api function, worker processes or pipes). One process serves every
tenant, so ``workflow.app.BINDING`` refuses a missing tenant id but binds to none. ``/_local/workers`` reports the
handler times and the tenant cache's ``store_reads``; the URLs go to ``--ready-file`` when up; SIGTERM stops it.
"""
import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from local.backends.durable import DurableBackendClient, DurableEmulator
from local.services.dynamodb import LocalDynamoDB, pattern_tables
from local.runtime.functions import DEFAULT_REGION, FunctionConfig, Names, pattern_functions
from local.services.http_base import free_port
from local.services.lambda_service import LocalLambdaService
from local.runtime.worker import LocalLambdaContext
from local.runtime.workers import InvocationContext, InvocationResult

HOST = "127.0.0.1"


class InProcessRunner:
    """Runs the handler in this process, on the calling thread, and times each run."""

    def __init__(self, handler: Any, cache: Any) -> None:
        self.handler, self.cache, self.lock, self.handler_ms = handler, cache, threading.Lock(), []

    def invoke(self, function: FunctionConfig, event: Any, context: InvocationContext) -> InvocationResult:
        lambda_context = LocalLambdaContext(
            aws_request_id=context.request_id, function_name=function.name,
            function_version=context.function_version, invoked_function_arn=context.invoked_function_arn,
            memory_limit_in_mb=function.memory_mb, log_group_name=f"/aws/lambda/{function.name}",
            log_stream_name=f"floor/{os.getpid()}", tenant_id=context.tenant_id,
            deadline=time.time() + function.timeout_seconds)
        started = time.perf_counter()
        try:
            result = InvocationResult(self.handler(event, lambda_context))
        except Exception as exc:  # noqa: BLE001 - the handler's error is the invocation's error
            result = InvocationResult({"errorType": type(exc).__name__, "errorMessage": str(exc),
                                       "stackTrace": traceback.format_exception(exc)[1:]}, "Unhandled")
        with self.lock:
            self.handler_ms.append((time.perf_counter() - started) * 1000)
        return result

    def describe(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{"pid": os.getpid(), "handlerMs": list(self.handler_ms), "storeReads": self.cache.store_reads}]


def shared_handler() -> Any:
    """``workflow.app``, imported once its environment is set, with a binding that serves every tenant."""
    from workflow import app
    from workflow.isolation import EnvironmentBinding, TenantIsolationViolation

    class SharedEnvironment(EnvironmentBinding):
        """One process for every tenant: refuse a missing tenant id, bind to none."""

        def bind(self, tenant_id: str | None) -> str:
            if not tenant_id:
                raise TenantIsolationViolation("invocation carries no tenant id")
            return tenant_id

    app.BINDING = SharedEnvironment()
    return app


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
    names, emulator_port, stop = Names(), free_port(), threading.Event()
    emulator_url = f"http://{HOST}:{emulator_port}"
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with contextlib.ExitStack() as running:  # stops each server started, the last first, whatever one of them does
        def started(server: Any) -> Any:
            server.start()
            running.callback(server.stop)
            return server

        dynamodb = started(LocalDynamoDB(host=HOST, port=free_port(), state_dir=args.state_dir, region=DEFAULT_REGION,
                                         tables=pattern_tables(names), snapshot_interval=0))
        workflow = pattern_functions(names, tenant_cache_ttl_seconds=args.tenant_cache_ttl, common_environment={
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.url, "AWS_ENDPOINT_URL_LAMBDA": emulator_url,
            "POWERTOOLS_LOG_LEVEL": "WARNING"})[0]
        os.environ.update({**workflow.environment, "AWS_REGION": DEFAULT_REGION, "AWS_DEFAULT_REGION": DEFAULT_REGION,
                           "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            os.environ.pop(name, None)
        app = shared_handler()
        service = started(LocalLambdaService(
            functions=[workflow], runner=InProcessRunner(app.handler, app.TENANT_CACHE),
            durable=DurableBackendClient(emulator_url), region=DEFAULT_REGION, host=HOST))
        started(DurableEmulator(host=HOST, port=emulator_port, lambda_endpoint=service.url, state_dir=args.state_dir,
                                region=DEFAULT_REGION, invocation_timeout_seconds=workflow.timeout_seconds))
        urls = {"dynamodbUrl": dynamodb.url, "emulatorUrl": emulator_url, "lambdaUrl": service.url, "pid": os.getpid()}
        args.ready_file.with_suffix(".tmp").write_text(json.dumps(urls))
        os.replace(args.ready_file.with_suffix(".tmp"), args.ready_file)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
