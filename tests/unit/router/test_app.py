"""The router's handler over moto: the queue's owner from the registry, Invoke answers, dead letters, the
partial batch response, and logs without bodies (router/app.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from tests.unit.fakes import FakeLambdaContext

from .conftest import ROUTER_ENV

QUEUE_A = "arn:aws:sqs:us-east-1:123456789012:tenant-durable-start-tenant-a"
QUEUE_B = "arn:aws:sqs:us-east-1:123456789012:tenant-durable-start-tenant-b"
QUEUE_SUSPENDED = "arn:aws:sqs:us-east-1:123456789012:tenant-durable-start-tenant-suspended"
GOOD = '{"amount": 12.5, "currency": "EUR"}'


class FakeLambda:
    """Records Invokes; answers each with the next scripted error code (None: accepted)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.answers: list[str | Exception | None] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            raise ClientError({"Error": {"Code": answer, "Message": answer}}, "Invoke")
        return {"StatusCode": 202}


@pytest.fixture
def router(tables, monkeypatch) -> Iterator[tuple[Any, FakeLambda, str]]:
    from router import app

    tenants, _ = tables
    for tenant_id, arn in (("tenant-a", QUEUE_A), ("tenant-b", QUEUE_B), ("tenant-suspended", QUEUE_SUSPENDED)):
        tenants.update_item(Key={"tenantId": tenant_id}, UpdateExpression="SET startQueueArn = :arn",
                            ExpressionAttributeValues={":arn": arn})
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="unit-router-dlq")["QueueUrl"]
    assert dlq == ROUTER_ENV["ROUTER_DEAD_LETTER_QUEUE_URL"]
    fake = FakeLambda()
    monkeypatch.setattr(app, "LAMBDA_CLIENT", fake)
    monkeypatch.setattr(app, "TENANTS_TABLE", tenants)
    monkeypatch.setattr(app, "SQS_CLIENT", sqs)
    yield app, fake, dlq
    sqs.delete_queue(QueueUrl=dlq)


def record(message_id: str, body: str = GOOD, source: str = QUEUE_A, key: str | None = None) -> dict[str, Any]:
    attributes = {"IdempotencyKey": {"stringValue": key, "dataType": "String"}} if key else {}
    return {"messageId": message_id, "receiptHandle": f"rh-{message_id}", "body": body, "attributes": {},
            "messageAttributes": attributes, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": source, "awsRegion": "us-east-1"}


def dead_letters(dlq: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages", [])
    return [{"body": m["Body"], **{k: v["StringValue"] for k, v in m["MessageAttributes"].items()}} for m in messages]


def test_a_mixed_batch_starts_the_good_records_and_dead_letters_the_others(router, json_logs) -> None:
    app, fake, dlq = router
    logs = json_logs(app.logger)
    secret_body = '{"amount": 7, "currency": "USD", "description": "secret-text-never-logged"}'
    records = [record("good"), record("bad", "{oops"), record("claims", '{"tenant_id": "tenant-b"}'),
               record("secret", secret_body)]
    result = app.handler({"Records": records}, FakeLambdaContext())
    assert result == {"batchItemFailures": []}
    assert [(c["TenantId"], c["DurableExecutionName"], c["InvocationType"], c["FunctionName"]) for c in fake.calls] == [
        ("tenant-a", "good", "Event", "unit-workflow:live"), ("tenant-a", "secret", "Event", "unit-workflow:live")]
    assert json.loads(fake.calls[0]["Payload"]) == {"workflowId": "good", "request": {"amount": 12.5, "currency": "EUR"}}
    letters = sorted(dead_letters(dlq), key=lambda m: m["SourceMessageId"])
    assert [(m["SourceMessageId"], m["Reason"], m["TenantId"], m["SourceQueueArn"], m["body"]) for m in letters] == [
        ("bad", "MALFORMED_BODY", "tenant-a", QUEUE_A, "{oops"),
        ("claims", "TENANT_IN_BODY", "tenant-a", QUEUE_A, '{"tenant_id": "tenant-b"}')]
    lines = logs.lines()
    assert "secret-text-never-logged" not in json.dumps(lines)
    started = [line for line in lines if line["message"] == "workflow started"]
    assert [(line["tenant_id"], line["workflow_id"]) for line in started] == [("tenant-a", "good"), ("tenant-a", "secret")]


def test_the_tenant_is_the_queue_owner_whatever_the_batch_mixes(router) -> None:
    app, fake, dlq = router
    app.handler({"Records": [record("a1"), record("b1", source=QUEUE_B), record("s1", source=QUEUE_SUSPENDED)]},
                FakeLambdaContext())
    assert [(c["DurableExecutionName"], c["TenantId"]) for c in fake.calls] == [("a1", "tenant-a"), ("b1", "tenant-b")]
    assert [(m["SourceMessageId"], m["Reason"]) for m in dead_letters(dlq)] == [("s1", "TENANT_NOT_ACTIVE")]


def test_a_queue_whose_item_no_longer_names_it_is_owned_by_nobody(router, tables) -> None:
    # A stale index entry must not route: the item, read strongly consistent, decides.
    app, fake, _ = router
    tenants, _ = tables
    tenants.update_item(Key={"tenantId": "tenant-a"}, UpdateExpression="SET startQueueArn = :other",
                        ExpressionAttributeValues={":other": QUEUE_A + "-renamed"})
    assert app.queue_owner(QUEUE_A) is None
    assert app.handler({"Records": [record("m")]}, FakeLambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "m"}]}
    assert fake.calls == []


def test_throttled_and_failing_invokes_are_batch_item_failures_and_a_reused_key_is_dead_lettered(router) -> None:
    app, fake, dlq = router
    fake.answers = ["TooManyRequestsException", "DurableExecutionAlreadyStartedException",
                    ReadTimeoutError(endpoint_url="http://lambda"), None]
    result = app.handler({"Records": [record("throttled"), record("reused", key="k"), record("timeout"),
                                      record("fine")]}, FakeLambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "throttled"}, {"itemIdentifier": "timeout"}]}
    [letter] = dead_letters(dlq)
    assert (letter["SourceMessageId"], letter["Reason"]) == ("reused", "IDEMPOTENCY_KEY_REUSED")
    assert letter["WorkflowId"].startswith("idem-")


def test_a_failed_dead_letter_send_makes_the_record_come_back(router, monkeypatch) -> None:
    app, _, _ = router
    monkeypatch.setattr(app, "DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    assert app.handler({"Records": [record("bad", "{oops")]}, FakeLambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": "bad"}]}


def test_records_past_the_time_budget_are_retried_not_cut_off(router) -> None:
    app, fake, _ = router
    context = FakeLambdaContext(remaining_millis=app.INVOKE_BUDGET_MS - 1)
    assert app.handler({"Records": [record("late")]}, context) == {"batchItemFailures": [{"itemIdentifier": "late"}]}
    assert fake.calls == []


def test_a_registry_failure_retries_the_queue_records(router, monkeypatch) -> None:
    app, fake, _ = router

    class Broken:
        def query(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}, "Query")

    monkeypatch.setattr(app, "TENANTS_TABLE", Broken())
    assert app.handler({"Records": [record("m")]}, FakeLambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "m"}]}
    assert fake.calls == []


def test_the_index_the_router_queries_is_the_one_dynamodb_tf_declares() -> None:
    from router import app
    from scripts.terraform_tables import table_spec

    indexes = {index.name: index.hash_key for index in table_spec("tenants", "any").global_indexes}
    assert indexes[app.START_QUEUE_INDEX] == app.START_QUEUE_ATTRIBUTE
