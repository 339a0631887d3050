"""GET converges on the execution's real state within a bounded time, and asks the durable service sparingly."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from api import app
from api.reconcile import STALE_AFTER_SECONDS
from shared import registry as reg
from tests.unit.api.test_app import CALLBACK_ID, CALLBACK_URL, EXECUTION_ARN, RUNNING, durable, get_status  # noqa: F401 - fixture
from tests.unit.fakes import register_waiting

COMPLETED_EXECUTION = {**RUNNING, "Status": "SUCCEEDED",
                       "Result": json.dumps({"workflowId": "wf-a", "status": reg.COMPLETED, "confirmation": {"ok": True}})}


@pytest.fixture
def stale_waiting(tables: Any) -> str:
    """tenant-a's wf-a started waiting STALE_AFTER_SECONDS + 1 s ago; nothing has touched its item since.

    As after a registry outage: the callback was delivered, but the workflow's own
    final write failed, so the registry still says it waits.
    """
    past = reg.WorkflowRegistry(app.REGISTRY._table, 3600, clock=lambda: time.time() - STALE_AFTER_SECONDS - 1)  # noqa: SLF001
    past.claim_workflow("tenant-a", "wf-a", EXECUTION_ARN)
    register_waiting(past, "tenant-a", "wf-a", CALLBACK_ID, timeout_seconds=86_400)
    return "wf-a"


@pytest.fixture
def execution_reads(durable: Stubber, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ARNs of every GetDurableExecution the api function made (a call the Stubber
    has no answer for raises a BotoCoreError, which a read swallows: count them instead)."""
    calls: list[str] = []
    original = app.LAMBDA_CLIENT.get_durable_execution

    def counted(**kwargs: Any) -> Any:
        calls.append(kwargs["DurableExecutionArn"])
        return original(**kwargs)

    monkeypatch.setattr(app.LAMBDA_CLIENT, "get_durable_execution", counted)
    return calls


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The api function's clock (GET's 'now') moves ``seconds`` ahead."""
    monkeypatch.setattr(app, "time", SimpleNamespace(time=lambda: time.time() + seconds))


def test_a_stale_waiting_workflow_whose_execution_ended_is_repaired_on_read(stale_waiting: str, durable: Stubber) -> None:
    durable.add_response("get_durable_execution", COMPLETED_EXECUTION)
    status, body = get_status(stale_waiting)
    assert status == 200 and body["status"] == reg.COMPLETED and body["result"]["confirmation"] == {"ok": True}
    record = app.REGISTRY.get_workflow("tenant-a", "wf-a")
    assert record is not None and record.status == reg.COMPLETED


def test_a_busy_poller_asks_the_service_once_per_interval(
    stale_waiting: str, durable: Stubber, monkeypatch: pytest.MonkeyPatch, execution_reads: list[str]
) -> None:
    # GIVEN the execution still runs: the first read checks it ...
    durable.add_response("get_durable_execution", RUNNING)
    assert get_status(stale_waiting)[1]["status"] == reg.WAITING_FOR_CALLBACK
    assert len(execution_reads) == 1
    # ... and the reads after it within the interval do not
    for _ in range(5):
        assert get_status(stale_waiting)[1]["status"] == reg.WAITING_FOR_CALLBACK
    assert len(execution_reads) == 1
    # WHEN the interval has passed, THEN the next read checks again, and converges
    later(monkeypatch, STALE_AFTER_SECONDS + 1)
    durable.add_response("get_durable_execution", COMPLETED_EXECUTION)
    assert get_status(stale_waiting)[1]["status"] == reg.COMPLETED
    assert len(execution_reads) == 2


def test_a_fresh_waiting_workflow_is_not_checked(tables: Any, durable: Stubber, execution_reads: list[str]) -> None:
    app.REGISTRY.claim_workflow("tenant-a", "wf-a", EXECUTION_ARN)
    register_waiting(app.REGISTRY, "tenant-a", "wf-a", CALLBACK_ID, timeout_seconds=86_400)
    assert get_status("wf-a")[1]["status"] == reg.WAITING_FOR_CALLBACK
    assert execution_reads == []


def test_read_after_an_answer_repairs_a_registry_the_workflow_could_not_update(stale_waiting: str, durable: Stubber) -> None:
    # GIVEN the callback was delivered but finalize never reached the registry
    result = {"workflowId": "wf-a", "status": reg.COMPLETED, "confirmation": {"approved": True}}
    durable.add_response("get_durable_execution", {**RUNNING, "Status": "SUCCEEDED", "Result": json.dumps(result)})
    # WHEN the tenant reads the workflow, THEN it sees the execution's real state, and the registry now holds it
    status, body = get_status(stale_waiting)
    assert status == 200 and body["status"] == reg.COMPLETED and body["result"]["confirmation"] == {"approved": True}
    record = app.REGISTRY.get_workflow("tenant-a", "wf-a")
    assert record is not None and record.status == reg.COMPLETED


def test_read_serves_the_registry_view_when_the_execution_cannot_be_read(stale_waiting: str, durable: Stubber) -> None:
    durable.add_client_error("get_durable_execution", service_error_code="TooManyRequestsException")
    assert get_status(stale_waiting) == (200, {"workflowId": "wf-a", "status": reg.WAITING_FOR_CALLBACK,
                                               "callbackId": CALLBACK_ID, "callbackUrl": CALLBACK_URL})


def test_the_check_happens_even_when_the_registry_refuses_the_note(
    stale_waiting: str, durable: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the registry refuses writes (the outage that left it stale), reads still work
    def refused(*_: Any, **__: Any) -> bool:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}}, "UpdateItem")

    monkeypatch.setattr(app.REGISTRY, "claim_repair_check", refused)
    monkeypatch.setattr(app.REGISTRY, "record_outcome", refused)
    durable.add_response("get_durable_execution", COMPLETED_EXECUTION)
    # WHEN the tenant reads the workflow, THEN it sees the execution's real state (repaired in the answer only)
    assert get_status(stale_waiting)[1]["status"] == reg.COMPLETED


def test_an_unreadable_execution_serves_the_registry_view(stale_waiting: str, durable: Stubber) -> None:
    durable.add_client_error("get_durable_execution", service_error_code="TooManyRequestsException")
    assert get_status(stale_waiting)[1]["status"] == reg.WAITING_FOR_CALLBACK
