"""Billed cost per 1,000 workflows (item 6): this pattern (suspended while waiting) against polling; and what an
idle tenant's start queue costs a month against one shared queue (item 13, :func:`idle_start_queues`).

The inputs are read from what the durable emulator stored about each execution (its sqlite store, read-only:
the invocation times its public history API leaves out). Every price is an input (:class:`PriceInputs`) with its
source. Lambda bills duration per invocation rounded up to the millisecond, at the memory size in GB (MB / 1024).
"""
import contextlib
import json
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import accumulate
from pathlib import Path
from statistics import median
from typing import Any

from bench import REPO_ROOT
from bench.stats import summary

WORKFLOWS, LAMBDA_MAX_INVOCATION_SECONDS, SECONDS_PER_MONTH, RECHECK_SECONDS = 1000, 900, 30 * 24 * 3600, 60
PAYLOADS = {"ExecutionDetails": "InputPayload", "StepDetails": "Result", "ContextDetails": "Result",
            "CallbackDetails": "Result", "ChainedInvokeDetails": "Result"}


@dataclass(frozen=True)
class PriceInputs:
    """Prices used, US East (N. Virginia), on-demand, no free tier, no savings plan."""

    arm_gb_second: float = 0.0000133334
    request_per_million: float = 0.20
    durable_operation_per_million: float = 8.00
    durable_data_written_per_gb: float = 0.25
    durable_data_retained_per_gb_month: float = 0.15
    source: str = ("https://aws.amazon.com/lambda/pricing/ (arm64 duration, requests; durable functions: operations, "
                   "data written, data retained), as transcribed by secondary sources found with the search tool; "
                   "no AWS call was made")


@dataclass(frozen=True)
class WorkflowUsage:
    """What one workflow of the pattern uses, as measured."""

    invocations: float
    billed_ms: float
    durable_operations: float
    data_written_bytes: float


def load_executions(state_dir: Path, names: list[str]) -> list[dict[str, Any]]:
    """The stored execution JSON of each execution named in ``names`` (missing ones are left out)."""
    uri = f"file:{state_dir / 'durable-executions.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as connection:
        rows = [connection.execute("SELECT data FROM executions WHERE execution_name = ?", (name,)).fetchone()
                for name in names]
    return [json.loads(row[0]) for row in rows if row]


def invocation_durations_ms(execution: dict[str, Any]) -> list[float]:
    """How long each handler invocation took, as the emulator timed its Invoke call."""
    return [float(item["EndTimestamp"] - item["StartTimestamp"]) for item in execution.get("InvocationCompletions", [])]


def data_written_bytes(execution: dict[str, Any]) -> int:
    """Bytes of checkpointed payloads: the input, every operation result, and the execution's result."""
    total = sum(len(str(details[key]).encode()) for operation in execution.get("Operations", [])
                for name, key in PAYLOADS.items() if (details := operation.get(name) or {}).get(key))
    result = execution.get("Result")
    if isinstance(result, dict):
        result = result.get("Result") or result.get("Payload")
    return total + (len(result.encode()) if isinstance(result, str) else 0)


def billed_ms(duration_ms: float) -> int:
    """Lambda's billed duration: rounded up to the next millisecond (at least 1)."""
    return max(1, math.ceil(duration_ms - 1e-9))


def compute_cost(billed_milliseconds: float, memory_mb: int, prices: PriceInputs) -> float:
    """Lambda duration charge: GB-seconds at the arm64 price."""
    return billed_milliseconds / 1000 * memory_mb / 1024 * prices.arm_gb_second


def request_cost(invocations: float, prices: PriceInputs) -> float:
    """Lambda request charge."""
    return invocations * prices.request_per_million / 1_000_000


def workflow_usage(invocation_durations: Sequence[Sequence[float]], operations: Sequence[int],
                   written_bytes: Sequence[int]) -> WorkflowUsage:
    """Median usage per workflow from, per workflow: its invocations' durations, its operations, its bytes written."""
    return WorkflowUsage(median([len(durations) for durations in invocation_durations]),
                         median([sum(map(billed_ms, durations)) for durations in invocation_durations]),
                         median(operations) if operations else 0.0, median(written_bytes) if written_bytes else 0.0)


def durable_cost_per_1000(usage: WorkflowUsage, memory_mb: int, retention_days: int,
                          prices: PriceInputs) -> dict[str, float]:
    """Cost of 1,000 workflows of this pattern, by component; the wait itself costs nothing."""
    written_gb = usage.data_written_bytes * WORKFLOWS / 1024**3
    parts = {"compute": compute_cost(usage.billed_ms * WORKFLOWS, memory_mb, prices),
             "requests": request_cost(usage.invocations * WORKFLOWS, prices),
             "durableOperations": usage.durable_operations * WORKFLOWS * prices.durable_operation_per_million / 1e6,
             "dataWritten": written_gb * prices.durable_data_written_per_gb,
             "dataRetained": written_gb * prices.durable_data_retained_per_gb_month * retention_days * 86400
             / SECONDS_PER_MONTH}
    return {**parts, "total": sum(parts.values())}


def poller_costs_per_1000(wait_seconds: float, usage: WorkflowUsage, memory_mb: int,
                          prices: PriceInputs) -> dict[str, dict[str, float]]:
    """Cost of 1,000 workflows of two polling designs doing the pattern's work (``usage``) at the same memory: one
    billed for the whole wait (re-invoking itself every 15 minutes), one invoked every ``RECHECK_SECONDS`` to check
    for the answer, a check billed like one of the pattern's invocations (the scheduler's charge not included)."""
    checks = max(1, math.ceil(wait_seconds / RECHECK_SECONDS))
    designs = {"sleeping": (max(1, math.ceil(wait_seconds / LAMBDA_MAX_INVOCATION_SECONDS)) + 1, wait_seconds * 1000),
               "recheck": (checks + 1, checks * usage.billed_ms / max(1.0, usage.invocations))}
    costs = {}
    for design, (invocations, waiting_ms) in designs.items():
        parts = {"compute": compute_cost((waiting_ms + usage.billed_ms) * WORKFLOWS, memory_mb, prices),
                 "requests": request_cost(invocations * WORKFLOWS, prices)}
        costs[design] = {**parts, "total": sum(parts.values()), "invocationsPerWorkflow": invocations}
    return costs


def per_1000(tenant: dict[str, Any]) -> dict[str, Any]:
    """Item 6 from the one-tenant run's sequential workflows, at variables.tf's defaults."""
    import hcl2

    with (REPO_ROOT / "variables.tf").open() as handle:
        defaults = {name.strip('"'): spec.get("default") for block in hcl2.load(handle)["variable"]
                    for name, spec in block.items()}
    defaults = {name: value.strip('"') if isinstance(value, str) else value for name, value in defaults.items()}
    memory_mb, retention_days = int(defaults["workflow_memory_mb"]), int(defaults["durable_retention_days"])
    prices, per_repeat = PriceInputs(), []
    for entry in tenant["repeats"]:  # the floor's handler times come flat: group them per workflow
        ends = list(accumulate(len(invocations) for invocations in entry["floorInvocationMs"]))
        in_process = [entry["floorHandlerMs"][start:end] for start, end in zip([0, *ends], ends)]
        usage = workflow_usage([group for group in in_process if group], entry["durableOperations"],
                               entry["dataWrittenBytes"])
        upper = workflow_usage(entry["stackInvocationMs"], entry["durableOperations"], entry["dataWrittenBytes"])
        row = {"usage": asdict(usage), "usageUpperBound": asdict(upper),
               "durable": durable_cost_per_1000(usage, memory_mb, retention_days, prices),
               "durableUpperBound": durable_cost_per_1000(upper, memory_mb, retention_days, prices)}
        for label, wait in (("1h", 3600), ("1d", 86400)):
            row.update({design + label: costs for design, costs in poller_costs_per_1000(
                wait, usage, memory_mb, prices).items()})
        per_repeat.append(row)
    figures = {key: {part: summary([row[key][part] for row in per_repeat]) for part in value}
               for key, value in per_repeat[0].items()}
    return {"memoryMb": memory_mb, "retentionDays": retention_days, "region": defaults.get("aws_region"),
            "prices": asdict(prices), "recheckIntervalSeconds": RECHECK_SECONDS, "cpuShareAt256Mb": memory_mb / 1769,
            "figures": figures}


# -- item 13: what an idle tenant's start queue costs ---------------------------------------------


@dataclass(frozen=True)
class IdleQueueInputs:
    """An idle start queue's event source mapping (standard mode) and SQS's request price, us-east-1.

    The queue and the mapping have no charge of their own; the mapping's pollers' ``ReceiveMessage`` calls are
    billed as SQS requests even when they return nothing. Lambda does not document an idle mapping's poller count:
    its scaling guide says that at low traffic it scales back to five concurrent batches and can optimise down to
    two (not with ``MaximumConcurrency``, which the provisioner does not set). Assumed here: ``pollers`` each
    holding a ``long_poll_seconds`` long poll back to back; ``pollers_low`` is the documented floor.
    """

    sqs_request_per_million: float = 0.40
    free_requests_per_month: int = 1_000_000
    pollers: int = 5
    pollers_low: int = 2
    long_poll_seconds: int = 20
    source: str = ("Amazon SQS pricing (standard queues, $0.40 per million requests after the account's first "
                   "million each month, us-east-1); AWS Knowledge Center, \"Why are my Amazon SQS charges higher "
                   "than expected?\" (a Lambda mapping long polls its queue and its empty receives are billed); "
                   "AWS Compute Blog, \"Estimating cost for Amazon SQS message processing using AWS Lambda\"; "
                   "Lambda developer guide, \"Configuring scaling behavior for SQS event source mappings\" (five "
                   "concurrent batches at low traffic, as few as two); no AWS call was made")


def idle_mapping_requests_per_month(pollers: int, long_poll_seconds: float) -> float:
    """``ReceiveMessage`` requests a month of ``pollers`` each long polling an empty queue back to back."""
    return pollers * SECONDS_PER_MONTH / long_poll_seconds


def sqs_request_cost(requests: float, inputs: IdleQueueInputs) -> float:
    """SQS request charge at list price (the account's free million left out: other queues share it)."""
    return requests * inputs.sqs_request_per_million / 1_000_000


def shared_queue_cheaper_from(per_tenant_usd: float, shared_usd: float) -> int | None:
    """The smallest tenant count at which one queue per tenant (``per_tenant_usd`` each) costs more than one shared
    queue (``shared_usd`` whatever the count); None when a tenant's queue costs nothing."""
    return math.floor(shared_usd / per_tenant_usd) + 1 if per_tenant_usd > 0 else None


def idle_start_queues(inputs: IdleQueueInputs = IdleQueueInputs(),
                      tenant_counts: Sequence[int] = (1, 2, 10, 100, 1000)) -> dict[str, Any]:
    """An idle tenant's start queue and mapping per month, and per-tenant queues against one shared queue (whose
    mapping's pollers are the same whatever the tenant count) at each of ``tenant_counts`` idle tenants."""
    requests = idle_mapping_requests_per_month(inputs.pollers, inputs.long_poll_seconds)
    low = idle_mapping_requests_per_month(inputs.pollers_low, inputs.long_poll_seconds)
    per_tenant = sqs_request_cost(requests, inputs)
    return {"inputs": asdict(inputs), "requestsPerMonth": requests, "requestsPerMonthLow": low,
            "perTenantUsd": per_tenant, "perTenantUsdLow": sqs_request_cost(low, inputs),
            "freeTierMappings": inputs.free_requests_per_month / requests,
            "sharedCheaperFrom": shared_queue_cheaper_from(per_tenant, per_tenant),
            "rows": [{"tenants": count, "perTenantQueuesUsd": count * per_tenant, "sharedQueueUsd": per_tenant,
                      "differenceUsd": (count - 1) * per_tenant} for count in tenant_counts]}
