"""Callbacks that race, and idempotent starts, on the local stack (as the Lambda service sees them).

The plain HTTP checks (a second answer, failures, heartbeats, keys of two tenants)
are the black-box suite's: tests/blackbox/checks.py, run here by test_blackbox_local.py.
"""

from __future__ import annotations

import concurrent.futures
import json
import uuid

import botocore.session
import pytest

from tests.harness import StackProcess, until_final

pytestmark = pytest.mark.slow

BODY = {"amount": 30, "currency": "USD", "description": "idempotency"}


def waiting_workflow(stack: StackProcess, tenant_id: str = "tenant-a") -> tuple[str, str]:
    workflow_id = stack.start_workflow(tenant_id, BODY)
    return workflow_id, stack.wait_for_status(tenant_id, workflow_id, "WAITING_FOR_CALLBACK")["callbackId"]


def start_with_key(stack: StackProcess, tenant_id: str, key: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    response = stack.http.post(f"{stack.api_url}/workflow", json=body,
                               headers={**stack.headers(tenant_id), "Idempotency-Key": key}, timeout=30)
    return response.status_code, response.json()


def test_twenty_concurrent_duplicate_callbacks_complete_the_workflow_exactly_once(stack: StackProcess) -> None:
    # GIVEN a waiting workflow
    workflow_id, callback_id = waiting_workflow(stack)
    # WHEN 20 identical-id callbacks with different payloads arrive at once, each retried as a client does
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answered = list(pool.map(lambda n: until_final(lambda: stack.callback("tenant-a", callback_id, {"attempt": n})),
                                 range(20)))
    responses = [response for response, _ in answered]
    # THEN exactly one is accepted, the others are 409 with a JSON message; no other status than the
    # 503 (Retry-After) that tells an answer meeting another's lease to retry
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1 and statuses.count(409) == 19, statuses
    assert {status for _, seen in answered for status in seen} <= {200, 409, 503}, answered
    assert all(set(r.json()) == {"message"} for r in responses if r.status_code == 409)
    winner = next(n for n, r in enumerate(responses) if r.status_code == 200)
    # and the workflow completed once, with the winner's payload
    done = stack.wait_for_status("tenant-a", workflow_id, "COMPLETED")
    assert done["result"]["confirmation"] == {"attempt": winner}


def test_same_idempotency_key_returns_same_workflow_and_starts_one_execution(stack: StackProcess) -> None:
    key = f"order-{uuid.uuid4()}"
    first = start_with_key(stack, "tenant-a", key, BODY)
    retry = start_with_key(stack, "tenant-a", key, BODY)
    assert first[0] == retry[0] == 202 and first[1]["workflowId"] == retry[1]["workflowId"]
    workflow_id = str(first[1]["workflowId"])
    callback_id = stack.wait_for_status("tenant-a", workflow_id, "WAITING_FOR_CALLBACK")["callbackId"]
    # one durable execution carries that name, not two
    executions = stack.lambda_client().list_durable_executions_by_function(
        FunctionName="tenant-durable-workflow", DurableExecutionName=workflow_id
    )["DurableExecutions"]
    assert len(executions) == 1, executions
    assert stack.callback("tenant-a", callback_id).status_code == 200
    stack.wait_for_status("tenant-a", workflow_id, "COMPLETED")
    # a retry after completion still names the same workflow and changes nothing
    again = start_with_key(stack, "tenant-a", key, BODY)
    assert again[1]["workflowId"] == workflow_id
    assert stack.status("tenant-a", workflow_id).json()["status"] == "COMPLETED"


def test_idempotency_key_reused_with_another_body_starts_no_second_execution(stack: StackProcess) -> None:
    key = f"order-{uuid.uuid4()}"
    status, first = start_with_key(stack, "tenant-a", key, BODY)
    assert status == 202
    # Lambda refuses the execution name with another payload (409); a Lambda integration's
    # selection patterns match function errors only, so API Gateway answers its documented
    # 500 for any refused Invoke but throttling (README, "The API"). tests/blackbox/checks.py
    # records what a deployed stage answers.
    status, refused = start_with_key(stack, "tenant-a", key, {**BODY, "amount": 31})
    assert (status, refused) == (500, {"message": "Internal server error"})
    # the same key and body again is still the first workflow
    assert start_with_key(stack, "tenant-a", key, BODY) == (202, first)
    executions = stack.lambda_client().list_durable_executions_by_function(
        FunctionName="tenant-durable-workflow", DurableExecutionName=str(first["workflowId"])
    )["DurableExecutions"]
    assert len(executions) == 1


def test_lambda_refuses_a_used_execution_name_with_another_input_as_botocore_models_it(stack: StackProcess) -> None:
    # GIVEN a started execution
    key = f"order-{uuid.uuid4()}"
    _status, first = start_with_key(stack, "tenant-a", key, BODY)
    name = str(first["workflowId"])
    # WHEN the same name is invoked with another input, on the wire
    response = stack.http.post(
        f"{stack.lambda_url}/2015-03-31/functions/tenant-durable-workflow/invocations?Qualifier=live",
        data=json.dumps({"workflowId": name, "request": {**BODY, "amount": 32}}),
        headers={"X-Amz-Invocation-Type": "Event", "X-Amz-Tenant-Id": "tenant-a",
                 "X-Amz-Durable-Execution-Name": name, "Content-Type": "application/json"}, timeout=30)
    # THEN botocore's lambda model: 409 DurableExecutionAlreadyStartedException, members Type and Message
    shape = botocore.session.get_session().get_service_model("lambda").shape_for("DurableExecutionAlreadyStartedException")
    assert response.status_code == shape.metadata["error"]["httpStatusCode"] == 409
    assert response.headers["x-amzn-ErrorType"] == shape.name
    body = response.json()
    assert set(body) == set(shape.members) == {"Type", "Message"} and name in body["Message"]
    # AND boto3 raises the modelled exception with that message
    client = stack.lambda_client()
    with pytest.raises(client.exceptions.DurableExecutionAlreadyStartedException) as refused:
        client.invoke(FunctionName="tenant-durable-workflow", Qualifier="live", InvocationType="Event",
                      TenantId="tenant-a", DurableExecutionName=name,
                      Payload=json.dumps({"workflowId": name, "request": {**BODY, "amount": 33}}).encode())
    assert refused.value.response["Error"]["Message"] == body["Message"]
