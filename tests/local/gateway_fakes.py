"""An in-process local gateway in front of a scripted Lambda: what each function gets and answers.

The gateway is the real ``LocalGateway`` on a loopback port; only Lambda is
replaced, so a test sees exactly what the gateway sends (the proxy event, the
authorizer event, the start payload and Invoke headers) and can make each
function answer anything, including what a real function never would.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.services.contract import API_GATEWAY_DIR, load_contract
from local.services.gateway import InvokeFailed, InvokeOutcome, LocalGateway

WORKFLOW_ID = "wf-1"
TENANT = "tenant-a"
IDENTITY = {"x-tenant-id": TENANT, "x-api-key": "key-a"}
VALID_BODY = {"amount": 10, "currency": "EUR"}


def allow(context: dict[str, Any] | None = None, resource: str = "arn:aws:execute-api:*:*:local/v1/*") -> dict[str, Any]:
    """An authorizer result allowing the whole local stage, with a context."""
    return {
        "principalId": TENANT,
        "policyDocument": {"Version": "2012-10-17",
                           "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource}]},
        "context": {"tenantId": TENANT, "workflowId": WORKFLOW_ID} if context is None else context,
        # The key the usage plan meters (main.tf: api_key_source AUTHORIZER).
        "usageIdentifierKey": IDENTITY["x-api-key"],
    }


@dataclass
class Call:
    """One Invoke the gateway made."""

    function: str
    payload: dict[str, Any]
    invocation_type: str
    tenant_id: str | None
    execution_name: str | None


def outcome(value: Any, status: int = 200, function_error: str | None = None) -> InvokeOutcome:
    return InvokeOutcome(status, json.dumps(value).encode(), function_error)


class ScriptedLambda:
    """Each function answers what its callable returns (or raises); every Invoke is recorded."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.authorizer: Callable[[dict[str, Any]], InvokeOutcome] = lambda event: outcome(allow())
        self.workflow: Callable[[dict[str, Any]], InvokeOutcome] = lambda payload: InvokeOutcome(202)
        self.api: Callable[[dict[str, Any]], InvokeOutcome] = lambda event: outcome(
            {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"})

    def invoke(self, function: str, payload: dict[str, Any] | str, *, invocation_type: str,
               tenant_id: str | None = None, execution_name: str | None = None) -> InvokeOutcome:
        # The start integration's payload arrives as the template rendered it (a str).
        payload = json.loads(payload) if isinstance(payload, str) else payload
        self.calls.append(Call(function, payload, invocation_type, tenant_id, execution_name))
        name = function.split(":", 1)[0]
        handler = {"t-authorizer": self.authorizer, "t-workflow": self.workflow, "t-api": self.api}[name]
        return handler(payload)

    def of(self, function: str) -> list[Call]:
        """The Invokes of ``authorizer``, ``workflow`` or ``api``."""
        return [call for call in self.calls if call.function.startswith(f"t-{function}:")]


def refuse(status: int, code: str) -> Callable[[dict[str, Any]], InvokeOutcome]:
    """A function whose Invoke Lambda refuses with ``status``/``code``."""

    def invoke(_payload: dict[str, Any]) -> InvokeOutcome:
        raise InvokeFailed(status, code, "refused")

    return invoke


@contextmanager
def running_gateway(api_gateway_dir: Path = API_GATEWAY_DIR) -> Iterator[tuple[LocalGateway, ScriptedLambda]]:
    """A started gateway over the files in ``api_gateway_dir`` and its scripted Lambda."""
    scripted = ScriptedLambda()
    gateway = LocalGateway(contract=load_contract(api_gateway_dir), invoker=scripted, workflow_function="t-workflow",
                           api_function="t-api", authorizer_function="t-authorizer")
    gateway.start()
    try:
        yield gateway, scripted
    finally:
        gateway.stop()


def raw_exchange(url: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as is on a new connection; the status, headers and body of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(data)
        reply = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            reply += chunk
            head, separator, body = reply.partition(b"\r\n\r\n")
            if separator:
                lines = head.decode("latin-1").split("\r\n")
                headers = {name.strip().lower(): value.strip()
                           for name, _, value in (line.partition(":") for line in lines[1:])}
                if len(body) >= int(headers.get("content-length", "0")):
                    return int(lines[0].split(" ", 2)[1]), headers, body[: int(headers.get("content-length", "0"))]
    raise AssertionError(f"no complete answer: {reply[:200]!r}")
