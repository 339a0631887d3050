"""The failure answer's digest comparison runs locally (the machinery: machinery.py beside it).

When the durable service says a callback no longer waits, ``POST /callback`` asks
the execution's history which answer landed, and compares that answer's digest
with its own (``src/api/reconcile.py``, ``src/api/delivery.py``). The history
gives a digest only when ``Error.Truncated`` is false; the emulator marked every
``CallbackFailed`` error truncated, so locally the lease decided instead and a
different failure answer of the same kind passed for the one that landed. The
adapter fixes ``Truncated`` (docs/emulator-differences.md, difference 5); these
cells prove the comparison now runs:

* two different failure answers race: the first lands and its api environment is
  killed right after, so nothing is settled; the workflow's own registry write
  gives up, so the registry still says the workflow waits and the second answer
  goes through the lease to the durable call and the history: it gets 409, and
  the callback is settled with the digest the history gave (the landed answer's);
* the same failure answer, retried after the same kill, gets 200.
"""

from __future__ import annotations

from typing import Any

import pytest

from api.callbacks import failure_digest
from local.testing.faults import FAILS_EVERY_ATTEMPT, KILLED_AFTER, fault_rule
from tests.local.callback_fault_matrix.machinery import (
    CALLBACK_ROUTE,
    FAILURE,
    ROUTES,
    FaultStack,
    Waiting,
    documented_statuses,
)

pytestmark = pytest.mark.slow
RECORD_FAILURE_WRITE = next(call for call in ROUTES[CALLBACK_ROUTE] if call.name == "record-failure write")


def _race(stack: FaultStack, retry_tag: str) -> tuple[Waiting, dict[str, Any], list[int | str], list[int | str]]:
    """A failure answer lands and its api environment dies; then an answer tagged ``retry_tag`` is sent.

    Returns:
        The workflow, the first answer, every status its one request saw, every status the second saw.
    """
    tenant_id = stack.lend_tenant()
    try:
        waiting = Waiting.start(stack, CALLBACK_ROUTE, tenant_id)
        ids, label = waiting.ids, f"failure digest|{retry_tag}|{waiting.workflow_id}"
        first = waiting.body(FAILURE, " (first)")
        # The workflow's FAILED write gives up: the registry keeps saying the workflow waits.
        stack.arm(RECORD_FAILURE_WRITE.rule(ids, FAILS_EVERY_ATTEMPT, label + "|registry"))
        # The first answer lands, then its api environment is killed before it settles anything.
        stack.arm(fault_rule(KILLED_AFTER, target="durable", operation="SendDurableExecutionCallbackFailure",
                             body_contains=[ids["callback-id"], first["error"]["message"]], label=label))
        first_seen = waiting.stack.process.http.post(
            f"{stack.process.api_url}/callback", json={"callbackId": waiting.callback_id, **first},
            headers=stack.process.headers(tenant_id), timeout=60).status_code
        assert stack.hits(label) == 1, "the first answer's durable call was never cut: the cell would prove nothing"
        second = first if retry_tag == "(first)" else waiting.body(FAILURE, f" {retry_tag}")
        return waiting, first, [first_seen], waiting.post(second)
    finally:
        stack.give_back(tenant_id)


def _settled_digest(stack: FaultStack, waiting: Waiting) -> str | None:
    item = stack.registry.get_item(Key={"tenantId": waiting.tenant_id, "recordId": waiting.ids["callback-key"]},
                                   ConsistentRead=True)["Item"]
    return item.get("settledDigest")


def _check_the_execution_kept_the_first_answer(stack: FaultStack, waiting: Waiting, seen: list[int | str]) -> None:
    undocumented = [s for s in seen if s != "connection-error" and s not in documented_statuses(CALLBACK_ROUTE)]
    assert not undocumented, f"statuses the README does not document: {seen}"
    assert stack.wait_for_execution_end(waiting.ids["execution-arn"])["Status"] == "SUCCEEDED"
    assert stack.answer_events(waiting.ids["execution-arn"]) == ["CallbackFailed"]


def test_a_different_failure_answer_after_one_landed_gets_409_by_the_historys_digest(fault_stack: FaultStack) -> None:
    waiting, first, _, second_seen = _race(fault_stack, "(the loser)")

    assert second_seen[-1] == 409, f"the losing failure answer was told it won: {second_seen}"
    _check_the_execution_kept_the_first_answer(fault_stack, waiting, second_seen)
    # Settled from the history's digest: with every failure marked truncated there was none to settle with.
    assert _settled_digest(fault_stack, waiting) == failure_digest(first["error"]["type"], first["error"]["message"])


def test_the_same_failure_answer_retried_after_its_holder_died_gets_200(fault_stack: FaultStack) -> None:
    waiting, first, first_seen, retry_seen = _race(fault_stack, "(first)")

    assert first_seen[-1] >= 500, f"the killed holder's request should have failed: {first_seen}"
    assert retry_seen[-1] == 200, f"the retry of the answer that landed was refused: {retry_seen}"
    _check_the_execution_kept_the_first_answer(fault_stack, waiting, retry_seen)
    assert _settled_digest(fault_stack, waiting) == failure_digest(first["error"]["type"], first["error"]["message"])
