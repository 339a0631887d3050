"""What the router's end-to-end tests share: a tenant's start queue, the router's dead-letter queue, starts."""

from __future__ import annotations

from typing import Any

import boto3

from tests.harness import StackProcess, wait_until

LOCAL = {"region_name": "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}
TENANTS_TABLE = "tenant-durable-tenants"
ROUTER_DLQ = "tenant-durable-router-dlq"


class QueueEntry:
    """The queue entry of one running stack, seen from outside as a producer and an operator see it."""

    def __init__(self, stack: StackProcess) -> None:
        self.stack = stack
        self.sqs = boto3.client("sqs", endpoint_url=stack.dynamodb_url, **LOCAL)
        self.tenants = boto3.resource("dynamodb", endpoint_url=stack.dynamodb_url, **LOCAL).Table(TENANTS_TABLE)
        self.dlq = self.sqs.get_queue_url(QueueName=ROUTER_DLQ)["QueueUrl"]
        self._dead: dict[str, dict[str, str]] = {}

    def start_queue(self, tenant_id: str) -> str:
        """The tenant's start queue URL, as its item (and GET /tenants/{tenantId}) names it."""
        item = self.tenants.get_item(Key={"tenantId": tenant_id}, ConsistentRead=True)["Item"]
        return str(item["startQueueUrl"])

    def send(self, tenant_id: str, body: str, key: str | None = None) -> str:
        """Send ``body`` to the tenant's start queue (with an IdempotencyKey); the message id."""
        attributes = {"IdempotencyKey": {"DataType": "String", "StringValue": key}} if key else {}
        return str(self.sqs.send_message(QueueUrl=self.start_queue(tenant_id), MessageBody=body,
                                         MessageAttributes=attributes)["MessageId"])

    def depth(self, tenant_id: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.start_queue(tenant_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def dead_letters(self) -> dict[str, dict[str, str]]:
        """Every dead letter read so far by source message id: its attributes and body (read and deleted)."""
        while messages := self.sqs.receive_message(QueueUrl=self.dlq, MaxNumberOfMessages=10,
                                                   MessageAttributeNames=["All"]).get("Messages", []):
            for message in messages:
                attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
                self._dead[attributes.get("SourceMessageId", message["MessageId"])] = {**attributes,
                                                                                        "body": message["Body"]}
                self.sqs.delete_message(QueueUrl=self.dlq, ReceiptHandle=message["ReceiptHandle"])
        return dict(self._dead)

    def wait_dead(self, message_ids: list[str], timeout: float = 60) -> dict[str, dict[str, str]]:
        return wait_until(lambda: (d := self.dead_letters()) and all(m in d for m in message_ids) and d,
                          timeout, f"dead letters for {message_ids}")

    def wait_drained(self, tenant_id: str, timeout: float = 60) -> None:
        wait_until(lambda: self.depth(tenant_id) == 0, timeout, f"{tenant_id}'s start queue drained")

    def starts(self, tenant_id: str) -> int:
        """How many durable executions of the workflow the Lambda service started for the tenant."""
        return _starts(self.stack, tenant_id)


def _starts(stack: StackProcess, tenant_id: str) -> int:
    rows = stack.http.get(f"{stack.lambda_url}/_local/invocations", timeout=10).json()["invocations"]
    return sum(row["count"] for row in rows if row["functionName"].endswith("-workflow")
               and row["tenantId"] == tenant_id and row["kind"] == "start")


def registry_item(stack: StackProcess, tenant_id: str, workflow_id: str) -> dict[str, Any] | None:
    """The workflow's registry item under ``tenant_id`` (None: that tenant has no such workflow)."""
    table = boto3.resource("dynamodb", endpoint_url=stack.dynamodb_url, **LOCAL).Table("tenant-durable-workflows")
    return table.get_item(Key={"tenantId": tenant_id, "recordId": f"workflow#{workflow_id}"}).get("Item")
