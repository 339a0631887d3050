"""Workflow registry in DynamoDB: who owns which workflow and callback, and how it ended.

Every key starts with the tenant id, so a lookup made for one tenant can never
return another tenant's item: cross-tenant access is a miss, not a filter.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

STARTED = "STARTED"
WAITING_FOR_CALLBACK = "WAITING_FOR_CALLBACK"
COMPLETED = "COMPLETED"
REJECTED = "REJECTED"
FAILED = "FAILED"
TIMED_OUT = "TIMED_OUT"
FINAL_STATUSES = frozenset({COMPLETED, REJECTED, FAILED, TIMED_OUT})


def workflow_key(tenant_id: str, workflow_id: str) -> dict[str, str]:
    """Primary key of a workflow item."""
    return {"tenantId": tenant_id, "recordId": f"workflow#{workflow_id}"}


def callback_key(tenant_id: str, callback_id: str) -> dict[str, str]:
    """Primary key of the callback index item.

    Callback ids are opaque tokens that can approach DynamoDB's 1 KB sort-key
    limit, so the key holds their SHA-256 instead.
    """
    digest = hashlib.sha256(callback_id.encode("utf-8")).hexdigest()
    return {"tenantId": tenant_id, "recordId": f"callback#{digest}"}


@dataclass(frozen=True)
class WorkflowRecord:
    """A workflow as the registry knows it."""

    tenant_id: str
    workflow_id: str
    status: str
    callback_id: str | None = None
    result: dict[str, Any] | None = None
    reason: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> WorkflowRecord:
        """Build from a DynamoDB item."""
        raw_result = item.get("resultJson")
        return cls(
            tenant_id=str(item["tenantId"]),
            workflow_id=str(item["workflowId"]),
            status=str(item["status"]),
            callback_id=item.get("callbackId"),
            result=json.loads(raw_result) if raw_result else None,
            reason=item.get("reason"),
        )


class WorkflowRegistry:
    """Reads and writes the registry table (a boto3 ``Table``)."""

    def __init__(self, table: Any, retention_seconds: int, clock: Any = time.time) -> None:
        self._table = table
        self._retention_seconds = retention_seconds
        self._clock = clock

    def claim_workflow(self, tenant_id: str, workflow_id: str, execution_arn: str) -> bool:
        """Register a new workflow as STARTED, owned by ``execution_arn``.

        Returns False when another execution already owns the id (a duplicate
        start); True for the owner, also when its step runs again after a crash.
        """
        now = int(self._clock())
        try:
            self._table.put_item(
                Item={
                    **workflow_key(tenant_id, workflow_id),
                    "workflowId": workflow_id,
                    "status": STARTED,
                    "executionArn": execution_arn,
                    "updatedAt": now,
                    "expiresAt": now + self._retention_seconds,
                },
                ConditionExpression="attribute_not_exists(recordId) OR executionArn = :arn",
                ExpressionAttributeValues={":arn": execution_arn},
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def register_waiting(self, tenant_id: str, workflow_id: str, callback_id: str, timeout_seconds: int) -> None:
        """Record that ``workflow_id`` waits for ``callback_id``.

        The callback index is written first: if the second write fails, the
        submitter step is retried and both puts are idempotent, so the
        registry never holds a waiting workflow whose callback cannot be found.
        """
        now = int(self._clock())
        expires_at = now + timeout_seconds + self._retention_seconds
        self._table.put_item(
            Item={
                **callback_key(tenant_id, callback_id),
                "workflowId": workflow_id,
                "callbackId": callback_id,
                "expiresAt": expires_at,
            }
        )
        self._table.update_item(
            Key=workflow_key(tenant_id, workflow_id),
            UpdateExpression=(
                "SET #status = :status, workflowId = :workflowId, callbackId = :callbackId, "
                "callbackDeadline = :deadline, updatedAt = :now, expiresAt = :expiresAt"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":status": WAITING_FOR_CALLBACK,
                ":workflowId": workflow_id,
                ":callbackId": callback_id,
                ":deadline": now + timeout_seconds,
                ":now": now,
                ":expiresAt": expires_at,
            },
        )

    def record_outcome(
        self,
        tenant_id: str,
        workflow_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> None:
        """Set the final status of a workflow (the item exists: step one claimed it)."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"{status} is not a final status")
        now = int(self._clock())
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":status": status,
            ":workflowId": workflow_id,
            ":updatedAt": now,
            ":expiresAt": now + self._retention_seconds,
        }
        assignments = ["#status = :status", "workflowId = :workflowId", "updatedAt = :updatedAt", "expiresAt = :expiresAt"]
        if result is not None:
            assignments.append("resultJson = :resultJson")
            values[":resultJson"] = json.dumps(result, sort_keys=True)
        if reason is not None:
            assignments.append("reason = :reason")
            values[":reason"] = reason
        self._table.update_item(
            Key=workflow_key(tenant_id, workflow_id),
            UpdateExpression="SET " + ", ".join(assignments),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def claim_callback(self, tenant_id: str, callback_id: str) -> bool:
        """Atomically mark ``callback_id`` as being answered; False if someone else already did.

        This makes the API deliver a callback at most once even when many
        identical requests race, whatever the durable service would do with them.
        """
        try:
            self._table.update_item(
                Key=callback_key(tenant_id, callback_id),
                UpdateExpression="SET claimedAt = :now",
                ConditionExpression="attribute_exists(recordId) AND attribute_not_exists(claimedAt)",
                ExpressionAttributeValues={":now": int(self._clock())},
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_callback(self, tenant_id: str, callback_id: str) -> None:
        """Undo :meth:`claim_callback` after a delivery that may be retried."""
        self._table.update_item(Key=callback_key(tenant_id, callback_id), UpdateExpression="REMOVE claimedAt")

    def get_workflow(self, tenant_id: str, workflow_id: str) -> WorkflowRecord | None:
        """Return the calling tenant's workflow, or None (also for another tenant's id)."""
        item = self._table.get_item(Key=workflow_key(tenant_id, workflow_id), ConsistentRead=True).get("Item")
        return WorkflowRecord.from_item(item) if item else None

    def find_by_callback(self, tenant_id: str, callback_id: str) -> WorkflowRecord | None:
        """Return the calling tenant's workflow waiting on ``callback_id``, or None."""
        index = self._table.get_item(Key=callback_key(tenant_id, callback_id), ConsistentRead=True).get("Item")
        if not index or index.get("callbackId") != callback_id:
            return None
        return self.get_workflow(tenant_id, str(index["workflowId"]))
