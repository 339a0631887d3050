"""boto3 against the local Lambda endpoint: Invoke starts executions, the durable APIs resume them."""

from __future__ import annotations

import http.client
import json
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from local.services.lambda_service import CALLBACK_CLOSED_MESSAGE, TENANCY_MESSAGE
from tests.harness import StackProcess

pytestmark = pytest.mark.slow

WORKFLOW = "tenant-durable-workflow"
API = "tenant-durable-api"


def start_payload(name: str) -> bytes:
    return json.dumps({"workflowId": name, "request": {"amount": 15, "currency": "USD"}}).encode()


def test_boto3_invoke_starts_a_workflow_and_callback_success_resumes_it(stack: StackProcess, wait_until) -> None:
    client = stack.lambda_client()
    name = f"boto3-{uuid.uuid4().hex[:12]}"

    # WHEN a workflow is started with Lambda's own Invoke API
    response = client.invoke(FunctionName=f"{WORKFLOW}:live", TenantId="tenant-a", InvocationType="Event",
                             DurableExecutionName=name, Payload=start_payload(name))

    # THEN Lambda accepted it asynchronously and named the execution
    assert response["StatusCode"] == 202
    arn = response["DurableExecutionArn"]
    callback_id = stack.wait_for_status("tenant-a", name, "WAITING_FOR_CALLBACK")["callbackId"]

    # WHEN the external system answers through the durable-execution API of the same endpoint
    client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b'{"approved": true}')

    # THEN the execution resumes and succeeds, and the registry says COMPLETED
    execution = wait_until(
        lambda: (e := client.get_durable_execution(DurableExecutionArn=arn))["Status"] == "SUCCEEDED" and e,
        30, "execution SUCCEEDED")
    assert json.loads(execution["Result"])["confirmation"] == {"approved": True}
    assert stack.wait_for_status("tenant-a", name, "COMPLETED")["result"]["tenantId"] == "tenant-a"


def test_same_execution_name_and_input_is_idempotent(stack: StackProcess) -> None:
    client = stack.lambda_client()
    name = f"idem-{uuid.uuid4().hex[:12]}"
    kwargs = dict(FunctionName=WORKFLOW, Qualifier="live", TenantId="tenant-b", InvocationType="Event",
                  DurableExecutionName=name)

    first = client.invoke(**kwargs, Payload=start_payload(name))
    again = client.invoke(**kwargs, Payload=start_payload(name))

    assert first["DurableExecutionArn"] == again["DurableExecutionArn"]
    with pytest.raises(client.exceptions.DurableExecutionAlreadyStartedException):
        client.invoke(**kwargs, Payload=json.dumps({"workflowId": name, "request": {}}).encode())
    stack.wait_for_status("tenant-b", name, "WAITING_FOR_CALLBACK")


def test_concurrent_starts_with_one_name_and_two_bodies_start_one_execution(stack: StackProcess) -> None:
    name = f"race-{uuid.uuid4().hex[:12]}"
    # Two bodies for one name: tenant-b accepts 15 USD (waits for its callback) and rejects 900 (over its limit),
    # so the registry also tells which body the execution ran.
    bodies = {
        "accepted": start_payload(name),
        "rejected": json.dumps({"workflowId": name, "request": {"amount": 900, "currency": "USD"}}).encode(),
    }
    headers = {"X-Amz-Invocation-Type": "Event", "X-Amz-Tenant-Id": "tenant-b", "X-Amz-Durable-Execution-Name": name,
               "Content-Type": "application/json"}
    callers = 30
    # Lambda's Invoke over plain connections opened beforehand: the 30 requests leave within a millisecond or
    # two of each other (boto3 spends that long per call building and signing it, which spreads them out).
    connections = [http.client.HTTPConnection("127.0.0.1", stack.ports["lambda"], timeout=30) for _ in range(callers)]
    for connection in connections:
        connection.connect()
    barrier = threading.Barrier(callers)

    def start(index: int) -> tuple[str, int, str | None, str | None]:
        body = "accepted" if index % 2 == 0 else "rejected"
        barrier.wait()
        connections[index].request("POST", f"/2015-03-31/functions/{WORKFLOW}%3Alive/invocations",
                                   body=bodies[body], headers=headers)
        response = connections[index].getresponse()
        response.read()
        connections[index].close()
        return (body, response.status, response.getheader("X-Amz-Durable-Execution-Arn"),
                response.getheader("x-amzn-ErrorType"))

    # WHEN 30 callers start the same execution name at once, half of them with another body
    with ThreadPoolExecutor(callers) as pool:
        outcomes = list(pool.map(start, range(callers)))

    # THEN one body won: all its callers got 202 with the same execution, all the others 409
    winners = {body for body, status, _, _ in outcomes if status == 202}
    assert len(winners) == 1, f"both bodies were accepted: {outcomes}"
    (winner,) = winners
    assert [status for body, status, _, _ in outcomes if body == winner] == [202] * (callers // 2)
    (arn,) = {arn for body, _, arn, _ in outcomes if body == winner}
    assert {(status, error) for body, status, _, error in outcomes if body != winner} == {
        (409, "DurableExecutionAlreadyStartedException")}
    # AND exactly one execution has that name, and it ran the winning body
    client = stack.lambda_client()
    listed = client.list_durable_executions_by_function(FunctionName=WORKFLOW, DurableExecutionName=name)
    assert [e["DurableExecutionArn"] for e in listed["DurableExecutions"]] == [arn]
    assert client.get_durable_execution(DurableExecutionArn=arn)["InputPayload"] == bodies[winner].decode()
    stack.wait_for_status("tenant-b", name, "WAITING_FOR_CALLBACK" if winner == "accepted" else "REJECTED")


def test_invoke_without_tenant_id_is_refused_like_lambda(stack: StackProcess) -> None:
    client = stack.lambda_client()
    starts_before = stack.invocations("-workflow")

    with pytest.raises(client.exceptions.InvalidParameterValueException) as refused:
        client.invoke(FunctionName=f"{WORKFLOW}:live", InvocationType="Event", Payload=start_payload("no-tenant"))

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "tenant" in refused.value.response["Error"]["Message"].lower()
    assert stack.invocations("-workflow") == starts_before


def test_tenant_id_on_a_function_without_tenant_isolation_is_refused(stack: StackProcess) -> None:
    client = stack.lambda_client()

    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.invoke(FunctionName=f"{API}:live", TenantId="tenant-a", Payload=b"{}")


def test_unknown_function_or_qualifier_is_resource_not_found(stack: StackProcess) -> None:
    client = stack.lambda_client()

    for name in ("no-such-function", f"{WORKFLOW}:nope"):
        with pytest.raises(ClientError) as missing:
            client.invoke(FunctionName=name, TenantId="tenant-a", Payload=b"{}")
        assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_callback_for_unknown_id_maps_to_a_boto3_exception(stack: StackProcess) -> None:
    client = stack.lambda_client()

    with pytest.raises(ClientError) as unknown:
        client.send_durable_execution_callback_success(CallbackId="bm90LWEtY2FsbGJhY2s=", Result=b"{}")

    assert unknown.value.response["Error"]["Code"] in {"ResourceNotFoundException", "InvalidParameterValueException"}


# -- AWS's answers on the error paths --------------------------------------------------------------

DURABLE_ARN = re.compile(
    r"arn:aws:lambda:us-east-1:123456789012:function:tenant-durable-workflow:(?P<version>1|\$LATEST)"
    r"/durable-execution/(?P<name>[a-zA-Z0-9_-]+)/(?P<id>[a-zA-Z0-9_-]+)"
)


def test_execution_arns_have_lambdas_shape(stack: StackProcess) -> None:
    client = stack.lambda_client()
    name = f"arn-{uuid.uuid4().hex[:12]}"

    started = client.invoke(FunctionName=f"{WORKFLOW}:live", TenantId="tenant-a", InvocationType="Event",
                            DurableExecutionName=name, Payload=start_payload(name))

    match = DURABLE_ARN.fullmatch(started["DurableExecutionArn"])
    assert match and match["version"] == "1" and match["name"] == name, started["DurableExecutionArn"]
    listed = client.list_durable_executions_by_function(FunctionName=WORKFLOW, DurableExecutionName=name)
    assert [e["DurableExecutionArn"] for e in listed["DurableExecutions"]] == [started["DurableExecutionArn"]]
    stack.wait_for_status("tenant-a", name, "WAITING_FOR_CALLBACK")


@pytest.mark.parametrize(
    ("tenant_id", "broken"),
    [("tenant#a", "Member must satisfy regular expression pattern: [a-zA-Z0-9\\._:\\/=+\\-@ ]+"),
     ("t" * 257, "Member must have length less than or equal to 256")],
    ids=["pattern", "length"],
)
def test_tenant_id_outside_the_apis_constraints_is_a_validation_error(stack: StackProcess, tenant_id: str, broken: str) -> None:
    client = stack.lambda_client()

    with pytest.raises(ClientError) as refused:
        client.invoke(FunctionName=f"{WORKFLOW}:live", TenantId=tenant_id, InvocationType="Event", Payload=b"{}")

    error = refused.value.response["Error"]
    assert (error["Code"], refused.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("ValidationException", 400)
    assert error["Message"].endswith(broken) and "'tenantId'" in error["Message"]


def test_tenant_id_with_every_allowed_character_is_accepted(stack: StackProcess) -> None:
    response = stack.lambda_client().invoke(FunctionName=f"{WORKFLOW}:live", TenantId="Org.1_a:b/c=d+e-f@g h",
                                            InvocationType="DryRun", Payload=b"{}")
    assert response["StatusCode"] == 204


@pytest.mark.parametrize("name", ["has.dot", "x" * 65], ids=["pattern", "length"])
def test_execution_name_outside_the_apis_constraints_is_a_validation_error(stack: StackProcess, name: str) -> None:
    client = stack.lambda_client()

    with pytest.raises(ClientError) as refused:
        client.invoke(FunctionName=f"{WORKFLOW}:live", TenantId="tenant-a", InvocationType="Event",
                      DurableExecutionName=name, Payload=b"{}")

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "'durableExecutionName'" in refused.value.response["Error"]["Message"]
    assert not client.list_durable_executions_by_function(FunctionName=WORKFLOW, DurableExecutionName=name)["DurableExecutions"]


def test_missing_tenant_id_has_the_documented_message(stack: StackProcess) -> None:
    client = stack.lambda_client()

    with pytest.raises(client.exceptions.InvalidParameterValueException) as refused:
        client.invoke(FunctionName=f"{WORKFLOW}:live", InvocationType="Event", Payload=b"{}")

    assert refused.value.response["Error"]["Message"] == TENANCY_MESSAGE


def test_answering_a_closed_callback_is_callback_timeout_exception(stack: StackProcess, wait_until) -> None:
    client = stack.lambda_client()
    name = f"closed-{uuid.uuid4().hex[:12]}"
    client.invoke(FunctionName=f"{WORKFLOW}:live", TenantId="tenant-a", InvocationType="Event",
                  DurableExecutionName=name, Payload=start_payload(name))
    callback_id = stack.wait_for_status("tenant-a", name, "WAITING_FOR_CALLBACK")["callbackId"]
    client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b'{"approved": true}')

    # WHEN the completed callback is answered again, or sent a heartbeat: AWS's error, not the emulator's 404
    for send in (lambda: client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b"{}"),
                 lambda: client.send_durable_execution_callback_failure(CallbackId=callback_id,
                                                                        Error={"ErrorType": "X", "ErrorMessage": "y"}),
                 lambda: client.send_durable_execution_callback_heartbeat(CallbackId=callback_id)):
        with pytest.raises(client.exceptions.CallbackTimeoutException) as closed:
            send()
        assert closed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert closed.value.response["Error"]["Message"] == CALLBACK_CLOSED_MESSAGE
    stack.wait_for_status("tenant-a", name, "COMPLETED")


def test_answering_a_timed_out_callback_is_callback_timeout_exception(stack: StackProcess) -> None:
    tenant = {"tenantId": "tenant-hasty", "displayName": "Hasty Ltd", "status": "ACTIVE",
              "allowedCurrencies": ["USD"], "maxAmount": 100, "callbackTimeoutSeconds": 2}
    stack.put_tenant(tenant, api_key=uuid.uuid4().hex)
    workflow_id = stack.start_workflow("tenant-hasty", {"amount": 1, "currency": "USD"})
    callback_id = stack.wait_for_status("tenant-hasty", workflow_id, "WAITING_FOR_CALLBACK")["callbackId"]
    stack.wait_for_status("tenant-hasty", workflow_id, "TIMED_OUT", timeout=30)

    client = stack.lambda_client()
    with pytest.raises(client.exceptions.CallbackTimeoutException):
        client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b"{}")
    # and the api function, reading the history, tells its caller 410
    assert stack.callback("tenant-hasty", callback_id).status_code == 410


@pytest.mark.parametrize(
    "deadline",
    [{"callbackTimeoutSeconds": 8}, {"callbackTimeoutSeconds": 3600, "heartbeatTimeoutSeconds": 6}],
    ids=["callback-timeout", "heartbeat-timeout"],
)
def test_callback_deadlines_still_fire_after_a_restart(stack: StackProcess, deadline: dict[str, int]) -> None:
    # GIVEN a tenant whose callbacks time out (or need a heartbeat) within seconds, waiting for its callback
    tenant_id = f"tenant-brief-{uuid.uuid4().hex[:8]}"
    stack.put_tenant({"tenantId": tenant_id, "displayName": "Brief Ltd", "status": "ACTIVE",
                      "allowedCurrencies": ["USD"], "maxAmount": 100, **deadline}, api_key=uuid.uuid4().hex)
    workflow_id = stack.start_workflow(tenant_id, {"amount": 1, "currency": "USD"})
    stack.wait_for_status(tenant_id, workflow_id, "WAITING_FOR_CALLBACK")

    # WHEN the stack restarts before the deadline (the emulator keeps its timers in memory only), no heartbeat coming
    stack.restart()

    # THEN the callback still times out and the workflow records it
    timed_out = stack.wait_for_status(tenant_id, workflow_id, "TIMED_OUT", timeout=40)
    assert timed_out["result"]["status"] == "TIMED_OUT"
