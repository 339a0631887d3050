"""The local Lambda service's answers that need no running stack: a fake durable backend and runner."""

from __future__ import annotations

import json
from typing import Any

from local.functions import FunctionConfig
from local.http_base import Request
from local.lambda_service import SYNC_WAIT_LIMIT_SECONDS, LocalLambdaService

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
