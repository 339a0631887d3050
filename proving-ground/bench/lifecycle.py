"""Bench item 12: onboarding and offboarding a tenant on the local stack, and the calls each makes.

One stack with ``--fault-injection``, whose proxy records every DynamoDB, EventBridge, SQS,
API Gateway (keys and usage plans) and durable-service call of the functions
(``POST /_faults/calls``). Each repeat onboards a starter tenant through the signed admin API,
from ``POST /tenants`` to ``ACTIVE``, then offboards it, from ``DELETE`` to ``OFFBOARDED``; the
status is polled every 50 ms straight from the tenants table (not through the admin API, whose
reads would be counted), and the calls of each phase are counted by function, service and
operation.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import requests

from bench.stats import summary
from local.services.iam_auth import read_admin_credentials
from local.tools.api_keys import AdminClient

POLL_SECONDS = 0.05
Progress = Callable[[str], None]


def _calls(faults_url: str) -> dict[str, int]:
    """The calls the fault proxy recorded since its record was reset, by ``function service:Operation``."""
    recorded = requests.get(f"{faults_url}/_faults/calls", timeout=10).json()["calls"]
    counts = Counter(f"{(call.get('function') or 'lambda').rsplit('-', 1)[-1]} {call['target']}:{call['operation']}"
                     for call in recorded)
    return dict(sorted(counts.items()))


def _timed(client: AdminClient, table: Any, method: str, path: str, body: Any, tenant_id: str,
           final: tuple[str, ...]) -> float:
    started = time.monotonic()
    answer = client.call(method, path, body)
    assert answer.status_code == 202, answer.text
    while True:
        status = (table.get_item(Key={"tenantId": tenant_id}, ConsistentRead=True).get("Item") or {}).get("status")
        if status in final:
            assert status == final[0], f"{tenant_id} ended {status}"
            return time.monotonic() - started
        time.sleep(POLL_SECONDS)


def measure(running_stack: Callable[..., Any], repeats: int, progress: Progress) -> dict[str, Any]:
    """``repeats`` onboardings and offboardings; their seconds (median, min, max) and calls (the last repeat's)."""
    onboard: list[float] = []
    offboard: list[float] = []
    calls: dict[str, dict[str, int]] = {}
    with running_stack("stack-lifecycle", ["--fault-injection"]) as stack:
        line = next(line for line in stack.log_path.read_text().splitlines() if "Fault injection" in line)
        faults_url = line.split()[-1].removesuffix("/_faults")
        client = AdminClient(stack.api_url, read_admin_credentials(stack.state_dir))
        table = boto3.resource("dynamodb", endpoint_url=stack.dynamodb_url, region_name="us-east-1",
                               aws_access_key_id="local", aws_secret_access_key="local").Table("tenant-durable-tenants")
        for repeat in range(repeats):
            tenant_id = f"bench-lifecycle-{repeat}"
            body = {"tenantId": tenant_id, "displayName": "Bench", "tier": "starter", "allowedCurrencies": ["EUR"],
                    "maxAmount": 100, "callbackTimeoutSeconds": 600}
            for phase, method, path, payload, final, into in (
                    ("onboard", "POST", "/tenants", body, ("ACTIVE", "FAILED"), onboard),
                    ("offboard", "DELETE", f"/tenants/{tenant_id}", None, ("OFFBOARDED", "FAILED"), offboard)):
                requests.post(f"{faults_url}/_faults/calls", timeout=10).raise_for_status()
                into.append(_timed(client, table, method, path, payload, tenant_id, final))
                calls[phase] = _calls(faults_url)
                requests.delete(f"{faults_url}/_faults/calls", timeout=10).raise_for_status()
            progress(f"  repeat {repeat + 1}: onboarded in {onboard[-1]:.2f} s ({sum(calls['onboard'].values())} calls), "
                     f"offboarded in {offboard[-1]:.2f} s ({sum(calls['offboard'].values())} calls)")
    return {"repeats": repeats, "onboardSeconds": summary(onboard), "offboardSeconds": summary(offboard),
            "calls": calls}
