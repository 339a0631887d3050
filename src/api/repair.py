"""Repair an open registry item from the durable execution's real state (I/O edge of the reconcile rules)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from api.reconcile import workflow_outcome
from shared.registry import WorkflowRecord, WorkflowRegistry

logger = Logger(child=True)


def repair_from_execution(registry: WorkflowRegistry, lambda_client: Any, record: WorkflowRecord) -> WorkflowRecord:
    """Return the record to serve: repaired if its execution already ended, else as it was.

    Best effort by design: if the execution or the registry cannot be reached, the
    registry's view is served and the next read tries again. A repair never
    overwrites a final status the workflow recorded itself.
    """
    if not record.is_open or not record.execution_arn:
        return record
    try:
        execution = lambda_client.get_durable_execution(
            DurableExecutionArn=record.execution_arn, IncludeExecutionData=True
        )
    except (ClientError, BotoCoreError) as error:
        logger.warning("could not read the execution to check the registry", extra={"error": type(error).__name__})
        return record
    outcome = workflow_outcome(execution)
    if outcome is None:
        return record
    repaired = replace(record, status=outcome.status, result=outcome.result, reason=outcome.reason)
    try:
        wrote = registry.record_outcome(record.tenant_id, record.workflow_id, outcome.status,
                                        result=outcome.result, reason=outcome.reason, only_if_open=True)
        if not wrote:  # the workflow's own write landed meanwhile: serve that
            return registry.get_workflow(record.tenant_id, record.workflow_id) or repaired
    except (ClientError, BotoCoreError) as error:
        logger.warning("could not write the repaired status", extra={"error": type(error).__name__})
        return repaired
    logger.warning("registry repaired from the execution", extra={"status": outcome.status})
    return repaired
