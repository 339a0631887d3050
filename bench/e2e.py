"""Drive workflows end to end, on the local stack and on the floor, with the same client loop.

A *target* knows how to add a tenant, start a workflow, read its state and send
its callback. :func:`run_round` starts ``tenants × per_tenant`` workflows at
once (one client thread each, released together by a barrier) and times, per
workflow, start → callbackId visible and callback → ``COMPLETED``, both by
polling at the same interval on both targets.

* :class:`StackTarget`: the public REST API of ``python -m local.stack`` (gateway,
  authorizer, api function, per-tenant workers): what a client of the pattern sees.
* :class:`FloorTarget`: ``python -m bench.floor``: the emulator's own start and
  callback APIs, and the registry item read straight from DynamoDB.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from local.durable import DurableBackendClient, DurableBackendError
from local.functions import DEFAULT_REGION, Names

REQUEST = {"amount": 25, "currency": "USD", "description": "benchmark"}
CONFIRMATION = {"approved": True, "ref": "bench"}
WORKFLOW_TIMEOUT_SECONDS = 180.0
RETRIES = 6
# What a connection reset or refused connection looks like through each client library.
CONNECTION_ERRORS = (requests.ConnectionError, ConnectionClosedError, EndpointConnectionError,
                     http.client.RemoteDisconnected, ConnectionError)


class Counter:
    """A thread-safe count that is read and reset per round."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self) -> None:
        with self._lock:
            self.count += 1

    def take(self) -> int:
        with self._lock:
            count, self.count = self.count, 0
        return count


class Retrier(Counter):
    """Retries an operation on connection errors, as a client of a busy server would; counts them."""

    def __call__(self, operation: Callable[[int], Any]) -> Any:
        """Run ``operation(attempt)``; on a connection error wait (50 ms doubling) and try again."""
        for attempt in range(RETRIES):
            try:
                return operation(attempt)
            except CONNECTION_ERRORS:
                if attempt == RETRIES - 1:
                    raise
                self.add()
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")


def bench_tenant(tenant_id: str) -> dict[str, Any]:
    """A tenant item like the demo ones (plain JSON types)."""
    return {
        "tenantId": tenant_id,
        "displayName": f"Benchmark {tenant_id}",
        "status": "ACTIVE",
        "allowedCurrencies": ["EUR", "USD"],
        "maxAmount": 5000,
        "callbackTimeoutSeconds": 3600,
    }


@dataclass(frozen=True)
class WorkflowState:
    """What a client can see of one workflow."""

    status: str | None
    callback_id: str | None = None
    result: dict[str, Any] | None = None


class _ThreadLocalSessions(threading.local):
    def get(self) -> requests.Session:
        if not hasattr(self, "session"):
            self.session = requests.Session()
        return self.session


def _aws_client(service: str, endpoint_url: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint_url, region_name=DEFAULT_REGION, aws_access_key_id="local",
                        aws_secret_access_key="local",
                        config=Config(retries={"max_attempts": 0}, max_pool_connections=256, read_timeout=120))


class StackTarget:
    """The local stack through its public REST API (``tests.harness.StackProcess``)."""

    name = "stack"

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.retries = Retrier()
        self.reads = Counter()
        self._sessions = _ThreadLocalSessions()

    def add_tenant(self, tenant_id: str) -> None:
        self.stack.put_tenant(bench_tenant(tenant_id), api_key=f"bench-key-{uuid.uuid4().hex}")

    def start(self, tenant_id: str) -> str:
        # An Idempotency-Key makes a retried start return the same workflow.
        headers = {**self.stack.headers(tenant_id), "Idempotency-Key": uuid.uuid4().hex}
        response = self.retries(lambda _: self._sessions.get().post(
            f"{self.stack.api_url}/workflow", json=REQUEST, headers=headers, timeout=60))
        if response.status_code != 202:
            raise RuntimeError(f"start for {tenant_id}: {response.status_code} {response.text}")
        return str(response.json()["workflowId"])

    def state(self, tenant_id: str, workflow_id: str) -> WorkflowState:
        self.reads.add()
        response = self.retries(lambda _: self._sessions.get().get(
            f"{self.stack.api_url}/workflow/{workflow_id}", headers=self.stack.headers(tenant_id), timeout=60))
        if response.status_code == 404:
            return WorkflowState(None)
        if response.status_code != 200:
            raise RuntimeError(f"status of {workflow_id}: {response.status_code} {response.text}")
        body = response.json()
        return WorkflowState(body.get("status"), body.get("callbackId"), body.get("result"))

    def callback(self, tenant_id: str, callback_id: str) -> None:
        def send(attempt: int) -> requests.Response:
            response = self._sessions.get().post(f"{self.stack.api_url}/callback",
                                                 json={"callbackId": callback_id, "payload": CONFIRMATION},
                                                 headers=self.stack.headers(tenant_id), timeout=60)
            if response.status_code == 409 and attempt > 0:  # an earlier attempt got through
                response.status_code = 200
            return response

        response = self.retries(send)
        if response.status_code != 200:
            raise RuntimeError(f"callback {callback_id}: {response.status_code} {response.text}")


class FloorTarget:
    """``bench.floor``: the emulator's APIs and the registry table, no gateway."""

    name = "floor"

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self.retries = Retrier()
        self.reads = Counter()
        names = Names()
        self._names = names
        self._durable = DurableBackendClient(urls["emulatorUrl"])
        self._dynamodb = _aws_client("dynamodb", urls["dynamodbUrl"])
        self._lambda = _aws_client("lambda", urls["emulatorUrl"])
        self._stats = _ThreadLocalSessions()

    def add_tenant(self, tenant_id: str) -> None:
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        item = {key: serializer.serialize(value) for key, value in bench_tenant(tenant_id).items()}
        self._dynamodb.put_item(TableName=self._names.tenants_table, Item=item)

    def start(self, tenant_id: str) -> str:
        workflow_id = str(uuid.uuid4())

        def start(attempt: int) -> None:
            try:
                self._durable.start_execution(
                    function_name=self._names.workflow_function, qualifier="live", execution_name=workflow_id,
                    tenant_id=tenant_id, payload=json.dumps({"workflowId": workflow_id, "request": REQUEST}),
                    execution_timeout_seconds=7 * 24 * 3600, retention_days=7)
            except DurableBackendError:
                if attempt == 0:  # on a retry, an earlier attempt may have started it
                    raise

        self.retries(start)
        return workflow_id

    def state(self, tenant_id: str, workflow_id: str) -> WorkflowState:
        self.reads.add()
        item = self.retries(lambda _: self._dynamodb.get_item(
            TableName=self._names.workflows_table,
            Key={"tenantId": {"S": tenant_id}, "recordId": {"S": f"workflow#{workflow_id}"}},
            ConsistentRead=True,
        )).get("Item")
        if not item:
            return WorkflowState(None)
        raw_result = item.get("resultJson", {}).get("S")
        return WorkflowState(item["status"]["S"], item.get("callbackId", {}).get("S"),
                             json.loads(raw_result) if raw_result else None)

    def callback(self, tenant_id: str, callback_id: str) -> None:
        def send(attempt: int) -> None:
            try:
                self._lambda.send_durable_execution_callback_success(CallbackId=callback_id,
                                                                     Result=json.dumps(CONFIRMATION).encode())
            except ClientError:
                if attempt == 0:  # on a retry, an earlier attempt may have completed it
                    raise

        self.retries(send)

    def stats(self) -> dict[str, Any]:
        """The floor's in-process handler times (``handlerMs``) and tenant-store reads (``storeReads``)."""
        return self._stats.get().get(f"{self.urls['lambdaUrl']}/_local/workers", timeout=30).json()["workers"][0]


@dataclass(frozen=True)
class WorkflowTiming:
    """One workflow, timed by its client."""

    tenant_id: str
    workflow_id: str
    start_to_callback_ms: float
    callback_to_completed_ms: float
    result: dict[str, Any] | None


@dataclass
class RoundResult:
    """Workflows started together on one target."""

    target: str
    phase: str
    tenants: int
    per_tenant: int
    wall_seconds: float = 0.0
    retries: int = 0
    status_reads: int = 0
    timings: list[WorkflowTiming] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _poll(read: Callable[[], WorkflowState], done: Callable[[WorkflowState], bool], interval: float,
          deadline: float, what: str) -> WorkflowState:
    while True:
        state = read()
        if done(state):
            return state
        if state.status in ("FAILED", "REJECTED", "TIMED_OUT"):
            raise RuntimeError(f"{what}: workflow ended {state.status}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: still {state.status} after {WORKFLOW_TIMEOUT_SECONDS:.0f}s")
        time.sleep(interval)


def run_workflow(target: Any, tenant_id: str, poll_interval: float) -> WorkflowTiming:
    """Start one workflow, wait for its callbackId, answer it, wait for COMPLETED."""
    deadline = time.monotonic() + WORKFLOW_TIMEOUT_SECONDS
    started = time.perf_counter()
    workflow_id = target.start(tenant_id)
    waiting = _poll(lambda: target.state(tenant_id, workflow_id), lambda s: bool(s.callback_id),
                    poll_interval, deadline, f"{target.name} {workflow_id} callbackId")
    visible = time.perf_counter()
    assert waiting.callback_id is not None
    target.callback(tenant_id, waiting.callback_id)
    completed = _poll(lambda: target.state(tenant_id, workflow_id), lambda s: s.status == "COMPLETED",
                      poll_interval, deadline, f"{target.name} {workflow_id} COMPLETED")
    finished = time.perf_counter()
    return WorkflowTiming(tenant_id, workflow_id, (visible - started) * 1000, (finished - visible) * 1000,
                          completed.result)


def run_round(target: Any, phase: str, tenant_ids: list[str], per_tenant: int, poll_interval: float) -> RoundResult:
    """``per_tenant`` workflows of every tenant in ``tenant_ids``, all started at once."""
    jobs = [tenant for tenant in tenant_ids for _ in range(per_tenant)]
    result = RoundResult(target.name, phase, len(tenant_ids), per_tenant)
    target.retries.take()
    target.reads.take()
    barrier = threading.Barrier(len(jobs) + 1)
    lock = threading.Lock()

    def client(tenant_id: str) -> None:
        barrier.wait()
        try:
            timing = run_workflow(target, tenant_id, poll_interval)
        except Exception as error:  # noqa: BLE001 - reported in the round, the others go on
            with lock:
                result.errors.append(f"{tenant_id}: {error}")
            return
        with lock:
            result.timings.append(timing)

    threads = [threading.Thread(target=client, args=(tenant,), daemon=True) for tenant in jobs]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join(WORKFLOW_TIMEOUT_SECONDS + 30)
    result.wall_seconds = time.perf_counter() - began
    result.retries = target.retries.take()
    result.status_reads = target.reads.take()
    return result
