"""The local Lambda service's answers that need no running stack: a fake durable backend and runner."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from typing import Any

import pytest

from local.runtime.functions import FunctionConfig
from local.services.http_base import LocalHttpService, Request, Response
from local.services.lambda_service import SYNC_WAIT_LIMIT_SECONDS, LocalLambdaService

AWS_CLI_READ_TIMEOUT_SECONDS = 60  # botocore's default read timeout; the CLI retries after it
DURABLE = FunctionConfig(name="wf", handler="workflow.app.handler", per_tenant=True, durable=True, timeout_seconds=900)
ARN = "arn:aws:lambda:us-east-1:123456789012:function:wf:1/durable-execution/n1/abc"


class NeverEnding:
    """A durable backend whose executions keep waiting for their callback."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    def find_execution(self, function_name: str, execution_name: str) -> None:
        return None

    def start_execution(self, **_: Any) -> str:
        return ARN

    def wait_for_end(self, arn: str, timeout: float) -> None:
        self.waited.append(timeout)
        return None


class NoRunner:
    def invoke(self, *_: Any) -> Any:
        raise AssertionError("a durable start runs no handler here")

    def describe(self) -> list[dict[str, Any]]:
        return []


def invoke(service: LocalLambdaService, headers: dict[str, str]) -> Any:
    return service.handle(Request(method="POST", path="/2015-03-31/functions/wf%3Alive/invocations", query={},
                                  headers=headers, body=b'{"workflowId": "n1"}'))


def test_synchronous_invoke_of_a_waiting_execution_answers_before_the_cli_gives_up() -> None:
    durable = NeverEnding()
    service = LocalLambdaService(functions=[DURABLE], runner=NoRunner(), durable=durable, region="us-east-1")  # type: ignore[arg-type]

    # WHEN the AWS CLI invokes without --invocation-type Event (RequestResponse) and the execution waits on
    response = invoke(service, {"X-Amz-Tenant-Id": "tenant-a", "X-Amz-Durable-Execution-Name": "n1"})

    # THEN it is answered before the CLI's read timeout (no retries, no broken pipe), as a function error it prints
    assert durable.waited and max(durable.waited) <= SYNC_WAIT_LIMIT_SECONDS < AWS_CLI_READ_TIMEOUT_SECONDS
    assert response.status == 200 and response.headers["X-Amz-Function-Error"] == "Unhandled"
    assert response.headers["X-Amz-Durable-Execution-Arn"] == ARN
    payload = json.loads(response.body)
    assert payload["errorType"] == "Local.ExecutionStillRunning"
    assert ARN in payload["errorMessage"] and "--invocation-type Event" in payload["errorMessage"]


def test_event_invoke_does_not_wait() -> None:
    durable = NeverEnding()
    service = LocalLambdaService(functions=[DURABLE], runner=NoRunner(), durable=durable, region="us-east-1")  # type: ignore[arg-type]

    response = invoke(service, {"X-Amz-Tenant-Id": "tenant-a", "X-Amz-Invocation-Type": "Event"})

    assert response.status == 202 and durable.waited == []


def test_a_client_that_leaves_before_its_answer_logs_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    answered = threading.Event()

    class Slow(LocalHttpService):
        name = "slow"

        def handle(self, request: Request) -> Response:
            time.sleep(0.5)  # the client is gone by now
            answered.set()
            return Response.json(200, {"big": "x" * 2_000_000})

    service = Slow()
    service.start()
    try:
        host, port = service.url.removeprefix("http://").split(":")
        client = socket.create_connection((host, int(port)))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        client.close()
        assert answered.wait(5)
        time.sleep(0.5)
    finally:
        service.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipeError" not in err and "ConnectionResetError" not in err, err
