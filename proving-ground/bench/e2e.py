"""Drive workflows end to end, on the local stack and on the floor, with the same client loop.

:class:`StackTarget` goes through the public REST API of ``python -m local``; :class:`FloorTarget` through the
emulator's start and callback APIs of ``python -m bench.floor``, reading the registry item from DynamoDB.
:func:`run_round` starts ``tenants × per_tenant`` workflows at once (one client thread each) and times
start → callbackId visible and callback → ``COMPLETED``, polling both targets at the same interval.
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from bench import REPO_ROOT, WORKFLOW_SUFFIX
from local.backends.durable import DurableBackendClient, DurableBackendError
from local.runtime.functions import DEFAULT_REGION, Names
from local.runtime.processes import terminate
from local.tools.confirmer import RETRYABLE_STATUSES
from tests.harness import StackProcess, wait_until

REQUEST = {"amount": 25, "currency": "USD", "description": "benchmark"}
CONFIRMATION = {"approved": True, "ref": "bench"}
TIMEOUT_SECONDS, RETRIES = 180.0, 6
# What a connection reset or refused connection looks like through each client library.
CONNECTION_ERRORS = (requests.ConnectionError, ConnectionClosedError, EndpointConnectionError,
                     http.client.RemoteDisconnected, ConnectionError)
State = tuple[str | None, str | None, dict[str, Any] | None]  # status, callbackId, result


class RetryAfter(Exception):
    """An answer the README tells a client to retry (429, 5xx: a busy authorizer, a throttle, the gateway's
    29 s integration timeout): the client waits its ``Retry-After``, or backs off, and sends again."""

    def __init__(self, seconds: float, message: str) -> None:
        super().__init__(message)
        self.seconds = seconds


def bench_tenant(tenant_id: str) -> dict[str, Any]:
    """A tenant item that allows the benchmark's request."""
    return {"tenantId": tenant_id, "displayName": f"Benchmark {tenant_id}", "status": "ACTIVE",
            "allowedCurrencies": ["EUR", "USD"], "maxAmount": 5000, "callbackTimeoutSeconds": 3600}


class Target:
    """Counts connection retries and status reads (taken per round); one HTTP session per thread."""

    name = ""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir, self.lock, self.local, self.counts = state_dir, threading.Lock(), threading.local(), Counter()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def take(self) -> Counter[str]:
        """The counts since the last take."""
        with self.lock:
            taken, self.counts = self.counts, Counter()
        return taken

    def retry(self, operation: Callable[[int], Any], landed: type[Exception] | tuple[()] = ()) -> Any:
        """``operation(attempt)``, retried on connection errors (50 ms doubling) and after a ``Retry-After`` as a
        client of a busy server would (each retry counted); ``landed`` raised by a retry means an earlier attempt
        got through (and gives None)."""
        for attempt in range(RETRIES):
            try:
                return operation(attempt)
            except landed:
                if attempt == 0:
                    raise
                return None
            except CONNECTION_ERRORS:
                if attempt == RETRIES - 1:
                    raise
                self.count("retries")
                time.sleep(0.05 * 2**attempt)
            except RetryAfter as answer:
                if attempt == RETRIES - 1:
                    raise RuntimeError(str(answer)) from answer
                self.count("retries")
                time.sleep(min(answer.seconds, 5.0))
        raise AssertionError("unreachable")


class StackTarget(Target):
    """The local stack, through its public REST API."""

    name = "stack"

    def __init__(self, stack: StackProcess) -> None:
        super().__init__(stack.state_dir)
        self.stack = stack

    def processes(self) -> dict[int, str]:
        """The stack process and its workers, by pid, with their kind."""
        assert self.stack.process is not None
        kind = lambda name: "workflowWorkers" if name.endswith(WORKFLOW_SUFFIX) else "apiAndAuthorizerWorkers"
        return {self.stack.process.pid: "stackProcess",
                **{worker["pid"]: kind(worker["functionName"]) for worker in self.stack.workers()}}

    def add_tenant(self, tenant_id: str) -> None:
        self.stack.put_tenant(bench_tenant(tenant_id), api_key=f"bench-key-{uuid.uuid4().hex}")

    def call(self, method: str, path: str, tenant_id: str, body: Any = None, headers: dict[str, str] | None = None,
             ok: tuple[int, ...] = (200,), ok_on_retry: tuple[int, ...] = ()) -> requests.Response:
        def send(attempt: int) -> requests.Response:
            response = self.session().request(method, f"{self.stack.api_url}{path}", json=body, timeout=60,
                                              headers={**self.stack.headers(tenant_id), **(headers or {})})
            if response.status_code in ok or (attempt and response.status_code in ok_on_retry):
                return response
            if response.status_code in RETRYABLE_STATUSES:  # every request here is safe to repeat
                raise RetryAfter(float(response.headers.get("Retry-After") or 0.5 * 2**attempt),
                                 f"{method} {path} for {tenant_id}: {response.status_code} {response.text}")
            raise RuntimeError(f"{method} {path} for {tenant_id}: {response.status_code} {response.text}")

        return self.retry(send)

    def start(self, tenant_id: str) -> str:  # an Idempotency-Key makes a retried start return the same workflow
        return str(self.call("POST", "/workflow", tenant_id, REQUEST, {"Idempotency-Key": uuid.uuid4().hex},
                             ok=(202,)).json()["workflowId"])

    def state(self, tenant_id: str, workflow_id: str) -> State:
        self.count("reads")
        response = self.call("GET", f"/workflow/{workflow_id}", tenant_id, ok=(200, 404))
        body = response.json() if response.status_code == 200 else {}
        return body.get("status"), body.get("callbackId"), body.get("result")

    def callback(self, tenant_id: str, callback_id: str) -> None:  # a 409 on a retry: an earlier attempt got through
        self.call("POST", "/callback", tenant_id, {"callbackId": callback_id, "payload": CONFIRMATION},
                  ok_on_retry=(409,))


class FloorTarget(Target):
    """``python -m bench.floor`` in ``workdir``, started here; its client uses the emulator and DynamoDB directly."""

    name = "floor"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir / "floor-state")
        ready_file, self.log_path = workdir / "floor-ready.json", workdir / "floor.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT_URL")}
        workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", "bench.floor", "--state-dir", str(self.state_dir), "--ready-file",
                 str(ready_file)], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"floor exited:\n{self.log_path.read_text()[-3000:]}")
            return ready_file.exists()

        wait_until(ready, 60, f"floor ready (log: {self.log_path})")
        self.urls, self.names = json.loads(ready_file.read_text()), Names()
        self.durable = DurableBackendClient(self.urls["emulatorUrl"])
        self.dynamodb, self.lambda_ = (boto3.client(
            service, endpoint_url=self.urls[url], region_name=DEFAULT_REGION, aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 0}, max_pool_connections=256, read_timeout=120))
            for service, url in (("dynamodb", "dynamodbUrl"), ("lambda", "emulatorUrl")))

    def stop(self) -> None:
        terminate(self.process, timeout=30)

    def processes(self) -> dict[int, str]:
        return {self.process.pid: "floorProcess"}

    def add_tenant(self, tenant_id: str) -> None:
        item = {key: TypeSerializer().serialize(value) for key, value in bench_tenant(tenant_id).items()}
        self.dynamodb.put_item(TableName=self.names.tenants_table, Item=item)

    def start(self, tenant_id: str) -> str:
        workflow_id = str(uuid.uuid4())
        self.retry(lambda _: self.durable.start_execution(
            function_name=self.names.workflow_function, qualifier="live", execution_name=workflow_id,
            tenant_id=tenant_id, payload=json.dumps({"workflowId": workflow_id, "request": REQUEST}),
            execution_timeout_seconds=7 * 24 * 3600, retention_days=7), landed=DurableBackendError)
        return workflow_id

    def state(self, tenant_id: str, workflow_id: str) -> State:
        self.count("reads")
        item = self.retry(lambda _: self.dynamodb.get_item(
            TableName=self.names.workflows_table, ConsistentRead=True,
            Key={"tenantId": {"S": tenant_id}, "recordId": {"S": f"workflow#{workflow_id}"}})).get("Item") or {}
        raw_result = item.get("resultJson", {}).get("S")
        return (item.get("status", {}).get("S"), item.get("callbackId", {}).get("S"),
                json.loads(raw_result) if raw_result else None)

    def callback(self, tenant_id: str, callback_id: str) -> None:
        self.retry(lambda _: self.lambda_.send_durable_execution_callback_success(
            CallbackId=callback_id, Result=json.dumps(CONFIRMATION).encode()), landed=ClientError)

    def stats(self) -> dict[str, Any]:
        """The floor's in-process handler times (``handlerMs``) and tenant-store reads (``storeReads``)."""
        return self.session().get(f"{self.urls['lambdaUrl']}/_local/workers", timeout=30).json()["workers"][0]


@dataclass(frozen=True)
class WorkflowTiming:
    tenant_id: str
    workflow_id: str
    start_to_callback_ms: float
    callback_to_completed_ms: float
    result: dict[str, Any] | None


def run_workflow(target: Any, tenant_id: str, poll_interval: float) -> WorkflowTiming:
    """Start one workflow, wait for its callbackId, answer it, wait for COMPLETED."""
    deadline, started = time.monotonic() + TIMEOUT_SECONDS, time.perf_counter()
    workflow_id = target.start(tenant_id)

    def poll(done: Callable[[State], bool], what: str) -> State:
        while not done(state := target.state(tenant_id, workflow_id)):
            if state[0] in ("FAILED", "REJECTED", "TIMED_OUT"):
                raise RuntimeError(f"{target.name} {workflow_id} {what}: workflow ended {state[0]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{target.name} {workflow_id} {what}: still {state[0]} after {TIMEOUT_SECONDS:.0f}s")
            time.sleep(poll_interval)
        return state

    callback_id = poll(lambda state: bool(state[1]), "callbackId")[1]
    visible = time.perf_counter()
    target.callback(tenant_id, callback_id)
    result = poll(lambda state: state[0] == "COMPLETED", "COMPLETED")[2]
    return WorkflowTiming(tenant_id, workflow_id, (visible - started) * 1000, (time.perf_counter() - visible) * 1000,
                          result)


def run_round(target: Any, phase: str, tenant_ids: list[str], per_tenant: int,
              poll_interval: float) -> dict[str, Any]:
    """``per_tenant`` workflows of every tenant in ``tenant_ids``, all started at once: the timings of those that
    completed, the errors of the others, the round's wall time, connection retries and status reads."""
    jobs = [tenant for tenant in tenant_ids for _ in range(per_tenant)]
    timings: list[WorkflowTiming] = []
    errors: list[str] = []
    barrier = threading.Barrier(len(jobs) + 1)
    target.take()

    def client(tenant_id: str) -> None:
        barrier.wait()
        try:
            timings.append(run_workflow(target, tenant_id, poll_interval))  # list.append is atomic
        except Exception as error:  # noqa: BLE001 - reported in the round, the others go on
            errors.append(f"{tenant_id}: {error}")

    threads = [threading.Thread(target=client, args=(tenant,), daemon=True) for tenant in jobs]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join(TIMEOUT_SECONDS + 30)
    counts = target.take()
    return {"target": target.name, "phase": phase, "tenants": len(tenant_ids), "perTenant": per_tenant,
            "wallSeconds": time.perf_counter() - began, "retries": counts["retries"], "statusReads": counts["reads"],
            "timings": timings, "errors": errors}
