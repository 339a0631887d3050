"""Workflow registry in DynamoDB: who owns which workflow and callback, and how it ended.

Every key starts with the tenant id, so a lookup made for one tenant can never
return another tenant's item: cross-tenant access is a miss, not a filter.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from shared.contract import workflow_statuses

# The statuses are part of the public API: api_contract.json lists them and says
# which are final; the import fails if this enum and the contract ever disagree.
_STATUSES = workflow_statuses()


class WorkflowStatus(StrEnum):
    """A workflow's status, as the registry stores it and ``GET /workflow/{workflowId}`` shows it."""

    STARTED = "STARTED"
    WAITING_FOR_CALLBACK = "WAITING_FOR_CALLBACK"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_final(self) -> bool:
        """Whether the workflow has ended (api_contract.json says which statuses are final)."""
        return _STATUSES[self.value]


if set(WorkflowStatus) != set(_STATUSES):
    raise RuntimeError(f"workflow statuses differ from api_contract.json: {sorted(set(WorkflowStatus) ^ set(_STATUSES))}")

STARTED = WorkflowStatus.STARTED
WAITING_FOR_CALLBACK = WorkflowStatus.WAITING_FOR_CALLBACK
COMPLETED = WorkflowStatus.COMPLETED
REJECTED = WorkflowStatus.REJECTED
FAILED = WorkflowStatus.FAILED
TIMED_OUT = WorkflowStatus.TIMED_OUT
FINAL_STATUSES = frozenset(status for status in WorkflowStatus if status.is_final)
OPEN_STATUSES = frozenset(status for status in WorkflowStatus if not status.is_final)


class CallbackSettled(StrEnum):
    """How a callback ended, as the API learned it from the durable service (the callback item's ``settledAs``)."""

    ANSWERED = "ANSWERED"
    TIMED_OUT = "TIMED_OUT"


# DynamoDB's item limit is 400 KB, attribute names included. The result JSON of a
# workflow must leave room for the item's other attributes (ids, callbackId up to
# 1 KB, status, reason, timestamps).
MAX_ITEM_BYTES = 400 * 1024
ITEM_RESERVE_BYTES = 16 * 1024
MAX_RESULT_JSON_BYTES = MAX_ITEM_BYTES - ITEM_RESERVE_BYTES


def result_json(result: dict[str, Any]) -> str:
    """The stored form of a result: compact UTF-8 JSON, never NaN or Infinity.

    ``ensure_ascii`` would store each non-ASCII character as a 6-byte escape,
    tripling the size of a non-Latin payload.

    Raises:
        ValueError: The result holds a non-finite number (not JSON).
    """
    return json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


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


# The pending list (GET /workflows) reads one of two global secondary indexes,
# each partitioned by the tenant, so one Query per page reads one tenant's items
# only (never a Scan). ``byStatus``: partition ``<tenantId>#<status>``; ``open``:
# partition ``<tenantId>`` while the workflow is open (removed when it ends, so a
# final workflow leaves the open index). Both sort by ``createdKey``
# (``<createdAt, 10 digits>#<workflowId>``): newest first reading backwards, and
# unique, so a page boundary never splits equal keys. Only workflow items carry
# these attributes; callback and token items are in neither index.
STATUS_INDEX = "byStatus"
OPEN_INDEX = "open"
# The request summary the approval page shows: these fields of the start request, bounded.
MAX_SUMMARY_DESCRIPTION_CHARS = 256


def status_partition(tenant_id: str, status: str) -> str:
    """The ``byStatus`` index partition of one tenant's workflows in ``status`` (``#`` is never in a tenant id)."""
    return f"{tenant_id}#{status}"


def created_key(created_at: int, workflow_id: str) -> str:
    """The indexes' sort key: creation time first (sortable as text), then the id (unique)."""
    return f"{created_at:010d}#{workflow_id}"


def request_summary(request: Any) -> dict[str, Any] | None:
    """What the approval page shows of a start request: amount, currency, description (bounded), else None.

    Only well-typed fields are kept, whatever the request holds (a direct Invoke
    bypasses the API's request model); the description is cut to
    ``MAX_SUMMARY_DESCRIPTION_CHARS`` (the model's own limit).
    """
    if not isinstance(request, dict):
        return None
    summary: dict[str, Any] = {}
    amount = request.get("amount")
    if isinstance(amount, (int, float)) and not isinstance(amount, bool) and math.isfinite(amount):
        summary["amount"] = Decimal(str(amount))
    currency = request.get("currency")
    if isinstance(currency, str) and 0 < len(currency) <= 8:
        summary["currency"] = currency
    description = request.get("description")
    if isinstance(description, str) and description:
        summary["description"] = description[:MAX_SUMMARY_DESCRIPTION_CHARS]
    return summary or None


def token_key(token_hash: str) -> dict[str, str]:
    """Primary key of a callback token's item.

    A token names no tenant, so its item is found by the token's hash alone: the
    partition key holds ``token#<sha256>``, which can never be a tenant id (``#``
    is not allowed in one), so no tenant's lookup can reach it.
    """
    return {"tenantId": f"token#{token_hash}", "recordId": "token"}


@dataclass(frozen=True)
class WorkflowRecord:
    """A workflow as the registry knows it."""

    tenant_id: str
    workflow_id: str
    status: WorkflowStatus
    callback_id: str | None = None
    result: dict[str, Any] | None = None
    reason: str | None = None
    execution_arn: str | None = None
    callback_deadline: int | None = None
    updated_at: int | None = None
    repair_checked_at: int | None = None
    callback_token_hash: str | None = None
    created_at: int | None = None
    # amount (Decimal), currency, description of the start request (absent on items written before it was recorded)
    request_summary: dict[str, Any] | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> WorkflowRecord:
        """Build from a DynamoDB item."""
        raw_result = item.get("resultJson")
        return cls(
            tenant_id=str(item["tenantId"]),
            workflow_id=str(item["workflowId"]),
            status=WorkflowStatus(item["status"]),
            callback_id=item.get("callbackId"),
            result=json.loads(raw_result) if raw_result else None,
            reason=item.get("reason"),
            execution_arn=item.get("executionArn"),
            callback_deadline=_optional_int(item.get("callbackDeadline")),
            updated_at=_optional_int(item.get("updatedAt")),
            repair_checked_at=_optional_int(item.get("repairCheckedAt")),
            callback_token_hash=item.get("callbackTokenHash"),
            created_at=_optional_int(item.get("createdAt")),
            request_summary=item.get("requestSummary"),
        )

    @property
    def is_open(self) -> bool:
        """Still running as far as the registry knows (STARTED or WAITING_FOR_CALLBACK)."""
        return self.status in OPEN_STATUSES


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class CallbackClaim:
    """The outcome of :meth:`WorkflowRegistry.claim_callback`.

    Attributes:
        claimed: This request holds the lease and may deliver.
        settled_as: ``ANSWERED`` or ``TIMED_OUT`` once the callback is known to be over.
        lease_until: When another holder's lease ends (epoch seconds), if one holds it.
        found: False when the callback index item does not exist.
        settled_digest: Digest of the answer that settled it, when known.
        lease_digest: Digest of the answer the last lease holder was delivering.
    """

    claimed: bool
    settled_as: CallbackSettled | None = None
    lease_until: int | None = None
    found: bool = True
    settled_digest: str | None = None
    lease_digest: str | None = None


@dataclass(frozen=True)
class WorkflowPage:
    """One page of a tenant's workflows, newest first, and where the next page starts (None: the last page)."""

    records: tuple[WorkflowRecord, ...]
    last_key: dict[str, str] | None


def list_index(tenant_id: str, status: str | None) -> tuple[str, str, str]:
    """``(index, partition attribute, partition value)`` that lists ``tenant_id``'s workflows in ``status`` (None: open)."""
    if status is None:
        return OPEN_INDEX, "openPartition", tenant_id
    return STATUS_INDEX, "statusPartition", status_partition(tenant_id, status)


class WorkflowRegistry:
    """Reads and writes the registry table (a boto3 ``Table``)."""

    def __init__(self, table: Any, retention_seconds: int, clock: Any = time.time) -> None:
        self._table = table
        self._retention_seconds = retention_seconds
        self._clock = clock

    def claim_workflow(self, tenant_id: str, workflow_id: str, execution_arn: str, request: Any = None) -> bool:
        """Register a new workflow as STARTED, owned by ``execution_arn``.

        Records when it was created (``createdAt``, the pending list's order, in
        both indexes) and the start request's summary (``request_summary``: what
        the approval page shows).

        Returns False when another execution already owns the id (a duplicate
        start); True for the owner, also when its step runs again after a crash.
        """
        now = int(self._clock())
        summary = request_summary(request)
        try:
            self._table.put_item(
                Item={
                    **workflow_key(tenant_id, workflow_id),
                    "workflowId": workflow_id,
                    "status": STARTED,
                    "executionArn": execution_arn,
                    "createdAt": now,
                    "createdKey": created_key(now, workflow_id),
                    "statusPartition": status_partition(tenant_id, STARTED),
                    "openPartition": tenant_id,
                    "updatedAt": now,
                    "expiresAt": now + self._retention_seconds,
                    **({"requestSummary": summary} if summary else {}),
                },
                ConditionExpression="attribute_not_exists(recordId) OR executionArn = :arn",
                ExpressionAttributeValues={":arn": execution_arn},
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def register_callback(
        self, tenant_id: str, workflow_id: str, callback_id: str, timeout_seconds: int, *, token_hash: str | None = None
    ) -> int:
        """Record which callback (and token, by hash) ``workflow_id`` will wait for; return the deadline.

        The wait is not answerable yet: the workflow stays ``STARTED`` (both
        callback routes answer ``503``, ``GET`` shows no callbackId) until
        :meth:`mark_waiting`, which the submitter calls only once the external
        party has been told. So no answer is accepted for a wait the submitter
        may still fail to announce.

        The callback index (and the token item) are written first: if the last
        write fails, the submitter step is retried and every write is idempotent,
        so the registry never names a callback whose index cannot be found. The
        index is updated, not replaced, so a retry never wipes how an early
        answer settled it, nor moves the deadline its first attempt set. The
        workflow item keeps the token's hash (``callbackTokenHash``), so a read
        can tell without another lookup whether the token of the current signing
        key has its item. No write here changes the workflow's status.
        """
        now = int(self._clock())
        # The durable service started the callback's clock before the submitter
        # ran; a retried submitter must not move the deadline later. The first
        # attempt's deadline stays on the index and every write takes it from there.
        written = self._table.update_item(
            Key=callback_key(tenant_id, callback_id),
            UpdateExpression=("SET workflowId = :workflowId, callbackId = :callbackId, expiresAt = :expiresAt, "
                              "callbackDeadline = if_not_exists(callbackDeadline, :deadline)"),
            ExpressionAttributeValues={":workflowId": workflow_id, ":callbackId": callback_id,
                                       ":expiresAt": now + timeout_seconds + self._retention_seconds,
                                       ":deadline": now + timeout_seconds},
            ReturnValues="ALL_NEW",
        )
        deadline = int(written["Attributes"]["callbackDeadline"])
        expires_at = deadline + self._retention_seconds
        token_values: dict[str, Any] = {}
        if token_hash is not None:
            self._write_token_item(token_hash, tenant_id, workflow_id, callback_id, deadline)
            token_values[":tokenHash"] = token_hash
        self._table.update_item(
            Key=workflow_key(tenant_id, workflow_id),
            UpdateExpression=(
                "SET workflowId = :workflowId, callbackId = :callbackId, "
                "callbackDeadline = :deadline, updatedAt = :now, expiresAt = :expiresAt"
                + (", callbackTokenHash = :tokenHash" if token_values else "")
            ),
            ExpressionAttributeValues={
                ":workflowId": workflow_id,
                ":callbackId": callback_id,
                ":deadline": deadline,
                ":now": now,
                ":expiresAt": expires_at,
                **token_values,
            },
        )
        return deadline

    def mark_waiting(self, tenant_id: str, workflow_id: str, callback_id: str) -> bool:
        """Make the registered wait answerable: ``STARTED`` becomes ``WAITING_FOR_CALLBACK`` (idempotent).

        Conditional on the workflow naming ``callback_id`` and still being open,
        so a late or repeated submitter never reopens a workflow that ended.

        Returns:
            False when the workflow no longer waits for ``callback_id`` (it ended, or names another callback).
        """
        try:
            self._table.update_item(
                Key=workflow_key(tenant_id, workflow_id),
                UpdateExpression="SET #status = :waiting, statusPartition = :partition, updatedAt = :now",
                ConditionExpression="callbackId = :callbackId AND #status IN (:started, :waiting)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":waiting": WAITING_FOR_CALLBACK, ":started": STARTED,
                                           ":partition": status_partition(tenant_id, WAITING_FOR_CALLBACK),
                                           ":callbackId": callback_id, ":now": int(self._clock())},
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def is_waiting_for(self, tenant_id: str, workflow_id: str, callback_id: str) -> bool:
        """Whether the wait for ``callback_id`` is registered and answerable (``WAITING_FOR_CALLBACK``)."""
        record = self.get_workflow(tenant_id, workflow_id)
        return record is not None and record.status == WAITING_FOR_CALLBACK and record.callback_id == callback_id

    def reissue_token(self, record: WorkflowRecord, token_hash: str) -> bool:
        """Give a waiting workflow the token item of ``token_hash`` (the current signing key's token).

        After a key rotation the token a read hands out is new and has no item
        yet: write it (idempotent), then note its hash on the workflow. Tokens of
        the old key keep their items until TTL, but the token route refuses them
        (it recomputes the token with the current key).

        Returns:
            False when the workflow no longer waits for ``record.callback_id``.
        """
        if record.callback_id is None or record.callback_deadline is None:
            return False
        errors = self._table.meta.client.exceptions
        try:
            self._write_token_item(token_hash, record.tenant_id, record.workflow_id, record.callback_id,
                                   record.callback_deadline)
            self._table.update_item(
                Key=workflow_key(record.tenant_id, record.workflow_id),
                UpdateExpression="SET callbackTokenHash = :tokenHash",
                ConditionExpression="#status = :waiting AND callbackId = :callbackId",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":tokenHash": token_hash, ":waiting": WAITING_FOR_CALLBACK,
                                           ":callbackId": record.callback_id},
            )
        except errors.ConditionalCheckFailedException:
            return False
        return True

    def _write_token_item(self, token_hash: str, tenant_id: str, workflow_id: str, callback_id: str,
                          callback_deadline: int) -> None:
        """Write a token's item: owner, workflow, callback and its deadline; an item never changes owner.

        ``callbackDeadline`` is when the callback times out; ``expiresAt`` (the
        deadline plus the registry's retention) is when DynamoDB TTL deletes the item.
        """
        self._table.update_item(
            Key=token_key(token_hash),
            UpdateExpression=("SET ownerTenantId = :tenantId, workflowId = :workflowId, callbackId = :callbackId, "
                              "callbackDeadline = :deadline, expiresAt = :expiresAt"),
            ConditionExpression="attribute_not_exists(recordId) OR (ownerTenantId = :tenantId AND callbackId = :callbackId)",
            ExpressionAttributeValues={":tenantId": tenant_id, ":workflowId": workflow_id, ":callbackId": callback_id,
                                       ":deadline": callback_deadline,
                                       ":expiresAt": callback_deadline + self._retention_seconds},
        )

    def claim_repair_check(self, tenant_id: str, workflow_id: str, *, checked_before: int) -> bool:
        """Note that a read checks this open workflow against its execution now, unless one did after ``checked_before``.

        The conditional write is the rate limit: of many reads of one workflow,
        one asks the durable service per interval; the others serve the registry.

        Returns:
            False when another read checked it after ``checked_before``, or the workflow ended.
        """
        try:
            self._table.update_item(
                Key=workflow_key(tenant_id, workflow_id),
                UpdateExpression="SET repairCheckedAt = :now",
                ConditionExpression=("#status IN (:started, :waiting) AND "
                                     "(attribute_not_exists(repairCheckedAt) OR repairCheckedAt <= :before)"),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":now": int(self._clock()), ":before": checked_before,
                                           ":started": STARTED, ":waiting": WAITING_FOR_CALLBACK},
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def find_by_token(self, token_hash: str) -> WorkflowRecord | None:
        """The workflow a callback token belongs to (its owner tenant comes from the token's item only)."""
        item = self._table.get_item(Key=token_key(token_hash), ConsistentRead=True).get("Item")
        if not item:
            return None
        record = self.get_workflow(str(item["ownerTenantId"]), str(item["workflowId"]))
        if record is None or record.callback_id != item.get("callbackId"):
            return None
        return record

    def record_outcome(
        self,
        tenant_id: str,
        workflow_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        reason: str | None = None,
        only_if_open: bool = False,
    ) -> bool:
        """Set the final status of a workflow (the item exists: step one claimed it).

        Args:
            only_if_open: Write only over STARTED or WAITING_FOR_CALLBACK (a repair
                must never overwrite what the workflow itself recorded).

        Returns:
            False when ``only_if_open`` and the workflow had already ended.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"{status} is not a final status")
        now = int(self._clock())
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":status": status,
            ":workflowId": workflow_id,
            ":updatedAt": now,
            ":expiresAt": now + self._retention_seconds,
            ":partition": status_partition(tenant_id, status),
        }
        assignments = ["#status = :status", "workflowId = :workflowId", "updatedAt = :updatedAt", "expiresAt = :expiresAt",
                       "statusPartition = :partition"]
        if result is not None:
            assignments.append("resultJson = :resultJson")
            values[":resultJson"] = result_json(result)
        if reason is not None:
            assignments.append("reason = :reason")
            values[":reason"] = reason
        condition: dict[str, Any] = {}
        if only_if_open:
            condition["ConditionExpression"] = "#status IN (:started, :waiting)"
            values.update({":started": STARTED, ":waiting": WAITING_FOR_CALLBACK})
        try:
            self._table.update_item(
                Key=workflow_key(tenant_id, workflow_id),
                # A final workflow leaves the open index.
                UpdateExpression="SET " + ", ".join(assignments) + " REMOVE openPartition",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **condition,
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def claim_callback(
        self, tenant_id: str, callback_id: str, *, owner: str, lease_seconds: float, answer_digest: str | None = None
    ) -> CallbackClaim:
        """Take the lease to deliver ``callback_id``, unless another live request holds it.

        The lease has an owner (one API request: botocore's retries of this very
        write carry the same owner, so a first attempt that lands late cannot
        lock its own retry out) and an expiry later than the holder's function
        timeout, so a holder that was killed never blocks the callback for good.

        Returns:
            ``claimed=True`` for the holder; otherwise who holds it until when, or
            how the callback settled, or ``found=False``.
        """
        now = self._clock()
        try:
            self._table.update_item(
                Key=callback_key(tenant_id, callback_id),
                UpdateExpression="SET claimOwner = :owner, leaseUntil = :until, leaseDigest = :digest",
                ConditionExpression=(
                    "attribute_exists(recordId) AND attribute_not_exists(settledAs) AND "
                    "(attribute_not_exists(claimOwner) OR claimOwner = :owner OR leaseUntil < :now)"
                ),
                ExpressionAttributeValues={":owner": owner, ":until": int(now + lease_seconds) + 1, ":now": int(now),
                                           ":digest": answer_digest or ""},
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return self.callback_claim(tenant_id, callback_id)
        return CallbackClaim(claimed=True)

    def callback_claim(self, tenant_id: str, callback_id: str) -> CallbackClaim:
        """Who holds ``callback_id``'s lease, or how it settled (``claimed`` is always False)."""
        item = self._table.get_item(Key=callback_key(tenant_id, callback_id), ConsistentRead=True).get("Item")
        if not item:
            return CallbackClaim(claimed=False, found=False)
        lease_until = _optional_int(item.get("leaseUntil"))
        settled_as = item.get("settledAs")
        return CallbackClaim(claimed=False, settled_as=CallbackSettled(settled_as) if settled_as else None,
                             lease_until=lease_until,
                             settled_digest=item.get("settledDigest"), lease_digest=item.get("leaseDigest") or None)

    def release_callback(self, tenant_id: str, callback_id: str, *, owner: str) -> None:
        """Give the lease back after a delivery that may be retried (no-op if it moved on)."""
        try:
            self._table.update_item(
                Key=callback_key(tenant_id, callback_id),
                UpdateExpression="REMOVE claimOwner, leaseUntil",
                ConditionExpression="claimOwner = :owner AND attribute_not_exists(settledAs)",
                ExpressionAttributeValues={":owner": owner},
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            pass

    def settle_callback(self, tenant_id: str, callback_id: str, settled_as: CallbackSettled, answer_digest: str | None = None) -> None:
        """Record how the callback ended, and by which answer if known (first writer wins)."""
        assignments = ["settledAs = if_not_exists(settledAs, :settled)"]
        values = {":settled": settled_as}
        if answer_digest is not None:
            assignments.append("settledDigest = if_not_exists(settledDigest, :digest)")
            values[":digest"] = answer_digest
        self._table.update_item(
            Key=callback_key(tenant_id, callback_id),
            UpdateExpression="SET " + ", ".join(assignments),
            ConditionExpression="attribute_exists(recordId)",
            ExpressionAttributeValues=values,
        )

    def get_workflow(self, tenant_id: str, workflow_id: str) -> WorkflowRecord | None:
        """Return the calling tenant's workflow, or None (also for another tenant's id)."""
        item = self._table.get_item(Key=workflow_key(tenant_id, workflow_id), ConsistentRead=True).get("Item")
        return WorkflowRecord.from_item(item) if item else None

    def list_workflows(self, tenant_id: str, status: str | None, limit: int,
                       start_key: dict[str, str] | None = None) -> WorkflowPage:
        """One page of ``tenant_id``'s workflows in ``status`` (None: every open one), newest first: one Query.

        The Query's partition is the tenant's own (``list_index``), so no
        ``start_key`` can reach another tenant's items; the index is eventually
        consistent (a workflow started a moment ago may show on the next read).

        Args:
            start_key: The previous page's ``last_key`` (the caller verifies it is this tenant's).
        """
        index, attribute, value = list_index(tenant_id, status)
        arguments: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": "#partition = :partition",
            "ExpressionAttributeNames": {"#partition": attribute},
            "ExpressionAttributeValues": {":partition": value},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start_key:
            arguments["ExclusiveStartKey"] = start_key
        page = self._table.query(**arguments)
        records = tuple(WorkflowRecord.from_item(item) for item in page.get("Items") or [])
        last = page.get("LastEvaluatedKey")
        return WorkflowPage(records, {str(k): str(v) for k, v in last.items()} if last else None)

    def find_by_callback(self, tenant_id: str, callback_id: str) -> WorkflowRecord | None:
        """Return the calling tenant's workflow waiting on ``callback_id``, or None."""
        index = self._table.get_item(Key=callback_key(tenant_id, callback_id), ConsistentRead=True).get("Item")
        if not index or index.get("callbackId") != callback_id:
            return None
        return self.get_workflow(tenant_id, str(index["workflowId"]))
