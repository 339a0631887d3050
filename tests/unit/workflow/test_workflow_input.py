"""Parsing the workflow function's input event."""

from __future__ import annotations

from workflow.workflow_input import parse_start_event, workflow_id_from_execution_arn

ARN = "arn:aws:lambda:us-east-1:123456789012:function:wf:live/durable-execution/req-123/abc"


def test_workflow_id_and_request_come_from_the_payload() -> None:
    start = parse_start_event({"workflowId": "wf-1", "request": {"amount": 1}}, ARN)
    assert (start.workflow_id, start.request) == ("wf-1", {"amount": 1})


def test_missing_workflow_id_falls_back_to_execution_name() -> None:
    assert parse_start_event({"request": {}}, ARN).workflow_id == "req-123"


def test_malformed_workflow_id_and_odd_arns_get_a_stable_hash() -> None:
    first = parse_start_event({"workflowId": "../../etc"}, "local-arn/1")
    assert first.workflow_id == workflow_id_from_execution_arn("local-arn/1")
    assert len(first.workflow_id) == 32
    assert parse_start_event("not a dict", "local-arn/1").request is None
