"""A tenant's start queue and its event source mapping on the router (I/O edge, idempotent).

The start queue is how work arrives for a tenant without HTTP: the router
(src/router) takes the tenant from the queue a record came from, so the queue
must admit only that tenant's producers (its policy) and exist only while the
tenant does. Each call may be repeated after a crash, a timeout or a call that
landed late: a create finds what exists, a delete tolerates "not found".

Names (router.tf grants on them): ``<prefix>-start-<tenantId>`` when the
tenant id starts with a letter or digit and holds no ``.`` and the name fits
SQS's 80 characters, else ``<prefix>-start-_<hex of SHA-256(tenantId)>``: the
``_`` no readable name starts with keeps the two forms apart; both match
``<prefix>-start-*`` and nothing else of the deployment does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.exceptions import ClientError

from shared.tenants import tenant_digest

QUEUE_NAME_MAX = 80
START_INFIX = "start-"
HASHED_MARK = "_"
# router.tf's names.
ROUTER_FUNCTION_SUFFIX = "router"
ROUTER_DEAD_LETTER_SUFFIX = "router-dlq"
# A message the router could not hand over (Invoke throttled or failing) is
# received this many times, then SQS moves it to the router's dead-letter queue.
MAX_RECEIVE_COUNT = 5
# Lambda's guidance for an SQS source: at least six times the function's
# timeout (the router's is api_timeout_seconds, 10 s by default).
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 60
# The mapping: up to 10 records a batch, gathered for at most a second.
BATCH_SIZE = 10
BATCHING_WINDOW_SECONDS = 1
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
QUEUE_ATTRIBUTES = {"SqsManagedSseEnabled": "true"}
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue",
                             "QueueDoesNotExist"})
_READABLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def start_queue_name(prefix: str, tenant_id: str) -> str:
    """The tenant's start queue (see the module's docstring)."""
    readable = f"{prefix}-{START_INFIX}{tenant_id}"
    if _READABLE.fullmatch(tenant_id) and len(readable) <= QUEUE_NAME_MAX:
        return readable
    head = f"{prefix}-{START_INFIX}{HASHED_MARK}"
    return head + tenant_digest(tenant_id, min(64, QUEUE_NAME_MAX - len(head)))


def router_function_name(prefix: str) -> str:
    """main.tf's name of the router function (``local.function_names["router"]``)."""
    return f"{prefix}-{ROUTER_FUNCTION_SUFFIX}"


def router_dead_letter_queue_name(prefix: str) -> str:
    """router.tf's ``aws_sqs_queue.router_dead_letter`` name."""
    return f"{prefix}-{ROUTER_DEAD_LETTER_SUFFIX}"


def _account_of_root(principal: str) -> str | None:
    match = re.fullmatch(r"arn:aws[a-zA-Z-]*:iam::(\d{12}):root", principal)
    return match.group(1) if match else None


def start_queue_policy(queue_arn: str, account: str, producers: list[str] | None) -> dict[str, Any]:
    """Who may send to a tenant's start queue: its producers only.

    Without ``producers``: the principals of this account that IAM allows to
    send (no other account). With them: those principals only (an account's
    ``:root`` admits that account's principals that IAM allows), every other
    principal is denied even if IAM allows it, so a record on the queue is the
    word of one of the tenant's producers.
    """
    allowed = list(producers) if producers else [f"arn:aws:iam::{account}:root"]
    accounts = sorted({a for a in (_account_of_root(p) for p in allowed) if a})
    principals = [p for p in allowed if _account_of_root(p) is None]
    condition: dict[str, Any] = {}
    if principals:
        condition["ArnNotEquals"] = {"aws:PrincipalArn": principals}
    if accounts:
        condition["StringNotEquals"] = {"aws:PrincipalAccount": accounts}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "TenantProducersMaySend", "Effect": "Allow", "Principal": {"AWS": allowed},
             "Action": "sqs:SendMessage", "Resource": queue_arn},
            {"Sid": "NoOtherSender", "Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage",
             "Resource": queue_arn, "Condition": condition},
        ],
    }


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class StartQueues:
    """Creates and deletes tenants' start queues and their mappings on the router.

    Args:
        prefix: The deployment's name prefix.
        sqs, lambda_client: boto3 clients.
        visibility_timeout: Each start queue's visibility timeout (seconds).
    """

    def __init__(self, *, prefix: str, sqs: Any, lambda_client: Any,
                 visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT_SECONDS) -> None:
        self.prefix = prefix
        self.sqs = sqs
        self.lambda_client = lambda_client
        self.visibility_timeout = visibility_timeout
        self.router = router_function_name(prefix)

    def ensure_queue(self, tenant_id: str, producers: list[str] | None) -> dict[str, str]:
        """The encrypted queue with its producers' policy and its redrive to the router's DLQ; URL and ARN."""
        url = self.sqs.create_queue(QueueName=start_queue_name(self.prefix, tenant_id),
                                    Attributes=QUEUE_ATTRIBUTES)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        head, _, _name = arn.rpartition(":")
        account = head.rpartition(":")[2]
        dead_letter_arn = f"{head}:{router_dead_letter_queue_name(self.prefix)}"
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={
            "Policy": json.dumps(start_queue_policy(arn, account, producers)),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
            "VisibilityTimeout": str(self.visibility_timeout),
        })
        return {"startQueueUrl": url, "startQueueArn": arn}

    def ensure_mapping(self, queue_arn: str) -> str:
        """The queue's event source mapping on the router (ReportBatchItemFailures); its UUID."""
        try:
            return str(self.lambda_client.create_event_source_mapping(
                EventSourceArn=queue_arn, FunctionName=self.router, Enabled=True, BatchSize=BATCH_SIZE,
                MaximumBatchingWindowInSeconds=BATCHING_WINDOW_SECONDS,
                FunctionResponseTypes=[REPORT_BATCH_ITEM_FAILURES])["UUID"])
        except ClientError as error:
            if _code(error) != "ResourceConflictException":
                raise
        existing = self._mappings(queue_arn)
        if not existing:
            raise RuntimeError(f"Lambda reports a mapping of {queue_arn} that it does not list")
        return str(existing[0]["UUID"])

    def remove_mapping(self, tenant_id: str) -> int:
        """Delete the router's mappings of the tenant's queue (whether or not the queue still exists); how many."""
        name = start_queue_name(self.prefix, tenant_id)
        removed = 0
        for mapping in self._mappings(None):
            if str(mapping.get("EventSourceArn", "")).rpartition(":")[2] != name:
                continue
            try:
                self.lambda_client.delete_event_source_mapping(UUID=mapping["UUID"])
            except ClientError as error:
                if _code(error) not in NOT_FOUND_CODES:
                    raise
            removed += 1
        return removed

    def remove_queue(self, tenant_id: str) -> None:
        """Delete the tenant's start queue if it exists (messages still in it go with it)."""
        try:
            url = self.sqs.get_queue_url(QueueName=start_queue_name(self.prefix, tenant_id))["QueueUrl"]
            self.sqs.delete_queue(QueueUrl=url)
        except ClientError as error:
            if _code(error) not in NOT_FOUND_CODES:
                raise

    def _mappings(self, queue_arn: str | None) -> list[dict[str, Any]]:
        arguments: dict[str, Any] = {"FunctionName": self.router}
        if queue_arn:
            arguments["EventSourceArn"] = queue_arn
        found: list[dict[str, Any]] = []
        while True:
            page = self.lambda_client.list_event_source_mappings(**arguments)
            found.extend(page.get("EventSourceMappings", []))
            if not page.get("NextMarker"):
                return found
            arguments["Marker"] = page["NextMarker"]
