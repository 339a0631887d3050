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
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import boto3
from aws_durable_execution_sdk_python import DurableContext, StepContext, StepError, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_lambda_powertools import Logger

from provisioner.resources import TenantResources
from provisioner.start_queues import DEFAULT_VISIBILITY_TIMEOUT_SECONDS, StartQueues
from shared.aws_clients import DYNAMODB_CONFIG, LAMBDA_CONFIG, PROVISIONER_CONFIG
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
T = TypeVar("T")

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

# Each is created once per environment, on first use: the steps run one at a time in the handler's
# thread, so no lock is needed.


@cache
def resources() -> TenantResources:
    """The deployment's per-tenant resources."""
    return TenantResources(
        prefix=os.environ["NAME_PREFIX"],
        event_bus=str(SETTINGS.event_bus_name),
        apigateway=boto3.client("apigateway", config=PROVISIONER_CONFIG),
        sqs=boto3.client("sqs", config=PROVISIONER_CONFIG),
        events=boto3.client("events", config=PROVISIONER_CONFIG),
        lambda_client=boto3.client("lambda", config=LAMBDA_CONFIG),
        workflows_table=boto3.resource("dynamodb", config=DYNAMODB_CONFIG).Table(SETTINGS.workflows_table),
    )


@cache
def start_queues() -> StartQueues:
    """The deployment's tenants' start queues and their mappings on the router."""
    return StartQueues(
        prefix=os.environ["NAME_PREFIX"],
        sqs=boto3.client("sqs", config=PROVISIONER_CONFIG),
        lambda_client=boto3.client("lambda", config=LAMBDA_CONFIG),
        visibility_timeout=int(os.environ.get("START_QUEUE_VISIBILITY_TIMEOUT_SECONDS")
                               or DEFAULT_VISIBILITY_TIMEOUT_SECONDS),
    )


@cache
def tenants_table() -> Any:
    """The tenants table (a boto3 ``Table``)."""
    return boto3.resource("dynamodb", config=DYNAMODB_CONFIG).Table(SETTINGS.tenants_table)


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
        if settled_already(op, ACTIVE):
            return ACTIVE
        # Another generation took over (a retried onboarding): that execution decides.
        logger.warning("tenant moved on meanwhile; nothing to activate")
        return "SUPERSEDED"
    return ACTIVE


def settled_already(op: Operation, status: str) -> bool:
    """Whether the tenant is in ``status`` at this execution's generation: an earlier attempt
    of this very step landed, its answer lost (the retried write finds its own effect)."""
    item = read_tenant_item(op.tenant_id) or {}
    return item.get("status") == status and item.get("generation") == op.generation


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
        return OFFBOARDED if settled_already(op, OFFBOARDED) else "SUPERSEDED"
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


# -- orchestration ---------------------------------------------------------------------------------


class StepGaveUp(Exception):
    """A step's retries are spent; ``reason`` says which and why."""

    def __init__(self, step: str, error: StepError) -> None:
        super().__init__(f"{step} failed: {error.error_type or 'error'}: {str(error.message or '')[:300]}")
        self.reason = str(self)


def _run(context: DurableContext, name: str, work: Callable[[], T]) -> T:
    """Run ``work`` as the AWS step ``name``; StepGaveUp once its retries are spent.

    Every step here is one call of the work above, made inside the step (never again on replay), so a
    lambda is all a step needs: its name and retries are given where it runs.
    """
    try:
        return context.step(lambda _: work(), name=name, config=STEP_CONFIG)
    except StepError as error:
        raise StepGaveUp(name, error) from error


def _provision(context: DurableContext, op: Operation, tier: str, producers: list[str] | None = None) -> dict[str, str]:
    fields = _run(context, STEP_METERING_KEY, lambda: create_metering_key(op.tenant_id, tier))
    fields["callbackQueueUrl"] = _run(context, STEP_CALLBACK_ROUTE,
                                      lambda: resources().ensure_callback_route(op.tenant_id))
    # The queue's ARN reaches the tenant's item (the router's startQueue index) with the
    # final step; until then the router retries what arrives (no owner, or PROVISIONING).
    fields.update(_run(context, STEP_START_QUEUE, lambda: start_queues().ensure_queue(op.tenant_id, producers)))
    _run(context, STEP_START_MAPPING, lambda: start_queues().ensure_mapping(fields["startQueueArn"]))
    return fields


@durable_execution
def handler(event: Any, context: DurableContext) -> dict[str, Any]:
    """Run one operation on one tenant; the result names the status the tenant ended in."""
    op = Operation.from_event(event)
    logger.append_keys(tenant_id=op.tenant_id, workflow_id=f"{op.operation}-g{op.generation}")
    context.set_logger(logger)
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
            failed = _run(context, STEP_FAIL_WORKFLOWS, lambda: resources().fail_waiting_workflows(op.tenant_id))
            _run(context, STEP_DELETE_ROUTE, lambda: resources().remove_callback_route(op.tenant_id))
            _run(context, STEP_DELETE_START_MAPPING, lambda: start_queues().remove_mapping(op.tenant_id))
            _run(context, STEP_DELETE_START_QUEUE, lambda: start_queues().remove_queue(op.tenant_id))
            _run(context, STEP_DELETE_KEY, lambda: resources().remove_metering_key(op.tenant_id))
            outcome = context.step(lambda _: tombstone(op), name=STEP_TOMBSTONE, config=RECORD_CONFIG)
            return {"tenantId": op.tenant_id, "operation": op.operation, "outcome": outcome, "failedWorkflows": failed}
        fields = _provision(context, op, str(tenant["tier"]), tenant.get("startQueueProducers"))
        if op.operation == ONBOARD_OPERATION:
            outcome = context.step(lambda _: activate(op, fields), name=STEP_ACTIVATE, config=RECORD_CONFIG)
        else:
            outcome = context.step(lambda _: record_reconciled(op, fields), name=STEP_RECORD, config=RECORD_CONFIG)
    except StepGaveUp as gave_up:
        reason = gave_up.reason
        logger.error("provisioning step gave up", extra={"reason": reason})
        outcome = context.step(lambda _: mark_failed(op, str(expected), reason), name=STEP_MARK_FAILED,
                               config=RECORD_CONFIG)
        return {"tenantId": op.tenant_id, "operation": op.operation, "outcome": outcome, "reason": reason}
    return {"tenantId": op.tenant_id, "operation": op.operation, "outcome": outcome}
