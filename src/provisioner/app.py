"""Provisioner: onboarding, offboarding and reconciling a tenant, as named durable executions.

Not tenant-isolated: it serves the operator. The control plane starts one
execution per (operation, tenant, generation) (``provisioning_execution_name``),
so a repeated request never starts a second one. Each step is idempotent and
retried; a step that cannot finish ends the tenant FAILED with a reason (never
stuck PROVISIONING or OFFBOARDING), and offboarding a FAILED tenant removes
whatever exists.

    onboard:   metering-key -> callback-route -> start-queue -> start-mapping
               -> activate                                         (PROVISIONING -> ACTIVE)
    offboard:  fail-waiting-workflows -> delete-callback-route -> delete-start-mapping
               -> delete-start-queue -> delete-metering-key -> tombstone  (OFFBOARDING -> OFFBOARDED)
    reconcile: as onboard, ending in record                        (ACTIVE/SUSPENDED, status kept)

The start queue's mapping is deleted late in offboarding: until then the router
dead-letters what arrives (TENANT_NOT_ACTIVE) rather than it being deleted with
the queue.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3
from aws_durable_execution_sdk_python import DurableContext, StepContext, StepError, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_lambda_powertools import Logger
from botocore.config import Config

from provisioner.resources import TenantResources
from provisioner.start_queues import DEFAULT_VISIBILITY_TIMEOUT_SECONDS, StartQueues
from shared.aws_clients import DYNAMODB_CONFIG, LAMBDA_CONFIG
from shared.contract import is_valid_tenant_id
from shared.settings import load_settings
from shared.tenants import (
    ACTIVE,
    FAILED,
    OFFBOARD_OPERATION,
    OFFBOARDED,
    OFFBOARDING,
    ONBOARD_OPERATION,
    OPERATIONS,
    PROVISIONING,
    RECONCILE_OPERATION,
    SUSPENDED,
    TransitionRefused,
    settle_status,
)

logger = Logger()
SETTINGS = load_settings()

STEP_METERING_KEY = "metering-key"
STEP_CALLBACK_ROUTE = "callback-route"
STEP_ACTIVATE = "activate"
STEP_RECORD = "record"
STEP_FAIL_WORKFLOWS = "fail-waiting-workflows"
STEP_DELETE_ROUTE = "delete-callback-route"
STEP_DELETE_KEY = "delete-metering-key"
STEP_TOMBSTONE = "tombstone"
STEP_MARK_FAILED = "mark-failed"
STEP_START_QUEUE = "start-queue"
STEP_START_MAPPING = "start-mapping"
STEP_DELETE_START_MAPPING = "delete-start-mapping"
STEP_DELETE_START_QUEUE = "delete-start-queue"
# Every step calls AWS only: five attempts over about half a minute, then the tenant is FAILED.
AWS_RETRY = create_retry_strategy(RetryStrategyConfig(
    max_attempts=5, initial_delay=Duration.from_seconds(1), max_delay=Duration.from_seconds(10),
    backoff_rate=2, jitter_strategy=JitterStrategy.FULL))
STEP_CONFIG = StepConfig(retry_strategy=AWS_RETRY)
# Recording the outcome must not fail for want of one more try.
RECORD_CONFIG = StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(
    max_attempts=10, initial_delay=Duration.from_seconds(1), max_delay=Duration.from_seconds(30),
    backoff_rate=2, jitter_strategy=JitterStrategy.FULL)))
# The item's fields that only a live tenant has: an OFFBOARDED tombstone keeps none.
LIVE_FIELDS = ("apiKeyHash", "previousApiKeyHash", "previousApiKeyExpiresAt", "meteringKey", "meteringKeyId",
               "callbackQueueUrl", "startQueueUrl", "startQueueArn")
AWS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=10)

_resources: TenantResources | None = None
_lock = threading.Lock()


def resources() -> TenantResources:
    """The deployment's per-tenant resources (clients created once, on first use)."""
    global _resources
    if _resources is None:
        with _lock:
            if _resources is None:
                _resources = TenantResources(
                    prefix=os.environ["NAME_PREFIX"],
                    event_bus=str(SETTINGS.event_bus_name),
                    apigateway=boto3.client("apigateway", config=AWS_CONFIG),
                    sqs=boto3.client("sqs", config=AWS_CONFIG),
                    events=boto3.client("events", config=AWS_CONFIG),
                    lambda_client=boto3.client("lambda", config=LAMBDA_CONFIG),
                    workflows_table=boto3.resource("dynamodb", config=DYNAMODB_CONFIG).Table(SETTINGS.workflows_table),
                )
    return _resources


_start_queues: StartQueues | None = None


def start_queues() -> StartQueues:
    """The deployment's tenants' start queues and their mappings on the router (clients created once)."""
    global _start_queues
    if _start_queues is None:
        with _lock:
            if _start_queues is None:
                _start_queues = StartQueues(
                    prefix=os.environ["NAME_PREFIX"],
                    sqs=boto3.client("sqs", config=AWS_CONFIG),
                    lambda_client=boto3.client("lambda", config=LAMBDA_CONFIG),
                    visibility_timeout=int(os.environ.get("START_QUEUE_VISIBILITY_TIMEOUT_SECONDS")
                                           or DEFAULT_VISIBILITY_TIMEOUT_SECONDS),
                )
    return _start_queues


_tenants_table: Any = None


def tenants_table() -> Any:
    """The tenants table (a boto3 ``Table``), created on first use."""
    global _tenants_table
    if _tenants_table is None:
        _tenants_table = boto3.resource("dynamodb", config=DYNAMODB_CONFIG).Table(SETTINGS.tenants_table)
    return _tenants_table


@dataclass(frozen=True)
class Operation:
    """What an execution was started for: ``{"operation", "tenantId", "generation"}`` (and ``run`` for a reconcile)."""

    operation: str
    tenant_id: str
    generation: int

    @classmethod
    def from_event(cls, event: Any) -> Operation:
        """Parse the execution's input; ValueError for anything else (the execution fails at once)."""
        if not isinstance(event, dict):
            raise ValueError("the input must be an object")
        operation, tenant_id, generation = event.get("operation"), event.get("tenantId"), event.get("generation")
        if operation not in OPERATIONS or not is_valid_tenant_id(tenant_id) or isinstance(generation, bool) \
                or not isinstance(generation, int) or generation < 0:
            raise ValueError("the input needs operation, tenantId and generation")
        return cls(str(operation), str(tenant_id), generation)


def now() -> int:
    return int(time.time())


# -- the steps' work: plain functions over the tenants table and the resources ---------------------


def read_tenant_item(tenant_id: str) -> dict[str, Any] | None:
    return tenants_table().get_item(Key={"tenantId": tenant_id}, ConsistentRead=True).get("Item")


def create_metering_key(tenant_id: str, tier: str) -> dict[str, str]:
    key = resources().ensure_metering_key(tenant_id, tier)
    return {"meteringKeyId": key.key_id, "meteringKey": key.value}


def activate(op: Operation, fields: dict[str, str]) -> str:
    """PROVISIONING -> ACTIVE with the resources' ids; the status the tenant ends in."""
    try:
        settle_status(tenants_table(), op.tenant_id, expected=PROVISIONING, generation=op.generation,
                      new_status=ACTIVE, now=now(), set_fields=fields)
    except TransitionRefused:
        # Another generation took over (a retried onboarding): that execution decides.
        logger.warning("tenant moved on meanwhile; nothing to activate")
        return "SUPERSEDED"
    return ACTIVE


def record_reconciled(op: Operation, fields: dict[str, str]) -> str:
    """A reconcile's result on an ACTIVE or SUSPENDED tenant of this generation (its status kept)."""
    values = {f":f{index}": value for index, value in enumerate(fields.values())}
    names = {f"#f{index}": field for index, field in enumerate(fields)}
    table = tenants_table()
    try:
        table.update_item(
            Key={"tenantId": op.tenant_id},
            UpdateExpression="SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))) + ", updatedAt = :now"
                             " REMOVE reason",
            ConditionExpression="#generation = :generation AND #status IN (:active, :suspended)",
            ExpressionAttributeNames={**names, "#generation": "generation", "#status": "status"},
            ExpressionAttributeValues={**values, ":generation": op.generation, ":active": ACTIVE,
                                       ":suspended": SUSPENDED, ":now": now()})
    except table.meta.client.exceptions.ConditionalCheckFailedException:
        return "SUPERSEDED"
    return "RECONCILED"


def tombstone(op: Operation) -> str:
    """OFFBOARDING -> OFFBOARDED; the item keeps no key, no key hash, no queue."""
    try:
        settle_status(tenants_table(), op.tenant_id, expected=OFFBOARDING, generation=op.generation,
                      new_status=OFFBOARDED, now=now(), remove=LIVE_FIELDS)
    except TransitionRefused:
        return "SUPERSEDED"
    return OFFBOARDED


def mark_failed(op: Operation, expected: str, reason: str) -> str:
    """A step gave up: the tenant ends FAILED with the reason (a reconcile only records it)."""
    if op.operation == RECONCILE_OPERATION:
        try:
            tenants_table().update_item(
                Key={"tenantId": op.tenant_id}, UpdateExpression="SET reason = :reason, updatedAt = :now",
                ConditionExpression="generation = :generation",
                ExpressionAttributeValues={":reason": reason, ":now": now(), ":generation": op.generation})
        except tenants_table().meta.client.exceptions.ConditionalCheckFailedException:
            return "SUPERSEDED"
        return "RECONCILE_FAILED"
    try:
        settle_status(tenants_table(), op.tenant_id, expected=expected, generation=op.generation, new_status=FAILED,
                      now=now(), reason=reason)
    except TransitionRefused:
        return "SUPERSEDED"
    return FAILED


@durable_step
def read_step(_: StepContext, tenant_id: str) -> dict[str, Any] | None:
    item = read_tenant_item(tenant_id)
    # Only what the orchestration decides on goes into the checkpoint (never a key hash).
    if not item:
        return None
    read: dict[str, Any] = {field: (int(item[field]) if field == "generation" else str(item[field]))
                            for field in ("status", "tier", "generation") if field in item}
    if item.get("startQueueProducers"):
        read["startQueueProducers"] = [str(producer) for producer in item["startQueueProducers"]]
    return read


@durable_step
def metering_key_step(_: StepContext, tenant_id: str, tier: str) -> dict[str, str]:
    return create_metering_key(tenant_id, tier)


@durable_step
def callback_route_step(_: StepContext, tenant_id: str) -> str:
    return resources().ensure_callback_route(tenant_id)


@durable_step
def start_queue_step(_: StepContext, tenant_id: str, producers: list[str] | None) -> dict[str, str]:
    return start_queues().ensure_queue(tenant_id, producers)


@durable_step
def start_mapping_step(_: StepContext, queue_arn: str) -> str:
    return start_queues().ensure_mapping(queue_arn)


@durable_step
def delete_start_mapping_step(_: StepContext, tenant_id: str) -> int:
    return start_queues().remove_mapping(tenant_id)


@durable_step
def delete_start_queue_step(_: StepContext, tenant_id: str) -> None:
    start_queues().remove_queue(tenant_id)


@durable_step
def activate_step(_: StepContext, op: dict[str, Any], fields: dict[str, str]) -> str:
    return activate(Operation(**op), fields)


@durable_step
def record_step(_: StepContext, op: dict[str, Any], fields: dict[str, str]) -> str:
    return record_reconciled(Operation(**op), fields)


@durable_step
def fail_workflows_step(_: StepContext, tenant_id: str) -> int:
    return resources().fail_waiting_workflows(tenant_id)


@durable_step
def delete_route_step(_: StepContext, tenant_id: str) -> None:
    resources().remove_callback_route(tenant_id)


@durable_step
def delete_key_step(_: StepContext, tenant_id: str) -> int:
    return resources().remove_metering_key(tenant_id)


@durable_step
def tombstone_step(_: StepContext, op: dict[str, Any]) -> str:
    return tombstone(Operation(**op))


@durable_step
def mark_failed_step(_: StepContext, op: dict[str, Any], expected: str, reason: str) -> str:
    return mark_failed(Operation(**op), expected, reason)


# -- orchestration ---------------------------------------------------------------------------------


class StepGaveUp(Exception):
    """A step's retries are spent; ``reason`` says which and why."""

    def __init__(self, step: str, error: StepError) -> None:
        super().__init__(f"{step} failed: {error.error_type or 'error'}: {str(error.message or '')[:300]}")
        self.reason = str(self)


def _run(context: DurableContext, step: Any, name: str, config: StepConfig = STEP_CONFIG) -> Any:
    try:
        return context.step(step, name=name, config=config)
    except StepError as error:
        raise StepGaveUp(name, error) from error


def _provision(context: DurableContext, op: Operation, tier: str, producers: list[str] | None = None) -> dict[str, str]:
    fields = _run(context, metering_key_step(op.tenant_id, tier), STEP_METERING_KEY)
    fields["callbackQueueUrl"] = _run(context, callback_route_step(op.tenant_id), STEP_CALLBACK_ROUTE)
    # The queue's ARN reaches the tenant's item (the router's startQueue index) with the
    # final step; until then the router retries what arrives (no owner, or PROVISIONING).
    fields.update(_run(context, start_queue_step(op.tenant_id, producers), STEP_START_QUEUE))
    _run(context, start_mapping_step(fields["startQueueArn"]), STEP_START_MAPPING)
    return fields


@durable_execution
def handler(event: Any, context: DurableContext) -> dict[str, Any]:
    """Run one operation on one tenant; the result names the status the tenant ended in."""
    op = Operation.from_event(event)
    logger.append_keys(tenant_id=op.tenant_id, workflow_id=f"{op.operation}-g{op.generation}")
    context.set_logger(logger)
    as_dict = {"operation": op.operation, "tenant_id": op.tenant_id, "generation": op.generation}
    tenant = context.step(read_step(op.tenant_id), name="read-tenant", config=RECORD_CONFIG)
    expected = {ONBOARD_OPERATION: PROVISIONING, OFFBOARD_OPERATION: OFFBOARDING}.get(op.operation)
    current_ok = tenant is not None and tenant.get("generation") == op.generation and (
        tenant.get("status") == expected if expected else tenant.get("status") in (ACTIVE, SUSPENDED))
    if not current_ok:
        # Started for a generation the tenant has left (a late or repeated start): nothing to do.
        logger.info("nothing to do", extra={"status": (tenant or {}).get("status")})
        return {"tenantId": op.tenant_id, "operation": op.operation, "outcome": "SUPERSEDED"}
    try:
        if op.operation == OFFBOARD_OPERATION:
            failed = _run(context, fail_workflows_step(op.tenant_id), STEP_FAIL_WORKFLOWS)
            _run(context, delete_route_step(op.tenant_id), STEP_DELETE_ROUTE)
            _run(context, delete_start_mapping_step(op.tenant_id), STEP_DELETE_START_MAPPING)
            _run(context, delete_start_queue_step(op.tenant_id), STEP_DELETE_START_QUEUE)
            _run(context, delete_key_step(op.tenant_id), STEP_DELETE_KEY)
            outcome = context.step(tombstone_step(as_dict), name=STEP_TOMBSTONE, config=RECORD_CONFIG)
            return {"tenantId": op.tenant_id, "operation": op.operation, "outcome": outcome, "failedWorkflows": failed}
        fields = _provision(context, op, str(tenant["tier"]), tenant.get("startQueueProducers"))
        final = activate_step(as_dict, fields) if op.operation == ONBOARD_OPERATION else record_step(as_dict, fields)
        outcome = context.step(final, name=STEP_ACTIVATE if op.operation == ONBOARD_OPERATION else STEP_RECORD,
                               config=RECORD_CONFIG)
    except StepGaveUp as gave_up:
        logger.error("provisioning step gave up", extra={"reason": gave_up.reason})
        outcome = context.step(mark_failed_step(as_dict, str(expected), gave_up.reason), name=STEP_MARK_FAILED,
                               config=RECORD_CONFIG)
        return {"tenantId": op.tenant_id, "operation": op.operation, "outcome": outcome, "reason": gave_up.reason}
    return {"tenantId": op.tenant_id, "operation": op.operation, "outcome": outcome}
