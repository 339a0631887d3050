"""The queue entry end to end on the local stack: each demo tenant's start queue (made by the provisioner),
its event source mapping polled by the local Lambda service, the router, workflow:live.

GIVEN good, duplicate, malformed and tenant-claiming messages on tenant-a's queue, THEN exactly the good ones
start, once each, for tenant-a; the others are in the router's dead-letter queue with their reasons; the
queue drains. A suspended tenant's messages start nothing; nothing on tenant-a's queue starts for tenant-b;
the same key over HTTP and over the queue is one workflow; the banner's one-liner starts one.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid

import pytest

from shared.identity import IDEMPOTENCY_HEADER, mint_workflow_id
from local.services.iam_auth import ensure_admin_credentials
from local.tools.api_keys import AdminClient
from tests.harness import REPO_ROOT, StackProcess, wait_until

from .router_helpers import QueueEntry, registry_item

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def entry(stack: StackProcess) -> QueueEntry:
    return QueueEntry(stack)


def body(amount: float, currency: str = "EUR", **extra: object) -> str:
    return json.dumps({"amount": amount, "currency": currency, **extra})


def test_good_duplicate_malformed_and_tenant_claiming_messages(stack: StackProcess, entry: QueueEntry) -> None:
    run = uuid.uuid4().hex[:8]
    starts_a, starts_b = entry.starts("tenant-a"), entry.starts("tenant-b")

    # WHEN tenant-a's producer sends two good orders, one of them three times with one key
    # (a producer's retries), a message that is not JSON, one naming tenant-b, one off the schema
    good_plain = entry.send("tenant-a", body(10, description=f"plain {run}"))
    good_keyed = [entry.send("tenant-a", body(20, description=f"keyed {run}"), key=f"order-{run}") for _ in range(3)]
    malformed = entry.send("tenant-a", "amount=10&currency=EUR")
    claiming = entry.send("tenant-a", body(30, tenantId="tenant-b"))
    off_schema = entry.send("tenant-a", body(-5))

    # THEN the two good orders start for tenant-a, once each, named as the HTTP entry names them
    keyed_id = mint_workflow_id("tenant-a", f"order-{run}", "")
    for workflow_id in (good_plain, keyed_id):
        stack.wait_for_status("tenant-a", workflow_id, "WAITING_FOR_CALLBACK")
    entry.wait_drained("tenant-a")
    assert entry.starts("tenant-a") - starts_a == 2
    # ... nothing for tenant-b, whatever a body says
    assert entry.starts("tenant-b") == starts_b
    assert registry_item(stack, "tenant-b", good_plain) is None and registry_item(stack, "tenant-b", keyed_id) is None
    # ... and the others are dead letters with their reasons, the body unchanged, the queue's tenant named
    dead = entry.wait_dead([malformed, claiming, off_schema])
    assert {m: dead[m]["Reason"] for m in (malformed, claiming, off_schema)} == {
        malformed: "MALFORMED_BODY", claiming: "TENANT_IN_BODY", off_schema: "SCHEMA_VIOLATION"}
    assert dead[claiming]["TenantId"] == "tenant-a" and json.loads(dead[claiming]["body"])["tenantId"] == "tenant-b"
    assert not {good_plain, *good_keyed} & set(dead)


def test_a_suspended_tenants_messages_start_nothing(stack: StackProcess, entry: QueueEntry) -> None:
    before = entry.starts("tenant-suspended")
    message = entry.send("tenant-suspended", body(10, "USD"))
    dead = entry.wait_dead([message])
    assert dead[message]["Reason"] == "TENANT_NOT_ACTIVE"
    entry.wait_drained("tenant-suspended")
    assert entry.starts("tenant-suspended") == before


def test_the_same_key_over_http_and_over_the_queue_is_one_workflow(stack: StackProcess, entry: QueueEntry) -> None:
    key = f"both-{uuid.uuid4().hex[:8]}"
    order = {"amount": 42, "currency": "USD", "description": "one order, two entries"}
    response = stack.http.post(f"{stack.api_url}/workflow", json=order,
                               headers={**stack.headers("tenant-b"), IDEMPOTENCY_HEADER: key}, timeout=30)
    assert response.status_code == 202, response.text
    workflow_id = response.json()["workflowId"]
    stack.wait_for_status("tenant-b", workflow_id, "WAITING_FOR_CALLBACK")
    before = entry.starts("tenant-b")

    # WHEN the producer sends the same order with the same key on tenant-b's queue
    message = entry.send("tenant-b", json.dumps(order), key=key)

    # THEN Lambda answers the start as the first one (same name, same input): no second execution, no dead letter
    entry.wait_drained("tenant-b")
    assert workflow_id == mint_workflow_id("tenant-b", key, "")
    assert entry.starts("tenant-b") == before
    assert message not in entry.dead_letters()
    assert stack.status("tenant-b", workflow_id).json()["status"] == "WAITING_FOR_CALLBACK"


def test_a_reused_key_with_another_body_is_a_dead_letter(stack: StackProcess, entry: QueueEntry) -> None:
    key = f"reused-{uuid.uuid4().hex[:8]}"
    first = entry.send("tenant-a", body(11), key=key)
    stack.wait_for_status("tenant-a", mint_workflow_id("tenant-a", key, ""), "WAITING_FOR_CALLBACK")
    entry.wait_drained("tenant-a")
    second = entry.send("tenant-a", body(12), key=key)
    dead = entry.wait_dead([second])
    assert dead[second]["Reason"] == "IDEMPOTENCY_KEY_REUSED"
    assert first not in dead


def test_the_banners_one_liner_starts_a_workflow(stack: StackProcess, entry: QueueEntry) -> None:
    # The banner's python one-liner, as printed (make run's output), run by bash from the repository root.
    log = stack.log_path.read_text()
    start = log.index("  .venv/bin/python -c 'import boto3; boto3.client(\"sqs\"")
    command = log[start:log.index("  # the same with the AWS CLI", start)]
    key = f"banner-{uuid.uuid4().hex[:8]}"
    command = command.replace("order-1", key).replace(".venv/bin/python", str(REPO_ROOT / ".venv/bin/python"), 1)
    assert re.search(r"QueueUrl=\"[^\"]+tenant-durable-start-tenant-a\"", command)
    subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, check=True, timeout=60)
    stack.wait_for_status("tenant-a", mint_workflow_id("tenant-a", key, ""), "WAITING_FOR_CALLBACK")


def admin(stack: StackProcess) -> AdminClient:
    return AdminClient(stack.api_url, ensure_admin_credentials(stack.state_dir, "us-east-1"))


def test_get_tenant_names_the_start_queue_and_the_banner_lists_it(stack: StackProcess, entry: QueueEntry) -> None:
    view = admin(stack).call("GET", "/tenants/tenant-a").json()
    assert view["startQueueUrl"] == entry.start_queue("tenant-a")
    assert view["startQueueUrl"].endswith("/tenant-durable-start-tenant-a")
    assert view["startQueueUrl"] in stack.log_path.read_text()


def test_a_tenant_onboarded_with_producers_gets_their_policy_and_offboarding_removes_queue_and_mapping(
        stack: StackProcess, entry: QueueEntry) -> None:
    client = admin(stack)
    tenant_id = f"queue-{uuid.uuid4().hex[:8]}"
    producer = "arn:aws:iam::123456789012:role/order-service"
    created = client.call("POST", "/tenants", {
        "tenantId": tenant_id, "tier": "starter", "displayName": "Queue test", "allowedCurrencies": ["EUR"],
        "maxAmount": 100, "callbackTimeoutSeconds": 600, "startQueueProducers": [producer]})
    assert created.status_code in (201, 202), created.text
    view = client.wait_for(tenant_id, ("ACTIVE",), 120)
    url = view["startQueueUrl"]
    attributes = entry.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    policy = json.loads(attributes["Policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": [producer]}
    assert policy["Statement"][1]["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [producer]}}
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(":tenant-durable-router-dlq")
    assert attributes["SqsManagedSseEnabled"] == "true"
    lam = stack.lambda_client()
    arn = attributes["QueueArn"]
    assert [m["FunctionResponseTypes"] for m in lam.list_event_source_mappings(EventSourceArn=arn)[
        "EventSourceMappings"]] == [["ReportBatchItemFailures"]]
    # A message on the new tenant's queue starts its workflow.
    message = entry.send(tenant_id, body(10))
    wait_until(lambda: registry_item(stack, tenant_id, message), 60, "the new tenant's workflow registered")

    # WHEN it is offboarded THEN its mapping and its queue are gone
    assert client.call("DELETE", f"/tenants/{tenant_id}").status_code in (200, 202)
    client.wait_for(tenant_id, ("OFFBOARDED",), 120)
    assert lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"] == []
    with pytest.raises(entry.sqs.exceptions.QueueDoesNotExist):
        entry.sqs.get_queue_url(QueueName=url.rsplit("/", 1)[1])
