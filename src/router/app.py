"""Router: an SQS event source mapping on every tenant's start queue starts workflows for the queue's tenant.

The decisions are :mod:`router.routing`'s (pure); this module does the I/O:
the tenant registry lookup of each queue, the asynchronous Invoke of
``workflow:live`` and the dead-letter sends, and answers Lambda's partial batch
response (the mapping has ``ReportBatchItemFailures``), so one record that
cannot start never holds back the others.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from router.routing import (
    REASON_ATTRIBUTE,
    Decision,
    QueueOwner,
    Refusal,
    Retry,
    Start,
    batch_response,
    decide_batch,
    invoke_outcome,
)
from shared.aws_clients import DYNAMODB_CONFIG
from shared.contract import start_workflow_schema
from shared.observability import emit_count
from shared.settings import load_settings

# The tenants table's index from a start queue's ARN to its tenant (dynamodb.tf;
# a test keeps the two equal). The control plane writes ``startQueueArn`` on the
# tenant item before it creates the queue's event source mapping.
START_QUEUE_INDEX = "startQueue"
START_QUEUE_ATTRIBUTE = "startQueueArn"

# Sending to the dead-letter queue: fail within seconds; a record whose send
# fails is a batch item failure and comes back.
SQS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5)
# An asynchronous Invoke answers as soon as Lambda has queued the event: a
# slow one is a failing one. At most two attempts of 1 + 2 s; the record is
# retried by SQS after that (a start that landed anyway is found by name).
INVOKE_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=1, read_timeout=2)
# An Invoke is only begun while its worst case still fits the invocation's
# time: the remaining records are retried rather than cut off by the timeout
# (which would fail the whole batch, the started records with it).
INVOKE_BUDGET_MS = 2 * (1 + 2) * 1000 + 1000

logger = Logger()
SETTINGS = load_settings()
WORKFLOW_FUNCTION = os.environ["WORKFLOW_FUNCTION_NAME"]  # "<name>:live": the alias, never $LATEST
DEAD_LETTER_QUEUE_URL = os.environ["ROUTER_DEAD_LETTER_QUEUE_URL"]
TENANTS_TABLE = boto3.resource("dynamodb", config=DYNAMODB_CONFIG).Table(SETTINGS.tenants_table)
LAMBDA_CLIENT = boto3.client("lambda", config=INVOKE_CONFIG)
SQS_CLIENT = boto3.client("sqs", config=SQS_CONFIG)
SCHEMA = start_workflow_schema()


def schema_problem(body: Any) -> str | None:
    """POST /workflow's schema, as the gateway's request validator applies it; None when ``body`` passes."""
    try:
        validate(event=body, schema=SCHEMA)
    except SchemaValidationError as error:
        return str(error.message)
    return None


def queue_owner(queue_arn: str) -> QueueOwner | None:
    """The tenant whose start queue ``queue_arn`` is, read now; None when no tenant owns it.

    The index finds the tenant (eventually consistent); the tenant's item, read
    strongly consistent, must name this very queue and gives the status, so a
    suspension stops the next batch and a stale index entry never routes a
    queue to a tenant that no longer owns it.
    """
    found = TENANTS_TABLE.query(IndexName=START_QUEUE_INDEX, Limit=2,
                                KeyConditionExpression="#queue = :arn",
                                ExpressionAttributeNames={"#queue": START_QUEUE_ATTRIBUTE},
                                ExpressionAttributeValues={":arn": queue_arn}).get("Items", [])
    if len(found) != 1:
        if found:
            logger.error("several tenants name one start queue", extra={"queue_arn": queue_arn})
        return None
    tenant_id = str(found[0]["tenantId"])
    item = TENANTS_TABLE.get_item(Key={"tenantId": tenant_id}, ConsistentRead=True,
                                  ProjectionExpression="#status, #queue",
                                  ExpressionAttributeNames={"#status": "status", "#queue": START_QUEUE_ATTRIBUTE}
                                  ).get("Item")
    if not item or item.get(START_QUEUE_ATTRIBUTE) != queue_arn:
        return None
    return QueueOwner(tenant_id, str(item.get("status", "")))


def owner_or_none(queue_arn: str) -> QueueOwner | None:
    """:func:`queue_owner`, with a registry failure logged and read as "no owner" (the records retry)."""
    try:
        return queue_owner(queue_arn)
    except (BotoCoreError, ClientError) as error:
        logger.warning("tenant registry unavailable; the queue's records will be retried",
                       extra={"queue_arn": queue_arn, "error": type(error).__name__})
        return None


def start(decision: Start) -> Decision:
    """Invoke ``workflow:live`` asynchronously as the queue's tenant; the answer decides the record."""
    try:
        LAMBDA_CLIENT.invoke(FunctionName=WORKFLOW_FUNCTION, InvocationType="Event", Payload=decision.payload.encode(),
                             TenantId=decision.tenant_id, DurableExecutionName=decision.workflow_id)
    except ClientError as error:
        return invoke_outcome(decision, str(error.response.get("Error", {}).get("Code") or "ClientError"))
    except BotoCoreError as error:  # connection refused, read timeout (the start may have landed: a retry is idempotent)
        return invoke_outcome(decision, type(error).__name__)
    return invoke_outcome(decision, None)


def dead_letter(refusal: Refusal, record: Mapping[str, Any]) -> bool:
    """Send the record's body, unchanged, to the router's dead-letter queue with its reason; False if that failed."""
    attributes = {
        REASON_ATTRIBUTE: refusal.reason.value,
        "Detail": _attribute_text(refusal.detail),
        "SourceQueueArn": str(record.get("eventSourceARN") or "-"),
        "SourceMessageId": refusal.message_id or "-",
    }
    if refusal.tenant_id:
        attributes["TenantId"] = refusal.tenant_id
    if refusal.workflow_id:
        attributes["WorkflowId"] = refusal.workflow_id
    try:
        SQS_CLIENT.send_message(
            QueueUrl=DEAD_LETTER_QUEUE_URL, MessageBody=str(record.get("body") or "-"),
            MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()},
        )
    except (BotoCoreError, ClientError) as error:
        logger.warning("dead-letter send failed; the record will be retried",
                       extra=_keys(refusal, error=type(error).__name__))
        return False
    return True


def carry_out(decision: Decision, record: Mapping[str, Any], context: LambdaContext) -> bool:
    """Do what ``decision`` says for ``record``; True when SQS may delete it."""
    if isinstance(decision, Start):
        if context.get_remaining_time_in_millis() < INVOKE_BUDGET_MS:
            decision = Retry(decision.message_id, "out of time for another Invoke", decision.tenant_id,
                             decision.workflow_id)
        else:
            decision = start(decision)
    if isinstance(decision, Start):
        logger.info("workflow started", extra=_keys(decision))
        emit_count("QueueStarts", decision.tenant_id)
        return True
    if isinstance(decision, Refusal):
        logger.warning("record refused", extra=_keys(decision, reason=decision.reason.value, detail=decision.detail))
        if decision.tenant_id:
            emit_count("QueueRefusals", decision.tenant_id)
        return dead_letter(decision, record)
    logger.warning("record will be retried", extra=_keys(decision, detail=decision.detail))
    return False


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda's SQS event in, the partial batch response out."""
    records = event.get("Records") or []
    decisions = decide_batch(records, owner_or_none, schema_problem)
    failed = [record.get("messageId") for record, decision in zip(records, decisions, strict=True)
              if not carry_out(decision, record, context)]
    return batch_response(str(message_id) for message_id in failed)


def _keys(decision: Start | Refusal | Retry, **more: Any) -> dict[str, Any]:
    """The log line's keys: tenant, workflow and message ids (never the body)."""
    return {"tenant_id": decision.tenant_id or "-", "workflow_id": decision.workflow_id or "-",
            "message_id": decision.message_id, **more}


def _attribute_text(text: str) -> str:
    """``text`` as a message attribute value: printable characters only (SQS refuses some), never empty."""
    return "".join(c if c.isprintable() else "?" for c in text)[:256] or "-"
