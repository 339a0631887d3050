"""The provisioner's final writes (provisioner/app.py): a retried activate or tombstone whose first attempt
landed reports the status it reached, not SUPERSEDED; another generation's tenant is left alone."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.app import Operation, activate, tombstone


def put_tenant(tenants: Any, status: str, generation: int) -> None:
    tenants.put_item(Item={"tenantId": "t-retry", "status": status, "generation": generation, "tier": "starter"})


@pytest.mark.parametrize(("operation", "before", "final", "write"), [
    ("onboard", "PROVISIONING", "ACTIVE", lambda op: activate(op, {"meteringKeyId": "k1"})),
    ("offboard", "OFFBOARDING", "OFFBOARDED", tombstone),
])
def test_a_final_write_repeated_after_it_landed_reports_the_status_reached(tables, operation, before, final,
                                                                           write) -> None:
    # GIVEN a tenant waiting for this execution's final write
    tenants, _ = tables
    put_tenant(tenants, before, 2)
    op = Operation(operation, "t-retry", 2)
    # WHEN the write lands, and is made again (its answer was lost)
    assert write(op) == final
    # THEN the repeat finds its own effect
    assert write(op) == final
    assert tenants.get_item(Key={"tenantId": "t-retry"})["Item"]["status"] == final


@pytest.mark.parametrize(("operation", "status", "write"), [
    ("onboard", "ACTIVE", lambda op: activate(op, {"meteringKeyId": "k1"})),      # a later generation's ACTIVE
    ("offboard", "OFFBOARDED", tombstone),
    ("onboard", "SUSPENDED", lambda op: activate(op, {"meteringKeyId": "k1"})),   # this generation, moved on
])
def test_a_tenant_another_generation_or_request_moved_is_superseded(tables, operation, status, write) -> None:
    tenants, _ = tables
    put_tenant(tenants, status, 3 if status != "SUSPENDED" else 2)
    assert write(Operation(operation, "t-retry", 2)) == "SUPERSEDED"
    assert tenants.get_item(Key={"tenantId": "t-retry"})["Item"]["status"] == status
