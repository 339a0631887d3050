"""The demo tenants of the local stack, onboarded through the control plane, and their keys.

The tenants table stores only hashes of the tenants' keys. At the first start
the stack onboards every tenant of ``src/shared/demo_tenants.json`` as an
operator would: a SigV4-signed ``POST /tenants`` to its own gateway (the admin
credentials of ``.state/admin-credentials.json``), then waits for ``ACTIVE`` and
suspends the ones seeded as ``SUSPENDED``. The key each ``POST`` answers with
(shown that once) goes to ``<state dir>/api-keys.json`` (mode 0600), which the
banner, the demo, the README's *Try it* and the tests read.

At every later start, moto has lost the queues and rules and the local API
Gateway its keys: every ACTIVE and SUSPENDED tenant (demo or onboarded at
runtime) is reconciled by the provisioner, the same idempotent steps as an
onboarding. A demo tenant whose key is missing from the file gets a new one
(a rotation with no overlap).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from local.services.iam_auth import AdminCredentials, sign
from shared.contract import demo_tenants
from shared.identity import API_KEY_HEADER, hash_api_key
from shared.tenants import ACTIVE, FAILED, RECONCILE_OPERATION, SUSPENDED, provisioning_execution_name

__all__ = ["API_KEY_HEADER", "KEYS_FILE", "AdminClient", "DemoTenants", "hash_api_key", "load_api_keys",
           "with_key_hashes", "write_api_keys"]

logger = logging.getLogger(__name__)

KEYS_FILE = "api-keys.json"
# How long the stack waits for a demo tenant's onboarding at start.
ONBOARD_TIMEOUT_SECONDS = 90.0


def load_api_keys(path: Path) -> dict[str, str]:
    """Keys by tenant id from a keys file; empty when it does not exist."""
    return json.loads(path.read_text()) if path.is_file() else {}


def write_api_keys(state_dir: Path, keys: dict[str, str]) -> None:
    """Write the keys file atomically, owner-only."""
    path = Path(state_dir) / KEYS_FILE
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(keys, file, indent=2)
    os.replace(temporary, path)


def with_key_hashes(tenants: list[dict[str, Any]], keys: dict[str, str]) -> list[dict[str, Any]]:
    """Tenant items with ``apiKeyHash`` set from ``keys`` (an item's own hash is kept)."""
    return [
        {**tenant, "apiKeyHash": tenant.get("apiKeyHash") or hash_api_key(keys[tenant["tenantId"]])}
        if tenant["tenantId"] in keys else tenant
        for tenant in tenants
    ]


class AdminClient:
    """Signed calls to the admin API of a gateway (what ``tenantctl --local`` does)."""

    def __init__(self, api_url: str, credentials: AdminCredentials, timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.credentials = credentials
        self.timeout = timeout
        self.session = requests.Session()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        data = json.dumps(body).encode() if body is not None else b""
        url = f"{self.api_url}{path}"
        headers = sign(self.credentials, method, url, data, {"content-type": "application/json"} if data else {})
        return self.session.request(method, url, data=data, headers=headers, timeout=self.timeout)

    def wait_for(self, tenant_id: str, statuses: tuple[str, ...], timeout: float) -> dict[str, Any]:
        """Poll ``GET /tenants/{id}`` until its status is one of ``statuses``; raise on timeout."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            answer = self.call("GET", f"/tenants/{tenant_id}")
            if answer.status_code == 200:
                last = answer.json()
                if last.get("status") in statuses:
                    return last
            time.sleep(0.2)
        raise TimeoutError(f"tenant {tenant_id} did not reach {'/'.join(statuses)} in {timeout:.0f} s (last: {last})")


class DemoTenants:
    """Bring the demo tenants and every live tenant's resources up at the stack's start.

    Args:
        state_dir: Where ``api-keys.json`` lives.
        admin: Signed calls to the stack's own gateway.
        tenants_table: The tenants table (a boto3 ``Table``).
        invoke_provisioner: ``(payload, execution name) -> result``: a synchronous Invoke
            of the provisioner (the stack's Lambda service).
    """

    def __init__(self, state_dir: Path, admin: AdminClient, tenants_table: Any,
                 invoke_provisioner: Callable[[dict[str, Any], str], dict[str, Any]]) -> None:
        self.state_dir = Path(state_dir)
        self.admin = admin
        self.tenants_table = tenants_table
        self.invoke_provisioner = invoke_provisioner
        self.run_id = secrets.token_hex(4)

    def items(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {"ConsistentRead": True}
        while True:
            page = self.tenants_table.scan(**arguments)
            found.extend(item for item in page.get("Items", []) if "status" in item)
            if not page.get("LastEvaluatedKey"):
                return found
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def reconcile(self, items: list[dict[str, Any]]) -> None:
        """Re-create the resources of every ACTIVE and SUSPENDED tenant (moto and the key store forgot them)."""
        live = [item for item in items if item["status"] in (ACTIVE, SUSPENDED)]

        def one(item: dict[str, Any]) -> None:
            generation = int(item.get("generation", 0))
            payload = {"operation": RECONCILE_OPERATION, "tenantId": item["tenantId"], "generation": generation}
            name = provisioning_execution_name(RECONCILE_OPERATION, item["tenantId"], f"{generation}-{self.run_id}")
            result = self.invoke_provisioner(payload, name)
            if result.get("outcome") != "RECONCILED":
                logger.warning("tenant %s not reconciled: %s", item["tenantId"], result)

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(one, live))

    def onboard_demo_tenants(self, keys: dict[str, str], present: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Onboard each demo tenant the table does not hold (or holds FAILED); re-key one without a key."""
        keys = dict(keys)
        started: list[dict[str, Any]] = []
        for tenant in demo_tenants():
            tenant_id = tenant["tenantId"]
            item = present.get(tenant_id)
            if item is None or item["status"] == FAILED:
                body = {field: value for field, value in tenant.items() if field != "status"}
                answer = self.admin.call("POST", "/tenants", body)
                if answer.status_code != 202:
                    raise RuntimeError(f"onboarding demo tenant {tenant_id} failed: {answer.status_code} {answer.text}")
                keys[tenant_id] = answer.json()["apiKey"]
                started.append(tenant)
            elif item["status"] in (ACTIVE, SUSPENDED) and tenant_id not in keys:
                answer = self.admin.call("POST", f"/tenants/{tenant_id}/api-keys", {"overlapSeconds": 0})
                if answer.status_code != 201:
                    raise RuntimeError(f"re-keying demo tenant {tenant_id} failed: {answer.status_code} {answer.text}")
                keys[tenant_id] = answer.json()["apiKey"]
        write_api_keys(self.state_dir, keys)  # before waiting: a key is shown once
        for tenant in started:
            self.admin.wait_for(tenant["tenantId"], (ACTIVE, FAILED), ONBOARD_TIMEOUT_SECONDS)
            if tenant.get("status") == SUSPENDED:
                answer = self.admin.call("PATCH", f"/tenants/{tenant['tenantId']}", {"status": SUSPENDED})
                if answer.status_code != 200:
                    raise RuntimeError(f"suspending demo tenant {tenant['tenantId']} failed: {answer.text}")
        return keys

    def bring_up(self) -> dict[str, str]:
        """Reconcile the live tenants, then onboard the missing demo tenants; the demo keys."""
        items = self.items()
        self.reconcile(items)
        return self.onboard_demo_tenants(load_api_keys(self.state_dir / KEYS_FILE),
                                         {item["tenantId"]: item for item in items})
