"""SQS event source mappings of the local Lambda service: boto3's four calls against its endpoint, and the
poller as Lambda runs it (batches, partial batch responses, visibility timeout, the redrive to a DLQ).

The function here is a scripted stand-in run by a fake runner, so what the poller does is all that is
tested; the router itself on the whole stack is tests/local/test_router_e2e.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from local.backends.durable import DurableBackendClient
from local.runtime.functions import ACCOUNT_ID, FunctionConfig
from local.runtime.workers import InvocationContext, InvocationResult, WorkerCapacityError
from local.services.event_sources import failed_message_ids, sqs_record
from local.services.lambda_service import LocalLambdaService
from tests.harness import wait_until

REGION = "us-east-1"
FUNCTION = "esm-consumer"
RECORD_KEYS = {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody", "eventSource",
               "eventSourceARN", "awsRegion"}


@dataclass
class ScriptedRunner:
    """Runs the 'function': a body "fail" is a batch item failure, "crash" a function error, "throttle" a 429,
    anything else succeeds and is recorded as started."""

    started: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, function: FunctionConfig, event: Any, context: InvocationContext) -> InvocationResult:
        with self.lock:
            self.events.append(event)
        bodies = [record["body"] for record in event["Records"]]
        if "throttle" in bodies:
            raise WorkerCapacityError("no worker free")
        if "crash" in bodies:
            return InvocationResult({"errorType": "RuntimeError", "errorMessage": "boom"}, function_error="Unhandled")
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"]
        with self.lock:
            self.started.extend(r["body"] for r in event["Records"] if r["body"] != "fail")
        return InvocationResult({"batchItemFailures": failures})

    def describe(self) -> list[dict[str, Any]]:
        return []


@pytest.fixture
def moto() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def service(moto: str, tmp_path) -> Iterator[tuple[LocalLambdaService, ScriptedRunner]]:
    runner = ScriptedRunner()
    lambda_service = LocalLambdaService(
        functions=[FunctionConfig(name=FUNCTION, handler="unused.handler", timeout_seconds=5)], runner=runner,
        durable=DurableBackendClient("http://127.0.0.1:9"), region=REGION, sqs_endpoint_url=moto, state_dir=tmp_path,
    )
    lambda_service.start()
    yield lambda_service, runner
    lambda_service.stop()


def client(service_name: str, url: str) -> Any:
    return boto3.client(service_name, endpoint_url=url, region_name=REGION, aws_access_key_id="local",
                        aws_secret_access_key="local", config=Config(retries={"max_attempts": 1}))


def queue_with_dlq(sqs: Any, name: str, max_receive_count: int = 2) -> tuple[str, str, str]:
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return queue, arn, dlq


def bodies_in(sqs: Any, queue: str) -> list[str]:
    found = []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        found += [m["Body"] for m in messages]
    return sorted(found)


def depth(sqs: Any, queue: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_create_get_list_delete_with_boto3(service, moto) -> None:
    lambda_service, _ = service
    lam, sqs = client("lambda", lambda_service.url), client("sqs", moto)
    _, arn, _ = queue_with_dlq(sqs, "crud")

    created = lam.create_event_source_mapping(FunctionName=FUNCTION, EventSourceArn=arn, BatchSize=5,
                                              MaximumBatchingWindowInSeconds=1,
                                              FunctionResponseTypes=["ReportBatchItemFailures"])
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (created["State"], created["BatchSize"], created["MaximumBatchingWindowInSeconds"]) == ("Creating", 5, 1)
    assert created["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION}"
    assert created["EventSourceMappingArn"].endswith(f":event-source-mapping:{created['UUID']}")

    got = lam.get_event_source_mapping(UUID=created["UUID"])
    assert (got["State"], got["EventSourceArn"], got["FunctionResponseTypes"]) == (
        "Enabled", arn, ["ReportBatchItemFailures"])
    listed = lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [created["UUID"]]
    assert lam.list_event_source_mappings(FunctionName=created["FunctionArn"])["EventSourceMappings"][0]["UUID"] == (
        created["UUID"])
    assert lam.list_event_source_mappings(EventSourceArn=arn + "-other")["EventSourceMappings"] == []

    with pytest.raises(lam.exceptions.ResourceConflictException, match=created["UUID"]):
        lam.create_event_source_mapping(FunctionName=FUNCTION, EventSourceArn=arn)

    deleted = lam.delete_event_source_mapping(UUID=created["UUID"])
    assert deleted["State"] == "Deleting"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_event_source_mapping(UUID=created["UUID"])
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.delete_event_source_mapping(UUID=created["UUID"])


def test_refused_mappings(service, moto) -> None:
    lambda_service, _ = service
    lam, sqs = client("lambda", lambda_service.url), client("sqs", moto)
    _, arn, _ = queue_with_dlq(sqs, "refused")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_event_source_mapping(FunctionName="no-such-function", EventSourceArn=arn)
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_event_source_mapping(FunctionName=FUNCTION, EventSourceArn=arn.replace("refused", "missing"))
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_event_source_mapping(FunctionName=FUNCTION, EventSourceArn="arn:aws:sns:us-east-1:123456789012:t")
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="batch window"):
        lam.create_event_source_mapping(FunctionName=FUNCTION, EventSourceArn=arn, BatchSize=50)
    assert lam.list_event_source_mappings()["EventSourceMappings"] == []


def test_good_bad_and_failing_records_the_partial_batch_response_and_the_redrive(service, moto) -> None:
    lambda_service, runner = service
    lam, sqs = client("lambda", lambda_service.url), client("sqs", moto)
    queue, arn, dlq = queue_with_dlq(sqs, "mixed")
    for body in ("good-1", "fail", "good-2", "crash-free-3"):
        sqs.send_message(QueueUrl=queue, MessageBody=body,
                         MessageAttributes={"IdempotencyKey": {"DataType": "String", "StringValue": f"k-{body}"}})

    mapping = lam.create_event_source_mapping(FunctionName=FUNCTION, EventSourceArn=arn, BatchSize=10,
                                              MaximumBatchingWindowInSeconds=1,
                                              FunctionResponseTypes=["ReportBatchItemFailures"])

    # THEN the good records start once each, the failing one is retried until maxReceiveCount and moves to the
    # DLQ, and the queue drains
    wait_until(lambda: depth(sqs, queue) == 0 and depth(sqs, dlq) == 1, 30, "queue drained, one dead letter")
    assert sorted(runner.started) == ["crash-free-3", "good-1", "good-2"]
    assert bodies_in(sqs, dlq) == ["fail"]
    fail_deliveries = [r for e in runner.events for r in e["Records"] if r["body"] == "fail"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in fail_deliveries] == ["1", "2"]
    record = runner.events[0]["Records"][0]
    assert set(record) >= RECORD_KEYS
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == ("aws:sqs", arn, REGION)
    assert record["messageAttributes"]["IdempotencyKey"]["stringValue"].startswith("k-")
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["LastProcessingResult"] in ("OK", "PROBLEM: Function call failed")


def test_a_function_error_or_a_throttle_fails_the_whole_batch(service, moto) -> None:
    lambda_service, runner = service
    lam, sqs = client("lambda", lambda_service.url), client("sqs", moto)
    queue, arn, dlq = queue_with_dlq(sqs, "whole", max_receive_count=1)
    sqs.send_message(QueueUrl=queue, MessageBody="crash")
    sqs.send_message(QueueUrl=queue, MessageBody="throttle")
    lam.create_event_source_mapping(FunctionName=FUNCTION, EventSourceArn=arn, BatchSize=1,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])
    wait_until(lambda: depth(sqs, queue) == 0 and depth(sqs, dlq) == 2, 30, "both in the DLQ")
    assert runner.started == []
    assert bodies_in(sqs, dlq) == ["crash", "throttle"]


def test_a_deleted_mapping_stops_polling(service, moto) -> None:
    lambda_service, runner = service
    lam, sqs = client("lambda", lambda_service.url), client("sqs", moto)
    queue, arn, _ = queue_with_dlq(sqs, "stopped")
    mapping = lam.create_event_source_mapping(FunctionName=FUNCTION, EventSourceArn=arn)
    sqs.send_message(QueueUrl=queue, MessageBody="before")
    wait_until(lambda: runner.started == ["before"], 30, "the first message handled")
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    poller = next(t for t in threading.enumerate() if t.name == f"esm-{mapping['UUID'][:8]}")
    poller.join(timeout=30)
    assert not poller.is_alive()
    sqs.send_message(QueueUrl=queue, MessageBody="after")
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"][0]["Body"] == "after"
    assert runner.started == ["before"]


def test_mappings_survive_a_restart_of_the_service(moto, tmp_path) -> None:
    def new_service() -> LocalLambdaService:
        return LocalLambdaService(functions=[FunctionConfig(name=FUNCTION, handler="unused.handler")],
                                  runner=ScriptedRunner(), durable=DurableBackendClient("http://127.0.0.1:9"),
                                  region=REGION, sqs_endpoint_url=moto, state_dir=tmp_path)

    first = new_service()
    first.start()
    _, arn, _ = queue_with_dlq(client("sqs", moto), "kept")
    created = client("lambda", first.url).create_event_source_mapping(FunctionName=FUNCTION, EventSourceArn=arn)
    first.stop()
    second = new_service()
    second.start()
    try:
        assert client("lambda", second.url).get_event_source_mapping(UUID=created["UUID"])["EventSourceArn"] == arn
    finally:
        second.stop()


FAILURES = [
    # (function error, answer, failed)
    ("Unhandled", None, {"a", "b"}),
    (None, None, set()),
    (None, {"batchItemFailures": []}, set()),
    (None, {"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
    (None, {"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a", "b"}),
    (None, {"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b"}),
    (None, {"batchItemFailures": [{}]}, {"a", "b"}),
    (None, {"batchItemFailures": "b"}, {"a", "b"}),
    (None, "not a dict", set()),
]


@pytest.mark.parametrize(("error", "answer", "failed"), FAILURES)
def test_which_records_failed(error: str | None, answer: Any, failed: set[str]) -> None:
    assert failed_message_ids(["a", "b"], error, answer, True) == failed


def test_without_report_batch_item_failures_only_a_function_error_fails() -> None:
    assert failed_message_ids(["a"], None, {"batchItemFailures": [{"itemIdentifier": "a"}]}, False) == set()


def test_a_binary_attribute_is_base64_in_the_event() -> None:
    message = {"MessageId": "m", "ReceiptHandle": "r", "Body": "b", "MD5OfBody": "x", "Attributes": {},
               "MessageAttributes": {"Raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}}
    record = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q", REGION)
    assert record["messageAttributes"]["Raw"] == {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [],
                                                  "dataType": "Binary"}
    assert set(record) == RECORD_KEYS
