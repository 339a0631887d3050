"""Durable workflow handler: validate and cache (step 1), wait for the callback, finalize."""

from __future__ import annotations

from typing import Any

import boto3
from aws_durable_execution_sdk_python import (
    CallbackExternalError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    DurableContext,
    StepError,
    durable_execution,
)
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig, WaitForCallbackConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.types import WaitForCallbackContext
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from shared import registry as reg
from shared import strict_json
from shared.aws_clients import DYNAMODB_CONFIG
from shared.observability import emit_count
from shared.settings import load_settings
from shared.tenants import TenantConfig, read_tenant
from workflow.isolation import EnvironmentBinding, TenantIsolationViolation
from workflow.policy import evaluate_request
from workflow.tenant_cache import CacheRead, TenantCache
from workflow.workflow_input import parse_start_event

logger = Logger()
SETTINGS = load_settings()
_dynamodb = boto3.resource("dynamodb", config=DYNAMODB_CONFIG)
TENANTS_TABLE = _dynamodb.Table(SETTINGS.tenants_table)
REGISTRY = reg.WorkflowRegistry(_dynamodb.Table(SETTINGS.workflows_table), SETTINGS.registry_retention_seconds)
TENANT_CACHE = TenantCache(lambda tenant_id: read_tenant(TENANTS_TABLE, tenant_id), SETTINGS.tenant_cache_ttl_seconds)
BINDING = EnvironmentBinding()

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


def load_tenant_and_validate(tenant_id: str, workflow_id: str, execution_arn: str, request: Any) -> dict[str, Any]:
    """Step 1: claim the workflow id, read the tenant (through the cache), validate, record a rejection."""
    if not REGISTRY.claim_workflow(tenant_id, workflow_id, execution_arn):
        logger.warning("duplicate start ignored: another execution owns this workflow id")
        emit_count("WorkflowDuplicateStart", tenant_id)
        return {"accepted": False, "duplicate": True, "reason": "duplicate start", "environmentId": BINDING.environment_id}
    read = TENANT_CACHE.get(tenant_id)
    decision = evaluate_request(read.tenant, request)
    outcome: dict[str, Any] = {
        "accepted": decision.accepted,
        "reason": decision.reason,
        "environmentId": BINDING.environment_id,
        "tenantDataFromCache": read.hit,
        "tenant": read.tenant.to_dict() if read.tenant else None,
    }
    if decision.accepted:
        logger.info("request accepted", extra={"tenant_data_from_cache": read.hit})
        emit_count("WorkflowAccepted", tenant_id)
    else:
        logger.warning("request rejected", extra={"reason": decision.reason})
        REGISTRY.record_outcome(tenant_id, workflow_id, reg.REJECTED, reason=decision.reason, result=_rejection(outcome))
        emit_count("WorkflowRejected", tenant_id)
    return outcome


def _rejection(outcome: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": reg.REJECTED,
        "reason": outcome["reason"],
        "environments": {"validatedIn": outcome["environmentId"]},
    }


def decode_callback_result(raw: Any) -> Any:
    """Callback results arrive as raw strings: decode JSON, keep anything else as text.

    Non-finite numbers (``NaN``, ``1e400``) are not JSON and could never be served
    back as JSON, so such a result is kept as the text it arrived as.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        try:
            return strict_json.loads(raw)
        except (ValueError, RecursionError):
            return raw
    return raw


def finalize(tenant_id: str, validated: dict[str, Any]) -> dict[str, Any]:
    """Step 3: the result from the cached tenant data (the confirmation is added outside the step).

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
    tenant = read.tenant or TenantConfig.from_dict(validated["tenant"])
    return {
        "status": reg.COMPLETED,
        "tenantId": tenant_id,
        "tenantName": tenant.display_name,
        "environments": {"validatedIn": validated["environmentId"], "finalizedIn": BINDING.environment_id},
        "tenantDataFromCache": {"validate": validated["tenantDataFromCache"], "finalize": read.hit},
    }


def record_outcome(tenant_id: str, workflow_id: str, result: dict[str, Any]) -> None:
    """Write the final status and result to the registry (a step of its own, retried)."""
    status = str(result["status"])
    REGISTRY.record_outcome(tenant_id, workflow_id, status, result=result, reason=result.get("reason"))
    if status == reg.COMPLETED:
        logger.info("workflow completed")
        emit_count("WorkflowCompleted", tenant_id)
    else:
        logger.warning("workflow ended without confirmation", extra={"status": status})
        emit_count("WorkflowTimedOut" if status == reg.TIMED_OUT else "WorkflowFailed", tenant_id)


def failure_result(tenant_id: str, status: str, reason: str) -> dict[str, Any]:
    """The result of a workflow that ended without a confirmation."""
    return {"status": status, "tenantId": tenant_id, "reason": reason}


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
            lambda _: load_tenant_and_validate(
                tenant_id, start.workflow_id, context.state.durable_execution_arn, start.request
            ),
            name=STEP_LOAD_AND_VALIDATE,
            config=IO_STEP_CONFIG,
        )
    except StepError as error:
        # Retries are exhausted (the tenants table stayed unreachable): record
        # the failure so the workflow is not left looking STARTED forever.
        return _end_without_confirmation(context, tenant_id, start.workflow_id, reg.FAILED,
                                         f"could not load the tenant: {error.error_type or 'error'}")
    if validated.get("duplicate"):
        return {"workflowId": start.workflow_id, "status": "DUPLICATE", "tenantId": tenant_id}
    if not validated["accepted"]:
        return {"workflowId": start.workflow_id, **_rejection(validated), "tenantId": tenant_id}

    tenant = TenantConfig.from_dict(validated["tenant"])
    timeout_seconds = tenant.callback_timeout_seconds
    callback_config = WaitForCallbackConfig(
        timeout=Duration.from_seconds(timeout_seconds),
        # Zero (the default) means no heartbeat is required.
        heartbeat_timeout=Duration.from_seconds(tenant.heartbeat_timeout_seconds),
        retry_strategy=IO_RETRY,
    )

    def register_callback(callback_id: str, _ctx: WaitForCallbackContext) -> None:
        REGISTRY.register_waiting(tenant_id, start.workflow_id, callback_id, timeout_seconds)
        logger.info("waiting for external confirmation")

    try:
        raw = context.wait_for_callback(register_callback, name=WAIT_EXTERNAL_CONFIRMATION, config=callback_config)
    except CallbackTimeoutError:
        status, reason = reg.TIMED_OUT, "no confirmation (or heartbeat) in time"
    except CallbackExternalError as error:
        status, reason = reg.FAILED, f"external system reported failure: {error.message or error.error_type}"
    except CallbackSubmitterError:
        status, reason = reg.FAILED, "could not register the callback"
    else:
        try:
            summary = context.step(lambda _: finalize(tenant_id, validated), name=STEP_FINALIZE, config=IO_STEP_CONFIG)
        except StepError as error:
            status, reason = reg.FAILED, f"could not finalize: {error.error_type or 'error'}"
        else:
            result = {**summary, "confirmation": decode_callback_result(raw)}
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
        context.step(lambda _: record_outcome(tenant_id, workflow_id, result), name=step_name, config=IO_STEP_CONFIG)
    except StepError as error:
        logger.error("registry not updated; it will be repaired from the execution result",
                     extra={"status": result["status"], "error": error.error_type or "error"})
    return {"workflowId": workflow_id, **result}
