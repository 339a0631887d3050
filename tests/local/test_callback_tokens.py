"""Single-use callback tokens and the 'Workflow Waiting For Callback' event, end to end on the local stack.

The external system is told when to answer (an event in its tenant's SQS queue,
and only there) and answers at ``POST /callbacks/{callbackToken}`` with the token
alone: no authorizer runs, identity headers are ignored, the first answer wins.
The gateway never logs the token. ``python -m local.tools.confirmer`` plays the
external system.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from local.tools.confirmer import post_answer
from local.services.contract import load_contract
from local.runtime.functions import DEFAULT_NAME_PREFIX
from local.services.gateway import InvokeFailed, InvokeOutcome, LocalGateway
from provisioner.resources import callback_event_pattern, callback_queue_policy
from local.services.notifications import (
    SIGNING_KEY_FILE,
    callback_queue_name,
    callback_rule_name,
    ensure_signing_key,
    event_bus_name,
)
from local.runtime.processes import terminate
from shared import strict_json
from shared.callback_tokens import TOKEN_LENGTH
from shared.contract import callback_waiting_event
from tests.harness import REPO_ROOT, StackProcess, until_final, wait_until

TENANTS = ("tenant-a", "tenant-b")
BODY = {"amount": 30, "currency": "USD", "description": "token route"}
MADE_UP_TOKEN = "A" * TOKEN_LENGTH


# -- helpers: the stack's queues, a waiting workflow, an answer with the token alone ------------------


class Queues:
    """Each tenant's callback queue on the stack's moto server; events read are deleted and kept here."""

    def __init__(self, stack: StackProcess) -> None:
        self.sqs = boto3.client("sqs", endpoint_url=stack.dynamodb_url, region_name="us-east-1",
                                aws_access_key_id="local", aws_secret_access_key="local")
        self.seen: dict[str, list[dict[str, Any]]] = {tenant: [] for tenant in TENANTS}

    def url(self, tenant_id: str) -> str:
        return self.sqs.get_queue_url(QueueName=callback_queue_name(DEFAULT_NAME_PREFIX, tenant_id))["QueueUrl"]

    def drain(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every message visible now in ``tenant_id``'s queue (deleted), added to :attr:`seen`."""
        url = self.url(tenant_id)
        while True:
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                return self.seen[tenant_id]
            for message in messages:
                self.seen[tenant_id].append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def event_for(self, tenant_id: str, workflow_id: str, timeout: float = 45.0) -> dict[str, Any]:
        def arrived() -> dict[str, Any] | None:
            return next((e for e in self.drain(tenant_id) if e["detail"].get("workflowId") == workflow_id), None)

        return wait_until(arrived, timeout, f"the waiting event of {workflow_id} in {tenant_id}'s queue")


@pytest.fixture(name="queues")
def queues_fixture(stack: StackProcess) -> Queues:
    return Queues(stack)


def waiting_workflow(stack: StackProcess, tenant_id: str = "tenant-a") -> tuple[str, str]:
    """A workflow waiting for its callback, and the callbackUrl its status names."""
    workflow_id = stack.start_workflow(tenant_id, BODY)
    status = stack.wait_for_status(tenant_id, workflow_id, "WAITING_FOR_CALLBACK")
    return workflow_id, status["callbackUrl"]


def answer(stack: StackProcess, url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> requests.Response:
    """POST to a callback URL: no API key, no tenant header (unless a test adds them)."""
    return requests.post(url, json=body, headers=headers or {}, timeout=30)


# -- the token route on the local stack --------------------------------------------------------------


def test_a_waiting_workflow_names_an_absolute_callback_url_that_completes_it_with_the_token_alone(
    stack: StackProcess,
) -> None:
    urls = {}
    for tenant_id in TENANTS:
        # GIVEN a waiting workflow of each tenant
        workflow_id, url = waiting_workflow(stack, tenant_id)
        # THEN its status names an absolute URL on this gateway, with a 43-character token
        assert re.fullmatch(rf"http://127\.0\.0\.1:{stack.ports['api']}/callbacks/[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}", url)
        urls[tenant_id] = url
        authorizer_runs = stack.invocations("-authorizer")
        # WHEN the external system POSTs its answer there, with no API key and no tenant header
        response = answer(stack, url, {"payload": {"approved": True, "tenant": tenant_id}})
        # THEN it is delivered without the authorizer, and the workflow completes with that payload
        assert (response.status_code, response.json()) == (200, {"workflowId": workflow_id, "delivered": "success"})
        assert stack.invocations("-authorizer") == authorizer_runs
        done = stack.wait_for_status(tenant_id, workflow_id, "COMPLETED")
        assert done["result"]["confirmation"] == {"approved": True, "tenant": tenant_id}
        assert "callbackUrl" not in done  # no URL once the wait is over
    assert urls["tenant-a"] != urls["tenant-b"]


def test_the_waiting_event_reaches_the_owning_tenants_queue_only(stack: StackProcess, queues: Queues) -> None:
    # GIVEN a waiting workflow of tenant-a and one of tenant-b
    before = time.time()
    workflow_a, url_a = waiting_workflow(stack, "tenant-a")
    workflow_b, url_b = waiting_workflow(stack, "tenant-b")
    # THEN each tenant's queue receives its own workflow's event, with the status's callbackUrl
    event_a = queues.event_for("tenant-a", workflow_a)
    event_b = queues.event_for("tenant-b", workflow_b)
    shape = callback_waiting_event()
    for event, tenant_id, workflow_id, url in ((event_a, "tenant-a", workflow_a, url_a),
                                               (event_b, "tenant-b", workflow_b, url_b)):
        assert (event["source"], event["detail-type"]) == (shape["source"], shape["detailType"])
        assert set(event["detail"]) == {"tenantId", "workflowId", "callbackUrl", "expiresAt"}
        assert event["detail"]["tenantId"] == tenant_id
        assert event["detail"]["workflowId"] == workflow_id
        assert event["detail"]["callbackUrl"] == url
        assert isinstance(event["detail"]["expiresAt"], int) and event["detail"]["expiresAt"] > before
    # and no queue ever holds another tenant's event
    time.sleep(1.0)
    for tenant_id in TENANTS:
        assert {event["detail"]["tenantId"] for event in queues.drain(tenant_id)} == {tenant_id}
    assert all(event["detail"]["workflowId"] != workflow_a for event in queues.seen["tenant-b"])
    assert all(event["detail"]["workflowId"] != workflow_b for event in queues.seen["tenant-a"])
    for url in (url_a, url_b):
        assert answer(stack, url, {"payload": {"approved": True}}).status_code == 200
    # and each workflow produced exactly one event on its tenant's queue: the replays after the
    # answer (finalize, record-outcome) never run the submitter again
    stack.wait_for_status("tenant-a", workflow_a, "COMPLETED")
    stack.wait_for_status("tenant-b", workflow_b, "COMPLETED")
    time.sleep(1.0)
    for tenant_id, workflow_id in (("tenant-a", workflow_a), ("tenant-b", workflow_b)):
        events = [event for event in queues.drain(tenant_id) if event["detail"]["workflowId"] == workflow_id]
        assert len(events) == 1, events


def test_each_tenants_queue_is_encrypted_and_open_to_its_own_rule_only(stack: StackProcess, queues: Queues) -> None:
    # As the provisioner creates them (src/provisioner/resources.py), on AWS and locally alike.
    events = boto3.client("events", endpoint_url=stack.dynamodb_url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    for tenant_id in TENANTS:
        attributes = queues.sqs.get_queue_attributes(QueueUrl=queues.url(tenant_id), AttributeNames=["All"])["Attributes"]
        assert attributes["SqsManagedSseEnabled"] == "true"
        rule_arn = events.describe_rule(Name=callback_rule_name(DEFAULT_NAME_PREFIX, tenant_id),
                                        EventBusName=event_bus_name(DEFAULT_NAME_PREFIX))["Arn"]
        assert json.loads(attributes["Policy"]) == callback_queue_policy(attributes["QueueArn"], rule_arn)
        (statement,) = json.loads(attributes["Policy"])["Statement"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}


def test_twenty_concurrent_answers_with_one_token_complete_the_workflow_once(stack: StackProcess) -> None:
    # GIVEN a waiting workflow and its callback URL
    workflow_id, url = waiting_workflow(stack)
    # WHEN 20 answers with different payloads arrive at once, each retried as a client does
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answered = list(pool.map(lambda n: until_final(lambda: answer(stack, url, {"payload": {"attempt": n}})), range(20)))
    responses = [response for response, _ in answered]
    # THEN exactly one is accepted, the others are 409 with a JSON message (after 503s while another held the lease)
    assert {status for _, seen in answered for status in seen} <= {200, 409, 503}, answered
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 1 and statuses.count(409) == 19, statuses
    assert all(set(r.json()) == {"message"} for r in responses if r.status_code == 409)
    winner = statuses.index(200)
    # and the workflow completed once, with the winner's payload
    done = stack.wait_for_status("tenant-a", workflow_id, "COMPLETED")
    assert done["result"]["confirmation"] == {"attempt": winner}


def test_identity_headers_on_the_token_route_are_ignored(stack: StackProcess) -> None:
    # GIVEN a waiting workflow of tenant-a and one of tenant-b
    workflow_a, url_a = waiting_workflow(stack, "tenant-a")
    workflow_b, url_b = waiting_workflow(stack, "tenant-b")
    # WHEN tenant-a's token comes with tenant-b's API key and tenant header
    response = answer(stack, url_a, {"payload": {"from": "tenant-b's headers"}}, headers=stack.headers("tenant-b"))
    # THEN it answers tenant-a's workflow, the one the token names, and never tenant-b's
    assert (response.status_code, response.json()["workflowId"]) == (200, workflow_a)
    done = stack.wait_for_status("tenant-a", workflow_a, "COMPLETED")
    assert done["result"]["confirmation"] == {"from": "tenant-b's headers"}
    assert stack.status("tenant-b", workflow_b).json()["status"] == "WAITING_FOR_CALLBACK"
    # and tenant-b still cannot read tenant-a's workflow
    assert stack.status("tenant-b", workflow_a).status_code == 404
    # A second answer with the same token is refused; the first result stands
    again = answer(stack, url_a, {"payload": {"second": True}}, headers=stack.headers("tenant-a"))
    assert again.status_code == 409 and set(again.json()) == {"message"}
    assert stack.status("tenant-a", workflow_a).json()["result"]["confirmation"] == {"from": "tenant-b's headers"}
    assert answer(stack, url_b, {"payload": {"approved": True}}).status_code == 200
    stack.wait_for_status("tenant-b", workflow_b, "COMPLETED")


@pytest.mark.parametrize("token", [MADE_UP_TOKEN, "short", MADE_UP_TOKEN + "A"])
def test_an_unknown_or_malformed_token_is_404_json_and_no_authorizer_runs(stack: StackProcess, token: str) -> None:
    authorizer_runs = stack.invocations("-authorizer")
    response = answer(stack, f"{stack.api_url}/callbacks/{token}", {"payload": {"approved": True}},
                      headers=stack.headers("tenant-a"))
    assert response.status_code == 404 and set(response.json()) == {"message"}
    assert stack.invocations("-authorizer") == authorizer_runs


def test_a_body_over_the_gateway_limit_is_413_on_the_token_route(stack: StackProcess) -> None:
    with socket.create_connection(("127.0.0.1", stack.ports["api"]), timeout=10) as connection:
        connection.sendall(f"POST /callbacks/{MADE_UP_TOKEN} HTTP/1.1\r\nHost: x\r\n"
                           "Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n".encode())
        received = b""
        while chunk := connection.recv(4096):  # the gateway answers without reading the body, and closes
            received += chunk
    head, _, body = received.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413")
    assert json.loads(body) == {"message": "Request Entity Too Large"}


def test_tokens_stay_valid_across_a_restart(stack: StackProcess) -> None:
    # GIVEN a waiting workflow whose callback URL was handed out
    workflow_id, url = waiting_workflow(stack)
    key_file = stack.state_dir / SIGNING_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    # WHEN the stack restarts (moto's secret, bus, rules and queues are created anew)
    stack.restart()
    # THEN the signing key is the same, the status names the same URL, and the URL still answers
    assert key_file.read_text() == key
    assert stack.wait_for_status("tenant-a", workflow_id, "WAITING_FOR_CALLBACK")["callbackUrl"] == url
    assert answer(stack, url, {"payload": {"after": "restart"}}).status_code == 200
    assert stack.wait_for_status("tenant-a", workflow_id, "COMPLETED")["result"]["confirmation"] == {"after": "restart"}
    assert Queues(stack).url("tenant-a").endswith(callback_queue_name(DEFAULT_NAME_PREFIX, "tenant-a"))


def test_the_confirmer_answers_a_waiting_workflow_by_itself(stack: StackProcess, queues: Queues, tmp_path: Any) -> None:
    # GIVEN tenant-a's confirmer running as a separate process against the stack's queue
    queues.drain("tenant-a")  # earlier tests' events: it would answer them too (409s), harmless but slow
    log = tmp_path / "confirmer.log"
    with log.open("w") as output:
        confirmer = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "local.tools.confirmer", "--queue-url", queues.url("tenant-a"),
             "--endpoint-url", stack.dynamodb_url, "--answer", '{"approvedBy": "confirmer"}', "--timeout", "120"],
            cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT)
    try:
        # WHEN a tenant-a workflow starts waiting
        workflow_id = stack.start_workflow("tenant-a", BODY)
        # THEN the confirmer answers it without anyone polling for the callback
        done = stack.wait_for_status("tenant-a", workflow_id, "COMPLETED", timeout=60)
        assert done["result"]["confirmation"] == {"approvedBy": "confirmer"}
        wait_until(lambda: workflow_id in log.read_text(), 10, "the confirmer's line")
    finally:
        assert terminate(confirmer, 10) in (0, -15)
    printed = log.read_text()
    assert f"confirmer: tenant-a workflow {workflow_id} -> 200 answered" in printed
    assert "/callbacks/" not in printed  # the token is a credential: never printed


# -- pieces without the stack ------------------------------------------------------------------------


def test_names_and_event_pattern_are_the_ones_terraform_uses() -> None:
    shape = callback_waiting_event()
    assert event_bus_name("acme") == "acme-workflow-events"
    assert callback_queue_name("acme", "tenant-a") == "acme-callbacks-tenant-a"
    assert callback_rule_name("acme", "tenant-a") == "acme-callbacks-tenant-a"
    assert callback_event_pattern("tenant-a") == {
        "source": [shape["source"]], "detail-type": [shape["detailType"]], "detail": {"tenantId": ["tenant-a"]}}


def test_the_signing_key_is_generated_once_and_owner_only(tmp_path: Any) -> None:
    first = ensure_signing_key(tmp_path)
    assert len(first) >= 43
    assert stat.S_IMODE((tmp_path / SIGNING_KEY_FILE).stat().st_mode) == 0o600
    assert ensure_signing_key(tmp_path) == first


class _FakeResponse:
    def __init__(self, status: int, retry_after: str | None = None) -> None:
        self.status_code = status
        self.headers = {"Retry-After": retry_after} if retry_after else {}


class _FakeSession:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = list(answers)
        self.bodies: list[Any] = []

    def post(self, url: str, json: Any, timeout: float, headers: dict[str, str] | None = None) -> Any:  # noqa: A002
        self.bodies.append(json)
        answer_ = self.answers.pop(0)
        if isinstance(answer_, Exception):
            raise answer_
        return answer_


def test_the_confirmer_retries_what_the_readme_says_and_stops_at_a_final_answer() -> None:
    session = _FakeSession([_FakeResponse(503, "2"), requests.ConnectionError(), _FakeResponse(429),
                            _FakeResponse(502), _FakeResponse(504), _FakeResponse(409)])
    pauses: list[float] = []
    status, attempts = post_answer(session, "http://x/callbacks/t", {"payload": 1}, deadline=time.time() + 600,  # type: ignore[arg-type]
                                   sleep=pauses.append)
    assert (status, attempts) == (409, 6)
    assert pauses == [2.0, 1.0, 2.0, 4.0, 8.0]  # Retry-After honoured, else doubling back-off
    assert session.bodies == [{"payload": 1}] * 6


def test_the_confirmer_gives_up_at_the_deadline_without_a_final_answer() -> None:
    session = _FakeSession([_FakeResponse(503)] * 10)
    clock = iter(range(100)).__next__  # one second passes per attempt
    status, attempts = post_answer(session, "http://x", {}, deadline=3.5, sleep=lambda _s: None,  # type: ignore[arg-type]
                                   clock=clock)
    # pauses of 0.5 and 1 fit before the deadline, the third (2 s, at t=2) would not
    assert (status, attempts) == (503, 3)


def test_the_confirmer_answers_only_callback_urls_on_its_api() -> None:
    from local.tools.confirmer import handle_message
    from shared.contract import callback_waiting_event

    shape = callback_waiting_event()

    def event(url: str) -> str:
        return json.dumps({"source": shape["source"], "detail-type": shape["detailType"],
                           "detail": {"tenantId": "t", "workflowId": "w", "callbackUrl": url, "expiresAt": 0}})

    session = _FakeSession([_FakeResponse(200)])
    foreign = handle_message(session, event("https://evil.example/callbacks/x"), {}, max_retry_seconds=5,  # type: ignore[arg-type]
                             api_url="http://127.0.0.1:3000")
    assert (foreign.status, session.bodies) == ("ignored (not this API)", [])
    ours = handle_message(session, event("http://127.0.0.1:3000/callbacks/x"), {"ok": 1}, max_retry_seconds=5,  # type: ignore[arg-type]
                          api_url="http://127.0.0.1:3000/")
    assert ours.status == 200 and session.bodies == [{"payload": {"ok": 1}}]


def test_the_confirmer_has_help() -> None:
    result = subprocess.run([sys.executable, "-m", "local.tools.confirmer", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "--queue-url" in result.stdout and "--endpoint-url" in result.stdout


class _RecordingInvoker:
    """Stands in for Lambda: records who was invoked with what."""

    def __init__(self, fail_proxy: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_proxy = fail_proxy

    def invoke(self, function: str, payload: dict[str, Any], *, invocation_type: str,
               tenant_id: str | None = None, execution_name: str | None = None) -> InvokeOutcome:
        self.calls.append((function, payload))
        if function.startswith("t-api") and self.fail_proxy:
            raise InvokeFailed(502, "ServiceException", "down")
        body = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}
        return InvokeOutcome(200, json.dumps(body).encode())


@pytest.fixture(name="gateway")
def gateway_fixture() -> Iterator[tuple[LocalGateway, _RecordingInvoker]]:
    invoker = _RecordingInvoker()
    gateway = LocalGateway(contract=load_contract(), invoker=invoker, workflow_function="t-workflow",
                           api_function="t-api", authorizer_function="t-authorizer")
    gateway.start()
    yield gateway, invoker
    gateway.stop()


def test_the_gateway_sends_the_token_route_straight_to_the_api_function(
    gateway: tuple[LocalGateway, _RecordingInvoker],
) -> None:
    service, invoker = gateway
    response = requests.post(f"{service.url}/callbacks/{MADE_UP_TOKEN}", json={"payload": {}}, timeout=10,
                             headers={"x-tenant-id": "tenant-b", "x-api-key": "tenant-b's key"})
    assert response.status_code == 200
    # no authorizer ran; the api function got the headers as headers, and no authorizer context
    assert [function for function, _ in invoker.calls] == ["t-api:live"]
    event = invoker.calls[0][1]
    assert event["resource"] == "/callbacks/{callbackToken}"
    assert event["pathParameters"] == {"callbackToken": MADE_UP_TOKEN}
    assert event["requestContext"].get("authorizer") is None
    assert event["headers"]["x-tenant-id"] == "tenant-b"


def test_the_gateway_never_logs_a_token(gateway: tuple[LocalGateway, _RecordingInvoker],
                                        caplog: pytest.LogCaptureFixture) -> None:
    service, invoker = gateway
    invoker.fail_proxy = True  # the integration-failure warning names the route
    with caplog.at_level(logging.DEBUG):
        assert requests.post(f"{service.url}/callbacks/{MADE_UP_TOKEN}?x=1", json={}, timeout=10).status_code == 500
        assert requests.post(f"{service.url}/callbacks/{MADE_UP_TOKEN}/extra", json={}, timeout=10).status_code == 404
        wait_until(lambda: len([r for r in caplog.records if r.name == "local.services.http_base"]) >= 2, 5, "request logs")
    ours = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("local."))
    assert MADE_UP_TOKEN not in ours  # (the HTTP client's own debug lines do show it: not the gateway's)
    assert "/callbacks/{callbackToken}" in ours
    assert "/callbacks/<redacted>" in ours


# -- answers the workflow could not keep are refused up front; a reordered retry of the winner ------------

ROUTES = ("POST /callback", "POST /callbacks/{callbackToken}")


def answer_on(stack: StackProcess, route: str, tenant_id: str, status: dict[str, Any], body: dict[str, Any]) -> requests.Response:
    """Answer a waiting workflow (its ``GET`` body ``status``) on ``route``, as its client would."""
    if route == "POST /callback":
        return requests.post(f"{stack.api_url}/callback", json={"callbackId": status["callbackId"], **body},
                             headers=stack.headers(tenant_id), timeout=30)
    return answer(stack, status["callbackUrl"], body)


def waiting_status(stack: StackProcess, tenant_id: str = "tenant-a") -> dict[str, Any]:
    workflow_id = stack.start_workflow(tenant_id, BODY)
    return stack.wait_for_status(tenant_id, workflow_id, "WAITING_FOR_CALLBACK")


def nested(levels: int) -> dict[str, Any]:
    value: Any = "deepest"
    for _ in range(levels):
        value = {"a": value}
    return value


def sized(size: int) -> dict[str, Any]:
    """A payload whose compact UTF-8 JSON is ``size`` bytes (``{"v":""}`` is 8)."""
    return {"v": "x" * (size - 8)}


@pytest.mark.parametrize("route", ROUTES)
def test_each_limit_of_an_answer_passes_end_to_end_and_one_more_is_refused_naming_it(stack: StackProcess, route: str) -> None:
    depth, size = strict_json.MAX_PAYLOAD_DEPTH, strict_json.MAX_PAYLOAD_BYTES
    assert len(json.dumps(sized(size), separators=(",", ":")).encode()) == size
    for payload, limit in ((nested(depth), depth), (sized(size), size)):
        # GIVEN a waiting workflow
        status = waiting_status(stack)
        # WHEN the answer is one past the limit, THEN it is refused naming the limit, and the wait goes on
        past = nested(depth + 1) if limit == depth else sized(size + 1)
        refused = answer_on(stack, route, "tenant-a", status, {"payload": past})
        expected = (400, f"the limit is {depth} levels") if limit == depth else (413, f"the limit is {size} bytes")
        assert (refused.status_code, expected[1] in refused.json()["message"]) == (expected[0], True), refused.text
        # AND an answer at the limit is accepted and kept: the workflow completes with it
        accepted = answer_on(stack, route, "tenant-a", status, {"payload": payload})
        assert accepted.status_code == 200, accepted.text
        done = stack.wait_for_status("tenant-a", status["workflowId"], "COMPLETED")
        assert done["result"]["confirmation"] == payload


def test_a_retry_of_the_winning_answer_serialized_otherwise_is_200_and_completes_once(stack: StackProcess) -> None:
    status = waiting_status(stack)
    won = requests.post(status["callbackUrl"], data='{"payload": {"approved": true, "n": 1}}', timeout=30,
                        headers={"Content-Type": "application/json"})
    assert won.status_code == 200
    # WHEN the client retries the same answer, keys reordered, another number form, on the other route
    retry = requests.post(f"{stack.api_url}/callback", timeout=30, headers=stack.headers("tenant-a"),
                          data='{"payload": {"n": 1.0, "approved": true}, "callbackId": "%s"}' % status["callbackId"])
    # THEN it is recognised as the answer that won; another answer is 409
    assert (retry.status_code, retry.json()) == (200, {"workflowId": status["workflowId"], "delivered": "success"})
    done = stack.wait_for_status("tenant-a", status["workflowId"], "COMPLETED")
    assert done["result"]["confirmation"] == {"approved": True, "n": 1}
    assert answer(stack, status["callbackUrl"], {"payload": {"approved": True, "n": 2}}).status_code == 409
