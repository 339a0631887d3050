"""``POST /callbacks/{callbackToken}`` under every single fault on its path, and 20 concurrent mixed answers
under one fault each (the machinery: machinery.py beside it).

Its own stack, so the two xdist workers share the matrix with test_fault_matrix_callback_route.py.
"""

from __future__ import annotations

import concurrent.futures
import random
from dataclasses import dataclass
from typing import Any

import pytest

from tests.local.callback_fault_matrix.machinery import (
    CALLBACK_ROUTE,
    FAILURE,
    FAULTS,
    HEARTBEAT,
    ROUTES,
    SUCCESS,
    TOKEN_ROUTE,
    FaultStack,
    MatrixTests,
    PathCall,
    Waiting,
    completions,
    documented_statuses,
)

pytestmark = pytest.mark.slow
ROUTE = TOKEN_ROUTE


class TestTokenRouteFaultMatrix(MatrixTests):
    """Census, cells and doc table of ``POST /callbacks/{callbackToken}``."""


# -- 20 concurrent answers on one callbackId, under one fault --------------------------------------

MIX = [(SUCCESS, n) for n in range(8)] + [(FAILURE, n) for n in range(6)] + [(HEARTBEAT, n) for n in range(6)]
# Whichever answer takes the lease makes the durable call: one rule for any of them.
DURABLE_ANSWER = PathCall("durable answer call", "durable", "*", "callback-id")
# The api-side calls every one of the 20 requests may make (the workflow's are the
# matrix's business; the detours need a precondition of their own).
CONCURRENT_CALLS = [DURABLE_ANSWER] + [
    call for call in ROUTES[CALLBACK_ROUTE]
    if call.caller != "workflow" and call.precondition is None and not call.target == "durable"
]
# A fixed sample of the calls × fault kinds (the full product takes minutes of
# make test's budget): the durable call, where the answers race, under every
# fault kind; every other call under one, the kinds rotating along the path.
CONCURRENT_SAMPLE = [(DURABLE_ANSWER, fault) for fault in FAULTS] + [
    (call, FAULTS[index % len(FAULTS)]) for index, call in enumerate(CONCURRENT_CALLS[1:])]


# Runs at once: each posts its 20 answers together, on a tenant of its own.
CONCURRENT_RUNS_AT_ONCE = 4


@dataclass
class ConcurrentRun:
    """What one run of 20 concurrent answers under one fault saw, and how its workflow ended."""

    outcomes: list[tuple[tuple[str, int], list[int | str]]]  # ((kind, n), every status its client saw), sorted
    winner: dict[str, Any] | None
    winner_kind: str | None
    final: dict[str, Any] | None
    execution_status: str | None
    answer_events: list[str]
    completions: int
    hits: int

    def shown(self) -> str:
        return "; ".join(f"{kind}{n}:{statuses}" for (kind, n), statuses in self.outcomes)


def run_concurrent(stack: FaultStack, call: PathCall, fault: str) -> ConcurrentRun:
    """20 mixed answers on one callbackId at once, with one fault rule aimed at ``call``."""
    tenant_id = stack.lend_tenant()
    try:
        waiting = Waiting.start(stack, CALLBACK_ROUTE, tenant_id)
        label = f"concurrent|{call.name}|{fault}|{waiting.workflow_id}"
        stack.arm(call.rule(waiting.ids, fault, label))
        mix = list(MIX)
        random.Random(label).shuffle(mix)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(mix)) as pool:
            seen = list(pool.map(lambda item: waiting.post(waiting.body(item[0], f" #{item[1]}")), mix))
        outcomes = sorted(zip(mix, seen, strict=True))
        winners = [(kind, n) for (kind, n), statuses in outcomes if kind != HEARTBEAT and statuses[-1] == 200]
        if len(winners) != 1:
            return ConcurrentRun(outcomes, None, None, None, None, [], completions(stack, waiting.workflow_id),
                                 stack.hits(label))
        kind, n = winners[0]
        final = waiting.final("COMPLETED" if kind == SUCCESS else "FAILED")
        arn = waiting.ids["execution-arn"]
        return ConcurrentRun(outcomes, waiting.body(kind, f" #{n}"), kind, final,
                             stack.wait_for_execution_end(arn)["Status"], stack.answer_events(arn),
                             completions(stack, waiting.workflow_id), stack.hits(label))
    finally:
        stack.give_back(tenant_id)


@pytest.fixture(scope="module")
def concurrent_runs(fault_stack: FaultStack) -> dict[tuple[str, str], ConcurrentRun]:
    """Every run of the sample, ``CONCURRENT_RUNS_AT_ONCE`` at a time (after the matrix: its tenants are free)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENT_RUNS_AT_ONCE) as pool:
        futures = {(call.name, fault): pool.submit(run_concurrent, fault_stack, call, fault)
                   for call, fault in CONCURRENT_SAMPLE}
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize(("call", "fault"), CONCURRENT_SAMPLE,
                         ids=[f"{c.name}-{f}".replace(" ", "-") for c, f in CONCURRENT_SAMPLE])
def test_twenty_concurrent_mixed_answers_under_one_fault_one_wins(
    concurrent_runs: dict[tuple[str, str], ConcurrentRun], call: PathCall, fault: str
) -> None:
    run = concurrent_runs[(call.name, fault)]
    shown = run.shown()
    assert run.winner is not None, f"not exactly one answer won: {shown}"
    assert all(statuses[-1] in (200, 409, 410) for _, statuses in run.outcomes), shown
    documented = documented_statuses(CALLBACK_ROUTE)
    assert all(s in documented for _, statuses in run.outcomes for s in statuses if s != "connection-error"), shown
    assert run.final is not None
    if run.winner_kind == SUCCESS:
        assert run.final["result"]["confirmation"] == run.winner["payload"]
    else:
        assert run.winner["error"]["message"] in run.final["reason"]
    assert run.execution_status == "SUCCEEDED"
    assert run.answer_events == ["CallbackSucceeded" if run.winner_kind == SUCCESS else "CallbackFailed"]
    assert run.completions == 1
    assert run.hits >= 1, "the fault never hit its call"
