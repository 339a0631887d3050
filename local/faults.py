"""Fault injection for tests: a DynamoDB proxy that fails or stalls chosen calls, and an
emulator restart switch. Enabled only by ``python -m local.stack --fault-injection``.

The functions' ``AWS_ENDPOINT_URL_DYNAMODB`` points at this proxy, which forwards
to moto. ``POST /_faults`` arms a rule, ``GET /_faults`` lists rules with their
hits, ``DELETE /_faults`` clears them, ``POST /_faults/durable-emulator/restart``
stops and restarts the durable emulator (its sqlite store persists).
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from local.http_base import DEFAULT_HOST, LocalHttpService, Request, Response

logger = logging.getLogger(__name__)

ADMIN_PATH = "/_faults"
# The error a throttled DynamoDB call returns; botocore retries it, then the durable step does.
THROTTLED = {
    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "message": "injected fault: throughput exceeded",
}


@dataclass
class FaultRule:
    """Fail (after an optional stall) the next ``count`` DynamoDB calls that match.

    Attributes:
        operation: DynamoDB operation (``UpdateItem``, ``GetItem`` ...) or ``*``.
        body_contains: Only calls whose JSON body contains this text.
        count: How many matching calls to affect.
        delay_seconds: Stall each affected call this long first (a step "in the middle").
        fail: Answer the affected call with a throttling error instead of forwarding it.
        hits: How many calls the rule affected so far.
    """

    operation: str = "*"
    body_contains: str | None = None
    count: int = 1
    delay_seconds: float = 0.0
    fail: bool = True
    hits: int = 0

    def matches(self, operation: str, body: bytes) -> bool:
        return (
            self.hits < self.count
            and self.operation in ("*", operation)
            and (self.body_contains is None or self.body_contains.encode() in body)
        )


class DynamoDBFaultProxy(LocalHttpService):
    """Forwards DynamoDB calls to ``upstream_url`` unless an armed rule says otherwise."""

    name = "dynamodb-faults"

    def __init__(self, upstream_url: str, restart_emulator: Callable[[], None],
                 host: str = DEFAULT_HOST, port: int = 0) -> None:
        super().__init__(host, port)
        upstream = urlsplit(upstream_url)
        self._upstream = (upstream.hostname or host, upstream.port or 80)
        self._restart_emulator = restart_emulator
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        if request.path.startswith(ADMIN_PATH):
            return self._admin(request)
        operation = (request.header("X-Amz-Target") or "").rpartition(".")[2]
        with self._lock:
            rule = next((r for r in self._rules if r.matches(operation, request.body)), None)
            if rule is not None:
                rule.hits += 1
        if rule is not None:
            logger.warning("injecting fault into DynamoDB %s (rule %s)", operation, rule)
            time.sleep(rule.delay_seconds)
            if rule.fail:
                return Response.json(400, THROTTLED, {"Content-Type": "application/x-amz-json-1.0"})
        return self._forward(request)

    def _forward(self, request: Request) -> Response:
        connection = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            connection.request(request.method, request.path, body=request.body or None, headers=headers)
            upstream = connection.getresponse()
            return Response(upstream.status, dict(upstream.getheaders()), upstream.read())
        finally:
            connection.close()

    def _admin(self, request: Request) -> Response:
        if request.path == f"{ADMIN_PATH}/durable-emulator/restart" and request.method == "POST":
            self._restart_emulator()
            return Response.json(200, {"restarted": "durable-emulator"})
        if request.path != ADMIN_PATH:
            return Response.json(404, {"message": "unknown fault endpoint"})
        with self._lock:
            if request.method == "POST":
                try:
                    self._rules.append(FaultRule(**json.loads(request.body or b"{}")))
                except (TypeError, ValueError) as error:
                    return Response.json(400, {"message": f"invalid rule: {error}"})
            elif request.method == "DELETE":
                self._rules.clear()
            return Response.json(200, {"rules": [asdict(rule) for rule in self._rules]})
