"""Helpers for the tenant lifecycle tests: signed admin calls to a local stack and counts of its per-tenant resources."""

from __future__ import annotations

import json
from typing import Any

import boto3
import requests

from local.services.iam_auth import read_admin_credentials
from local.tools.api_keys import AdminClient
from shared.tenants import tenant_resource_names
from tests.harness import StackProcess, wait_until

LOCAL = {"region_name": "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}
PREFIX = "tenant-durable"


def admin(stack: StackProcess) -> AdminClient:
    """Signed calls with the stack's admin credentials."""
    return AdminClient(stack.api_url, read_admin_credentials(stack.state_dir))


def tenant_body(tenant_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid onboarding body of a starter tenant."""
    return {"tenantId": tenant_id, "displayName": f"Tenant {tenant_id}", "tier": "starter",
            "allowedCurrencies": ["EUR", "USD"], "maxAmount": 1000, "callbackTimeoutSeconds": 600, **overrides}


def onboard(stack: StackProcess, tenant_id: str, **overrides: Any) -> str:
    """Onboard a tenant, wait for ACTIVE; its key (also registered with the harness)."""
    client = admin(stack)
    answer = client.call("POST", "/tenants", tenant_body(tenant_id, **overrides))
    assert answer.status_code == 202, answer.text
    key = answer.json()["apiKey"]
    assert client.wait_for(tenant_id, ("ACTIVE", "FAILED"), 60)["status"] == "ACTIVE"
    stack.extra_api_keys[tenant_id] = key
    return key


def offboard(stack: StackProcess, tenant_id: str) -> dict[str, Any]:
    client = admin(stack)
    answer = client.call("DELETE", f"/tenants/{tenant_id}")
    assert answer.status_code == 202, answer.text
    return client.wait_for(tenant_id, ("OFFBOARDED", "FAILED"), 60)


def start(stack: StackProcess, tenant_id: str, key: str, body: dict[str, Any] | None = None) -> requests.Response:
    return stack.http.post(f"{stack.api_url}/workflow", json=body or {"amount": 10, "currency": "EUR"},
                           headers={"x-tenant-id": tenant_id, "x-api-key": key}, timeout=30)


def read(stack: StackProcess, tenant_id: str, key: str, workflow_id: str) -> requests.Response:
    return stack.http.get(f"{stack.api_url}/workflow/{workflow_id}",
                          headers={"x-tenant-id": tenant_id, "x-api-key": key}, timeout=30)


def waiting(stack: StackProcess, tenant_id: str, key: str) -> dict[str, Any]:
    """Start a workflow and wait until it waits for its callback; its status answer."""
    answer = start(stack, tenant_id, key)
    assert answer.status_code == 202, answer.text
    workflow_id = answer.json()["workflowId"]

    def waits() -> dict[str, Any] | None:
        status = read(stack, tenant_id, key, workflow_id)
        return status.json() if status.status_code == 200 and status.json()["status"] == "WAITING_FOR_CALLBACK" else None

    return wait_until(waits, 45, f"workflow {workflow_id} waiting")


def registry_item(stack: StackProcess, tenant_id: str, workflow_id: str) -> dict[str, Any]:
    table = boto3.resource("dynamodb", endpoint_url=stack.dynamodb_url, **LOCAL).Table(f"{PREFIX}-workflows")
    return table.get_item(Key={"tenantId": tenant_id, "recordId": f"workflow#{workflow_id}"}, ConsistentRead=True)["Item"]


def resources(stack: StackProcess) -> dict[str, Any]:
    """Every per-tenant resource the stack holds: metering keys, keys in plans, callback queues and rules."""
    apigateway = boto3.client("apigateway", endpoint_url=stack.apigateway_url, **LOCAL)
    keys = apigateway.get_api_keys()["items"]
    plan_keys = sum(len(apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"])
                    for plan in apigateway.get_usage_plans()["items"])
    sqs = boto3.client("sqs", endpoint_url=stack.dynamodb_url, **LOCAL)
    events = boto3.client("events", endpoint_url=stack.dynamodb_url, **LOCAL)
    queues = [url.rsplit("/", 1)[1] for url in sqs.list_queues(QueueNamePrefix=f"{PREFIX}-callbacks").get("QueueUrls", [])]
    rules = [rule["Name"] for rule in events.list_rules(EventBusName=f"{PREFIX}-workflow-events",
                                                       NamePrefix=f"{PREFIX}-callbacks").get("Rules", [])]
    return {"keys": sorted(key["name"] for key in keys), "planKeys": plan_keys, "queues": sorted(queues),
            "rules": sorted(rules)}


def names(tenant_id: str) -> Any:
    return tenant_resource_names(PREFIX, tenant_id)


def queue_messages(stack: StackProcess, queue_url: str, wait_seconds: int = 10) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", endpoint_url=stack.dynamodb_url, **LOCAL)
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]
