"""``POST /callbacks/{callbackToken}`` under every single fault on its path, and 20 concurrent mixed answers
under one fault each (the machinery: tests/local/callback_faults.py).

Its own stack, so the two xdist workers share the matrix with test_callback_fault_matrix.py.
"""

from __future__ import annotations

import concurrent.futures
import random

import pytest

from tests.local.callback_faults import (  # noqa: F401 - fixtures and the parametrize hook are used by name
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
    census_found,
    completions,
    documented_statuses,
    fault_stack,
    matrix,
    pytest_generate_tests,
    route,
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
# A fixed sample of the calls × fault kinds (the full product takes minutes): every
# call under two fault kinds, every kind under three or four calls.
CONCURRENT_SAMPLE = [(call, FAULTS[(index + shift) % len(FAULTS)])
                     for index, call in enumerate(CONCURRENT_CALLS) for shift in (0, 2)]


@pytest.mark.parametrize(("call", "fault"), CONCURRENT_SAMPLE,
                         ids=[f"{c.name}-{f}".replace(" ", "-") for c, f in CONCURRENT_SAMPLE])
def test_twenty_concurrent_mixed_answers_under_one_fault_one_wins(fault_stack: FaultStack, call: PathCall,
                                                                  fault: str) -> None:
    tenant_id = fault_stack.lend_tenant()
    try:
        waiting = Waiting.start(fault_stack, CALLBACK_ROUTE, tenant_id)
        label = f"concurrent|{call.name}|{fault}|{waiting.workflow_id}"
        fault_stack.arm(call.rule(waiting.ids, fault, label))
        mix = list(MIX)
        random.Random(label).shuffle(mix)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(mix)) as pool:
            seen = list(pool.map(lambda item: waiting.post(waiting.body(item[0], f" #{item[1]}")), mix))
        outcomes = sorted(zip(mix, seen, strict=True))
        shown = "; ".join(f"{kind}{n}:{statuses}" for (kind, n), statuses in outcomes)
        winners = [(kind, n) for (kind, n), statuses in outcomes if kind != HEARTBEAT and statuses[-1] == 200]
        assert len(winners) == 1, shown
        assert all(statuses[-1] in (200, 409, 410) for _, statuses in outcomes), shown
        documented = documented_statuses(CALLBACK_ROUTE)
        assert all(s in documented for _, statuses in outcomes for s in statuses if s != "connection-error"), shown
        kind, n = winners[0]
        winner = waiting.body(kind, f" #{n}")
        final = waiting.final("COMPLETED" if kind == SUCCESS else "FAILED")
        if kind == SUCCESS:
            assert final["result"]["confirmation"] == winner["payload"]
        else:
            assert winner["error"]["message"] in final["reason"]
        arn = waiting.ids["execution-arn"]
        assert fault_stack.wait_for_execution_end(arn)["Status"] == "SUCCEEDED"
        assert fault_stack.answer_events(arn) == ["CallbackSucceeded" if kind == SUCCESS else "CallbackFailed"]
        assert completions(fault_stack, waiting.workflow_id) == 1
        assert fault_stack.hits(label) >= 1, "the fault never hit its call"
    finally:
        fault_stack.give_back(tenant_id)
