"""Bench item 13: the queue entry against the HTTP entry, in the same run on one local stack.

One stack (``--snapshot-interval 0``, throttling off as in every bench stack), demo tenant ``tenant-a``, its start
queue read from its item (as ``GET /tenants/{tenantId}`` returns it). After an unmeasured warm-up (one start
and a burst of up to ten through each entry, which starts every worker the bursts need), each repeat:

* **latency**: ``sequential`` pairs, one start through each entry, the first entry alternating from pair to pair;
  each timed from the send (``POST /workflow``, or ``SendMessage`` to the start queue on the local SQS) to the
  workflow's registry item reading ``WAITING_FOR_CALLBACK`` (read straight from the table every
  :data:`POLL_SECONDS`, the same reader for both entries, so neither pays for the gateway's status route);
* **throughput**: ``burst`` messages sent at once (``SendMessageBatch``, ten a call) and ``burst`` concurrent
  ``POST /workflow`` (one thread each), the entry that goes first alternating between repeats; timed from the first
  send until the Lambda service has started all of them and until all are ``WAITING_FOR_CALLBACK``.

Callbacks are left unanswered: a waiting workflow is suspended and costs the stack nothing, and answering them
would put resumes in the next measurement's way. Before each measurement the start queue is empty and every
workflow of the last one is waiting, so nothing of one measurement runs into the next. :func:`summarize` (pure)
turns the repeats into medians with (min–max), each comparison paired within its repeat.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from bench.e2e import REQUEST, StackTarget
from bench.stats import p95, paired_ratios, summary
from provisioner.start_queues import BATCHING_WINDOW_SECONDS
from tests.harness import StackProcess, wait_until

TENANT = "tenant-a"
ENTRIES = ("http", "queue")
WAITING = "WAITING_FOR_CALLBACK"
ENDED = ("COMPLETED", "FAILED", "REJECTED", "TIMED_OUT")
POLL_SECONDS, BURST_POLL_SECONDS, TIMEOUT_SECONDS, WARM_UP_BURST = 0.05, 0.1, 180.0, 10
TENANTS_TABLE, WORKFLOWS_TABLE = "tenant-durable-tenants", "tenant-durable-workflows"
LOCAL = {"region_name": "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}
Progress = Callable[[str], None]


class Entries:
    """The two ways to start ``tenant-a``'s workflows on one stack, and a reader of their status."""

    def __init__(self, stack: StackProcess) -> None:
        self.stack, self.http = stack, StackTarget(stack)
        self.sqs = boto3.client("sqs", endpoint_url=stack.dynamodb_url, **LOCAL)
        self.dynamodb = boto3.client("dynamodb", endpoint_url=stack.dynamodb_url, **LOCAL)
        self.queue_url = wait_until(self._queue_url, 60, f"{TENANT}'s start queue")
        self.body = _compact(REQUEST)

    def _queue_url(self) -> str | None:
        item = self.dynamodb.get_item(TableName=TENANTS_TABLE, Key={"tenantId": {"S": TENANT}},
                                      ConsistentRead=True).get("Item") or {}
        return item.get("startQueueUrl", {}).get("S") if item.get("status", {}).get("S") == "ACTIVE" else None

    def send(self, entry: str) -> str:
        """One start through ``entry``; its workflow id (over the queue, the message id: no IdempotencyKey)."""
        if entry == "http":
            return self.http.start(TENANT)
        return str(self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=self.body)["MessageId"])

    def send_all(self, entry: str, count: int) -> list[str]:
        """``count`` starts at once: concurrent POSTs, or the messages in batches of ten; their workflow ids."""
        if entry == "http":
            with ThreadPoolExecutor(count) as pool:
                return list(pool.map(lambda _: self.http.start(TENANT), range(count)))
        ids: list[str] = []
        for first in range(0, count, 10):
            answer = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(index), "MessageBody": self.body} for index in range(first, min(first + 10, count))])
            if answer.get("Failed"):
                raise RuntimeError(f"SendMessageBatch refused {answer['Failed'][:1]}")
            ids += [row["MessageId"] for row in sorted(answer["Successful"], key=lambda row: int(row["Id"]))]
        return ids

    def statuses(self, workflow_ids: Sequence[str]) -> dict[str, str]:
        """The registry status of each workflow that has an item (consistent reads, 100 keys a call)."""
        found: dict[str, str] = {}
        for first in range(0, len(workflow_ids), 100):
            keys = [{"tenantId": {"S": TENANT}, "recordId": {"S": f"workflow#{workflow_id}"}}
                    for workflow_id in workflow_ids[first:first + 100]]
            request = {WORKFLOWS_TABLE: {"Keys": keys, "ConsistentRead": True,
                                         "ProjectionExpression": "recordId, #s",
                                         "ExpressionAttributeNames": {"#s": "status"}}}
            while request:
                answer = self.dynamodb.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(WORKFLOWS_TABLE, []):
                    row = {key: TypeDeserializer().deserialize(value) for key, value in item.items()}
                    found[row["recordId"].removeprefix("workflow#")] = row.get("status", "")
                request = answer.get("UnprocessedKeys") or {}
        return found

    def started(self) -> int:
        """Executions of the workflow the Lambda service has started for the tenant so far."""
        rows = self.stack.http.get(f"{self.stack.lambda_url}/_local/invocations", timeout=10).json()["invocations"]
        return sum(row["count"] for row in rows if row["functionName"].endswith("-workflow")
                   and row["tenantId"] == TENANT and row["kind"] == "start")

    def depth(self) -> int:
        """Messages on the start queue, visible or in flight."""
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return sum(int(value) for value in attributes.values())


def _compact(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _check(statuses: dict[str, str]) -> None:
    if ended := {workflow_id: status for workflow_id, status in statuses.items() if status in ENDED}:
        raise RuntimeError(f"workflows ended before their callback: {dict(list(ended.items())[:3])}")


def time_one(entries: Entries, entry: str) -> float:
    """Milliseconds from the send through ``entry`` to the workflow reading ``WAITING_FOR_CALLBACK``."""
    started = time.perf_counter()
    workflow_id = entries.send(entry)
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while (status := entries.statuses([workflow_id])).get(workflow_id) != WAITING:
        _check(status)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{entry} start {workflow_id}: not {WAITING} after {TIMEOUT_SECONDS:.0f} s")
        time.sleep(POLL_SECONDS)
    return (time.perf_counter() - started) * 1000


def time_burst(entries: Entries, entry: str, count: int) -> dict[str, float]:
    """``count`` starts at once through ``entry``: seconds until the Lambda service started them all, and until all
    are waiting for their callback; starts per second to the latter."""
    before, ids, errors = entries.started(), [], []
    started = time.perf_counter()

    def send() -> None:
        try:
            ids.extend(entries.send_all(entry, count))
        except Exception as error:  # noqa: BLE001 - raised in the caller's thread below
            errors.append(error)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    all_started = None
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while True:
        if all_started is None and entries.started() - before >= count:
            all_started = time.perf_counter() - started
        if errors:
            raise errors[0]
        if not sender.is_alive() and all_started is not None:
            statuses = entries.statuses(ids)
            _check(statuses)
            if sum(status == WAITING for status in statuses.values()) == count:
                waiting = time.perf_counter() - started
                return {"startedSeconds": all_started, "waitingSeconds": waiting, "startsPerSecond": count / waiting}
        if time.monotonic() > deadline:
            raise TimeoutError(f"{entry} burst of {count}: not all {WAITING} after {TIMEOUT_SECONDS:.0f} s")
        time.sleep(BURST_POLL_SECONDS)


def settle(entries: Entries) -> None:
    """Wait until the start queue is empty (the router deletes what it started after its batch)."""
    wait_until(lambda: entries.depth() == 0, 60, f"{TENANT}'s start queue drained", interval=0.2)


def measure(running_stack: Callable[..., Any], sequential: int, burst: int, repeats: int,
            progress: Progress) -> dict[str, Any]:
    """``repeats`` rounds of the latency pairs and the two bursts; each round's figures and their summary."""
    rounds: list[dict[str, Any]] = []
    with running_stack("stack-queue", ["--snapshot-interval", "0"]) as stack:
        entries = Entries(stack)
        # Unmeasured: the router's worker and the mapping's first batch, then the tenant's workflow, authorizer and
        # api workers a burst needs (up to the stack's per-tenant limit), so no measured burst pays their cold start.
        for entry in ENTRIES:
            time_one(entries, entry)
            time_burst(entries, entry, min(burst, WARM_UP_BURST))
            settle(entries)
        for repeat in range(repeats):
            latency: dict[str, list[float]] = {entry: [] for entry in ENTRIES}
            for pair in range(sequential):
                for entry in ENTRIES if (repeat + pair) % 2 == 0 else ENTRIES[::-1]:
                    latency[entry].append(time_one(entries, entry))
            settle(entries)
            bursts = {}
            for entry in ENTRIES if repeat % 2 == 0 else ENTRIES[::-1]:
                bursts[entry] = time_burst(entries, entry, burst)
                settle(entries)
            rounds.append({"repeat": repeat, "latencyMs": latency, "burst": bursts})
            progress(f"  repeat {repeat + 1}: send -> {WAITING} p50 HTTP {summary(latency['http'])['median']:.0f} ms, "
                     f"queue {summary(latency['queue'])['median']:.0f} ms; {burst} at once: HTTP "
                     f"{bursts['http']['startsPerSecond']:.2f}/s, queue {bursts['queue']['startsPerSecond']:.2f}/s")
        http_retries = entries.http.take()["retries"]
    return {"sequential": sequential, "burst": burst, "tenant": TENANT, "pollSeconds": POLL_SECONDS,
            "batchingWindowSeconds": BATCHING_WINDOW_SECONDS, "httpRetries": http_retries, "rounds": rounds,
            "summary": summarize(rounds)}


def summarize(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per entry: the p50 and p95 of each round's latencies and the burst's figures, summarised over rounds; the
    queue against HTTP paired within each round (ratio, and difference of the p50s)."""
    def per_round(entry: str) -> dict[str, list[float]]:
        return {"p50Ms": [summary(r["latencyMs"][entry])["median"] for r in rounds],
                "p95Ms": [p95(r["latencyMs"][entry]) for r in rounds],
                **{key: [r["burst"][entry][key] for r in rounds]
                   for key in ("startedSeconds", "waitingSeconds", "startsPerSecond")}}

    figures = {entry: per_round(entry) for entry in ENTRIES}
    http, queue = figures["http"], figures["queue"]
    return {**{entry: {key: summary(values) for key, values in figures[entry].items()} for entry in ENTRIES},
            "queueOverHttp": {key: summary(paired_ratios(queue[key], http[key]))
                              for key in ("p50Ms", "p95Ms", "startsPerSecond")},
            "addedP50Ms": summary([q - h for q, h in zip(queue["p50Ms"], http["p50Ms"], strict=True)])}
