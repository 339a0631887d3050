"""The callback path under every single fault: generated, not hand-listed.

Every I/O call on the path of ``POST /callback`` and of ``POST /callbacks/{token}`` (each registry read and write of the
api function, the durable service call, the workflow's finalize and record-failure
writes) × {fails once, fails until botocore's or the step's retries are exhausted,
lands but answers after the caller's timeout, the calling process is killed right
after it}. A client retries as the README says (429/502/503/504 with back-off and
Retry-After). For each cell: the workflow ends in the right final state, once; the
confirmation is never lost; every status the client saw is documented. The table in
docs/security.md is generated from these cells (UPDATE_SECURITY_DOC=1 rewrites it).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from local.faults import FAULT_KINDS, fault_rule
from tests.harness import StackProcess, post_with_retries, wait_until

pytestmark = pytest.mark.slow

SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
TABLE_START, TABLE_END = "<!-- fault-matrix:start -->", "<!-- fault-matrix:end -->"
# The statuses the README documents for POST /callback.
DOCUMENTED = {200, 400, 401, 403, 404, 409, 410, 413, 429, 502, 503, 504}
TENANTS = [f"fault-tenant-{n}" for n in range(6)]
FINAL_TIMEOUT = 120.0
# The workflow steps' attempts (workflow.app.IO_RETRY); botocore's come from the clients' configs.
STEP_ATTEMPTS = 5


@dataclass(frozen=True)
class PathCall:
    """One I/O call on the callback path, and how to aim a fault rule at it for one workflow."""

    name: str
    target: str
    operation: str
    marker: str  # "callback-key", "callback-id", "workflow-key" or "token-key": which id the call carries
    also_contains: str | None
    caller: str  # "api" or "workflow"
    answer: str = "success"

    def rule(self, ids: dict[str, str], fault: str) -> dict[str, Any]:
        contains = [ids[self.marker]] + ([self.also_contains] if self.also_contains else [])
        return fault_rule(fault, target=self.target, operation=self.operation, body_contains=contains,
                          step_attempts=STEP_ATTEMPTS if self.caller == "workflow" else 1)


CALLS = [
    PathCall("callback index read", "dynamodb", "GetItem", "callback-key", None, "api"),
    PathCall("workflow read", "dynamodb", "GetItem", "workflow-key", None, "api"),
    PathCall("lease write", "dynamodb", "UpdateItem", "callback-key", "claimOwner", "api"),
    PathCall("durable service call", "durable", "SendDurableExecutionCallbackSuccess", "callback-id", None, "api"),
    PathCall("settle write", "dynamodb", "UpdateItem", "callback-key", "settledAs", "api"),
    PathCall("mark-answered write", "dynamodb", "UpdateItem", "workflow-key", "answeredAt", "api"),
    PathCall("finalize write", "dynamodb", "UpdateItem", "workflow-key", "COMPLETED", "workflow"),
    PathCall("record-failure write", "dynamodb", "UpdateItem", "workflow-key", '"FAILED"', "workflow", "failure"),
]
FAULTS = list(FAULT_KINDS)
# The external party's route reads the token's item instead of the callback index.
TOKEN_ROUTE = "POST /callbacks/{token}"
ROUTES = {
    "POST /callback": CALLS,
    TOKEN_ROUTE: [PathCall("token read", "dynamodb", "GetItem", "token-key", None, "api"), *CALLS[1:]],
}
CELLS = [(route, call, fault) for route, calls in ROUTES.items() for call in calls for fault in FAULTS]


@dataclass
class CellResult:
    route: str
    call: str
    fault: str
    statuses: list[int | str]
    final_status: str
    confirmation_kept: bool
    completions: int
    rule_hits: int


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    base = tmp_path_factory.mktemp("fault-matrix")
    process = StackProcess(base / "state", base / "stack.log",
                           extra_args=["--fault-injection", "--log-level", "INFO", "--max-workers-per-tenant", "8"])
    process.start()
    for tenant_id in TENANTS:
        process.put_tenant({"tenantId": tenant_id, "displayName": tenant_id, "status": "ACTIVE",
                            "allowedCurrencies": ["EUR"], "maxAmount": 1000, "callbackTimeoutSeconds": 3600},
                           api_key=hashlib.sha256(tenant_id.encode()).hexdigest())
    yield process
    process.stop()


def faults_url(stack: StackProcess) -> str:
    line = next(line for line in stack.log_path.read_text().splitlines() if "Fault injection" in line)
    return line.split()[-1].removesuffix("/_faults")


def rule_hits(stack: StackProcess, marker: str) -> int:
    rules = requests.get(f"{faults_url(stack)}/_faults", timeout=10).json()["rules"]
    return sum(rule["hits"] for rule in rules if marker in (rule["body_contains"] or []))


def completions(stack: StackProcess, workflow_id: str) -> int:
    """How many times the workflow recorded an end (the functions' JSON log lines)."""
    ended = {"workflow completed", "workflow ended without confirmation"}
    count = 0
    for line in stack.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and workflow_id in line:
            record = json.loads(line)
            count += record.get("workflow_id") == workflow_id and record.get("message") in ended
    return count


def run_cell(stack: StackProcess, route: str, call: PathCall, fault: str, tenant_id: str) -> CellResult:
    workflow_id = stack.start_workflow(tenant_id, {"amount": 10, "currency": "EUR", "description": "fault matrix"})
    waiting = stack.wait_for_status(tenant_id, workflow_id, "WAITING_FOR_CALLBACK", timeout=60)
    callback_id = waiting["callbackId"]
    token = waiting["callbackUrl"].rsplit("/", 1)[1]
    ids = {
        "callback-key": "callback#" + hashlib.sha256(callback_id.encode()).hexdigest(),
        "callback-id": callback_id,
        "workflow-key": f"workflow#{workflow_id}",
        "token-key": "token#" + hashlib.sha256(token.encode()).hexdigest(),
    }
    requests.post(f"{faults_url(stack)}/_faults", json=call.rule(ids, fault), timeout=10).raise_for_status()
    answer: dict[str, Any] = (
        {"payload": {"approvedBy": workflow_id}} if call.answer == "success"
        else {"error": {"type": "Declined", "message": f"declined {workflow_id}"}}
    )
    if route == TOKEN_ROUTE:  # the token alone: no API key, no tenant header, no callbackId
        statuses = post_with_retries(requests.Session(), waiting["callbackUrl"], answer, {}, deadline_seconds=FINAL_TIMEOUT)
    else:
        statuses = post_with_retries(requests.Session(), f"{stack.api_url}/callback", {"callbackId": callback_id, **answer},
                                     stack.headers(tenant_id), deadline_seconds=FINAL_TIMEOUT)
    expected = "COMPLETED" if call.answer == "success" else "FAILED"
    final = stack.wait_for_status(tenant_id, workflow_id, expected, timeout=FINAL_TIMEOUT)
    kept = (final["result"].get("confirmation") == answer["payload"] if call.answer == "success"
            else workflow_id in final.get("reason", ""))
    return CellResult(route, call.name, fault, statuses, final["status"], kept, completions(stack, workflow_id),
                      rule_hits(stack, ids[call.marker]))


@pytest.fixture(scope="module")
def matrix(fault_stack: StackProcess) -> list[CellResult]:
    """Run every cell, six at a time, each on its own workflow (rules aim at that workflow's ids)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(run_cell, fault_stack, route, call, fault, TENANTS[index % len(TENANTS)])
                   for index, (route, call, fault) in enumerate(CELLS)]
        results = [future.result() for future in futures]
    for result in results:
        print(f"fault matrix: {result.route} / {result.call} / {result.fault}: statuses {result.statuses} -> {result.final_status}")
    return results


@pytest.mark.parametrize(("route", "call", "fault"), CELLS,
                         ids=[f"{r}-{c.name}-{f}".replace(" ", "-") for r, c, f in CELLS])
def test_single_fault_on_the_callback_path_loses_nothing(matrix: list[CellResult], route: str, call: PathCall,
                                                         fault: str) -> None:
    result = next(r for r in matrix if r.route == route and r.call == call.name and r.fault == fault)
    assert result.rule_hits >= 1, "the fault never hit its call: the matrix would prove nothing"
    assert result.final_status == ("COMPLETED" if call.answer == "success" else "FAILED")
    assert result.confirmation_kept, "the workflow ended without this client's answer"
    assert result.completions <= 1, "the workflow recorded its end twice"
    assert all(status in DOCUMENTED for status in result.statuses if status != "connection-error"), result.statuses
    assert result.statuses[-1] == 200, f"the client was not told its answer won: {result.statuses}"


def render_table(results: list[CellResult]) -> str:
    rows = ["| route | call on the callback path | fault | workflow ends | answer kept | client's last status |",
            "|---|---|---|---|---|---|"]
    for result in results:
        rows.append(f"| `{result.route}` | {result.call} | {result.fault} | {result.final_status} | "
                    f"{'yes' if result.confirmation_kept else 'NO'} | {result.statuses[-1]} |")
    return "\n".join(rows)


def test_security_doc_lists_the_fault_matrix_as_observed(matrix: list[CellResult]) -> None:
    table = render_table(matrix)
    text = SECURITY_DOC.read_text()
    if os.environ.get("UPDATE_SECURITY_DOC") == "1":
        start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
        SECURITY_DOC.write_text(text[:start] + "\n" + table + "\n" + text[end:])
        text = SECURITY_DOC.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    assert text[start:end].strip() == table, "docs/security.md is stale: rerun with UPDATE_SECURITY_DOC=1"


MIX = [("success", n) for n in range(8)] + [("failure", n) for n in range(6)] + [("heartbeat", n) for n in range(6)]


@pytest.mark.parametrize("fault", FAULTS)
def test_twenty_concurrent_mixed_answers_under_a_fault_one_wins(fault_stack: StackProcess, fault: str) -> None:
    stack = fault_stack
    tenant_id = TENANTS[FAULTS.index(fault)]
    workflow_id = stack.start_workflow(tenant_id, {"amount": 10, "currency": "EUR"})
    callback_id = stack.wait_for_status(tenant_id, workflow_id, "WAITING_FOR_CALLBACK", timeout=60)["callbackId"]
    ids = {"callback-id": callback_id, "callback-key": "", "workflow-key": ""}
    # GIVEN the durable service call of whichever answer gets there first suffers the fault
    for operation in ("SendDurableExecutionCallbackSuccess", "SendDurableExecutionCallbackFailure"):
        rule = PathCall("durable", "durable", operation, "callback-id", None, "api").rule(ids, fault)
        requests.post(f"{faults_url(stack)}/_faults", json=rule, timeout=10).raise_for_status()

    def answer(kind: str, n: int) -> tuple[str, int, list[int | str]]:
        body: dict[str, Any] = {"callbackId": callback_id}
        if kind == "success":
            body["payload"] = {"answer": n}
        elif kind == "failure":
            body["error"] = {"type": "Declined", "message": f"answer {n}"}
        else:
            body["heartbeat"] = True
        return kind, n, post_with_retries(requests.Session(), f"{stack.api_url}/callback", body,
                                          stack.headers(tenant_id), deadline_seconds=FINAL_TIMEOUT)

    mix = list(MIX)
    random.Random(fault).shuffle(mix)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(mix)) as pool:
        outcomes = list(pool.map(lambda item: answer(*item), mix))
    winners = [(kind, n) for kind, n, seen in outcomes if kind != "heartbeat" and seen[-1] == 200]
    assert len(winners) == 1, "; ".join(f"{k}{n}:{s}" for k, n, s in sorted(outcomes))
    assert all(seen[-1] in (200, 409, 410) for _, _, seen in outcomes), outcomes
    assert all(status in DOCUMENTED for _, _, seen in outcomes for status in seen if status != "connection-error")
    kind, n = winners[0]
    final = wait_until(lambda: (lambda r: r.json() if r.json().get("status") in ("COMPLETED", "FAILED") else None)(
        stack.status(tenant_id, workflow_id)), FINAL_TIMEOUT, "the workflow ending")
    if kind == "success":
        assert final["status"] == "COMPLETED" and final["result"]["confirmation"] == {"answer": n}
    else:
        assert final["status"] == "FAILED" and f"answer {n}" in final["reason"]
    assert completions(stack, workflow_id) == 1
