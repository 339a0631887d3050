"""Durable workflow handler: validate and cache (step 1), wait for the callback, finalize."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
from aws_durable_execution_sdk_python import (
    CallbackExternalError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    DurableContext,
    StepContext,
    StepError,
    durable_execution,
    durable_step,
)
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig, WaitForCallbackConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.types import WaitForCallbackContext
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from shared import registry as reg
from shared.aws_clients import DYNAMODB_CONFIG, EVENTS_CONFIG
from shared.callback_tokens import callback_url, mint_token, signing_key, token_hash
from shared.observability import emit_count
from shared.settings import load_settings
from shared.tenants import OFFBOARDED_ERROR_DATA, OFFBOARDED_REASON, read_tenant
from workflow.checkpoints import ConfirmationSerDes, Validation, ValidationSerDes
from workflow.isolation import EnvironmentBinding, TenantIsolationViolation
from workflow.notify import publish, waiting_event
from workflow.policy import evaluate_request
from workflow.tenant_cache import CacheRead, TenantCache
from workflow.workflow_input import parse_start_event

logger = Logger()
SETTINGS = load_settings()
TENANT_CACHE = TenantCache(lambda tenant_id: read_tenant(tenants_table(), tenant_id), SETTINGS.tenant_cache_ttl_seconds)
BINDING = EnvironmentBinding()

# The DynamoDB resource and its two tables are created when a step first reads
# or writes a table, not at import. The resource layer (its model, the resource
# definitions, boto3's resource and doc machinery) is about a tenth of the
# module's cold import with bytecode: a start's first step still pays it (it
# moves out of the init phase), but an invocation that only replays checkpoints,
# or refuses the event before its first step, never does.
_tables: tuple[Any, reg.WorkflowRegistry] | None = None
_tables_lock = threading.Lock()


def _dynamodb_tables() -> tuple[Any, reg.WorkflowRegistry]:
    """The tenants table and the registry, created once, on first use (thread-safe)."""
    global _tables
    if _tables is None:
        with _tables_lock:
            if _tables is None:
                dynamodb = boto3.resource("dynamodb", config=DYNAMODB_CONFIG)
                _tables = (dynamodb.Table(SETTINGS.tenants_table),
                           reg.WorkflowRegistry(dynamodb.Table(SETTINGS.workflows_table),
                                                SETTINGS.registry_retention_seconds))
    return _tables


def tenants_table() -> Any:
    """The tenants table (a boto3 ``Table``)."""
    return _dynamodb_tables()[0]


def registry() -> reg.WorkflowRegistry:
    """The workflow registry."""
    return _dynamodb_tables()[1]


STEP_LOAD_AND_VALIDATE = "load-tenant-and-validate"
WAIT_EXTERNAL_CONFIRMATION = "external-confirmation"
STEP_FINALIZE = "finalize"
STEP_RECORD_OUTCOME = "record-outcome"
STEP_RECORD_FAILURE = "record-failure"
# Only I/O can raise inside a step (a rejected request is a returned value),
# so retries cover transient DynamoDB errors and never a bad request. The first
# retry comes after about a second; five attempts span roughly half a minute.
IO_RETRY = create_retry_strategy(
    RetryStrategyConfig(
        max_attempts=5,
        initial_delay=Duration.from_seconds(1),
        max_delay=Duration.from_seconds(20),
        backoff_rate=2,
        jitter_strategy=JitterStrategy.FULL,
    )
)
IO_STEP_CONFIG = StepConfig(retry_strategy=IO_RETRY)
VALIDATION_STEP_CONFIG = StepConfig(retry_strategy=IO_RETRY, serdes=ValidationSerDes())
CONFIRMATION_SERDES = ConfirmationSerDes()


def load_tenant_and_validate(tenant_id: str, workflow_id: str, execution_arn: str, request: Any) -> Validation:
    """Claim the workflow id (recording the request's summary for the approval page), read the tenant
    (through the cache), validate, record a rejection."""
    if not registry().claim_workflow(tenant_id, workflow_id, execution_arn, request):
        logger.warning("duplicate start ignored: another execution owns this workflow id")
        emit_count("WorkflowDuplicateStart", tenant_id)
        return Validation(accepted=False, duplicate=True, reason="duplicate start", environment_id=BINDING.environment_id)
    read = TENANT_CACHE.get(tenant_id)
    decision = evaluate_request(read.tenant, request)
    validation = Validation(accepted=decision.accepted, reason=decision.reason, environment_id=BINDING.environment_id,
                            tenant_data_from_cache=read.hit, tenant=read.tenant)
    if decision.accepted:
        logger.info("request accepted", extra={"tenant_data_from_cache": read.hit})
        emit_count("WorkflowAccepted", tenant_id)
    else:
        logger.info("request rejected", extra={"reason": decision.reason})
        registry().record_outcome(tenant_id, workflow_id, reg.REJECTED, reason=decision.reason, result=rejection(validation))
        emit_count("WorkflowRejected", tenant_id)
    return validation


class WaitNotRegistered(RuntimeError):
    """The registry refused to make the wait answerable (the submitter step retries, then the workflow fails)."""


def register_and_notify(tenant_id: str, workflow_id: str, callback_id: str, timeout_seconds: int) -> None:
    """The callback submitter: record the wait, tell the external party, and only then make the wait answerable.

    In this order, so that an answer accepted with ``200`` is never lost: while
    the event is not out, the workflow stays ``STARTED`` and both callback
    routes answer ``503`` (retry). If EventBridge keeps refusing the event, the
    submitter's retries run out and the workflow ends ``FAILED`` without ever
    having accepted an answer.

    Replays never run it again (the SDK checkpoints the submitter). A retried
    submitter whose earlier attempt finished (the wait is already answerable,
    only the step's checkpoint was lost) returns at once: it neither writes nor
    publishes again, so a flaky bus cannot fail a wait that is already announced.
    Any other retry writes the same items, computes the same token and may emit
    the event once more: consumers must be idempotent.
    """
    if registry().is_waiting_for(tenant_id, workflow_id, callback_id):
        logger.info("waiting for external confirmation (registered by an earlier attempt)")
        return
    token = mint_token(signing_key(SETTINGS.callback_signing_secret), tenant_id, callback_id) \
        if SETTINGS.callback_signing_secret else None
    deadline = registry().register_callback(tenant_id, workflow_id, callback_id, timeout_seconds,
                                            token_hash=token_hash(token) if token else None)
    notified = bool(token and SETTINGS.event_bus_name and SETTINGS.callback_base_url)
    if notified:
        publish(events_client(), waiting_event(str(SETTINGS.event_bus_name), tenant_id, workflow_id,
                                               callback_url(str(SETTINGS.callback_base_url), str(token)), deadline))
    if not registry().mark_waiting(tenant_id, workflow_id, callback_id):
        # The item no longer names this callback, or says the workflow ended:
        # never wait for an answer no route would accept (the step retries, then fails).
        raise WaitNotRegistered("the registry does not name this callback as the workflow's open wait")
    logger.info("waiting for external confirmation", extra={"notified": notified})


@cache
def events_client() -> Any:
    """EventBridge, created on first use: most invocations (replays, finalize) never need it."""
    return boto3.client("events", config=EVENTS_CONFIG)


def rejection(validation: Validation) -> dict[str, Any]:
    """The result of a workflow whose request the tenant's policy refused."""
    return {"status": reg.REJECTED, "reason": validation.reason, "environments": {"validatedIn": validation.environment_id}}


def finalize(tenant_id: str, validated: Validation) -> dict[str, Any]:
    """The result from the cached tenant data (the confirmation is added outside the step).

    The confirmation (up to 256 KiB) stays out of this step's checkpoint: it is
    already checkpointed as the callback's result and replays from there. If the
    tenant cannot be read (expired cache and an unreachable table), step one's
    checkpointed copy serves: a confirmed workflow never fails for lack of it.
    """
    try:
        read = TENANT_CACHE.get(tenant_id)
    except (ClientError, BotoCoreError) as error:
        logger.warning("tenant read failed; using step one's copy", extra={"error": type(error).__name__})
        read = CacheRead(None, hit=False)
    tenant = read.tenant or validated.tenant
    return {
        "status": reg.COMPLETED,
        "tenantId": tenant_id,
        "tenantName": tenant.display_name if tenant else tenant_id,
        "environments": {"validatedIn": validated.environment_id, "finalizedIn": BINDING.environment_id},
        "tenantDataFromCache": {"validate": validated.tenant_data_from_cache, "finalize": read.hit},
    }


def record_outcome(tenant_id: str, workflow_id: str, result: dict[str, Any]) -> None:
    """Write the final status and result to the registry."""
    status = str(result["status"])
    registry().record_outcome(tenant_id, workflow_id, status, result=result, reason=result.get("reason"))
    if status == reg.COMPLETED:
        logger.info("workflow completed")
        emit_count("WorkflowCompleted", tenant_id)
    else:
        logger.warning("workflow ended without confirmation", extra={"status": status})
        emit_count("WorkflowTimedOut" if status == reg.TIMED_OUT else "WorkflowFailed", tenant_id)


def failure_result(tenant_id: str, status: str, reason: str) -> dict[str, Any]:
    """The result of a workflow that ended without a confirmation."""
    return {"status": status, "tenantId": tenant_id, "reason": reason}


# -- the steps: thin, named wrappers over the functions above ------------------------------------


@durable_step
def load_and_validate_step(_: StepContext, tenant_id: str, workflow_id: str, execution_arn: str, request: Any) -> Validation:
    """Step 1."""
    return load_tenant_and_validate(tenant_id, workflow_id, execution_arn, request)


@durable_step
def finalize_step(_: StepContext, tenant_id: str, validated: Validation) -> dict[str, Any]:
    """Step 3."""
    return finalize(tenant_id, validated)


@durable_step
def record_outcome_step(_: StepContext, tenant_id: str, workflow_id: str, result: dict[str, Any]) -> None:
    """The last step: the registry learns how the workflow ended."""
    record_outcome(tenant_id, workflow_id, result)


@durable_execution
def handler(event: Any, context: DurableContext) -> dict[str, Any]:
    """Orchestrate the workflow; every side effect lives in a step or the callback submitter."""
    start = parse_start_event(event, context.state.durable_execution_arn)
    claimed_tenant = getattr(context.lambda_context, "tenant_id", None)
    logger.append_keys(tenant_id=claimed_tenant or "-", workflow_id=start.workflow_id)
    try:
        tenant_id = BINDING.bind(claimed_tenant)
    except TenantIsolationViolation:
        logger.critical("tenant isolation violation", extra={"environment_id": BINDING.environment_id})
        raise
    context.set_logger(logger)

    try:
        validated = context.step(
            load_and_validate_step(tenant_id, start.workflow_id, context.state.durable_execution_arn, start.request),
            name=STEP_LOAD_AND_VALIDATE,
            config=VALIDATION_STEP_CONFIG,
        )
    except StepError as error:
        # Retries are exhausted (the tenants table stayed unreachable): record
        # the failure so the workflow is not left looking STARTED forever.
        return _end_without_confirmation(context, tenant_id, start.workflow_id, reg.FAILED,
                                         f"could not load the tenant: {error.error_type or 'error'}")
    if validated.duplicate:
        return {"workflowId": start.workflow_id, "status": "DUPLICATE", "tenantId": tenant_id}
    if not validated.accepted or validated.tenant is None:
        return {"workflowId": start.workflow_id, **rejection(validated), "tenantId": tenant_id}

    tenant = validated.tenant
    callback_config = WaitForCallbackConfig(
        timeout=Duration.from_seconds(tenant.callback_timeout_seconds),
        # Zero (the default) means no heartbeat is required.
        heartbeat_timeout=Duration.from_seconds(tenant.heartbeat_timeout_seconds),
        serdes=CONFIRMATION_SERDES,
        retry_strategy=IO_RETRY,
    )

    def register_callback(callback_id: str, _ctx: WaitForCallbackContext) -> None:
        register_and_notify(tenant_id, start.workflow_id, callback_id, tenant.callback_timeout_seconds)

    try:
        confirmation = context.wait_for_callback(register_callback, name=WAIT_EXTERNAL_CONFIRMATION, config=callback_config)
    except CallbackTimeoutError:
        status, reason = reg.TIMED_OUT, "no confirmation (or heartbeat) in time"
    except CallbackExternalError as error:
        # The provisioner ends every waiting workflow of an offboarded tenant this way.
        status, reason = reg.FAILED, (OFFBOARDED_REASON if error.data == OFFBOARDED_ERROR_DATA
                                      else f"external system reported failure: {error.message or error.error_type}")
    except CallbackSubmitterError:
        status, reason = reg.FAILED, "could not register the callback"
    else:
        try:
            summary = context.step(finalize_step(tenant_id, validated), name=STEP_FINALIZE, config=IO_STEP_CONFIG)
        except StepError as error:
            status, reason = reg.FAILED, f"could not finalize: {error.error_type or 'error'}"
        else:
            result = {**summary, "confirmation": confirmation}
            return _finish(context, tenant_id, start.workflow_id, result, STEP_RECORD_OUTCOME)
    return _end_without_confirmation(context, tenant_id, start.workflow_id, status, reason)


def _end_without_confirmation(
    context: DurableContext, tenant_id: str, workflow_id: str, status: str, reason: str
) -> dict[str, Any]:
    return _finish(context, tenant_id, workflow_id, failure_result(tenant_id, status, reason), STEP_RECORD_FAILURE)


def _finish(context: DurableContext, tenant_id: str, workflow_id: str, result: dict[str, Any], step_name: str) -> dict[str, Any]:
    """Record the result in the registry and end the execution with it.

    If the registry stays unreachable for the whole retry window the execution
    still ends with its result (it is the source of truth, and the confirmation
    is in it); the api function repairs the registry from it on the next read
    or callback.
    """
    try:
        context.step(record_outcome_step(tenant_id, workflow_id, result), name=step_name, config=IO_STEP_CONFIG)
    except StepError as error:
        logger.error("registry not updated; it will be repaired from the execution result",
                     extra={"status": result["status"], "error": error.error_type or "error"})
    return {"workflowId": workflow_id, **result}
