"""Repair an open registry item from the durable execution's real state (I/O edge of the reconcile rules)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from api.reconcile import repair_check_cutoff, workflow_outcome
from shared.registry import WorkflowRecord, WorkflowRegistry

logger = Logger(child=True)


def converge_on_read(registry: WorkflowRegistry, lambda_client: Any, record: WorkflowRecord,
                     now: float) -> WorkflowRecord:
    """The record a read serves: checked against its execution when a check is due, at most once per interval.

    Of the reads of one workflow, the one whose conditional ``repairCheckedAt``
    write wins asks the durable service; the others serve what the registry
    holds now. If that write itself fails (the registry refuses writes: the very
    outage that can leave it stale), the read checks anyway: the stage's and the
    tenant's throttling bound how often.
    """
    cutoff = repair_check_cutoff(record, now)
    if cutoff is None:
        return record
    try:
        claimed = registry.claim_repair_check(record.tenant_id, record.workflow_id, checked_before=cutoff)
    except (ClientError, BotoCoreError) as error:
        logger.warning("could not note the repair check; checking anyway", extra={"error": type(error).__name__})
        claimed = True
    if claimed:
        return repair_from_execution(registry, lambda_client, record)
    # Another read checked it moments ago, or the workflow just ended: serve what the registry holds now.
    return registry.get_workflow(record.tenant_id, record.workflow_id) or record


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
