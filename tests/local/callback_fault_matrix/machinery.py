"""The callback fault matrix's machinery, shared by its two test files (one per callback route; conftest.py hands them its fixtures).

Every I/O call on the path of ``POST /callback`` and of ``POST /callbacks/{token}``
(the authorizer's and the token route's tenant reads, each registry read and write of the api function,
the durable service calls, the repair, the workflow's finalize reads and writes and
its checkpoints) × {fails once, fails until botocore's or the step's retries are
exhausted, lands but answers after the caller's timeout, the calling process is
killed right after it}. The calls are not hand-picked: a census records every call
a clean success, failure and heartbeat make (``local.testing.faults`` recording mode) and
fails on any call the matrix does not list. Calls that only happen on a detour
(the lease-state read, the lease release, the history read, the repair) get cells
with a :class:`Precondition` that takes the path there.

A client retries as the README says (429/500/502/503/504 with back-off and
Retry-After). For each cell: the workflow ends in the right state, once (one
``CallbackSucceeded``/``CallbackFailed`` in the execution's history); the
confirmation is never lost; every status the client saw is one the README's API
table documents (read from the table, see :func:`documented_statuses`).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import queue
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from local.testing.faults import (
    COUNTED_ONLY,
    EVENTS,
    FAILS_EVERY_ATTEMPT,
    FAILS_ONCE,
    FAULT_KINDS,
    LANDS_LATE,
    fault_rule,
    is_function,
)
from local.services.notifications import ensure_signing_key
from shared.callback_tokens import callback_url, mint_token
from tests.harness import StackProcess, post_with_retries, wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]
SECURITY_DOC = REPO_ROOT / "docs" / "security.md"
README = REPO_ROOT / "docs" / "api.md"
CALLBACK_ROUTE = "POST /callback"
TOKEN_ROUTE = "POST /callbacks/{callbackToken}"
WORKFLOWS_TABLE = "tenant-durable-workflows"
FINAL_TIMEOUT = 120.0
# The workflow steps' attempts (workflow.app.IO_RETRY); botocore's come from the clients' configs.
STEP_ATTEMPTS = 5
# The matrix stack's tenant cache lives one second, and every cell arms its fault
# more than a second after the workflow began to wait: finalize then always reads
# the tenant (with the default 300 s it would answer from memory and its read
# would never be on the path).
TENANT_CACHE_TTL = 1
CELLS_AT_ONCE = 10
FAULTS = list(FAULT_KINDS)
SUCCESS, FAILURE, HEARTBEAT = "success", "failure", "heartbeat"
ANSWER_KINDS = (SUCCESS, FAILURE, HEARTBEAT)
CALLBACK_ANSWER_EVENTS = ("CallbackSucceeded", "CallbackFailed")


# -- the API table (docs/api.md) -------------------------------------------------------------------

_STATUS_IN_CELL = re.compile(r"`([1-5]\d\d)(?=[ `])")


def documented_statuses(route: str, readme: str | None = None) -> set[int]:
    """Every status the API table (docs/api.md) documents for ``route`` (its success and errors columns).

    A success cell that says "as `OTHER ROUTE`" inherits that route's success
    statuses. Fails loudly when the table or the row is not where and how it was.
    """
    text = README.read_text() if readme is None else readme
    rows = _api_table(text)
    if route not in rows:
        raise AssertionError(f"API table (docs/api.md) has no `{route}` row (rows: {sorted(rows)})")
    success, errors = rows[route]
    statuses = {int(code) for code in _STATUS_IN_CELL.findall(errors)}
    own = {int(code) for code in _STATUS_IN_CELL.findall(success)}
    inherited = [other for other in rows if other != route and f"as `{other}`" in success]
    if not own and len(inherited) != 1:
        raise AssertionError(f"README: the success cell of `{route}` names no status and no one other route: {success!r}")
    for other in inherited:
        own |= {int(code) for code in _STATUS_IN_CELL.findall(rows[other][0])}
    if not statuses or not own:
        raise AssertionError(f"README: the `{route}` row documents no error or no success status")
    return statuses | own


def _api_table(text: str) -> dict[str, tuple[str, str]]:
    """``route -> (success, errors)`` of the table headed ``| route | success | errors |``."""
    lines = text.splitlines()
    header = [i for i, line in enumerate(lines) if re.fullmatch(r"\|\s*route\s*\|\s*success\s*\|\s*errors\s*\|", line.strip())]
    if len(header) != 1:
        raise AssertionError(f"docs/api.md: expected one API table headed | route | success | errors |, found {len(header)}")
    rows: dict[str, tuple[str, str]] = {}
    for line in lines[header[0] + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) != 3 or not re.fullmatch(r"`[A-Z]+ /\S*`", cells[0]):
            raise AssertionError(f"API table (docs/api.md) changed shape: {line!r}")
        rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


# -- the calls on the path --------------------------------------------------------------------


@dataclass(frozen=True)
class Precondition:
    """A detour that puts a conditional call on the path of the faulted request.

    Attributes:
        name: What the detour is, as the doc's table says it.
        answer: The answer the faulted request sends.
        extra_rule: ``(call, fault kind)`` of a rule armed first that causes the detour,
            or None.
        answered_before: The same answer was delivered first (the faulted request is its retry).
        loser: The faulted request sends a different answer after the winning one ended
            the execution (with the registry write of the workflow exhausted): it gets 409.
    """

    name: str
    answer: str = SUCCESS
    extra_rule: tuple[str, str] | None = None
    answered_before: bool = False
    loser: bool = False


@dataclass(frozen=True)
class PathCall:
    """One I/O call on the callback path, and how to aim a fault rule at it for one workflow.

    Attributes:
        marker: Which id the call carries: ``tenant``, ``callback-key``, ``callback-id``,
            ``workflow-key``, ``token-key`` or ``execution-arn``.
        also_contains: Text that tells this call from others on the same item.
        caller: ``authorizer``, ``api`` or ``workflow`` (a step retries the workflow's calls).
        occurs_on: The answers whose clean path makes this call (the census checks it);
            empty for a call that needs a :class:`Precondition`.
        skip: Calls with the same body to let through first (the lease-state read repeats
            the index read's body).
        step_attempts: How many times a durable step makes the call when it keeps failing.
    """

    name: str
    target: str
    operation: str
    marker: str
    also_contains: tuple[str, ...] = ()
    caller: str = "api"
    occurs_on: tuple[str, ...] = ANSWER_KINDS
    precondition: Precondition | None = None
    skip: int = 0
    step_attempts: int = 1

    @property
    def answer(self) -> str:
        """The answer a cell sends: the precondition's, else the first that makes the call."""
        return self.precondition.answer if self.precondition else self.occurs_on[0]

    def parts(self, ids: dict[str, str]) -> list[str]:
        return [ids[self.marker], *self.also_contains]

    def rule(self, ids: dict[str, str], fault: str, label: str) -> dict[str, Any]:
        return fault_rule(fault, target=self.target, operation=self.operation, body_contains=self.parts(ids),
                          step_attempts=self.step_attempts, skip=self.skip, label=label, caller=self.caller)

    def matches(self, call: dict[str, Any], ids: dict[str, str]) -> bool:
        """Whether a recorded call (``GET /_faults/calls``) is this one."""
        return ((call["target"], call["operation"]) == (self.target, self.operation)
                and is_function(call["function"], self.caller)
                and all(part in call["text"] for part in self.parts(ids)))


DURABLE_SUCCESS = PathCall("durable success call", "durable", "SendDurableExecutionCallbackSuccess", "callback-id",
                           occurs_on=(SUCCESS,))
FINALIZE_WRITE = PathCall("finalize write", "dynamodb", "UpdateItem", "workflow-key", ('"COMPLETED"', "resultJson"),
                          "workflow", (SUCCESS,), step_attempts=STEP_ATTEMPTS)
_BY_NAME = {call.name: call for call in (DURABLE_SUCCESS, FINALIZE_WRITE)}
ANSWERED_BEFORE = Precondition("retry after this answer won", answered_before=True)
# botocore retries a throttled durable call: it must fail every attempt for the api to give the lease back.
DURABLE_CALL_FAILED = Precondition("the durable call failed", extra_rule=(DURABLE_SUCCESS.name, FAILS_EVERY_ATTEMPT))
REPLY_LOST = Precondition("the durable call landed, its reply was lost", extra_rule=(DURABLE_SUCCESS.name, LANDS_LATE))
REGISTRY_BEHIND = Precondition("a losing answer after the workflow's own write gave up", FAILURE,
                               extra_rule=(FINALIZE_WRITE.name, FAILS_EVERY_ATTEMPT), loser=True)


def _calls_of(route: str) -> list[PathCall]:
    """The calls on ``route``'s path, in the order a request meets them."""
    before_the_lease = (
        [PathCall("authorizer tenant read", "dynamodb", "GetItem", "tenant", ("apiKeyHash",), "authorizer"),
         PathCall("callback index read", "dynamodb", "GetItem", "callback-key", ("ConsistentRead",)),
         PathCall("workflow read", "dynamodb", "GetItem", "workflow-key", ("ConsistentRead",))]
        if route == CALLBACK_ROUTE else
        [PathCall("token read", "dynamodb", "GetItem", "token-key"),
         PathCall("workflow read", "dynamodb", "GetItem", "workflow-key", ("ConsistentRead",)),
         # Tokens of a tenant that is not ACTIVE are refused: the api reads the tenant.
         PathCall("token tenant read", "dynamodb", "GetItem", "tenant", ("tenant-durable-tenants",))]
    )
    index_reads_before = 1 if route == CALLBACK_ROUTE else 0
    return [
        *before_the_lease,
        PathCall("lease write", "dynamodb", "UpdateItem", "callback-key", ("claimOwner = :owner",), occurs_on=(SUCCESS, FAILURE)),
        PathCall("lease-state read", "dynamodb", "GetItem", "callback-key", ("ConsistentRead",), occurs_on=(),
                 precondition=ANSWERED_BEFORE, skip=index_reads_before),
        DURABLE_SUCCESS,
        PathCall("durable failure call", "durable", "SendDurableExecutionCallbackFailure", "callback-id", occurs_on=(FAILURE,)),
        PathCall("durable heartbeat call", "durable", "SendDurableExecutionCallbackHeartbeat", "callback-id",
                 occurs_on=(HEARTBEAT,)),
        PathCall("lease release write", "dynamodb", "UpdateItem", "callback-key", ("REMOVE claimOwner",), occurs_on=(),
                 precondition=DURABLE_CALL_FAILED),
        PathCall("history read", "durable", "GetDurableExecutionHistory", "execution-arn", occurs_on=(),
                 precondition=REPLY_LOST),
        PathCall("settle write", "dynamodb", "UpdateItem", "callback-key", ("settledAs",), occurs_on=(SUCCESS, FAILURE)),
        PathCall("repair execution read", "durable", "GetDurableExecution", "execution-arn", occurs_on=(),
                 precondition=REGISTRY_BEHIND),
        PathCall("repair write", "dynamodb", "UpdateItem", "workflow-key", ("resultJson", ":started"), occurs_on=(),
                 precondition=REGISTRY_BEHIND),
        PathCall("workflow checkpoint", "durable", "CheckpointDurableExecution", "execution-arn", caller="workflow",
                 occurs_on=(SUCCESS, FAILURE)),
        PathCall("finalize tenant read", "dynamodb", "GetItem", "tenant", ("tenant-durable-tenants", "ConsistentRead"),
                 "workflow", (SUCCESS,)),
        FINALIZE_WRITE,
        PathCall("record-failure write", "dynamodb", "UpdateItem", "workflow-key", ('"FAILED"', "resultJson"), "workflow",
                 (FAILURE,), step_attempts=STEP_ATTEMPTS),
    ]


ROUTES = {route: _calls_of(route) for route in (CALLBACK_ROUTE, TOKEN_ROUTE)}


# The token route's cells: the calls whose code is the token route's own (src/api/tokens.py)
# and the delivery's arbitration points (the lease, the durable call, the history).
# Every other call runs the same code for both routes (src/api/delivery.py, the
# workflow), and POST /callback's cells fault each of them; the token route's
# census still checks its whole path.
TOKEN_ROUTE_CELL_CALLS = ("token read", "workflow read", "token tenant read", "lease write", DURABLE_SUCCESS.name,
                          "history read")


def cells(route: str) -> list[tuple[PathCall, str]]:
    """The matrix of ``route``: its calls (see ``TOKEN_ROUTE_CELL_CALLS``) × every fault kind."""
    calls = [call for call in ROUTES[route] if route == CALLBACK_ROUTE or call.name in TOKEN_ROUTE_CELL_CALLS]
    return [(call, fault) for call in calls for fault in FAULTS]


def cell_id(call: PathCall, fault: str) -> str:
    return f"{call.name}-{fault}".replace(" ", "-")


# -- the stack ----------------------------------------------------------------------------------


class FaultStack:
    """A ``--fault-injection`` stack with its own tenants, each lent to one cell at a time.

    A tenant's calls carry nothing but its id (the authorizer's and finalize's tenant
    reads), so a rule aimed at them must never meet another cell's requests.
    """

    def __init__(self, process: StackProcess, tenants: list[str]) -> None:
        self.process = process
        self.faults_url = f"{process.fault_url}/_faults"
        self._free: queue.Queue[str] = queue.Queue()
        for tenant_id in tenants:
            self._free.put(tenant_id)
        self.lambda_client = boto3.client(
            "lambda", endpoint_url=process.lambda_url, region_name="us-east-1", aws_access_key_id="local",
            aws_secret_access_key="local",
            # The test's own reads may meet a rule a cell left with hits to spare: retry through it.
            config=Config(retries={"mode": "standard", "total_max_attempts": 6}, read_timeout=60))
        self.registry = boto3.resource(
            "dynamodb", endpoint_url=process.dynamodb_url, region_name="us-east-1", aws_access_key_id="local",
            aws_secret_access_key="local").Table(WORKFLOWS_TABLE)

    def lend_tenant(self) -> str:
        return self._free.get(timeout=FINAL_TIMEOUT * 3)

    def give_back(self, tenant_id: str) -> None:
        self._free.put(tenant_id)

    def arm(self, rule: dict[str, Any]) -> None:
        requests.post(self.faults_url, json=rule, timeout=10).raise_for_status()

    def hits(self, label: str) -> int:
        rules = requests.get(self.faults_url, timeout=10).json()["rules"]
        return sum(rule["hits"] for rule in rules if rule["label"] == label)

    def record_calls(self) -> None:
        requests.post(f"{self.faults_url}/calls", timeout=10).raise_for_status()

    def recorded_calls(self) -> list[dict[str, Any]]:
        """The functions' calls since :meth:`record_calls` (the test's own are left out); stops recording."""
        calls = requests.delete(f"{self.faults_url}/calls", timeout=10).json()["calls"]
        return [call for call in calls if call["environment"]]

    def execution(self, arn: str) -> dict[str, Any]:
        return self.lambda_client.get_durable_execution(DurableExecutionArn=arn)

    def answer_events(self, arn: str) -> list[str]:
        """The CallbackSucceeded/CallbackFailed events of the execution's history, in order."""
        events: list[str] = []
        marker: dict[str, str] = {}
        while True:
            page = self.lambda_client.get_durable_execution_history(DurableExecutionArn=arn, **marker)
            events += [event["EventType"] for event in page.get("Events") or []
                       if event.get("EventType") in CALLBACK_ANSWER_EVENTS]
            if not page.get("NextMarker"):
                return events
            marker = {"Marker": page["NextMarker"]}

    def wait_for_execution_end(self, arn: str) -> dict[str, Any]:
        return wait_until(lambda: (lambda e: e if e["Status"] != "RUNNING" else None)(self.execution(arn)),
                          FINAL_TIMEOUT, f"execution {arn} ending")


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    base = tmp_path_factory.mktemp("fault-matrix")
    process = StackProcess(base / "state", base / "stack.log",
                           extra_args=["--fault-injection", "--log-level", "INFO", "--max-workers-per-tenant", "8",
                                       "--tenant-cache-ttl", str(TENANT_CACHE_TTL)])
    process.start()
    tenants = [f"fault-tenant-{n}" for n in range(CELLS_AT_ONCE)]
    for tenant_id in tenants:
        process.put_tenant({"tenantId": tenant_id, "displayName": tenant_id, "status": "ACTIVE",
                            "allowedCurrencies": ["EUR"], "maxAmount": 1000, "callbackTimeoutSeconds": 3600},
                           api_key=hashlib.sha256(tenant_id.encode()).hexdigest())
    yield FaultStack(process, tenants)
    process.stop()


# -- one workflow waiting for its callback ------------------------------------------------------


@dataclass
class Waiting:
    """A workflow of a lent tenant that waits for its callback, and how to answer it on a route."""

    stack: FaultStack
    route: str
    tenant_id: str
    workflow_id: str
    callback_id: str
    callback_url: str
    ids: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        item = self.stack.registry.get_item(Key={"tenantId": self.tenant_id, "recordId": f"workflow#{self.workflow_id}"})
        token = self.callback_url.rsplit("/", 1)[1]
        self.ids = {
            "tenant": self.tenant_id,
            "callback-key": "callback#" + hashlib.sha256(self.callback_id.encode()).hexdigest(),
            "callback-id": self.callback_id,
            "workflow-key": f"workflow#{self.workflow_id}",
            "token-key": "token#" + hashlib.sha256(token.encode()).hexdigest(),
            "execution-arn": item["Item"]["executionArn"],
        }

    @classmethod
    def start(cls, stack: FaultStack, route: str, tenant_id: str) -> Waiting:
        process = stack.process
        workflow_id = process.start_workflow(tenant_id, {"amount": 10, "currency": "EUR", "description": "fault matrix"})
        waiting = process.wait_for_status(tenant_id, workflow_id, "WAITING_FOR_CALLBACK", timeout=60)
        time.sleep(TENANT_CACHE_TTL + 0.2)  # so finalize reads the tenant (TENANT_CACHE_TTL)
        return cls(stack, route, tenant_id, workflow_id, waiting["callbackId"], waiting["callbackUrl"])

    def body(self, kind: str, tag: str = "") -> dict[str, Any]:
        """An answer of ``kind`` that names this workflow (and ``tag``), so its result can be recognized."""
        if kind == SUCCESS:
            return {"payload": {"approvedBy": self.workflow_id + tag}}
        if kind == FAILURE:
            return {"error": {"type": "Declined", "message": f"declined {self.workflow_id}{tag}"}}
        return {"heartbeat": True}

    def post(self, answer: dict[str, Any]) -> list[int | str]:
        """Send ``answer`` as the README tells a client to; every status seen."""
        process = self.stack.process
        if self.route == TOKEN_ROUTE:  # the token alone: no API key, no tenant header, no callbackId
            return post_with_retries(requests.Session(), self.callback_url, answer, {}, deadline_seconds=FINAL_TIMEOUT)
        return post_with_retries(requests.Session(), f"{process.api_url}/callback", {"callbackId": self.callback_id, **answer},
                                 process.headers(self.tenant_id), deadline_seconds=FINAL_TIMEOUT)

    def final(self, expected: str) -> dict[str, Any]:
        return self.stack.process.wait_for_status(self.tenant_id, self.workflow_id, expected, timeout=FINAL_TIMEOUT)


# -- the census -------------------------------------------------------------------------------


def census(stack: FaultStack, route: str) -> dict[str, set[str]]:
    """Record the functions' calls of a clean success, failure and heartbeat on ``route``.

    Returns the names of the matrix's calls each answer made. Fails on a recorded call
    that no unconditional call of the matrix matches, so a new call on the path fails
    the census until it is in the matrix.
    """
    unconditional = [call for call in ROUTES[route] if call.precondition is None]
    seen: dict[str, set[str]] = {}
    tenant_id = stack.lend_tenant()
    try:
        for kind in ANSWER_KINDS:
            waiting = Waiting.start(stack, route, tenant_id)
            stack.record_calls()
            assert waiting.post(waiting.body(kind)) == [200]
            if kind != HEARTBEAT:
                stack.wait_for_execution_end(waiting.ids["execution-arn"])
            calls = stack.recorded_calls()
            unlisted = [f"{c['target']} {c['operation']}: {c['text'][:200]}" for c in calls
                        if not any(path_call.matches(c, waiting.ids) for path_call in unconditional)]
            assert not unlisted, f"{route} / {kind}: calls on the path the matrix does not list:\n" + "\n".join(unlisted)
            seen[kind] = {path_call.name for path_call in unconditional
                          if any(path_call.matches(c, waiting.ids) for c in calls)}
    finally:
        stack.give_back(tenant_id)
    return seen


def expected_census(route: str) -> dict[str, set[str]]:
    """What :func:`census` must find: the matrix's unconditional calls, by the answers that make them."""
    return {kind: {call.name for call in ROUTES[route] if call.precondition is None and kind in call.occurs_on}
            for kind in ANSWER_KINDS}


# -- one cell ---------------------------------------------------------------------------------


@dataclass
class CellResult:
    route: str
    call: str
    fault: str
    precondition: str
    statuses: list[list[int | str]]  # per request the cell made, every status its client saw
    expected_last: int
    final_status: str
    expected_status: str
    execution_status: str
    confirmation_kept: bool
    answer_events: list[str]
    completions: int
    expected_completions: int
    rule_hits: int

    def kept_column(self) -> str:
        """The doc's "answer kept" column."""
        return "yes" if self.confirmation_kept else "NO"

    def shown_statuses(self) -> str:
        """Every status each request saw (the test's messages): ``503 → 200; 409``."""
        return "; ".join(" → ".join(str(status) for status in seen) for seen in self.statuses)

    def final_answers(self) -> str:
        """The answer each request ended with (the doc's column): ``200; 409``.

        The statuses before it depend on timing (a retry may or may not meet the
        lease or the fault), so the doc, which must come out the same on every
        run, shows only the final answer; :func:`_check_cell` checks them all.
        """
        return "; ".join(str(seen[-1]) for seen in self.statuses)


def completions(stack: FaultStack, workflow_id: str) -> int:
    """How many times the workflow logged its end (the functions' JSON log lines)."""
    ended = {"workflow completed", "workflow ended without confirmation"}
    count = 0
    for line in stack.process.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and workflow_id in line:
            record = json.loads(line)
            count += record.get("workflow_id") == workflow_id and record.get("message") in ended
    return count


def run_cell(stack: FaultStack, route: str, call: PathCall, fault: str) -> CellResult:
    tenant_id = stack.lend_tenant()
    try:
        return _run_cell(Waiting.start(stack, route, tenant_id), call, fault)
    finally:
        stack.give_back(tenant_id)


# The workflow's own final registry writes: it logs its end right after one lands.
FINAL_WRITES = (FINALIZE_WRITE.name, "record-failure write")


def logged_ends(call: PathCall, fault: str, precondition: Precondition) -> int:
    """How many times the workflow logs its end in a cell: once, or never when its final write gave up.

    (The execution still ends with its result, and a later request repairs the registry.)
    """
    faults = [(call.name, fault), *([precondition.extra_rule] if precondition.extra_rule else [])]
    return 0 if any(name in FINAL_WRITES and kind == FAILS_EVERY_ATTEMPT for name, kind in faults) else 1


def _run_cell(waiting: Waiting, call: PathCall, fault: str) -> CellResult:
    stack, ids = waiting.stack, waiting.ids
    precondition = call.precondition or Precondition("none", call.answer)
    label = f"{waiting.route}|{call.name}|{fault}|{waiting.workflow_id}"
    statuses: list[list[int | str]] = []
    winner = waiting.body(SUCCESS if precondition.loser else call.answer)
    if precondition.extra_rule:
        cause, kind = precondition.extra_rule
        stack.arm(_BY_NAME[cause].rule(ids, kind, label + "|precondition"))
    if precondition.answered_before or precondition.loser:
        statuses.append(waiting.post(winner))
    if precondition.loser:  # the execution ended while the registry still says it waits
        stack.wait_for_execution_end(ids["execution-arn"])
    stack.arm(call.rule(ids, fault, label))
    statuses.append(waiting.post(waiting.body(FAILURE, " (the loser)") if precondition.loser else winner))
    if call.answer == HEARTBEAT:  # a heartbeat ends nothing: a success ends the workflow
        winner = waiting.body(SUCCESS)
        statuses.append(waiting.post(winner))
    expected = "FAILED" if "error" in winner else "COMPLETED"
    final = waiting.final(expected)
    kept = (final.get("result", {}).get("confirmation") == winner["payload"] if "payload" in winner
            else winner["error"]["message"] in final.get("reason", ""))
    execution = stack.wait_for_execution_end(ids["execution-arn"])
    return CellResult(waiting.route, call.name, fault, precondition.name, statuses, 409 if precondition.loser else 200,
                      final["status"], expected, execution["Status"], kept, stack.answer_events(ids["execution-arn"]),
                      completions(stack, waiting.workflow_id), logged_ends(call, fault, precondition), stack.hits(label))


def run_matrix(stack: FaultStack, route: str) -> dict[tuple[str, str], CellResult]:
    """Every cell of ``route``, ``CELLS_AT_ONCE`` at a time, each on its own workflow and lent tenant."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=CELLS_AT_ONCE) as pool:
        futures = {(call.name, fault): pool.submit(run_cell, stack, route, call, fault) for call, fault in cells(route)}
        results = {key: future.result() for key, future in futures.items()}
    for result in results.values():
        print(f"fault matrix: {result.route} / {result.call} / {result.fault}: {result.shown_statuses()} -> {result.final_status}")
    return results


def _check_cell(result: CellResult, documented: set[int]) -> None:
    """The cell's promises: the fault hit, the workflow ended once as the answer said, nothing undocumented."""
    assert result.rule_hits >= 1, "the fault never hit its call: the cell would prove nothing"
    assert result.final_status == result.expected_status
    assert result.confirmation_kept, "the workflow ended without the winning answer"
    assert result.execution_status == "SUCCEEDED", f"the execution ended {result.execution_status}"
    expected_event = "CallbackFailed" if result.expected_status == "FAILED" else "CallbackSucceeded"
    assert result.answer_events == [expected_event], f"the callback was answered {result.answer_events}"
    assert result.completions == result.expected_completions, (
        f"the workflow logged its end {result.completions} times, not {result.expected_completions}")
    undocumented = [s for seen in result.statuses for s in seen if s != "connection-error" and s not in documented]
    assert not undocumented, f"statuses the README does not document: {result.shown_statuses()}"
    assert result.statuses[-1][-1] == result.expected_last, f"the client was not told the truth: {result.shown_statuses()}"


# -- an answer while the wait registers, the event bus failing ---------------------------------
#
# The callback submitter writes the callback to the registry, then puts the event
# on the bus, then makes the wait answerable. An answer that arrives in between
# must be told to retry (503), never accepted: if the bus keeps failing, the
# workflow ends FAILED, and a 200 would have been a broken promise.

EVENT_PUT = "event put (submitter)"
REGISTERING = "an answer while the wait registers"
REGISTRATION_FAULTS = (FAILS_ONCE, FAILS_EVERY_ATTEMPT)
# The event put that fails once stalls first (under the submitter's 5 s read
# timeout), so the answer surely arrives while the wait is being registered.
REGISTERING_STALL_SECONDS = 3.0
REGISTERING_MESSAGE = "the callback's wait is still being registered; retry later"


@dataclass
class RegistrationResult(CellResult):
    """A cell of the sequence: what the early answer was told, and how many answers reached the durable service."""

    first_retry_after: str | None = None
    first_message: str | None = None
    deliveries: int = 0
    reason: str = ""

    def kept_column(self) -> str:
        if self.expected_status == "FAILED":
            return "never accepted" if not self.confirmation_kept else "NO: accepted, then lost"
        return super().kept_column()


def run_registration_cell(stack: FaultStack, route: str, fault: str) -> RegistrationResult:
    """A workflow whose event put gets ``fault`` after the registry write, answered on ``route`` meanwhile."""
    tenant_id = stack.lend_tenant()
    try:
        process = stack.process
        label = f"{route}|{EVENT_PUT}|{fault}|{tenant_id}|{time.time()}"
        # The lent tenant's id is in its event's detail and in no other cell's calls.
        stack.arm(fault_rule(fault, target=EVENTS, operation="PutEvents", body_contains=[tenant_id],
                             step_attempts=STEP_ATTEMPTS, label=label, caller="workflow",
                             delay_seconds=REGISTERING_STALL_SECONDS if fault == FAILS_ONCE else 0.0))
        workflow_id = process.start_workflow(tenant_id, {"amount": 10, "currency": "EUR", "description": "registering"})
        key = {"tenantId": tenant_id, "recordId": f"workflow#{workflow_id}"}
        item = wait_until(lambda: (lambda i: i if i and "callbackId" in i else None)(stack.registry.get_item(
            Key=key, ConsistentRead=True).get("Item")), 60, f"{workflow_id}'s callback registered", interval=0.05)
        assert item["status"] == "STARTED", "the wait was answerable before its event was out"
        callback_id = str(item["callbackId"])
        token = mint_token(ensure_signing_key(process.state_dir).encode(), tenant_id, callback_id)
        waiting = Waiting(stack, route, tenant_id, workflow_id, callback_id, callback_url(process.api_url, token))
        deliveries = label + "|deliveries"  # every answer the api sends the durable service for this callback
        stack.arm(fault_rule(COUNTED_ONLY, target="durable", operation="*", body_contains=[callback_id],
                             label=deliveries, caller="api"))
        answer = waiting.body(SUCCESS)
        first = _post_once(waiting, answer)
        statuses: list[list[int | str]] = [[first.status_code], waiting.post(answer)]
        expected = "FAILED" if fault == FAILS_EVERY_ATTEMPT else "COMPLETED"
        final = waiting.final(expected)
        execution = stack.wait_for_execution_end(waiting.ids["execution-arn"])
        kept = final.get("result", {}).get("confirmation") == answer["payload"]
        return RegistrationResult(
            route, EVENT_PUT, fault, REGISTERING, statuses, 409 if expected == "FAILED" else 200, final["status"],
            expected, execution["Status"], kept, stack.answer_events(waiting.ids["execution-arn"]),
            completions(stack, workflow_id), 1, stack.hits(label),
            first_retry_after=first.headers.get("Retry-After"), first_message=_message(first),
            deliveries=stack.hits(deliveries), reason=str(final.get("reason") or ""))
    finally:
        stack.give_back(tenant_id)


def _post_once(waiting: Waiting, answer: dict[str, Any]) -> requests.Response:
    """One POST of ``answer``, no retry: the answer that arrives while the wait registers."""
    if waiting.route == TOKEN_ROUTE:
        return requests.post(waiting.callback_url, json=answer, timeout=30)
    return requests.post(f"{waiting.stack.process.api_url}/callback", json={"callbackId": waiting.callback_id, **answer},
                         headers=waiting.stack.process.headers(waiting.tenant_id), timeout=30)


def _message(response: requests.Response) -> str | None:
    try:
        return str(response.json().get("message"))
    except ValueError:
        return None


def run_registration(stack: FaultStack, route: str) -> dict[str, RegistrationResult]:
    """Both faults of the sequence on ``route``, at once (each on a lent tenant)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(REGISTRATION_FAULTS)) as pool:
        futures = {fault: pool.submit(run_registration_cell, stack, route, fault) for fault in REGISTRATION_FAULTS}
        results = {fault: future.result() for fault, future in futures.items()}
    for result in results.values():
        print(f"registration: {result.route} / {result.fault}: {result.shown_statuses()} -> {result.final_status}")
    return results


def _check_registration(result: RegistrationResult, documented: set[int]) -> None:
    """The sequence's promises: the early answer is told to retry, a 200 only for an answer the workflow keeps."""
    assert result.rule_hits >= 1, "the event put never failed: the cell would prove nothing"
    assert result.statuses[0] == [503] and result.first_retry_after == "1", f"the early answer: {result.shown_statuses()}"
    assert result.first_message == REGISTERING_MESSAGE
    undocumented = [s for seen in result.statuses for s in seen if s != "connection-error" and s not in documented]
    assert not undocumented, f"statuses the README does not document: {result.shown_statuses()}"
    assert result.final_status == result.expected_status and result.execution_status == "SUCCEEDED"
    assert result.completions == result.expected_completions
    if result.expected_status == "FAILED":
        assert result.reason == "could not register the callback"
        assert not any(200 in seen for seen in result.statuses), f"a request saw 200: {result.shown_statuses()}"
        assert result.deliveries == 0 and result.answer_events == [], "an answer reached the durable service"
        assert not result.confirmation_kept
    else:
        assert result.statuses[-1][-1] == 200 and result.confirmation_kept
        assert result.deliveries == 1, "the early answer reached the durable service (or the later one twice)"
        assert result.answer_events == ["CallbackSucceeded"]


# -- the doc ----------------------------------------------------------------------------------


def render_table(results: list[CellResult]) -> str:
    rows = ["| call on the callback path | precondition | fault | workflow ends | answer events | answer kept | "
            "final answer of each request |",
            "|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.call} | {r.precondition} | {r.fault} | {r.final_status} | {', '.join(r.answer_events)} | "
                    f"{r.kept_column()} | {r.final_answers()} |")
    return "\n".join(rows)


def check_security_doc(route: str, results: list[CellResult]) -> None:
    """The route's table in docs/security.md is the one observed (UPDATE_SECURITY_DOC=1 rewrites it)."""
    start_marker, end_marker = f"<!-- fault-matrix {route}:start -->", f"<!-- fault-matrix {route}:end -->"
    table = render_table(results)
    text = SECURITY_DOC.read_text()
    if os.environ.get("UPDATE_SECURITY_DOC") == "1":
        start, end = text.index(start_marker) + len(start_marker), text.index(end_marker)
        SECURITY_DOC.write_text(text[:start] + "\n" + table + "\n" + text[end:])
        text = SECURITY_DOC.read_text()
    start, end = text.index(start_marker) + len(start_marker), text.index(end_marker)
    stale = sorted(set(text[start:end].strip().splitlines()) ^ set(table.splitlines()))
    assert not stale, "docs/security.md is stale (rerun with UPDATE_SECURITY_DOC=1); rows that differ:\n" + "\n".join(stale)



# -- the tests each route's file runs (its module names ROUTE) --------------------------------


@pytest.fixture(scope="module")
def route(request: pytest.FixtureRequest) -> str:
    return str(request.module.ROUTE)


@pytest.fixture(scope="module")
def census_found(fault_stack: FaultStack, route: str) -> dict[str, set[str]]:
    """The census runs before the cells: recording sees every call, so nothing else may run meanwhile."""
    return census(fault_stack, route)


@pytest.fixture(scope="module")
def matrix(fault_stack: FaultStack, route: str, census_found: dict[str, set[str]]) -> dict[tuple[str, str], CellResult]:
    return run_matrix(fault_stack, route)


@pytest.fixture(scope="module")
def registration(fault_stack: FaultStack, route: str) -> dict[str, RegistrationResult]:
    """The registration sequence's cells (``-k registers`` runs them alone)."""
    return run_registration(fault_stack, route)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes ``cell`` runs once per cell of its module's route."""
    if "cell" in metafunc.fixturenames:
        route_cells = cells(metafunc.module.ROUTE)
        metafunc.parametrize("cell", route_cells, ids=[cell_id(call, fault) for call, fault in route_cells])
    if "registration_fault" in metafunc.fixturenames:
        metafunc.parametrize("registration_fault", REGISTRATION_FAULTS,
                             ids=[f"event-put-{fault}".replace(" ", "-") for fault in REGISTRATION_FAULTS])


class MatrixTests:
    """The census, every cell and the doc's table, for the route of the module that subclasses this."""

    def test_census_finds_exactly_the_matrix_calls(self, route: str, census_found: dict[str, set[str]]) -> None:
        assert census_found == expected_census(route)

    def test_single_fault_on_the_callback_path_loses_nothing(
        self, route: str, matrix: dict[tuple[str, str], CellResult], cell: tuple[PathCall, str]
    ) -> None:
        call, fault = cell
        _check_cell(matrix[(call.name, fault)], documented_statuses(route))

    def test_an_answer_while_the_wait_registers_is_told_to_retry_and_a_200_is_kept(
        self, route: str, registration: dict[str, RegistrationResult], registration_fault: str
    ) -> None:
        _check_registration(registration[registration_fault], documented_statuses(route))

    def test_security_doc_lists_the_fault_matrix_as_observed(
        self, route: str, matrix: dict[tuple[str, str], CellResult], registration: dict[str, RegistrationResult]
    ) -> None:
        check_security_doc(route, [*matrix.values(), *registration.values()])
