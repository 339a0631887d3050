"""Tenants' start queues (provisioner/start_queues.py): names, the producers' policy as a table, and the
idempotent create and delete over moto (the mapping calls against a recording fake)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from control.requests import InvalidField, Limits, parse_create, parse_patch
from provisioner.start_queues import (
    MAX_RECEIVE_COUNT,
    StartQueues,
    router_dead_letter_queue_name,
    router_function_name,
    start_queue_name,
    start_queue_policy,
)

ROUTER_TF = Path(__file__).resolve().parents[3] / "router.tf"
ACCOUNT = "123456789012"
ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:p-start-t"


@pytest.mark.parametrize(("tenant_id", "expected"), [
    ("tenant-a", "tenant-durable-start-tenant-a"),
    ("Tenant_9", "tenant-durable-start-Tenant_9"),
    ("acme.eu", None),        # a "." is no queue name character: hashed
    ("_leading", None),       # a readable name never starts with "_": hashed
    ("-leading", None),       # nor with "-"
    ("x" * 64, None),         # too long with the prefix: hashed
])
def test_start_queue_names(tenant_id: str, expected: str | None) -> None:
    name = start_queue_name("tenant-durable", tenant_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name)
    assert name.startswith("tenant-durable-start-")  # router.tf's glob
    if expected is None:
        assert name.startswith("tenant-durable-start-_") and len(name) <= 80
    else:
        assert name == expected


def test_hashed_and_readable_names_never_meet_and_the_longest_prefix_keeps_160_bits() -> None:
    prefix = "p" * 32
    hashed = start_queue_name(prefix, "acme.eu")
    assert len(hashed) == 80 and len(hashed) - len(f"{prefix}-start-_") == 40
    assert start_queue_name(prefix, "acme.eu") != start_queue_name(prefix, "acme.de")
    assert not start_queue_name(prefix, "abc").startswith(f"{prefix}-start-_")


def test_the_names_are_router_tfs() -> None:
    text = ROUTER_TF.read_text()
    assert 'name                      = "${local.name_prefix}-router-dlq"' in text
    assert 'start_queue_name_prefix = "${local.name_prefix}-start-"' in text
    assert router_dead_letter_queue_name("p") == "p-router-dlq" and router_function_name("p") == "p-router"


POLICIES = [
    # (producers, allowed principals, deny condition)
    (None, [f"arn:aws:iam::{ACCOUNT}:root"], {"StringNotEquals": {"aws:PrincipalAccount": [ACCOUNT]}}),
    (["arn:aws:iam::210987654321:role/orders"], ["arn:aws:iam::210987654321:role/orders"],
     {"ArnNotEquals": {"aws:PrincipalArn": ["arn:aws:iam::210987654321:role/orders"]}}),
    (["arn:aws:iam::210987654321:root", f"arn:aws:iam::{ACCOUNT}:user/batch"],
     ["arn:aws:iam::210987654321:root", f"arn:aws:iam::{ACCOUNT}:user/batch"],
     {"ArnNotEquals": {"aws:PrincipalArn": [f"arn:aws:iam::{ACCOUNT}:user/batch"]},
      "StringNotEquals": {"aws:PrincipalAccount": ["210987654321"]}}),
]


@pytest.mark.parametrize(("producers", "allowed", "deny_unless"), POLICIES)
def test_the_queue_admits_its_producers_and_denies_every_other_sender(producers: list[str] | None,
                                                                       allowed: list[str], deny_unless: dict) -> None:
    allow, deny = start_queue_policy(ARN, ACCOUNT, producers)["Statement"]
    assert (allow["Effect"], allow["Principal"], allow["Action"], allow["Resource"]) == (
        "Allow", {"AWS": allowed}, "sqs:SendMessage", ARN)
    assert (deny["Effect"], deny["Principal"], deny["Action"], deny["Condition"]) == (
        "Deny", "*", "sqs:SendMessage", deny_unless)


class FakeLambda:
    """CreateEventSourceMapping (conflict on a second create), List and Delete, recorded."""

    def __init__(self) -> None:
        self.mappings: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []

    def create_event_source_mapping(self, **kwargs: Any) -> dict[str, Any]:
        if any(m["EventSourceArn"] == kwargs["EventSourceArn"] for m in self.mappings.values()):
            raise ClientError({"Error": {"Code": "ResourceConflictException", "Message": "exists"}}, "Create")
        uuid = f"uuid-{len(self.mappings)}"
        self.mappings[uuid] = {"UUID": uuid, **kwargs}
        return self.mappings[uuid]

    def list_event_source_mappings(self, **kwargs: Any) -> dict[str, Any]:
        return {"EventSourceMappings": [m for m in self.mappings.values()
                                        if kwargs.get("EventSourceArn") in (None, m["EventSourceArn"])]}

    def delete_event_source_mapping(self, UUID: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.deleted.append(UUID)
        return self.mappings.pop(UUID)


def test_create_twice_delete_twice() -> None:
    sqs, lam = boto3.client("sqs"), FakeLambda()
    sqs.create_queue(QueueName="unit-router-dlq")  # router.tf's (SQS refuses a redrive to a missing queue)
    queues = StartQueues(prefix="unit", sqs=sqs, lambda_client=lam, visibility_timeout=60)
    first = queues.ensure_queue("tenant-a", None)
    again = queues.ensure_queue("tenant-a", ["arn:aws:iam::123456789012:role/orders"])
    assert first == again and first["startQueueArn"].endswith(":unit-start-tenant-a")
    attributes = sqs.get_queue_attributes(QueueUrl=first["startQueueUrl"], AttributeNames=["All"])["Attributes"]
    assert attributes["SqsManagedSseEnabled"] == "true" and attributes["VisibilityTimeout"] == "60"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": first["startQueueArn"].rsplit(":", 1)[0] + ":unit-router-dlq",
        "maxReceiveCount": MAX_RECEIVE_COUNT}
    assert json.loads(attributes["Policy"])["Statement"][0]["Principal"] == {"AWS": ["arn:aws:iam::123456789012:role/orders"]}

    uuid = queues.ensure_mapping(first["startQueueArn"])
    assert queues.ensure_mapping(first["startQueueArn"]) == uuid  # a retried step finds the first one
    [mapping] = lam.mappings.values()
    assert (mapping["FunctionName"], mapping["FunctionResponseTypes"]) == ("unit-router", ["ReportBatchItemFailures"])

    assert queues.remove_mapping("tenant-a") == 1 and queues.remove_mapping("tenant-a") == 0
    queues.remove_queue("tenant-a")
    queues.remove_queue("tenant-a")  # gone already: nothing to do
    with pytest.raises(ClientError):
        sqs.get_queue_url(QueueName="unit-start-tenant-a")


BASE = {"tenantId": "t1", "tier": "starter", "displayName": "T", "allowedCurrencies": ["EUR"], "maxAmount": 10,
        "callbackTimeoutSeconds": 60}


@pytest.mark.parametrize(("producers", "ok"), [
    (["arn:aws:iam::123456789012:role/orders"], True),
    (["arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:user/batch"], True),
    ([], False),
    (["arn:aws:iam::123456789012:role/a"] * 2, False),
    ([f"arn:aws:iam::123456789012:role/r{i}" for i in range(11)], False),
    (["arn:aws:sqs:us-east-1:123456789012:q"], False),
    ("arn:aws:iam::123456789012:root", False),
    ([42], False),
])
def test_start_queue_producers_on_create_and_patch(producers: Any, ok: bool) -> None:
    for parse, body in ((parse_create, {**BASE, "startQueueProducers": producers}),
                        (parse_patch, {"startQueueProducers": producers})):
        if ok:
            assert parse(body, Limits()).policy["startQueueProducers"] == sorted(producers)
        else:
            with pytest.raises(InvalidField, match="startQueueProducers"):
                parse(body, Limits())
