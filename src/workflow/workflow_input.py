"""Parse the workflow function's input event: pure, deterministic on replay."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from shared.contract import is_valid_workflow_id


@dataclass(frozen=True)
class StartEvent:
    """What the start route hands the workflow function."""

    workflow_id: str
    request: Any


def workflow_id_from_execution_arn(execution_arn: str) -> str:
    """Derive a workflow id when the caller sent none (direct ``Invoke``).

    Lambda's execution ARNs read ``...:function:NAME:QUALIFIER/durable-execution/EXECUTION_NAME/ID``;
    the execution name is the workflow id. Anything else is hashed to a stable id.
    """
    marker = "/durable-execution/"
    if marker in execution_arn:
        name = execution_arn.split(marker, 1)[1].split("/", 1)[0]
        if is_valid_workflow_id(name):
            return name
    return hashlib.sha256(execution_arn.encode("utf-8")).hexdigest()[:32]


def parse_start_event(event: Any, execution_arn: str) -> StartEvent:
    """Read ``{"workflowId": ..., "request": {...}}``.

    A missing or malformed workflow id falls back to one derived from the
    execution ARN, so a direct invoke still gets a stable id. The request is
    passed on untouched: validating it is step one's job, where a rejection is
    recorded rather than lost.
    """
    payload = event if isinstance(event, dict) else {}
    workflow_id = payload.get("workflowId")
    if not is_valid_workflow_id(workflow_id):
        workflow_id = workflow_id_from_execution_arn(execution_arn)
    return StartEvent(workflow_id=str(workflow_id), request=payload.get("request"))
