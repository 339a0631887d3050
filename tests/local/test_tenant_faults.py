"""Provisioning under faults: the provisioner killed after each checkpoint, and each AWS call it makes (SQS,
EventBridge, DynamoDB, API Gateway's keys and usage plans) failing once, failing for good, or landing then
answering an error (the effect happened, the caller does not know and retries). The tenant ends ACTIVE exactly
once (one key, in its tier's plan and named by its item, one queue, one rule), or FAILED with a reason and,
after offboarding, nothing left behind (keys, plan keys, queues and rules counted before and after).

Not in the API Gateway tables: ``GetUsagePlans`` (read once per execution environment, then cached, so whether
an onboarding calls it depends on the worker's age; a fault in it fails the same step as ``GetApiKeys``) and
``GetApiKey`` (called only when a key listing lacks the value, which ``includeValues`` never leaves out).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests

from local.testing.faults import (
    APIGATEWAY,
    COUNTED_ONLY,
    FAILS_EVERY_ATTEMPT,
    FAILS_ONCE,
    KILLED_AFTER,
    LANDS_THEN_FAILS,
    FaultPlan,
    FaultRule,
    apigateway_operation,
    fault_rule,
    signed_service,
)
from tests.harness import StackProcess
from tests.local.tenant_admin import LOCAL, PREFIX, admin, names, resources, tenant_body

pytestmark = pytest.mark.slow

# The provisioner's steps retry each call: botocore's attempts times the step's five.
PROVISIONER_STEP_ATTEMPTS = 5


class Faults:
    def __init__(self, stack: StackProcess) -> None:
        self.url = stack.fault_url

    def arm(self, rule: dict[str, Any]) -> None:
        requests.post(f"{self.url}/_faults", json=rule, timeout=10).raise_for_status()

    def rules(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/_faults", timeout=10).json()["rules"]

    def clear(self) -> None:
        requests.delete(f"{self.url}/_faults", timeout=10).raise_for_status()


@pytest.fixture
def faults(faulty_stack: StackProcess) -> Iterator[Faults]:
    controller = Faults(faulty_stack)
    controller.clear()
    yield controller
    controller.clear()


def onboard_and_settle(stack: StackProcess, tenant_id: str) -> dict[str, Any]:
    client = admin(stack)
    answer = client.call("POST", "/tenants", tenant_body(tenant_id))
    assert answer.status_code == 202, answer.text
    return client.wait_for(tenant_id, ("ACTIVE", "FAILED"), 120)


def offboard_and_settle(stack: StackProcess, tenant_id: str) -> dict[str, Any]:
    client = admin(stack)
    assert client.call("DELETE", f"/tenants/{tenant_id}").status_code == 202
    return client.wait_for(tenant_id, ("OFFBOARDED", "FAILED"), 120)


def exactly_once(stack: StackProcess, tenant_id: str, before: dict[str, Any]) -> None:
    after = resources(stack)
    assert after["keys"].count(names(tenant_id).metering_key) == 1
    assert after["queues"].count(names(tenant_id).callback_queue) == 1
    assert after["rules"].count(names(tenant_id).callback_rule) == 1
    assert after["planKeys"] == before["planKeys"] + 1


# (label, target, operation, what its body names): the provisioner's calls while onboarding.
def onboarding_calls(tenant_id: str) -> list[tuple[str, str, str, list[str]]]:
    queue = names(tenant_id).callback_queue
    return [
        ("create-queue", "sqs", "CreateQueue", [queue]),
        ("queue-policy", "sqs", "SetQueueAttributes", ["Policy"]),
        ("put-rule", "events", "PutRule", [queue]),
        ("put-targets", "events", "PutTargets", [queue]),
        ("activate", "dynamodb", "TransactWriteItems", [tenant_id, "ACTIVE"]),
    ]


@pytest.mark.parametrize("kind", [FAILS_ONCE, LANDS_THEN_FAILS], ids=["failing-once", "landing-then-failing"])
@pytest.mark.parametrize("index", range(5))
def test_each_onboarding_call_failing_once_or_landing_then_failing_still_ends_active_exactly_once(
        faulty_stack, faults, index, kind) -> None:
    # GIVEN an SQS, EventBridge or DynamoDB write that fails once, or takes effect and then answers
    # a 5xx (botocore retries either)
    tenant_id = f"fault-{'once' if kind == FAILS_ONCE else 'landed'}-{index}"
    label, target, operation, body = onboarding_calls(tenant_id)[index]
    before = resources(faulty_stack)
    faults.arm(fault_rule(kind, target=target, operation=operation, body_contains=body, label=label,
                          caller="provisioner"))
    # WHEN the tenant is onboarded THEN a retried write that finds its own effect still ends ACTIVE, exactly once
    assert onboard_and_settle(faulty_stack, tenant_id)["status"] == "ACTIVE"
    assert [rule["hits"] for rule in faults.rules() if rule["label"] == label] == [1]
    exactly_once(faulty_stack, tenant_id, before)
    assert offboard_and_settle(faulty_stack, tenant_id)["status"] == "OFFBOARDED"
    assert resources(faulty_stack) == before


@pytest.mark.parametrize("index", range(4))
def test_an_onboarding_call_failing_for_good_ends_failed_with_a_reason_and_offboarding_leaves_nothing(
        faulty_stack, faults, index) -> None:
    tenant_id = f"fault-good-{index}"
    label, target, operation, body = onboarding_calls(tenant_id)[index]
    before = resources(faulty_stack)
    faults.arm(fault_rule(FAILS_EVERY_ATTEMPT, target=target, operation=operation, body_contains=body, label=label,
                          caller="provisioner", step_attempts=PROVISIONER_STEP_ATTEMPTS))
    tenant = onboard_and_settle(faulty_stack, tenant_id)
    assert tenant["status"] == "FAILED" and "failed" in tenant["reason"] and "callback-route" in tenant["reason"]
    # Its key is refused (the tenant is not ACTIVE), and its share of the stage's throttle is free again.
    faults.clear()
    assert offboard_and_settle(faulty_stack, tenant_id)["status"] == "OFFBOARDED"
    assert resources(faulty_stack) == before


def test_the_provisioner_killed_after_each_checkpoint_still_onboards_exactly_once(faulty_stack, faults) -> None:
    # GIVEN how many checkpoints one onboarding makes
    faults.arm(fault_rule(COUNTED_ONLY, target="durable", operation="CheckpointDurableExecution", body_contains=[],
                          label="census", caller="provisioner"))
    before = resources(faulty_stack)
    assert onboard_and_settle(faulty_stack, "fault-census")["status"] == "ACTIVE"
    checkpoints = next(rule["hits"] for rule in faults.rules() if rule["label"] == "census")
    assert checkpoints >= 4
    assert offboard_and_settle(faulty_stack, "fault-census")["status"] == "OFFBOARDED"
    faults.clear()
    # WHEN the provisioner's environment is killed right after each of them, one onboarding each
    for skip in range(checkpoints):
        tenant_id = f"fault-kill-{skip}"
        faults.arm(fault_rule(KILLED_AFTER, target="durable", operation="CheckpointDurableExecution",
                              body_contains=[], skip=skip, label=f"kill-{skip}", caller="provisioner"))
        # THEN it ends ACTIVE with one key, one queue, one rule
        assert onboard_and_settle(faulty_stack, tenant_id)["status"] == "ACTIVE", skip
        assert [rule["hits"] for rule in faults.rules() if rule["label"] == f"kill-{skip}"] == [1]
        exactly_once(faulty_stack, tenant_id, before)
        faults.clear()
        assert offboard_and_settle(faulty_stack, tenant_id)["status"] == "OFFBOARDED"
        assert resources(faulty_stack) == before


def test_offboarding_with_its_calls_failing_once_still_removes_everything(faulty_stack, faults) -> None:
    before = resources(faulty_stack)
    tenant_id = "fault-off"
    assert onboard_and_settle(faulty_stack, tenant_id)["status"] == "ACTIVE"
    queue = names(tenant_id).callback_queue
    for label, target, operation, body in (("remove-targets", "events", "RemoveTargets", [queue]),
                                           ("delete-rule", "events", "DeleteRule", [queue]),
                                           ("delete-queue", "sqs", "DeleteQueue", [queue]),
                                           ("tombstone", "dynamodb", "TransactWriteItems", [tenant_id, "OFFBOARDED"])):
        faults.arm(fault_rule(FAILS_ONCE, target=target, operation=operation, body_contains=body, label=label,
                              caller="provisioner"))
    assert offboard_and_settle(faulty_stack, tenant_id)["status"] == "OFFBOARDED"
    assert {rule["label"]: rule["hits"] for rule in faults.rules()} == {
        "remove-targets": 1, "delete-rule": 1, "delete-queue": 1, "tombstone": 1}
    assert resources(faulty_stack) == before


# -- API Gateway: the metering key and its usage-plan key ----------------------------------------------


@dataclass(frozen=True)
class KeyCall:
    """One API Gateway call of the provisioner: its operation and what its path or body names."""

    label: str
    operation: str
    # The texts that single out this tenant's call; {key} is the tenant's metering key id (offboarding only).
    parts: tuple[str, ...]

    def rule(self, kind: str, ids: dict[str, str]) -> dict[str, Any]:
        return fault_rule(kind, target=APIGATEWAY, operation=self.operation, label=self.label, caller="provisioner",
                          body_contains=[part.format(**ids) for part in self.parts],
                          step_attempts=PROVISIONER_STEP_ATTEMPTS)


# A starter tenant's onboarding: find its key by name, create it, check the other tier's plan, join its own.
ONBOARDING = (
    KeyCall("find-key", "GetApiKeys", ("name={name}",)),
    KeyCall("create-key", "CreateApiKey", ("{name}",)),
    KeyCall("other-plan-keys", "GetUsagePlanKeys", ("/usageplans/business/keys",)),
    KeyCall("join-plan", "CreateUsagePlanKey", ("/usageplans/starter/keys",)),
)
# Its offboarding: find its key, read each plan's keys, leave its plan, delete the key.
OFFBOARDING = (
    KeyCall("find-key", "GetApiKeys", ("name={name}",)),
    KeyCall("plan-keys", "GetUsagePlanKeys", ("/usageplans/starter/keys",)),
    KeyCall("leave-plan", "DeleteUsagePlanKey", ("/keys/{key}",)),
    KeyCall("delete-key", "DeleteApiKey", ("/apikeys/{key}",)),
)
KINDS = (FAILS_ONCE, LANDS_THEN_FAILS, FAILS_EVERY_ATTEMPT)


def tenant_item(stack: StackProcess, tenant_id: str) -> dict[str, Any]:
    table = boto3.resource("dynamodb", endpoint_url=stack.dynamodb_url, **LOCAL).Table(f"{PREFIX}-tenants")
    return table.get_item(Key={"tenantId": tenant_id}, ConsistentRead=True)["Item"]


def the_key(stack: StackProcess, tenant_id: str) -> dict[str, Any]:
    """The tenant's one metering key (with its value), as the local keys service holds it."""
    apigateway = boto3.client("apigateway", endpoint_url=stack.apigateway_url, **LOCAL)
    keys = [key for key in apigateway.get_api_keys(includeValues=True)["items"]
            if key["name"] == names(tenant_id).metering_key]
    assert len(keys) == 1, keys
    return keys[0]


def active_with_one_key(stack: StackProcess, tenant_id: str, before: dict[str, Any]) -> None:
    """One key, one plan key, one queue, one rule; the tenant's item names that very key (the authorizer meters it)."""
    exactly_once(stack, tenant_id, before)
    key = the_key(stack, tenant_id)
    item = tenant_item(stack, tenant_id)
    assert (item["meteringKeyId"], item["meteringKey"]) == (key["id"], key["value"])
    plan = boto3.client("apigateway", endpoint_url=stack.apigateway_url, **LOCAL).get_usage_plan_keys(
        usagePlanId="starter")["items"]
    assert key["id"] in {member["id"] for member in plan}


def hits(faults: Faults, label: str) -> list[int]:
    return [rule["hits"] for rule in faults.rules() if rule["label"] == label]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("call", ONBOARDING, ids=lambda call: call.label)
def test_each_onboarding_key_call_under_each_fault(faulty_stack, faults, call: KeyCall, kind: str) -> None:
    # GIVEN one of the provisioner's API Gateway calls armed to fail once, for good, or land then fail
    tenant_id = f"kf-on-{call.label}-{KINDS.index(kind)}"
    before = resources(faulty_stack)
    rule = call.rule(kind, {"name": names(tenant_id).metering_key})
    faults.arm(rule)
    # WHEN the tenant is onboarded
    tenant = onboard_and_settle(faulty_stack, tenant_id)
    if kind == FAILS_EVERY_ATTEMPT:
        # THEN it ends FAILED, naming the step that gave up; offboarding leaves no key behind
        assert hits(faults, call.label) == [rule["count"]]
        assert tenant["status"] == "FAILED" and "metering-key failed" in tenant["reason"], tenant
        faults.clear()
    else:
        # THEN it ends ACTIVE with exactly one key, in its plan, the one its item names
        assert tenant["status"] == "ACTIVE", tenant
        assert hits(faults, call.label) == [1]
        active_with_one_key(faulty_stack, tenant_id, before)
    assert offboard_and_settle(faulty_stack, tenant_id)["status"] == "OFFBOARDED"
    assert resources(faulty_stack) == before


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("call", OFFBOARDING, ids=lambda call: call.label)
def test_each_offboarding_key_call_under_each_fault(faulty_stack, faults, call: KeyCall, kind: str) -> None:
    # GIVEN an ACTIVE tenant, and one of offboarding's API Gateway calls armed
    tenant_id = f"kf-off-{call.label}-{KINDS.index(kind)}"
    before = resources(faulty_stack)
    assert onboard_and_settle(faulty_stack, tenant_id)["status"] == "ACTIVE"
    ids = {"name": names(tenant_id).metering_key, "key": the_key(faulty_stack, tenant_id)["id"]}
    rule = call.rule(kind, ids)
    faults.arm(rule)
    # WHEN it is offboarded
    tenant = offboard_and_settle(faulty_stack, tenant_id)
    if kind == FAILS_EVERY_ATTEMPT:
        # THEN it ends FAILED, naming the step; offboarding it again removes what is left
        assert hits(faults, call.label) == [rule["count"]]
        assert tenant["status"] == "FAILED" and "delete-metering-key failed" in tenant["reason"], tenant
        faults.clear()
        tenant = offboard_and_settle(faulty_stack, tenant_id)
    else:
        assert hits(faults, call.label) == [1]
    # THEN nothing is left: no key, no plan key, no queue, no rule
    assert tenant["status"] == "OFFBOARDED", tenant
    assert resources(faulty_stack) == before


# -- the proxy's API Gateway side, without a stack ---------------------------------------------------


@pytest.mark.parametrize(("method", "path", "operation"), [
    ("POST", "/apikeys", "CreateApiKey"),
    ("GET", "/apikeys", "GetApiKeys"),
    ("GET", "/apikeys/abc123", "GetApiKey"),
    ("DELETE", "/apikeys/abc123", "DeleteApiKey"),
    ("GET", "/usageplans", "GetUsagePlans"),
    ("POST", "/usageplans/starter/keys", "CreateUsagePlanKey"),
    ("GET", "/usageplans/starter/keys", "GetUsagePlanKeys"),
    ("DELETE", "/usageplans/starter/keys/abc123", "DeleteUsagePlanKey"),
    ("PATCH", "/apikeys/abc123", "/apikeys/abc123"),  # not one the provisioner makes: named by its path
])
def test_the_proxy_names_each_api_gateway_call_the_provisioner_makes(method, path, operation) -> None:
    assert apigateway_operation(method, path) == operation


@pytest.mark.parametrize(("authorization", "service"), [
    ("AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/apigateway/aws4_request, SignedHeaders=host, "
     "Signature=00", "apigateway"),
    ("AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=00", "sqs"),
    ("", None),
    ("Bearer token", None),
])
def test_the_proxy_tells_api_gateway_calls_by_their_signature(authorization, service) -> None:
    assert signed_service(authorization) == service


def test_a_call_that_lands_then_fails_takes_effect_once_and_answers_a_retryable_error() -> None:
    # GIVEN a plan with one "lands, answers an error" rule on CreateApiKey
    plan = FaultPlan(kill_environment=lambda _environment: False)
    plan.arm(FaultRule(**fault_rule(LANDS_THEN_FAILS, target=APIGATEWAY, operation="CreateApiKey",
                                    body_contains=["tenant-durable-t1"])))
    landed: list[str] = []

    def forward() -> tuple[int, dict[str, str], bytes]:
        landed.append("created")
        return 201, {}, b'{"id": "k1"}'

    # WHEN the call is made twice (botocore's retry)
    first = plan.apply(APIGATEWAY, "CreateApiKey", b'/apikeys\n{"name": "tenant-durable-t1"}', "", forward)
    second = plan.apply(APIGATEWAY, "CreateApiKey", b'/apikeys\n{"name": "tenant-durable-t1"}', "", forward)
    # THEN the first landed yet answered a 5xx that botocore retries; the retry passed untouched
    assert first[0] == 503 and first[1]["x-amzn-ErrorType"] == "ServiceUnavailableException"
    assert second[0] == 201
    assert landed == ["created", "created"]


def test_late_answers_outlast_the_provisioners_read_timeout_not_the_data_planes() -> None:
    from shared.aws_clients import EVENTS_CONFIG, PROVISIONER_CONFIG  # noqa: PLC0415

    def late(target: str, caller: str | None) -> float:
        return fault_rule("lands, answers late", target=target, operation="*", body_contains=[],
                          caller=caller)["delay_seconds"]

    assert late(APIGATEWAY, "provisioner") > PROVISIONER_CONFIG.read_timeout
    assert late("sqs", "tenant-durable-provisioner") > PROVISIONER_CONFIG.read_timeout
    assert late("events", None) == EVENTS_CONFIG.read_timeout + 1
