"""Drive the local stack from outside: a ``python -m local`` subprocess on free ports.

Used by ``tests/local`` (and anything else that needs a running stack): start it,
wait until healthy, call the REST API and the Lambda endpoint, restart it with the
same state directory, stop it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from shared.contract import TENANT_HEADER
from local.tools.api_keys import with_key_hashes
from local.tools.confirmer import RETRYABLE_STATUSES, post_until_final
from local.services.http_base import free_port
from local.runtime.processes import terminate
from shared.identity import API_KEY_HEADER
from shared.tenants import tenant_item

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 45.0
STOP_TIMEOUT = 30.0
WORKFLOW_TIMEOUT = 45.0


def wait_until(predicate: Callable[[], Any], timeout: float, message: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``message`` at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s: {message}")
        time.sleep(interval)


class StackProcess:
    """``python -m local`` on free ports, with helpers to drive it."""

    def __init__(self, state_dir: Path, log_path: Path, extra_args: list[str] | None = None) -> None:
        self.state_dir = state_dir
        self.log_path = log_path
        self.extra_args = list(extra_args or [])
        self.ports = {name: free_port() for name in ("api", "lambda", "emulator", "dynamodb", "apigateway")}
        self.api_url = f"http://127.0.0.1:{self.ports['api']}"
        self.lambda_url = f"http://127.0.0.1:{self.ports['lambda']}"
        self.dynamodb_url = f"http://127.0.0.1:{self.ports['dynamodb']}"
        # The local API Gateway keys and usage plans (the provisioner's metering keys).
        self.apigateway_url = f"http://127.0.0.1:{self.ports['apigateway']}"
        self.process: subprocess.Popen[bytes] | None = None
        self.http = requests.Session()
        self.extra_api_keys: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "local",
            "--state-dir", str(self.state_dir),
            "--api-port", str(self.ports["api"]),
            "--lambda-port", str(self.ports["lambda"]),
            "--emulator-port", str(self.ports["emulator"]),
            "--dynamodb-port", str(self.ports["dynamodb"]),
            "--apigateway-port", str(self.ports["apigateway"]),
            "--log-level", "WARNING",
            # Tests send many requests per tenant, faster than the demo tiers allow; the
            # usage plans are tested with "--throttle", "on" in extra_args (the last one wins).
            "--throttle", "off",
            *self.extra_args,
        ]

    def start(self) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT_URL")}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own module
                self.command(), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._healthy, START_TIMEOUT, f"local stack healthy (log: {self.log_path})")

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"local stack exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}")
        try:
            health = requests.get(f"{self.lambda_url}/_local/health", timeout=2)
            api = requests.get(f"{self.api_url}/", timeout=2)
        except requests.ConnectionError:
            return False
        # The gateway refuses an unknown route as MISSING_AUTHENTICATION_TOKEN: API Gateway's
        # default 403, or the 404 main.tf's gateway response makes of it.
        return health.status_code == 200 and api.status_code in (403, 404)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        code = terminate(self.process, STOP_TIMEOUT)  # SIGTERM: what Ctrl-C does to make run
        self.process = None
        return code

    def restart(self) -> None:
        """Stop (SIGTERM, as Ctrl-C) and start again with the same ports and state directory."""
        assert self.stop() == 0, self.log_path.read_text()[-3000:]
        self.start()

    @property
    def fault_url(self) -> str:
        """The fault proxy's URL of a ``--fault-injection`` stack, as its banner names it."""
        line = next(line for line in self.log_path.read_text().splitlines() if "Fault injection" in line)
        return line.split()[-1].removesuffix("/_faults")

    # -- the REST API --------------------------------------------------------------------

    @property
    def api_keys(self) -> dict[str, str]:
        path = self.state_dir / "api-keys.json"
        return {**(json.loads(path.read_text()) if path.exists() else {}), **self.extra_api_keys}

    def headers(self, tenant_id: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if tenant_id is not None:
            headers[TENANT_HEADER] = tenant_id
            if tenant_id in self.api_keys:
                headers[API_KEY_HEADER] = self.api_keys[tenant_id]
        return headers

    def start_workflow(self, tenant_id: str, body: dict[str, Any] | None = None) -> str:
        body = body or {"amount": 25, "currency": "USD", "description": "local e2e"}
        response = self.http.post(f"{self.api_url}/workflow", json=body, headers=self.headers(tenant_id), timeout=30)
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "STARTED"
        return response.json()["workflowId"]

    def status(self, tenant_id: str, workflow_id: str) -> requests.Response:
        return self.http.get(f"{self.api_url}/workflow/{workflow_id}", headers=self.headers(tenant_id), timeout=30)

    def wait_for_status(self, tenant_id: str, workflow_id: str, status: str, timeout: float = WORKFLOW_TIMEOUT) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            response = self.status(tenant_id, workflow_id)
            if response.status_code == 200 and response.json()["status"] == status:
                return response.json()
            return None

        return wait_until(reached, timeout, f"workflow {workflow_id} of {tenant_id} reaching {status}")

    def callback(self, tenant_id: str, callback_id: str, payload: dict[str, Any] | None = None) -> requests.Response:
        return self.http.post(
            f"{self.api_url}/callback",
            json={"callbackId": callback_id, "payload": payload or {"approved": True}},
            headers=self.headers(tenant_id),
            timeout=30,
        )

    # -- the local Lambda service ------------------------------------------------------

    def workers(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.lambda_url}/_local/workers", timeout=10).json()["workers"]

    def invocations(self, function_suffix: str, tenant_id: str | None = None) -> int:
        rows = requests.get(f"{self.lambda_url}/_local/invocations", timeout=10).json()["invocations"]
        return sum(row["count"] for row in rows
                   if row["functionName"].endswith(function_suffix) and (tenant_id is None or row["tenantId"] == tenant_id))

    def put_tenant(self, tenant: dict[str, Any], api_key: str, table: str = "tenant-durable-tenants") -> None:
        """Add a tenant (plain JSON item) with its API key to the running stack's tenants table."""
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        (keyed,) = with_key_hashes([tenant], {tenant["tenantId"]: api_key})
        item = {key: serializer.serialize(value) for key, value in tenant_item(keyed).items()}
        boto3.client("dynamodb", endpoint_url=self.dynamodb_url, region_name="us-east-1",
                     aws_access_key_id="local", aws_secret_access_key="local").put_item(TableName=table, Item=item)
        self.extra_api_keys[tenant["tenantId"]] = api_key

    def lambda_client(self) -> Any:
        return boto3.client(
            "lambda",
            endpoint_url=self.lambda_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 0}),
        )


def post_with_retries(
    session: requests.Session, url: str, body: Any, headers: dict[str, str], *, deadline_seconds: float = 90.0,
) -> list[int | str]:
    """POST as the README tells a callback client to (``local.tools.confirmer.post_until_final``); every answer seen."""
    return post_until_final(session, url, body, headers=headers, deadline=time.time() + deadline_seconds)


def until_final(send: Callable[[], requests.Response], *, deadline_seconds: float = 60.0) -> tuple[requests.Response, list[int]]:
    """Send as the README tells a callback client to (retry 429/5xx, honouring ``Retry-After``).

    Returns the final response and every status seen on the way.
    """
    deadline = time.time() + deadline_seconds
    seen: list[int] = []
    while True:
        response = send()
        seen.append(response.status_code)
        if response.status_code not in RETRYABLE_STATUSES or time.time() > deadline:
            return response, seen
        time.sleep(min(float(response.headers.get("Retry-After") or 1), 5.0))
