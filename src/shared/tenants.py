"""Tenants: the typed record, the lifecycle's statuses and transitions, tiers, capacity, resource names.

Everything here is pure except the two table reads at the end. The control
plane (src/control), the provisioner (src/provisioner), the authorizer, the
workflow and the local stack all decide from these functions, so a rule lives
in one place and is tested as a table (tests/unit/shared/test_tenants.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

# -- statuses and the lifecycle -------------------------------------------------------------------

PROVISIONING = "PROVISIONING"
ACTIVE = "ACTIVE"
SUSPENDED = "SUSPENDED"
OFFBOARDING = "OFFBOARDING"
OFFBOARDED = "OFFBOARDED"
FAILED = "FAILED"
STATUSES = (PROVISIONING, ACTIVE, SUSPENDED, OFFBOARDING, OFFBOARDED, FAILED)

# What moves a tenant from one status to another: the admin API's requests and
# the provisioner's outcomes. ``None`` as the current status: no item yet.
CREATE = "create"  # POST /tenants
SUSPEND = "suspend"  # PATCH {"status": "SUSPENDED"}
ACTIVATE = "activate"  # PATCH {"status": "ACTIVE"}
OFFBOARD = "offboard"  # DELETE /tenants/{tenantId}
PROVISIONED = "provisioned"  # the provisioner's onboarding finished
OFFBOARDING_DONE = "offboarded"  # the provisioner's offboarding finished
STEP_FAILED = "failed"  # a provisioner step could not finish

# (current status, event) -> next status. Anything absent is refused (409).
# Repeating a request that already took effect is allowed and changes nothing
# (suspend a SUSPENDED tenant, offboard an OFFBOARDING or OFFBOARDED one).
TRANSITIONS: dict[tuple[str | None, str], str] = {
    (None, CREATE): PROVISIONING,
    (FAILED, CREATE): PROVISIONING,  # POST again retries a failed onboarding (a new key)
    (ACTIVE, SUSPEND): SUSPENDED,
    (SUSPENDED, SUSPEND): SUSPENDED,
    (SUSPENDED, ACTIVATE): ACTIVE,
    (ACTIVE, ACTIVATE): ACTIVE,
    (ACTIVE, OFFBOARD): OFFBOARDING,
    (SUSPENDED, OFFBOARD): OFFBOARDING,
    (FAILED, OFFBOARD): OFFBOARDING,  # removes whatever a failed provisioning left
    (OFFBOARDING, OFFBOARD): OFFBOARDING,
    (OFFBOARDED, OFFBOARD): OFFBOARDED,
    (PROVISIONING, PROVISIONED): ACTIVE,
    (PROVISIONING, STEP_FAILED): FAILED,
    (OFFBOARDING, OFFBOARDING_DONE): OFFBOARDED,
    (OFFBOARDING, STEP_FAILED): FAILED,
}


def next_status(current: str | None, event: str) -> str | None:
    """The status ``event`` moves a tenant in ``current`` to; ``None`` when the move is refused."""
    return TRANSITIONS.get((current, event))


def refusal_reason(current: str | None, event: str) -> str:
    """Why ``event`` is refused for a tenant in ``current`` (the 409's message)."""
    if current is None:
        return "no such tenant"
    if event == CREATE:
        return f"tenant already exists ({current}); only a FAILED onboarding can be retried"
    if event in (SUSPEND, ACTIVATE):
        return f"status moves only between ACTIVE and SUSPENDED; the tenant is {current}"
    if event == OFFBOARD and current == PROVISIONING:
        return "the tenant is being provisioned; offboard it once it is ACTIVE or FAILED"
    return f"the tenant is {current}"


# The statuses whose tier counts against the stage's throttle: the tenant has,
# or is getting, a metering key in its tier's usage plan and may be reactivated.
CAPACITY_STATUSES = frozenset({PROVISIONING, ACTIVE, SUSPENDED})


def counts_against_capacity(status: str | None) -> bool:
    """Whether a tenant in ``status`` holds a share of the stage's throttle."""
    return status in CAPACITY_STATUSES


def capacity_sign(old_status: str | None, new_status: str | None) -> int:
    """+1 when a move takes a share of the stage's throttle, -1 when it frees one, else 0."""
    return int(counts_against_capacity(new_status)) - int(counts_against_capacity(old_status))


# The error the provisioner fails a waiting workflow's callback with when its
# tenant is offboarded; the workflow ends FAILED with OFFBOARDED_REASON. The SDK
# hands the workflow the error's message and data, not its type, and the public
# callback routes never send ErrorData: so the data marks the offboarding, and
# no tenant's external system can forge it.
OFFBOARDED_ERROR_TYPE = "TenantOffboarded"
OFFBOARDED_ERROR_DATA = json.dumps({"errorType": OFFBOARDED_ERROR_TYPE})
OFFBOARDED_REASON = "the tenant was offboarded"


# -- tiers ----------------------------------------------------------------------------------------

TIERS_FILE = Path(__file__).resolve().parent / "tiers.json"


@dataclass(frozen=True)
class Tier:
    """A tier's usage plan: requests per second, burst, requests per UTC day."""

    name: str
    rate_limit: float
    burst_limit: int
    daily_quota: int


@cache
def tiers() -> dict[str, Tier]:
    """The tiers of ``tiers.json`` by name (Terraform makes one usage plan of each)."""
    data = json.loads(TIERS_FILE.read_text(encoding="utf-8"))["tiers"]
    return {
        name: Tier(name, float(spec["rateLimit"]), int(spec["burstLimit"]), int(spec["dailyQuota"]))
        for name, spec in data.items()
    }


@dataclass(frozen=True)
class Capacity:
    """The sums of the rates and bursts of the tenants that count against the stage's throttle."""

    rate: float = 0.0
    burst: int = 0

    def plus(self, tier: Tier, sign: int = 1) -> Capacity:
        """These sums with ``tier`` added (``sign`` 1) or removed (-1)."""
        return Capacity(self.rate + sign * tier.rate_limit, self.burst + sign * tier.burst_limit)


def capacity_problem(used: Capacity, adding: Tier, stage_rate: float, stage_burst: int,
                     removing: Tier | None = None) -> str | None:
    """Why a tenant of ``adding`` (replacing one of ``removing``, for a tier change) does not fit; None if it does.

    The stage's default method throttle is shared by every tenant: if the
    tenants' plans add up to more, a tenant within its plan could still be
    throttled because of the others.
    """
    after = used.plus(adding)
    if removing is not None:
        after = after.plus(removing, -1)
    if after.rate > stage_rate:
        return (f"capacity: the tenants' rates would add up to {after.rate:g} requests per second, more than the "
                f"stage's throttle of {stage_rate:g} (raise throttling_rate_limit or offboard a tenant)")
    if after.burst > stage_burst:
        return (f"capacity: the tenants' bursts would add up to {after.burst}, more than the stage's burst of "
                f"{stage_burst} (raise throttling_burst_limit or offboard a tenant)")
    return None


# -- per-tenant resource names --------------------------------------------------------------------

# EventBridge rule names: [.-_A-Za-z0-9]{1,64}; SQS queue names: [A-Za-z0-9_-]{1,80};
# durable execution names: [a-zA-Z0-9-_]{1,64}. Tenant ids: [A-Za-z0-9._-]{1,64}.
RULE_NAME_MAX = 64
QUEUE_NAME_MAX = 80
EXECUTION_NAME_MAX = 64
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+")
# The readable form of a callback queue and rule name, and the hashed one. The two
# infixes differ at their 10th character ("-" or "h"), so a readable name can
# never be the hashed name of another tenant.
READABLE_INFIX = "callbacks-"
HASHED_INFIX = "callbacksh-"
MIN_HASH_CHARS = 16  # at least 64 bits of SHA-256


def tenant_digest(tenant_id: str, length: int = 64) -> str:
    """Hex SHA-256 of a tenant id, cut to ``length`` characters."""
    return hashlib.sha256(tenant_id.encode("utf-8")).hexdigest()[:length]


@dataclass(frozen=True)
class TenantResourceNames:
    """The names of one tenant's runtime resources."""

    callback_queue: str
    callback_rule: str
    metering_key: str


def tenant_resource_names(prefix: str, tenant_id: str) -> TenantResourceNames:
    """Every per-tenant resource name, short enough for the longest valid tenant id.

    ``<prefix>-callbacks-<tenantId>`` when that is a valid rule and queue name
    (no ``.``, at most 64 characters: the rule's limit, the tighter one), else
    ``<prefix>-callbacksh-<hex of SHA-256(tenantId)>`` cut to 64 characters
    (with Terraform's longest prefix, 32 characters, 20 hex digits: 80 bits).
    The metering key's name
    (API Gateway allows 1024 characters) is ``<prefix>-<tenantId>``, and a tag
    names the tenant.
    """
    readable = f"{prefix}-{READABLE_INFIX}{tenant_id}"
    if _SAFE_NAME.fullmatch(tenant_id) and len(readable) <= RULE_NAME_MAX:
        name = readable
    else:
        digits = RULE_NAME_MAX - len(prefix) - 1 - len(HASHED_INFIX)
        if digits < MIN_HASH_CHARS:
            raise ValueError(f"name prefix {prefix!r} leaves too little room for a tenant's hashed resource name")
        name = f"{prefix}-{HASHED_INFIX}{tenant_digest(tenant_id, digits)}"
    return TenantResourceNames(callback_queue=name, callback_rule=name, metering_key=f"{prefix}-{tenant_id}")


# Provisioning executions: one name per (operation, tenant, generation).
ONBOARD_OPERATION = "onboard"
OFFBOARD_OPERATION = "offboard"
# Re-creates (idempotently) the resources of an ACTIVE or SUSPENDED tenant, its
# metering key in its tier's plan: after a tier change, and locally at every start.
RECONCILE_OPERATION = "reconcile"
OPERATIONS = (ONBOARD_OPERATION, OFFBOARD_OPERATION, RECONCILE_OPERATION)


def provisioning_execution_name(operation: str, tenant_id: str, generation: int | str) -> str:
    """The durable execution name of a provisioning operation: ``<operation>-<32 hex>-g<generation>``.

    The tenant id is hashed (it may hold ``.``, and up to 64 characters would not
    fit beside the rest); the generation is the tenant item's counter, raised by
    every request that starts an operation, so a retried onboarding of a FAILED
    tenant gets a new execution while a repeated request for the same
    generation names, and so never starts, a second one.

    Raises:
        ValueError: An unknown operation, or a generation that makes the name too long.
    """
    if operation not in OPERATIONS:
        raise ValueError(f"unknown provisioning operation {operation!r}")
    name = f"{operation}-{tenant_digest(tenant_id, 32)}-g{generation}"
    if not _SAFE_NAME.fullmatch(name) or len(name) > EXECUTION_NAME_MAX:
        raise ValueError(f"execution name {name!r} is not a valid durable execution name")
    return name


@dataclass(frozen=True)
class TenantConfig:
    """A tenant's policy as stored in the tenants table."""

    tenant_id: str
    display_name: str
    status: str
    allowed_currencies: tuple[str, ...]
    max_amount: float
    callback_timeout_seconds: int
    heartbeat_timeout_seconds: int = 0

    @property
    def is_active(self) -> bool:
        """True when the tenant may start workflows."""
        return self.status == ACTIVE

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, used for durable checkpoints."""
        data = asdict(self)
        data["allowed_currencies"] = list(self.allowed_currencies)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TenantConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tenant_id=data["tenant_id"],
            display_name=data["display_name"],
            status=data["status"],
            allowed_currencies=tuple(data["allowed_currencies"]),
            max_amount=float(data["max_amount"]),
            callback_timeout_seconds=int(data["callback_timeout_seconds"]),
            heartbeat_timeout_seconds=int(data.get("heartbeat_timeout_seconds", 0)),
        )

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> TenantConfig:
        """Build from a DynamoDB item (or an entry of ``demo_tenants.json``)."""
        return cls(
            tenant_id=str(item["tenantId"]),
            display_name=str(item.get("displayName", item["tenantId"])),
            status=str(item["status"]),
            allowed_currencies=tuple(sorted(str(c) for c in item.get("allowedCurrencies", []))),
            max_amount=float(item["maxAmount"]),
            callback_timeout_seconds=int(item["callbackTimeoutSeconds"]),
            heartbeat_timeout_seconds=int(item.get("heartbeatTimeoutSeconds", 0)),
        )


def read_tenant_status(tenants_table: Any, tenant_id: str) -> str | None:
    """Read only a tenant's status (strongly consistent); None when the tenant does not exist.

    The token route needs nothing else, and a partial item (a tenant being
    onboarded) must not fail it.
    """
    response = tenants_table.get_item(Key={"tenantId": tenant_id}, ConsistentRead=True,
                                      ProjectionExpression="#status", ExpressionAttributeNames={"#status": "status"})
    item = response.get("Item")
    return str(item["status"]) if item and "status" in item else None


def tenant_item(tenant: dict[str, Any]) -> dict[str, Any]:
    """Turn a ``demo_tenants.json`` entry into an item for ``Table.put_item`` (numbers as Decimal)."""
    return {
        key: Decimal(str(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        for key, value in tenant.items()
    }


def read_tenant(tenants_table: Any, tenant_id: str) -> TenantConfig | None:
    """Read one tenant with a strongly consistent GetItem; None when it does not exist."""
    response = tenants_table.get_item(Key={"tenantId": tenant_id}, ConsistentRead=True)
    item = response.get("Item")
    return TenantConfig.from_item(item) if item else None


# -- the tenants table's lifecycle writes (I/O) ---------------------------------------------------

# The capacity ledger: one item, beside the tenants (no tenant id can start with
# "#"), holding the sums of the rates and bursts of the tenants in
# CAPACITY_STATUSES. Every status move that changes them writes the tenant and
# the ledger in one transaction, so two onboardings at once can never both take
# the last share of the stage's throttle.
LEDGER_KEY = {"tenantId": "#capacity"}


class TransitionRefused(Exception):
    """The tenant was not in the status (or generation) the move expected, or the capacity is spent."""

    def __init__(self, message: str, *, capacity: bool = False) -> None:
        super().__init__(message)
        self.capacity = capacity


def serialized(values: dict[str, Any]) -> dict[str, Any]:
    """Values for a transaction sent through a ``Table``'s client (``table.meta.client``).

    That client serializes plain values itself (boto3 registers its
    transformation on clients a resource creates); DynamoDB wants Decimal, not
    float, for a number.
    """
    return {key: Decimal(str(value)) if isinstance(value, float) else value for key, value in values.items()}


def ledger_update(table_name: str, tier: Tier, sign: int, stage_rate: float | None = None,
                  stage_burst: int | None = None) -> dict[str, Any]:
    """The ledger's part of a transaction: add (sign 1, within the stage's throttle) or remove a tier's share."""
    values: dict[str, Any] = {":rate": sign * tier.rate_limit, ":burst": sign * tier.burst_limit}
    update: dict[str, Any] = {
        "TableName": table_name,
        "Key": serialized(LEDGER_KEY),
        "UpdateExpression": "ADD rateSum :rate, burstSum :burst",
    }
    if sign > 0 and stage_rate is not None and stage_burst is not None:
        update["ConditionExpression"] = ("(attribute_not_exists(rateSum) OR rateSum <= :rateRoom) AND "
                                         "(attribute_not_exists(burstSum) OR burstSum <= :burstRoom)")
        values.update({":rateRoom": stage_rate - tier.rate_limit, ":burstRoom": stage_burst - tier.burst_limit})
    update["ExpressionAttributeValues"] = serialized(values)
    return {"Update": update}


def read_capacity(tenants_table: Any) -> Capacity:
    """The ledger's sums (strongly consistent)."""
    item = tenants_table.get_item(Key=LEDGER_KEY, ConsistentRead=True).get("Item") or {}
    return Capacity(float(item.get("rateSum", 0)), int(item.get("burstSum", 0)))


def settle_status(tenants_table: Any, tenant_id: str, *, expected: str, generation: int, new_status: str,
                  now: int, reason: str | None = None, remove: tuple[str, ...] = (),
                  set_fields: dict[str, Any] | None = None) -> None:
    """Move a tenant from ``expected`` (at ``generation``) to ``new_status``, with the ledger when it changes.

    Raises:
        TransitionRefused: The tenant is no longer in ``expected`` at ``generation``
            (another request or execution moved it first).
    """
    item = tenants_table.get_item(Key={"tenantId": tenant_id}, ConsistentRead=True).get("Item")
    if item is None:
        raise TransitionRefused("no such tenant")
    # The tier read here is the one the ledger moves: the condition makes sure it still is.
    names = {"#status": "status", "#generation": "generation", "#updatedAt": "updatedAt", "#tier": "tier"}
    values: dict[str, Any] = {":expected": expected, ":generation": generation, ":new": new_status, ":now": now,
                              ":tier": str(item.get("tier"))}
    sets = ["#status = :new", "#updatedAt = :now"]
    removes = list(remove)
    if reason is not None:
        names["#reason"] = "reason"
        values[":reason"] = reason
        sets.append("#reason = :reason")
    else:
        removes.append("reason")
    for index, (field, value) in enumerate((set_fields or {}).items()):
        names[f"#s{index}"] = field
        values[f":s{index}"] = value
        sets.append(f"#s{index} = :s{index}")
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(dict.fromkeys(removes)) if removes else "")
    update = {
        "TableName": tenants_table.name,
        "Key": {"tenantId": tenant_id},
        "UpdateExpression": expression,
        "ConditionExpression": "#status = :expected AND #generation = :generation AND #tier = :tier",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": serialized(values),
    }
    actions = [{"Update": update}]
    sign = capacity_sign(expected, new_status)
    tier = tiers().get(str(item.get("tier")))
    if sign and tier is not None:
        actions.append(ledger_update(tenants_table.name, tier, sign))
    client = tenants_table.meta.client
    try:
        client.transact_write_items(TransactItems=actions)
    except client.exceptions.TransactionCanceledException as error:
        raise TransitionRefused(f"the tenant is no longer {expected} (generation {generation})") from error
