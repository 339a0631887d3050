"""SQS event source mappings for the local Lambda service, run as Lambda runs them.

The local Lambda service answers ``CreateEventSourceMapping``,
``GetEventSourceMapping``, ``ListEventSourceMappings`` and
``DeleteEventSourceMapping`` (Lambda's REST paths and JSON shapes, botocore's
lambda model) from :class:`EventSourceMappings`; each mapping is one poller
thread that does what Lambda's pollers do for an SQS queue:

* receives from the queue on the moto server (long polls of
  ``poll_wait_seconds``; Lambda's are 20 s, a short one lets a delete or a
  shutdown stop the poller within that time), gathering up to ``BatchSize``
  records for at most ``MaximumBatchingWindowInSeconds`` (0: hand over what one
  receive returned);
* invokes the function synchronously with Lambda's SQS event (``Records`` of
  ``messageId``, ``receiptHandle``, ``body``, ``attributes``,
  ``messageAttributes``, ``md5OfBody``, ``eventSource``, ``eventSourceARN``,
  ``awsRegion``) in the function's worker, as the service runs any invocation;
* deletes what succeeded. A function error (or a throttle) fails the whole
  batch; with ``FunctionResponseTypes = ["ReportBatchItemFailures"]`` only the
  ``batchItemFailures`` fail, and a malformed answer (an identifier missing or
  not in the batch) fails the whole batch, as Lambda does. Failed records are
  left alone: they come back when their visibility timeout ends, and the
  queue's redrive policy moves them to its dead-letter queue after
  ``maxReceiveCount`` receives (moto's SQS does that on receive, as SQS does:
  tests/local/test_event_sources.py shows it).

Mappings are kept in the state directory, so they survive a restart of
``make run`` as Lambda's do.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)

STATE_FILE = "event-source-mappings.json"
DEFAULT_BATCH_SIZE = 10
MAX_BATCH_SIZE = 10_000
MAX_BATCHING_WINDOW_SECONDS = 300
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
_SQS_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:sqs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<name>[A-Za-z0-9_-]{1,80})$")


class MappingError(Exception):
    """A refused request, answered in Lambda's error shape by the service."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


# The function ran: its error (Lambda's FunctionError) or None, and what it returned.
Invoke = Callable[[str, dict[str, Any]], tuple[str | None, Any]]


@dataclass
class Mapping:
    """One SQS event source mapping (what CreateEventSourceMapping stored)."""

    uuid: str
    function_name: str
    function_arn: str
    event_source_arn: str
    batch_size: int
    batching_window: int
    function_response_types: list[str]
    enabled: bool
    last_modified: float
    last_processing_result: str = "No records processed"
    stop: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    thread: threading.Thread | None = field(default=None, repr=False, compare=False)

    @property
    def reports_item_failures(self) -> bool:
        return REPORT_BATCH_ITEM_FAILURES in self.function_response_types

    def configuration(self, region: str, account: str, state: str | None = None) -> dict[str, Any]:
        """Lambda's ``EventSourceMappingConfiguration``."""
        return {
            "UUID": self.uuid,
            "BatchSize": self.batch_size,
            "MaximumBatchingWindowInSeconds": self.batching_window,
            "EventSourceArn": self.event_source_arn,
            "FunctionArn": self.function_arn,
            "LastModified": self.last_modified,
            "LastProcessingResult": self.last_processing_result,
            "State": state or ("Enabled" if self.enabled else "Disabled"),
            "StateTransitionReason": "USER_INITIATED",
            "FunctionResponseTypes": list(self.function_response_types),
            "EventSourceMappingArn": f"arn:aws:lambda:{region}:{account}:event-source-mapping:{self.uuid}",
        }

    def stored(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("stop", "thread")}


def sqs_record(message: dict[str, Any], event_source_arn: str, region: str) -> dict[str, Any]:
    """One record of Lambda's SQS event from one ``ReceiveMessage`` message (boto3's shape)."""
    attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        attribute: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
        if "StringValue" in value:
            attribute["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        attributes[name] = attribute
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": event_source_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(batch_ids: list[str], function_error: str | None, payload: Any,
                       reports_item_failures: bool) -> set[str]:
    """The records of a batch that failed, from the function's answer (Lambda's rules).

    A function error fails them all. With ``ReportBatchItemFailures`` the
    answer's ``batchItemFailures`` fail; a failure without an identifier, or with
    one that is not in the batch, fails the whole batch; no answer, an empty list
    or any other answer: none failed.
    """
    if function_error:
        return set(batch_ids)
    if not reports_item_failures or not isinstance(payload, dict):
        return set()
    failures = payload.get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list):
        return set(batch_ids)
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            return set(batch_ids)
        failed.add(identifier)
    return failed


class EventSourceMappings:
    """The mappings of one local Lambda service and their pollers.

    Args:
        sqs_endpoint_url: The moto server the queues live on.
        region: Region of the ARNs.
        account: Account of the ARNs.
        invoke: Runs a function once with an event (the service's runner).
        function_arn: The ARN of a function (name, partial or full ARN); None when it does not exist.
        state_dir: Where the mappings are kept across restarts (None: memory only).
        poll_wait_seconds: Each receive's long poll.
    """

    def __init__(self, *, sqs_endpoint_url: str, region: str, account: str, invoke: Invoke,
                 function_arn: Callable[[str], str | None], state_dir: Path | None = None,
                 poll_wait_seconds: int = 1) -> None:
        self._region = region
        self._account = account
        self._invoke = invoke
        self._function_arn = function_arn
        self._state_file = Path(state_dir) / STATE_FILE if state_dir else None
        self._poll_wait = poll_wait_seconds
        self._lock = threading.Lock()
        self._mappings: dict[str, Mapping] = {}
        self._running = False
        self._sqs = boto3.client(
            "sqs", endpoint_url=sqs_endpoint_url, region_name=region, aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto's fake credentials
            config=Config(retries={"max_attempts": 2}, read_timeout=poll_wait_seconds + 10, connect_timeout=2),
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start polling: the mappings kept in the state directory first."""
        self._running = True
        for stored in self._load():
            mapping = Mapping(**stored)
            with self._lock:
                self._mappings[mapping.uuid] = mapping
            self._spawn(mapping)

    def stop(self) -> None:
        """Stop every poller (each stops within one long poll) and wait for them."""
        self._running = False
        with self._lock:
            mappings = list(self._mappings.values())
        for mapping in mappings:
            mapping.stop.set()
        for mapping in mappings:
            if mapping.thread is not None:
                mapping.thread.join(timeout=self._poll_wait + 15)

    # -- the API ---------------------------------------------------------------------------

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        """CreateEventSourceMapping (SQS sources only)."""
        function = request.get("FunctionName")
        source = request.get("EventSourceArn")
        if not isinstance(function, str) or not function:
            raise MappingError(400, "InvalidParameterValueException", "FunctionName is required.")
        function_arn = self._function_arn(function)
        if function_arn is None:
            raise MappingError(404, "ResourceNotFoundException", f"Function not found: {function}")
        match = _SQS_ARN.match(source) if isinstance(source, str) else None
        if match is None:
            raise MappingError(400, "InvalidParameterValueException", "Unrecognized event source, must be an SQS queue.")
        batch_size = _integer(request, "BatchSize", DEFAULT_BATCH_SIZE, 1, MAX_BATCH_SIZE)
        window = _integer(request, "MaximumBatchingWindowInSeconds", 0, 0, MAX_BATCHING_WINDOW_SECONDS)
        if batch_size > DEFAULT_BATCH_SIZE and window < 1:
            raise MappingError(400, "InvalidParameterValueException",
                               "Maximum batch window in seconds must be greater than 0 if maximum batch size is "
                               "greater than 10")
        response_types = request.get("FunctionResponseTypes") or []
        if not isinstance(response_types, list) or any(t != REPORT_BATCH_ITEM_FAILURES for t in response_types):
            raise MappingError(400, "InvalidParameterValueException",
                               f"FunctionResponseTypes may only hold {REPORT_BATCH_ITEM_FAILURES}.")
        try:
            self._queue_url(source)  # type: ignore[arg-type]
        except (BotoCoreError, ClientError) as error:
            raise MappingError(400, "InvalidParameterValueException",
                               f"Error occurred while ReceiveMessage. SQS Error: {error}") from error
        with self._lock:
            for existing in self._mappings.values():
                if existing.event_source_arn == source and existing.function_arn == function_arn:
                    raise MappingError(409, "ResourceConflictException",
                                       f"An event source mapping with SQS arn (\" {source} \") and function "
                                       f"(\" {function_arn.rsplit(':', 1)[-1]} \") already exists. Please update or "
                                       f"delete the existing mapping with UUID {existing.uuid}")
            mapping = Mapping(uuid=str(uuid.uuid4()), function_name=function_arn.rsplit(":", 1)[-1],
                              function_arn=function_arn, event_source_arn=source,  # type: ignore[arg-type]
                              batch_size=batch_size, batching_window=window,
                              function_response_types=list(response_types),
                              enabled=request.get("Enabled", True) is not False, last_modified=time.time())
            self._mappings[mapping.uuid] = mapping
            self._save()
        if self._running:
            self._spawn(mapping)
        return mapping.configuration(self._region, self._account, state="Creating")

    def get(self, mapping_uuid: str) -> dict[str, Any]:
        """GetEventSourceMapping."""
        return self._find(mapping_uuid).configuration(self._region, self._account)

    def list(self, *, event_source_arn: str | None = None, function_name: str | None = None,
             marker: str | None = None, max_items: str | None = None) -> dict[str, Any]:
        """ListEventSourceMappings, filtered by source and function, 100 at most a page."""
        function_arn = None
        if function_name:
            function_arn = self._function_arn(function_name)
            if function_arn is None:
                raise MappingError(404, "ResourceNotFoundException", f"Function not found: {function_name}")
        with self._lock:
            mappings = [m for m in self._mappings.values()
                        if (event_source_arn is None or m.event_source_arn == event_source_arn)
                        and (function_arn is None or m.function_arn == function_arn)]
        try:
            start = int(marker) if marker else 0
            size = min(int(max_items), 100) if max_items else 100
        except ValueError as error:
            raise MappingError(400, "InvalidParameterValueException", f"Invalid Marker or MaxItems: {error}") from error
        page = mappings[start:start + size]
        answer: dict[str, Any] = {"EventSourceMappings": [m.configuration(self._region, self._account) for m in page]}
        if start + size < len(mappings):
            answer["NextMarker"] = str(start + size)
        return answer

    def delete(self, mapping_uuid: str) -> dict[str, Any]:
        """DeleteEventSourceMapping: the poller stops (it finishes the batch it holds)."""
        with self._lock:
            mapping = self._find(mapping_uuid)
            del self._mappings[mapping_uuid]
            self._save()
        mapping.stop.set()
        return mapping.configuration(self._region, self._account, state="Deleting")

    # -- polling ---------------------------------------------------------------------------

    def _spawn(self, mapping: Mapping) -> None:
        if not mapping.enabled:
            return
        mapping.thread = threading.Thread(target=self._poll, args=(mapping,), daemon=True,
                                          name=f"esm-{mapping.uuid[:8]}")
        mapping.thread.start()

    def _poll(self, mapping: Mapping) -> None:
        queue_url: str | None = None
        failing = False
        while not mapping.stop.is_set():
            try:
                queue_url = queue_url or self._queue_url(mapping.event_source_arn)
                batch = self._collect(mapping, queue_url)
                failing = False
            except (BotoCoreError, ClientError) as error:
                # The queue is gone or moto is not answering: Lambda keeps trying too.
                if not failing:
                    logger.warning("event source mapping %s cannot receive from %s: %s", mapping.uuid,
                                   mapping.event_source_arn, error)
                failing, queue_url = True, None
                mapping.stop.wait(self._poll_wait)
                continue
            if batch and not mapping.stop.is_set():
                self._deliver(mapping, queue_url, batch)

    def _collect(self, mapping: Mapping, queue_url: str) -> list[dict[str, Any]]:
        """Up to BatchSize messages, gathered for at most the batching window after the first."""
        batch: list[dict[str, Any]] = []
        first_at: float | None = None
        while not mapping.stop.is_set() and len(batch) < mapping.batch_size:
            if first_at is None:
                wait = self._poll_wait
            else:
                left = mapping.batching_window - (time.monotonic() - first_at)
                if left <= 0:
                    break
                wait = min(self._poll_wait, math.ceil(left))
            messages = self._sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=min(10, mapping.batch_size - len(batch)), WaitTimeSeconds=wait,
                AttributeNames=["All"], MessageAttributeNames=["All"],
            ).get("Messages", [])
            if messages:
                batch.extend(messages)
                first_at = first_at if first_at is not None else time.monotonic()
            elif first_at is None:
                return []
        return batch

    def _deliver(self, mapping: Mapping, queue_url: str, batch: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(m, mapping.event_source_arn, self._region) for m in batch]}
        ids = [m["MessageId"] for m in batch]
        try:
            function_error, payload = self._invoke(mapping.function_name, event)
        except Exception as error:  # noqa: BLE001 - a throttle or a dead worker fails the batch, never the poller
            function_error, payload = "Unhandled", None
            logger.warning("event source mapping %s: invocation failed: %s", mapping.uuid, error)
        failed = failed_message_ids(ids, function_error, payload, mapping.reports_item_failures)
        done = [{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]}
                for index, m in enumerate(batch) if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            try:
                self._sqs.delete_message_batch(QueueUrl=queue_url, Entries=done[start:start + 10])
            except (BotoCoreError, ClientError) as error:  # they come back and are redelivered, as on AWS
                logger.warning("event source mapping %s: delete failed: %s", mapping.uuid, error)
        mapping.last_processing_result = "OK" if not failed else "PROBLEM: Function call failed"
        logger.info("event source mapping %s: batch of %d, %d failed", mapping.uuid, len(batch), len(failed))

    # -- helpers ---------------------------------------------------------------------------

    def _queue_url(self, queue_arn: str) -> str:
        match = _SQS_ARN.match(queue_arn)
        if match is None:
            raise MappingError(400, "InvalidParameterValueException", f"Not an SQS queue ARN: {queue_arn}")
        return str(self._sqs.get_queue_url(QueueName=match.group("name"),
                                           QueueOwnerAWSAccountId=match.group("account"))["QueueUrl"])

    def _find(self, mapping_uuid: str) -> Mapping:
        mapping = self._mappings.get(mapping_uuid)
        if mapping is None:
            raise MappingError(404, "ResourceNotFoundException", "The resource you requested does not exist.")
        return mapping

    def _save(self) -> None:
        if self._state_file is None:
            return
        data = [m.stored() for m in self._mappings.values()]
        temporary = self._state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        temporary.replace(self._state_file)

    def _load(self) -> list[dict[str, Any]]:
        if self._state_file is None or not self._state_file.exists():
            return []
        try:
            data = json.loads(self._state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            logger.warning("ignoring unreadable %s: %s", self._state_file, error)
            return []
        return [entry for entry in data if isinstance(entry, dict)] if isinstance(data, list) else []


def _integer(request: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = request.get(name, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise MappingError(400, "InvalidParameterValueException", f"{name} must be an integer from {low} to {high}.")
    return value
