"""The router's decisions as a table: every refusal, retries, idempotency keys, a mixed batch (router/routing.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate

from router.routing import (
    QueueOwner,
    Reason,
    Refusal,
    Retry,
    Start,
    batch_response,
    decide,
    decide_batch,
    invoke_outcome,
    is_tenant_key,
    start_payload,
)
from shared.contract import start_workflow_schema
from shared.identity import mint_workflow_id

QUEUE_A = "arn:aws:sqs:us-east-1:123456789012:tenant-durable-start-tenant-a"
QUEUE_B = "arn:aws:sqs:us-east-1:123456789012:tenant-durable-start-tenant-b"
ACTIVE_A = QueueOwner("tenant-a", "ACTIVE")
GOOD = '{"amount": 12.5, "currency": "EUR", "description": "order 1"}'


def schema_problem(body: Any) -> str | None:
    try:
        validate(event=body, schema=start_workflow_schema())
    except SchemaValidationError as error:
        return str(error.message)
    return None


def record(body: str = GOOD, message_id: str = "m-1", key: Any = None, source: str = QUEUE_A,
           attribute: dict[str, Any] | None = None) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if key is not None:
        attributes["IdempotencyKey"] = {"stringValue": key, "stringListValues": [], "binaryListValues": [],
                                        "dataType": "String"}
    if attribute is not None:
        attributes["IdempotencyKey"] = attribute
    return {"messageId": message_id, "receiptHandle": "rh", "body": body, "attributes": {},
            "messageAttributes": attributes, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": source, "awsRegion": "us-east-1"}


REFUSALS = [
    # (case, body, owner, reason)
    ("not JSON", "amount=5", ACTIVE_A, Reason.MALFORMED_BODY),
    ("truncated JSON", '{"amount": 5', ACTIVE_A, Reason.MALFORMED_BODY),
    ("NaN", '{"amount": NaN, "currency": "EUR"}', ACTIVE_A, Reason.MALFORMED_BODY),
    ("a number out of range", '{"amount": 1e400, "currency": "EUR"}', ACTIVE_A, Reason.MALFORMED_BODY),
    ("nested past the parser", "[" * 100_000 + "]" * 100_000, ACTIVE_A, Reason.MALFORMED_BODY),
    ("empty body", "", ACTIVE_A, Reason.MALFORMED_BODY),
    ("tenantId", '{"amount": 5, "currency": "EUR", "tenantId": "tenant-b"}', ACTIVE_A, Reason.TENANT_IN_BODY),
    ("tenant_id", '{"amount": 5, "currency": "EUR", "tenant_id": "tenant-b"}', ACTIVE_A, Reason.TENANT_IN_BODY),
    ("x-tenant-id", '{"x-tenant-id": "tenant-b"}', ACTIVE_A, Reason.TENANT_IN_BODY),
    ("TENANT in capitals", '{"amount": 5, "currency": "EUR", "TENANT": "b"}', ACTIVE_A, Reason.TENANT_IN_BODY),
    ("a tenant key even for an inactive tenant", '{"tenantId": "x"}', QueueOwner("tenant-a", "SUSPENDED"),
     Reason.TENANT_IN_BODY),
    ("missing currency", '{"amount": 5}', ACTIVE_A, Reason.SCHEMA_VIOLATION),
    ("zero amount", '{"amount": 0, "currency": "EUR"}', ACTIVE_A, Reason.SCHEMA_VIOLATION),
    ("an unknown field", '{"amount": 5, "currency": "EUR", "extra": 1}', ACTIVE_A, Reason.SCHEMA_VIOLATION),
    ("an array", '[{"amount": 5, "currency": "EUR"}]', ACTIVE_A, Reason.SCHEMA_VIOLATION),
    ("a string", '"hello"', ACTIVE_A, Reason.SCHEMA_VIOLATION),
    ("suspended", GOOD, QueueOwner("tenant-a", "SUSPENDED"), Reason.TENANT_NOT_ACTIVE),
    ("offboarding", GOOD, QueueOwner("tenant-a", "OFFBOARDING"), Reason.TENANT_NOT_ACTIVE),
    ("offboarded", GOOD, QueueOwner("tenant-a", "OFFBOARDED"), Reason.TENANT_NOT_ACTIVE),
    ("failed", GOOD, QueueOwner("tenant-a", "FAILED"), Reason.TENANT_NOT_ACTIVE),
]


@pytest.mark.parametrize(("case", "body", "owner", "reason"), REFUSALS, ids=[row[0] for row in REFUSALS])
def test_a_record_is_refused_for_the_first_reason_that_applies(case: str, body: str, owner: QueueOwner,
                                                               reason: Reason) -> None:
    decision = decide(record(body), owner, schema_problem)
    assert isinstance(decision, Refusal), decision
    assert decision.reason is reason
    assert decision.message_id == "m-1"
    assert decision.tenant_id == owner.tenant_id


def test_a_binary_or_empty_idempotency_key_is_a_schema_violation_not_ignored() -> None:
    binary = {"binaryValue": "AAE=", "dataType": "Binary", "stringListValues": [], "binaryListValues": []}
    for attribute in (binary, {"stringValue": "", "dataType": "String"}):
        decision = decide(record(attribute=attribute), ACTIVE_A, schema_problem)
        assert isinstance(decision, Refusal) and decision.reason is Reason.SCHEMA_VIOLATION


@pytest.mark.parametrize(("owner", "detail"), [(None, "no tenant owns"), (QueueOwner("tenant-a", "PROVISIONING"),
                                                                          "provisioned")])
def test_a_good_record_of_a_queue_without_an_active_owner_yet_is_retried(owner: QueueOwner | None,
                                                                          detail: str) -> None:
    decision = decide(record(), owner, schema_problem)
    assert isinstance(decision, Retry) and detail in decision.detail


def test_a_good_record_starts_for_the_queue_tenant_named_by_its_message_id() -> None:
    decision = decide(record(message_id="0f9a1c3e-aaaa-bbbb-cccc-000000000001"), ACTIVE_A, schema_problem)
    assert decision == Start("0f9a1c3e-aaaa-bbbb-cccc-000000000001", "tenant-a",
                             "0f9a1c3e-aaaa-bbbb-cccc-000000000001",
                             '{"workflowId":"0f9a1c3e-aaaa-bbbb-cccc-000000000001",'
                             '"request":{"amount":12.5,"currency":"EUR","description":"order 1"}}')


def test_an_idempotency_key_names_the_workflow_as_the_http_entry_does() -> None:
    first = decide(record(message_id="m-1", key="order-42"), ACTIVE_A, schema_problem)
    again = decide(record(message_id="m-2", key="order-42"), ACTIVE_A, schema_problem)
    assert isinstance(first, Start) and isinstance(again, Start)
    # The same id the authorizer mints for Idempotency-Key: order-42 from tenant-a.
    assert first.workflow_id == again.workflow_id == mint_workflow_id("tenant-a", "order-42", "any request id")
    assert first.payload == again.payload


def test_the_same_key_on_two_tenants_queues_names_two_workflows() -> None:
    a = decide(record(key="order-42"), ACTIVE_A, schema_problem)
    b = decide(record(key="order-42", source=QUEUE_B), QueueOwner("tenant-b", "ACTIVE"), schema_problem)
    assert isinstance(a, Start) and isinstance(b, Start)
    assert a.workflow_id != b.workflow_id
    assert (a.tenant_id, b.tenant_id) == ("tenant-a", "tenant-b")


def test_a_number_attribute_is_a_key_too() -> None:
    decision = decide(record(attribute={"stringValue": "42", "dataType": "Number"}), ACTIVE_A, schema_problem)
    assert isinstance(decision, Start) and decision.workflow_id == mint_workflow_id("tenant-a", "42", "")


@pytest.mark.parametrize(("key", "tenantish"), [("tenantId", True), ("tenant_id", True), ("x-tenant-id", True),
                                                ("TenantName", True), ("amount", False), ("currency", False),
                                                ("description", False), ("tenan", False)])
def test_tenant_keys(key: str, tenantish: bool) -> None:
    assert is_tenant_key(key) is tenantish


def test_the_payload_keeps_the_body_order_and_non_ascii_text() -> None:
    payload = start_payload("w-1", json.loads('{"currency": "EUR", "amount": 1, "description": "caf\\u00e9"}'))
    assert payload == '{"workflowId":"w-1","request":{"currency":"EUR","amount":1,"description":"café"}}'


def test_a_mixed_batch_decides_each_record_and_asks_for_each_queue_once() -> None:
    asked: list[str] = []
    owners = {QUEUE_A: ACTIVE_A, QUEUE_B: QueueOwner("tenant-b", "SUSPENDED")}

    def owner_of(arn: str) -> QueueOwner | None:
        asked.append(arn)
        return owners.get(arn)

    records = [
        record(message_id="good-1"),
        record("nope", message_id="bad-json"),
        record('{"tenantId": "tenant-b", "amount": 5, "currency": "EUR"}', message_id="claims-b"),
        record(message_id="dup-1", key="k"),
        record(message_id="dup-2", key="k"),
        record('{"amount": -1, "currency": "EUR"}', message_id="schema"),
        record(message_id="b-1", source=QUEUE_B),
        record(message_id="nobody", source="arn:aws:sqs:us-east-1:123456789012:unknown"),
    ]
    decisions = decide_batch(records, owner_of, schema_problem)
    kinds = [(d.message_id, type(d).__name__, getattr(d, "reason", None)) for d in decisions]
    assert kinds == [
        ("good-1", "Start", None),
        ("bad-json", "Refusal", Reason.MALFORMED_BODY),
        ("claims-b", "Refusal", Reason.TENANT_IN_BODY),
        ("dup-1", "Start", None),
        ("dup-2", "Start", None),
        ("schema", "Refusal", Reason.SCHEMA_VIOLATION),
        ("b-1", "Refusal", Reason.TENANT_NOT_ACTIVE),
        ("nobody", "Retry", None),
    ]
    assert all(d.tenant_id == "tenant-a" for d in decisions[:6])
    assert sorted(asked) == sorted([QUEUE_A, QUEUE_B, "arn:aws:sqs:us-east-1:123456789012:unknown"])


INVOKE_ANSWERS = [
    (None, Start),
    ("DurableExecutionAlreadyStartedException", Refusal),
    ("TooManyRequestsException", Retry),
    ("ServiceException", Retry),
    ("ResourceNotFoundException", Retry),
    ("ReadTimeoutError", Retry),
    ("EndpointConnectionError", Retry),
]


@pytest.mark.parametrize(("code", "kind"), INVOKE_ANSWERS)
def test_what_an_invoke_answer_makes_of_a_start(code: str | None, kind: type) -> None:
    start = Start("m-1", "tenant-a", "w-1", "{}")
    outcome = invoke_outcome(start, code)
    assert isinstance(outcome, kind)
    assert (outcome.tenant_id, outcome.workflow_id) == ("tenant-a", "w-1")
    if isinstance(outcome, Refusal):
        assert outcome.reason is Reason.IDEMPOTENCY_KEY_REUSED


def test_batch_response_lists_the_failed_message_ids() -> None:
    assert batch_response(["a", "b"]) == {"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}
    assert batch_response([]) == {"batchItemFailures": []}
