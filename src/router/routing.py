"""What the router does with each SQS record of a batch: start a workflow, refuse it, or retry it. Pure.

The tenant is never read from a message. It is the owner of the queue the
record came from (the record's ``eventSourceARN``, which Lambda's event source
mapping sets and no producer can), looked up by the caller in the tenant
registry and handed in as a :class:`QueueOwner`. A message that names a tenant
in its body is refused (``TENANT_IN_BODY``): it is a producer bug worth seeing,
not a way to choose a tenant.

Per record, in this order (the first that applies decides):

1. the body is not JSON (or holds ``NaN``, ``Infinity``, numbers out of range,
   nesting Python cannot parse): ``MALFORMED_BODY``;
2. the body is a JSON object with a tenant-ish key at its top level (any key
   containing ``tenant`` in any case: ``tenantId``, ``tenant_id``,
   ``x-tenant-id``, ``Tenant``): ``TENANT_IN_BODY``. Checked before the schema,
   whose ``additionalProperties: false`` would refuse it too, less clearly;
3. the body does not satisfy POST /workflow's schema, or the ``IdempotencyKey``
   message attribute is not a string: ``SCHEMA_VIOLATION``;
4. the queue's tenant is not ACTIVE: ``TENANT_NOT_ACTIVE``. A tenant still
   PROVISIONING, or a queue no tenant owns yet (the registry's index is
   eventually consistent), is a retry instead: the message is good and the
   tenant is on its way; SQS redelivers it after the visibility timeout and
   moves it to the dead-letter queue after ``maxReceiveCount`` receives;
5. otherwise: start ``workflow:live`` for the queue's tenant, named as the HTTP
   entry names it (:func:`shared.identity.mint_workflow_id` of the tenant and
   the ``IdempotencyKey`` attribute, else of the SQS message id), with the
   payload the gateway's start template renders.

The Invoke's answer is decided here too (:func:`invoke_outcome`): 409
``DurableExecutionAlreadyStartedException`` (the name is taken by another
input) is ``IDEMPOTENCY_KEY_REUSED``, never retried; anything else that is not
an acceptance is a retry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from shared import strict_json
from shared.identity import mint_workflow_id
from shared.tenants import ACTIVE, PROVISIONING

# The message attribute a producer sets to make its retries idempotent (the
# queue's Idempotency-Key header).
IDEMPOTENCY_ATTRIBUTE = "IdempotencyKey"
# The dead-letter message attributes the router sets.
REASON_ATTRIBUTE = "Reason"


class Reason(str, Enum):
    """Why a record went to the dead-letter queue (its ``Reason`` attribute)."""

    MALFORMED_BODY = "MALFORMED_BODY"
    TENANT_IN_BODY = "TENANT_IN_BODY"
    SCHEMA_VIOLATION = "SCHEMA_VIOLATION"
    TENANT_NOT_ACTIVE = "TENANT_NOT_ACTIVE"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


@dataclass(frozen=True)
class QueueOwner:
    """The tenant whose start queue a record came from, and its status now."""

    tenant_id: str
    status: str


@dataclass(frozen=True)
class Start:
    """Start ``workflow:live`` for ``tenant_id`` with execution name ``workflow_id`` and ``payload``."""

    message_id: str
    tenant_id: str
    workflow_id: str
    payload: str


@dataclass(frozen=True)
class Refusal:
    """Send the record to the dead-letter queue with ``reason``; ``detail`` is for the log, never the body."""

    message_id: str
    reason: Reason
    detail: str
    tenant_id: str | None = None
    workflow_id: str | None = None


@dataclass(frozen=True)
class Retry:
    """Report the record as a batch item failure: SQS redelivers it after its visibility timeout."""

    message_id: str
    detail: str
    tenant_id: str | None = None
    workflow_id: str | None = None


Decision = Start | Refusal | Retry


def start_payload(workflow_id: str, request: Any) -> str:
    """The workflow's start event, byte for byte what POST /workflow's template renders.

    ``{"workflowId":"$context.authorizer.workflowId","request":$input.json('$')}``
    (src/shared/api_gateway/start_workflow.request.vtl): compact JSON, keys in
    the body's order. Lambda compares a repeated execution name's input with
    the first one's, so the same key over HTTP and over the queue must render
    the same bytes (tests/local/test_router_payload.py renders both).
    """
    body = json.dumps(request, separators=(",", ":"), ensure_ascii=False)
    return f'{{"workflowId":{json.dumps(workflow_id)},"request":{body}}}'


def is_tenant_key(key: str) -> bool:
    """Whether a body key names a tenant (``tenantId``, ``tenant_id``, ``x-tenant-id``, ``TENANT`` ...)."""
    return "tenant" in key.lower()


def idempotency_key(record: Mapping[str, Any]) -> tuple[str | None, bool]:
    """The record's ``IdempotencyKey`` attribute: ``(value or None, well formed)``.

    String and Number attributes carry a ``stringValue``; a Binary one does not
    and is refused rather than ignored (ignoring it would silently make the
    producer's retries start new workflows).
    """
    attribute = (record.get("messageAttributes") or {}).get(IDEMPOTENCY_ATTRIBUTE)
    if attribute is None:
        return None, True
    value = attribute.get("stringValue")
    if not isinstance(value, str) or value == "":
        return None, False
    return value, True


def decide(record: Mapping[str, Any], owner: QueueOwner | None,
           schema_problem: Callable[[Any], str | None]) -> Decision:
    """The decision for one record of the queue ``owner`` owns (None: no tenant owns it).

    Args:
        record: One record of Lambda's SQS event (``messageId``, ``body``, ``messageAttributes`` ...).
        owner: The queue's tenant and its status, from the tenant registry.
        schema_problem: POST /workflow's schema check: the violation's message, or None.
    """
    message_id = str(record.get("messageId") or "")
    try:
        body = strict_json.loads(record.get("body") or "")
    except (ValueError, RecursionError) as error:
        return Refusal(message_id, Reason.MALFORMED_BODY, f"not JSON: {str(error)[:120]}", _tenant(owner))
    if isinstance(body, dict):
        claimed = sorted(key for key in body if is_tenant_key(key))
        if claimed:
            return Refusal(message_id, Reason.TENANT_IN_BODY,
                           f"the body names a tenant ({', '.join(k[:64] for k in claimed[:3])}); "
                           "the queue decides the tenant", _tenant(owner))
    problem = schema_problem(body)
    if problem is not None:
        return Refusal(message_id, Reason.SCHEMA_VIOLATION, problem[:200], _tenant(owner))
    key, key_ok = idempotency_key(record)
    if not key_ok:
        return Refusal(message_id, Reason.SCHEMA_VIOLATION,
                       f"the {IDEMPOTENCY_ATTRIBUTE} attribute must be a non-empty String", _tenant(owner))
    if owner is None:
        return Retry(message_id, "no tenant owns this queue (yet)")
    workflow_id = mint_workflow_id(owner.tenant_id, key, message_id)
    if owner.status == PROVISIONING:
        return Retry(message_id, "the tenant is still being provisioned", owner.tenant_id, workflow_id)
    if owner.status != ACTIVE:
        return Refusal(message_id, Reason.TENANT_NOT_ACTIVE, f"the tenant is {owner.status}",
                       owner.tenant_id, workflow_id)
    return Start(message_id, owner.tenant_id, workflow_id, start_payload(workflow_id, body))


def decide_batch(records: Iterable[Mapping[str, Any]], owner_of: Callable[[str], QueueOwner | None],
                 schema_problem: Callable[[Any], str | None]) -> list[Decision]:
    """One decision per record, in order; ``owner_of`` is asked once per queue of the batch."""
    owners: dict[str, QueueOwner | None] = {}
    decisions: list[Decision] = []
    for record in records:
        source = str(record.get("eventSourceARN") or "")
        if source not in owners:
            owners[source] = owner_of(source)
        decisions.append(decide(record, owners[source], schema_problem))
    return decisions


# What an Invoke's error code means for the record (botocore's error codes).
# Everything not listed is a retry: throttling (TooManyRequestsException),
# the service failing (ServiceException, 5xx), the network, a timeout.
INVOKE_REFUSALS: dict[str, Reason] = {
    "DurableExecutionAlreadyStartedException": Reason.IDEMPOTENCY_KEY_REUSED,
}


def invoke_outcome(start: Start, error_code: str | None) -> Decision:
    """What an Invoke's answer makes of ``start``: ``error_code`` None (accepted) keeps it a Start.

    An Invoke of a name already used with the *same* input is accepted
    (Lambda's idempotent start), so a redelivered record counts as started.
    """
    if error_code is None:
        return start
    reason = INVOKE_REFUSALS.get(error_code)
    if reason is not None:
        return Refusal(start.message_id, reason, f"Invoke answered {error_code}", start.tenant_id, start.workflow_id)
    return Retry(start.message_id, f"Invoke answered {error_code}", start.tenant_id, start.workflow_id)


def batch_response(failed_message_ids: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """Lambda's partial batch response (``ReportBatchItemFailures``)."""
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed_message_ids]}


def _tenant(owner: QueueOwner | None) -> str | None:
    return owner.tenant_id if owner else None
