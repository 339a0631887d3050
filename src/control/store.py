"""The control plane's writes to the tenants table and its calls to the provisioner (I/O edge).

Every status move is conditional on the status (and generation) it was
decided from, and moves the capacity ledger in the same transaction
(``shared.tenants.settle_status``), so two requests at once can never both win.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Attr

from control.requests import PRODUCERS_FIELD, CreateRequest, ListRequest, PatchRequest
from shared.tenants import (
    ACTIVE,
    CREATE,
    FAILED,
    OFFBOARD,
    OFFBOARD_OPERATION,
    OFFBOARDED,
    OFFBOARDING,
    ONBOARD_OPERATION,
    PROVISIONING,
    RECONCILE_OPERATION,
    SUSPENDED,
    TransitionRefused,
    capacity_problem,
    ledger_update,
    next_status,
    provisioning_execution_name,
    read_capacity,
    refusal_reason,
    serialized,
    settle_status,
    tiers,
)

# The provisioner is published; the control plane starts its executions on this alias.
PROVISIONER_ALIAS = "live"
# Fields a tier change or a policy change may not touch on a tenant in these statuses.
CHANGEABLE_STATUSES = frozenset({ACTIVE, SUSPENDED, PROVISIONING})


class TenantNotFound(Exception):
    """No tenant with this id (404)."""


class Conflict(Exception):
    """The request does not fit the tenant's status or the capacity (409, the message says why)."""


class ProvisioningNotStarted(Exception):
    """The provisioner could not be invoked; the tenant was marked FAILED (503, the operator retries)."""


@dataclass(frozen=True)
class StageThrottle:
    """The stage's default method throttle, shared by every tenant."""

    rate: float
    burst: int


class TenantStore:
    """The tenants table as the admin API changes it.

    Args:
        table: The tenants table (a boto3 ``Table``).
        lambda_client: Starts the provisioner's executions.
        provisioner_function: The provisioner's name.
        stage: The stage's throttle, which the tenants' tiers must fit.
        clock: Epoch seconds.
    """

    def __init__(self, table: Any, lambda_client: Any, provisioner_function: str, stage: StageThrottle,
                 clock: Any = time.time) -> None:
        self.table = table
        self.lambda_client = lambda_client
        self.provisioner_function = provisioner_function
        self.stage = stage
        self.clock = clock

    def now(self) -> int:
        return int(self.clock())

    # -- reads ------------------------------------------------------------------------------------

    def get(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's item (strongly consistent). Raises :class:`TenantNotFound`."""
        item = self.table.get_item(Key={"tenantId": tenant_id}, ConsistentRead=True).get("Item")
        if item is None:
            raise TenantNotFound(tenant_id)
        return item

    def list(self, request: ListRequest) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of tenants and the key to go on from (None on the last page).

        A Scan of the tenants table (one item per tenant, never the registry),
        filtered: the capacity ledger is never listed, OFFBOARDED tombstones only
        when asked for. Scans are repeated until the page is full, each one
        limited to what is missing, so the key returned is exactly where this
        page stopped.
        """
        condition = Attr("status").exists()
        condition &= Attr("status").eq(request.status) if request.status else Attr("status").ne(OFFBOARDED)
        items: list[dict[str, Any]] = []
        start_key = request.start_key
        while len(items) < request.limit:
            arguments: dict[str, Any] = {"FilterExpression": condition, "Limit": request.limit - len(items),
                                         "ConsistentRead": True}
            if start_key:
                arguments["ExclusiveStartKey"] = start_key
            page = self.table.scan(**arguments)
            items.extend(page.get("Items", []))
            start_key = page.get("LastEvaluatedKey")
            if not start_key:
                break
        return items, start_key

    # -- onboarding -------------------------------------------------------------------------------

    def create(self, request: CreateRequest, key_hash: str) -> dict[str, Any]:
        """Write the tenant as PROVISIONING with its key hash and start its onboarding.

        Raises:
            Conflict: It exists and is not FAILED (its provisioning is nudged if it is
                PROVISIONING), or its tier does not fit the stage's throttle.
            ProvisioningNotStarted: The provisioner could not be invoked.
        """
        existing = self.table.get_item(Key={"tenantId": request.tenant_id}, ConsistentRead=True).get("Item")
        current = str(existing["status"]) if existing else None
        if next_status(current, CREATE) is None:
            if current == PROVISIONING and existing is not None:
                # A control plane killed between its write and its Invoke left the tenant
                # waiting for an execution: the same name starts it now, or names the
                # running one (Lambda starts one execution per name and input).
                self._start(ONBOARD_OPERATION, request.tenant_id, int(existing.get("generation", 0)))
            raise Conflict(refusal_reason(current, CREATE))
        tier = tiers()[request.tier]
        problem = capacity_problem(read_capacity(self.table), tier, self.stage.rate, self.stage.burst)
        if problem:
            raise Conflict(problem)
        generation = int(existing.get("generation", 0)) + 1 if existing else 1
        now = self.now()
        item = {"tenantId": request.tenant_id, "status": PROVISIONING, "tier": request.tier, **request.policy,
                "apiKeyHash": key_hash, "generation": generation, "createdAt": now, "updatedAt": now}
        put: dict[str, Any] = {"TableName": self.table.name, "Item": serialized(item)}
        if existing is None:
            put["ConditionExpression"] = "attribute_not_exists(tenantId)"
        else:
            put["ConditionExpression"] = "#status = :failed AND #generation = :generation"
            put["ExpressionAttributeNames"] = {"#status": "status", "#generation": "generation"}
            put["ExpressionAttributeValues"] = serialized({":failed": FAILED,
                                                          ":generation": int(existing.get("generation", 0))})
        client = self.table.meta.client
        try:
            client.transact_write_items(TransactItems=[
                {"Put": put}, ledger_update(self.table.name, tier, 1, self.stage.rate, self.stage.burst)])
        except client.exceptions.TransactionCanceledException as error:
            reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed" and reasons[0] != "ConditionalCheckFailed":
                raise Conflict(capacity_problem(read_capacity(self.table), tier, self.stage.rate, self.stage.burst)
                               or "capacity: the stage's throttle is spent") from error
            raise Conflict("tenant already exists (another request created it first)") from error
        self._start_or_fail(ONBOARD_OPERATION, request.tenant_id, generation, expected=PROVISIONING)
        return item

    # -- changes ----------------------------------------------------------------------------------

    def patch(self, tenant_id: str, request: PatchRequest) -> tuple[dict[str, Any], str | None]:
        """Apply a status, tier or policy change; returns the item and the tier it left (if it changed).

        Raises:
            TenantNotFound, Conflict.
        """
        item = self.get(tenant_id)
        current = str(item["status"])
        if request.status is not None:
            event = "suspend" if request.status == SUSPENDED else "activate"
            if next_status(current, event) is None:
                raise Conflict(refusal_reason(current, event))
        if (request.tier is not None or request.policy) and current not in CHANGEABLE_STATUSES:
            raise Conflict(f"the tenant is {current}; only an ACTIVE, SUSPENDED or PROVISIONING tenant can change")
        old_tier = str(item["tier"])
        tier_changes = request.tier is not None and request.tier != old_tier
        if tier_changes and current == PROVISIONING:
            raise Conflict("the tenant is being provisioned; change its tier once it is ACTIVE")
        # New producers of the start queue: its policy is rewritten by a reconcile, as a tier's key move.
        producers = request.policy.get(PRODUCERS_FIELD)
        producers_change = producers is not None and producers != sorted(str(p) for p in item.get(PRODUCERS_FIELD) or [])
        if producers_change and current == PROVISIONING:
            raise Conflict("the tenant is being provisioned; change its start queue producers once it is ACTIVE")
        fields: dict[str, Any] = dict(request.policy)
        if request.status is not None:
            fields["status"] = request.status
        if request.tier is not None:
            fields["tier"] = request.tier
        fields["updatedAt"] = self.now()
        names = {f"#f{index}": name for index, name in enumerate(fields)}
        values = {f":f{index}": value for index, value in enumerate(fields.values())}
        names.update({"#status": "status", "#tier": "tier"})
        values.update({":current": current, ":oldTier": old_tier})
        update: dict[str, Any] = {
            "TableName": self.table.name,
            "Key": serialized({"tenantId": tenant_id}),
            "UpdateExpression": "SET " + ", ".join(f"#f{index} = :f{index}" for index in range(len(fields))),
            "ConditionExpression": "#status = :current AND #tier = :oldTier",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialized(values),
        }
        actions: list[dict[str, Any]] = [{"Update": update}]
        generation = int(item.get("generation", 0))
        if tier_changes or producers_change:
            # A new generation: the provisioner's reconcile execution of it moves the metering key
            # and rewrites the start queue's policy.
            generation += 1
            update["UpdateExpression"] += ", #generation = :generation"
            update["ExpressionAttributeNames"]["#generation"] = "generation"
            update["ExpressionAttributeValues"].update(serialized({":generation": generation}))
        if tier_changes:
            new, old = tiers()[str(request.tier)], tiers()[old_tier]
            problem = capacity_problem(read_capacity(self.table), new, self.stage.rate, self.stage.burst, removing=old)
            if problem:
                raise Conflict(problem)
            # One transaction may touch the ledger once: the difference of the two tiers,
            # within the stage's throttle once the old tier's share is given back.
            ledger = ledger_update(self.table.name, new, 1, self.stage.rate, self.stage.burst)["Update"]
            ledger["ExpressionAttributeValues"] = serialized({
                ":rate": new.rate_limit - old.rate_limit, ":burst": new.burst_limit - old.burst_limit,
                ":rateRoom": self.stage.rate - new.rate_limit + old.rate_limit,
                ":burstRoom": self.stage.burst - new.burst_limit + old.burst_limit,
            })
            actions.append({"Update": ledger})
        client = self.table.meta.client
        try:
            client.transact_write_items(TransactItems=actions)
        except client.exceptions.TransactionCanceledException as error:
            reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed" and reasons[0] != "ConditionalCheckFailed":
                raise Conflict("capacity: the stage's throttle is spent") from error
            raise Conflict("the tenant changed meanwhile; read it and try again") from error
        if tier_changes or producers_change:
            self._start(RECONCILE_OPERATION, tenant_id, generation)
        return self.get(tenant_id), old_tier if tier_changes else None

    def rotate(self, tenant_id: str, new_hash: str, overlap_seconds: int) -> int:
        """Make ``new_hash`` the tenant's key; the current one stays valid ``overlap_seconds`` more.

        Returns:
            When the previous key stops working (epoch seconds; now for an overlap of 0).
        """
        item = self.get(tenant_id)
        if item["status"] not in (ACTIVE, SUSPENDED):
            raise Conflict(f"the tenant is {item['status']}; only an ACTIVE or SUSPENDED tenant's key can rotate")
        now = self.now()
        expires_at = now + overlap_seconds
        values: dict[str, Any] = {":new": new_hash, ":current": item["apiKeyHash"], ":now": now}
        if overlap_seconds > 0:
            expression = ("SET apiKeyHash = :new, previousApiKeyHash = :current, "
                          "previousApiKeyExpiresAt = :expires, updatedAt = :now")
            values[":expires"] = expires_at
        else:
            expression = "SET apiKeyHash = :new, updatedAt = :now REMOVE previousApiKeyHash, previousApiKeyExpiresAt"
        try:
            self.table.update_item(Key={"tenantId": tenant_id}, UpdateExpression=expression,
                                   ConditionExpression="apiKeyHash = :current", ExpressionAttributeValues=values)
        except self.table.meta.client.exceptions.ConditionalCheckFailedException as error:
            raise Conflict("the key was rotated meanwhile; try again") from error
        return expires_at

    # -- offboarding ------------------------------------------------------------------------------

    def offboard(self, tenant_id: str) -> str:
        """Start the tenant's offboarding; returns its status (OFFBOARDING, or OFFBOARDED when done)."""
        item = self.get(tenant_id)
        current = str(item["status"])
        target = next_status(current, OFFBOARD)
        if target is None:
            raise Conflict(refusal_reason(current, OFFBOARD))
        generation = int(item.get("generation", 0))
        if current == OFFBOARDED:
            return OFFBOARDED
        if current == OFFBOARDING:
            # Repeated: the running execution's name (no second one), started if it never was.
            self._start(OFFBOARD_OPERATION, tenant_id, generation)
            return OFFBOARDING
        try:
            settle_status(self.table, tenant_id, expected=current, generation=generation, new_status=OFFBOARDING,
                          now=self.now(), set_fields={"generation": generation + 1})
        except TransitionRefused as error:
            raise Conflict("the tenant changed meanwhile; read it and try again") from error
        self._start_or_fail(OFFBOARD_OPERATION, tenant_id, generation + 1, expected=OFFBOARDING)
        return OFFBOARDING

    # -- the provisioner --------------------------------------------------------------------------

    def _start(self, operation: str, tenant_id: str, generation: int) -> None:
        """Start (or name again) the provisioning execution of this operation and generation."""
        payload = json.dumps({"operation": operation, "tenantId": tenant_id, "generation": generation})
        self.lambda_client.invoke(
            FunctionName=f"{self.provisioner_function}:{PROVISIONER_ALIAS}", InvocationType="Event",
            DurableExecutionName=provisioning_execution_name(operation, tenant_id, generation),
            Payload=payload.encode())

    def _start_or_fail(self, operation: str, tenant_id: str, generation: int, *, expected: str) -> None:
        """Start the execution; if Lambda refuses, the tenant ends FAILED with the reason (never stuck)."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            self._start(operation, tenant_id, generation)
        except (ClientError, BotoCoreError) as error:
            code = error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
            reason = f"could not start the {operation} execution ({code}); repeat the request to retry"
            try:
                settle_status(self.table, tenant_id, expected=expected, generation=generation, new_status=FAILED,
                              now=self.now(), reason=reason)
            except TransitionRefused:
                pass  # the execution did start after all and moved the tenant on
            raise ProvisioningNotStarted(reason) from error
