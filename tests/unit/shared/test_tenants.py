"""The tenant lifecycle's pure rules, each as a table: transitions, capacity, names, execution names, credentials."""

from __future__ import annotations

import re

import pytest

from shared.identity import credential_matches, hash_api_key
from shared.tenants import (
    ACTIVATE,
    ACTIVE,
    CREATE,
    FAILED,
    OFFBOARD,
    OFFBOARDED,
    OFFBOARDING,
    OFFBOARDING_DONE,
    PROVISIONED,
    PROVISIONING,
    STATUSES,
    STEP_FAILED,
    SUSPEND,
    SUSPENDED,
    Capacity,
    capacity_problem,
    capacity_sign,
    next_status,
    provisioning_execution_name,
    refusal_reason,
    tenant_resource_names,
    tiers,
)

EVERY_EVENT = (CREATE, SUSPEND, ACTIVATE, OFFBOARD, PROVISIONED, OFFBOARDING_DONE, STEP_FAILED)
ALLOWED = {
    (None, CREATE): PROVISIONING, (FAILED, CREATE): PROVISIONING,
    (ACTIVE, SUSPEND): SUSPENDED, (SUSPENDED, SUSPEND): SUSPENDED,
    (SUSPENDED, ACTIVATE): ACTIVE, (ACTIVE, ACTIVATE): ACTIVE,
    (ACTIVE, OFFBOARD): OFFBOARDING, (SUSPENDED, OFFBOARD): OFFBOARDING, (FAILED, OFFBOARD): OFFBOARDING,
    (OFFBOARDING, OFFBOARD): OFFBOARDING, (OFFBOARDED, OFFBOARD): OFFBOARDED,
    (PROVISIONING, PROVISIONED): ACTIVE, (PROVISIONING, STEP_FAILED): FAILED,
    (OFFBOARDING, OFFBOARDING_DONE): OFFBOARDED, (OFFBOARDING, STEP_FAILED): FAILED,
}


@pytest.mark.parametrize("current", [None, *STATUSES])
@pytest.mark.parametrize("event", EVERY_EVENT)
def test_every_status_and_event_moves_as_the_table_says_or_is_refused(current: str | None, event: str) -> None:
    assert next_status(current, event) == ALLOWED.get((current, event))


@pytest.mark.parametrize(("current", "event", "words"), [
    (ACTIVE, CREATE, "already exists"), (OFFBOARDED, CREATE, "already exists"),
    (PROVISIONING, SUSPEND, "only between ACTIVE and SUSPENDED"), (FAILED, ACTIVATE, "only between ACTIVE and SUSPENDED"),
    (PROVISIONING, OFFBOARD, "being provisioned"), (None, SUSPEND, "no such tenant"),
])
def test_a_refusal_says_why(current: str | None, event: str, words: str) -> None:
    assert next_status(current, event) is None
    assert words in refusal_reason(current, event)


@pytest.mark.parametrize(("old", "new", "sign"), [
    (None, PROVISIONING, 1), (FAILED, PROVISIONING, 1), (PROVISIONING, ACTIVE, 0), (PROVISIONING, FAILED, -1),
    (ACTIVE, SUSPENDED, 0), (SUSPENDED, ACTIVE, 0), (ACTIVE, OFFBOARDING, -1), (SUSPENDED, OFFBOARDING, -1),
    (FAILED, OFFBOARDING, 0), (OFFBOARDING, OFFBOARDED, 0), (OFFBOARDING, FAILED, 0),
])
def test_the_capacity_ledger_moves_when_a_tenant_starts_or_stops_counting(old: str | None, new: str, sign: int) -> None:
    assert capacity_sign(old, new) == sign


BUSINESS, STARTER = tiers()["business"], tiers()["starter"]


@pytest.mark.parametrize(("used", "adding", "removing", "problem"), [
    (Capacity(0, 0), BUSINESS, None, None),
    (Capacity(50, 100), BUSINESS, None, None),  # exactly the stage's 100 / 200
    (Capacity(55, 110), BUSINESS, None, "rates would add up to 105"),
    (Capacity(0, 195), STARTER, None, "bursts would add up to 205"),
    (Capacity(95, 190), BUSINESS, STARTER, "rates would add up to 140"),
    (Capacity(100, 200), STARTER, BUSINESS.__class__("x", 5, 10, 1), None),  # a change to an equal tier fits
])
def test_capacity_refuses_what_would_exceed_the_stage_throttle(used: Capacity, adding, removing, problem) -> None:
    found = capacity_problem(used, adding, 100, 200, removing=removing)
    assert (found is None) if problem is None else (found is not None and problem in found and found.startswith("capacity:"))


def test_the_tiers_are_the_shared_files() -> None:
    assert (BUSINESS.rate_limit, BUSINESS.burst_limit, BUSINESS.daily_quota) == (50, 100, 500000)
    assert (STARTER.rate_limit, STARTER.burst_limit, STARTER.daily_quota) == (5, 10, 10000)


QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
RULE_NAME = re.compile(r"[.\-_A-Za-z0-9]{1,64}")


@pytest.mark.parametrize(("prefix", "tenant_id", "readable"), [
    ("tenant-durable", "tenant-a", True),
    ("tenant-durable", "a.b", False),  # "." is no queue character
    ("tenant-durable", "t" * 64, False),  # too long beside the prefix
    ("tenant-durable", "t" * 39, True),  # 15 + 10 + 39 = 64: still fits
    ("tenant-durable", "t" * 40, False),
    ("a" * 32, "x", True),
    ("a" * 32, "." * 64, False),  # Terraform's longest prefix and the longest id
    ("a" * 32, "z" * 64, False),
])
def test_every_per_tenant_name_fits_for_the_longest_ids(prefix: str, tenant_id: str, readable: bool) -> None:
    names = tenant_resource_names(prefix, tenant_id)
    assert QUEUE_NAME.fullmatch(names.callback_queue) and RULE_NAME.fullmatch(names.callback_rule)
    assert names.callback_queue.startswith(f"{prefix}-callbacks")
    assert (names.callback_queue == f"{prefix}-callbacks-{tenant_id}") is readable
    assert names.metering_key == f"{prefix}-{tenant_id}" and len(names.metering_key) <= 1024


def test_hashed_names_never_collide_with_readable_ones_or_each_other() -> None:
    ids = ["a.b", "a-b", "a_b", "A.B", "." * 64, "-" * 64, "x" * 40, "x" * 41]
    names = {tenant_resource_names("tenant-durable", tenant_id).callback_queue for tenant_id in ids}
    assert len(names) == len(ids)
    # A readable name cannot be spelt to look like a hashed one: the infixes differ.
    assert tenant_resource_names("p", "h" + "0" * 30).callback_queue != tenant_resource_names("p", "a.b").callback_queue


EXECUTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


@pytest.mark.parametrize("operation", ["onboard", "offboard", "reconcile"])
@pytest.mark.parametrize("tenant_id", ["tenant-a", "." * 64, "Z" * 64])
@pytest.mark.parametrize("generation", [1, 12, 10**11, "3-0a1b2c3d"])
def test_execution_names_are_valid_and_distinct_per_operation_tenant_and_generation(operation, tenant_id, generation) -> None:
    name = provisioning_execution_name(operation, tenant_id, generation)
    assert EXECUTION_NAME.fullmatch(name)
    assert name == provisioning_execution_name(operation, tenant_id, generation)  # a repeat names the same one
    assert name != provisioning_execution_name(operation, tenant_id, f"{generation}1")
    assert name != provisioning_execution_name(operation, tenant_id + "x" if len(tenant_id) < 64 else "y", generation)


@pytest.mark.parametrize(("operation", "generation"), [("delete", 1), ("onboard", "1" * 30), ("onboard", "a b")])
def test_an_unknown_operation_or_an_unfit_generation_is_refused(operation: str, generation: object) -> None:
    with pytest.raises(ValueError):
        provisioning_execution_name(operation, "tenant-a", generation)  # type: ignore[arg-type]


NOW = 1_800_000_000
ROTATING = {"apiKeyHash": hash_api_key("new"), "previousApiKeyHash": hash_api_key("old"),
            "previousApiKeyExpiresAt": NOW + 60}


@pytest.mark.parametrize(("item", "presented", "now", "matches"), [
    ({"apiKeyHash": hash_api_key("k")}, "k", NOW, True),
    ({"apiKeyHash": hash_api_key("k")}, "other", NOW, False),
    ({"apiKeyHash": hash_api_key("k")}, None, NOW, False),
    ({"apiKeyHash": hash_api_key("k")}, "k" * 300, NOW, False),
    ({}, "k", NOW, False),  # an OFFBOARDED tombstone keeps no hash
    (ROTATING, "new", NOW, True),
    (ROTATING, "old", NOW, True),  # during the overlap
    (ROTATING, "old", NOW + 59.9, True),
    (ROTATING, "old", NOW + 60, False),  # at its expiry
    (ROTATING, "new", NOW + 10**6, True),
    ({**ROTATING, "previousApiKeyExpiresAt": "soon"}, "old", NOW, False),  # a malformed expiry never extends it
    ({"previousApiKeyHash": hash_api_key("old"), "previousApiKeyExpiresAt": NOW + 60}, "old", NOW, True),
])
def test_a_credential_is_the_current_key_or_the_previous_one_before_its_expiry(item, presented, now, matches) -> None:
    assert credential_matches(presented, item, now) is matches
