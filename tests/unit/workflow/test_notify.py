"""The 'Workflow Waiting For Callback' event, counted at EventBridge's door (PutEvents entries).

Run through the SDK's DurableFunctionTestRunner with moto's EventBridge behind a
recording client: one event per wait, none again on replay, the same callbackUrl
from a retried submitter, and a workflow that ends FAILED when EventBridge keeps
refusing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_durable_execution_sdk_python.config import Duration
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

from shared import registry as reg
from shared.contract import callback_waiting_event
from workflow import app
from workflow.notify import NotificationFailed, publish
from tests.unit.workflow.test_app import WAIT_SECONDS, finish, runner, start  # noqa: F401 - runner is a fixture

REFUSED = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}


class RecordingEvents:
    """The real (moto) EventBridge client; every PutEvents entry is kept, and ``refuse`` decides
    whether an attempt is refused (FailedEntryCount 1, as EventBridge reports a failed entry)."""

    def __init__(self, real: Any, refuse: Callable[[int], bool] = lambda attempt: False) -> None:
        self.real = real
        self.entries: list[dict[str, Any]] = []
        self.statuses_meanwhile: list[str | None] = []
        self.refuse = refuse

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        for entry in Entries:  # what the registry says while the event is on its way
            detail = json.loads(entry["Detail"])
            record = app.registry().get_workflow(detail["tenantId"], detail["workflowId"])
            self.statuses_meanwhile.append(record.status if record else None)
        self.entries.extend(Entries)
        if self.refuse(len(self.entries)):
            return REFUSED
        return self.real.put_events(Entries=Entries)

    def details(self) -> list[dict[str, Any]]:
        return [json.loads(entry["Detail"]) for entry in self.entries]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Callable[..., RecordingEvents]:
    """Install a :class:`RecordingEvents` as the submitter's EventBridge client."""

    real = app.events_client()  # the moto client, whatever a test installs after it

    def install(refuse: Callable[[int], bool] = lambda attempt: False) -> RecordingEvents:
        recording = RecordingEvents(real, refuse)
        monkeypatch.setattr(app, "events_client", lambda: recording)
        return recording

    return install


def test_one_wait_puts_exactly_one_event_and_replays_put_none(
    runner: DurableFunctionTestRunner, events: Callable[..., RecordingEvents],  # noqa: F811
) -> None:
    recording = events()
    # GIVEN a workflow that waits, WHEN it is answered and replays through finalize and record-outcome
    arn = start(runner, "tenant-a", "wf-one-event")
    callback_id = runner.wait_for_callback(arn, timeout=WAIT_SECONDS)
    runner.send_callback_success(callback_id, json.dumps({"approved": True}).encode())
    assert finish(runner, arn)["status"] == reg.COMPLETED
    # THEN EventBridge got one entry, the contract's event, for this tenant and workflow
    (entry,) = recording.entries
    shape = callback_waiting_event()
    assert (entry["EventBusName"], entry["Source"], entry["DetailType"]) == (
        app.SETTINGS.event_bus_name, shape["source"], shape["detailType"])
    (detail,) = recording.details()
    assert (detail["tenantId"], detail["workflowId"]) == ("tenant-a", "wf-one-event")
    assert detail["callbackUrl"].startswith(f"{app.SETTINGS.callback_base_url}/callbacks/")


def test_a_retried_submitter_sends_the_same_callback_url(
    runner: DurableFunctionTestRunner, events: Callable[..., RecordingEvents],  # noqa: F811
) -> None:
    # GIVEN EventBridge refusing the first attempt (FailedEntryCount 1)
    recording = events(refuse=lambda attempt: attempt == 1)
    arn = start(runner, "tenant-a", "wf-retried-event")
    callback_id = runner.wait_for_callback(arn, timeout=WAIT_SECONDS)
    # THEN the submitter's retry put the event again, with the same callbackUrl and deadline
    # (the token is an HMAC of the tenant and the callbackId: a retry mints the same one)
    first, second = recording.details()
    assert first == second
    # AND the workflow waits on that one callback, and completes once answered
    waiting = app.registry().get_workflow("tenant-a", "wf-retried-event")
    assert waiting is not None and waiting.status == reg.WAITING_FOR_CALLBACK
    runner.send_callback_success(callback_id, b"{}")
    assert finish(runner, arn)["status"] == reg.COMPLETED
    assert len(recording.entries) == 2  # and the replays added none


def test_eventbridge_refusing_every_attempt_ends_the_workflow_failed(
    runner: DurableFunctionTestRunner, events: Callable[..., RecordingEvents],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two quick attempts instead of five over half a minute: the outcome is the same.
    monkeypatch.setattr(app, "IO_RETRY", create_retry_strategy(RetryStrategyConfig(
        max_attempts=2, initial_delay=Duration.from_seconds(1), max_delay=Duration.from_seconds(1))))
    recording = events(refuse=lambda attempt: True)
    result = finish(runner, start(runner, "tenant-a", "wf-no-events"))
    # THEN the submitter gave up: FAILED "could not register the callback", in the result and the registry
    assert (result["status"], result["reason"]) == (reg.FAILED, "could not register the callback")
    record = app.registry().get_workflow("tenant-a", "wf-no-events")
    assert record is not None and record.status == reg.FAILED
    assert len(recording.entries) == 2
    # AND the wait was never answerable: no route could have accepted an answer (a 200) meanwhile
    assert recording.statuses_meanwhile == [reg.STARTED, reg.STARTED]


def test_publish_raises_notification_failed_when_eventbridge_reports_a_failed_entry() -> None:
    class Refusing:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
            return REFUSED

    with pytest.raises(NotificationFailed, match="InternalFailure"):
        publish(Refusing(), {"Detail": "{}"})


def test_publish_returns_quietly_when_every_entry_was_accepted() -> None:
    class Accepting:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}

    publish(Accepting(), {"Detail": "{}"})


# -- the submitter's order: register, tell, then make the wait answerable -----------------------------


def test_the_wait_becomes_answerable_only_after_its_event_is_out(
    runner: DurableFunctionTestRunner, events: Callable[..., RecordingEvents],  # noqa: F811
) -> None:
    recording = events()
    arn = start(runner, "tenant-a", "wf-order")
    runner.wait_for_callback(arn, timeout=WAIT_SECONDS)
    # THEN while the event was on its way the workflow was still STARTED (its callback already registered)
    assert recording.statuses_meanwhile == [reg.STARTED]
    assert wait_until_waiting("tenant-a", "wf-order")


def wait_until_waiting(tenant_id: str, workflow_id: str) -> bool:
    """The submitter runs in the runner's thread: its last write lands moments after the callback exists."""
    import time

    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        record = app.registry().get_workflow(tenant_id, workflow_id)
        if record is not None and record.status == reg.WAITING_FOR_CALLBACK:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def claimed(tables: Any) -> str:
    """tenant-a's wf-sub, claimed by step one: what the submitter finds."""
    app.registry().claim_workflow("tenant-a", "wf-sub", "arn:test:wf-sub")
    return "wf-sub"


def test_the_submitter_registers_then_publishes_then_marks_the_wait(
    claimed: str, events: Callable[..., RecordingEvents], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    for name in ("is_waiting_for", "register_callback", "mark_waiting"):
        original = getattr(app.registry(), name)
        monkeypatch.setattr(app.registry(), name, lambda *a, _n=name, _o=original, **k: calls.append(_n) or _o(*a, **k))
    recording = events(refuse=lambda attempt: calls.append("put_events") is not None)
    app.register_and_notify("tenant-a", claimed, "cb-sub", 3600)
    assert calls == ["is_waiting_for", "register_callback", "put_events", "mark_waiting"]
    assert len(recording.entries) == 1 and app.registry().is_waiting_for("tenant-a", claimed, "cb-sub")


def test_a_retried_submitter_after_a_completed_attempt_returns_at_once_whatever_the_bus_does(
    claimed: str, events: Callable[..., RecordingEvents]
) -> None:
    # GIVEN a first attempt that did everything (only its step's checkpoint was lost)
    first = events()
    app.register_and_notify("tenant-a", claimed, "cb-sub", 3600)
    assert len(first.entries) == 1
    # WHEN the retry runs with EventBridge refusing everything, THEN it succeeds without publishing
    flaky = events(refuse=lambda attempt: True)
    app.register_and_notify("tenant-a", claimed, "cb-sub", 3600)
    assert flaky.entries == [] and app.registry().is_waiting_for("tenant-a", claimed, "cb-sub")


def test_a_retried_submitter_after_a_failed_publish_publishes_then_marks(
    claimed: str, events: Callable[..., RecordingEvents]
) -> None:
    refusing = events(refuse=lambda attempt: True)
    with pytest.raises(NotificationFailed):
        app.register_and_notify("tenant-a", claimed, "cb-sub", 3600)
    record = app.registry().get_workflow("tenant-a", claimed)
    assert record is not None and (record.status, record.callback_id) == (reg.STARTED, "cb-sub")
    assert len(refusing.entries) == 1
    accepting = events()
    app.register_and_notify("tenant-a", claimed, "cb-sub", 3600)
    assert len(accepting.entries) == 1 and app.registry().is_waiting_for("tenant-a", claimed, "cb-sub")


def test_a_submitter_never_reopens_a_workflow_that_ended(claimed: str, events: Callable[..., RecordingEvents]) -> None:
    events()
    app.registry().record_outcome("tenant-a", claimed, reg.FAILED, reason="ended meanwhile")
    with pytest.raises(app.WaitNotRegistered):
        app.register_and_notify("tenant-a", claimed, "cb-sub", 3600)
    record = app.registry().get_workflow("tenant-a", claimed)
    assert record is not None and record.status == reg.FAILED
