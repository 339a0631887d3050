"""Test doubles shared by the unit tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeLambdaContext:
    """The attributes Powertools and the handlers read from a Lambda context (a new request id each)."""

    function_name: str = "tenant-durable-unit"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tenant-durable-unit"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_millis: int = 10_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


def register_waiting(registry: Any, tenant_id: str, workflow_id: str, callback_id: str, timeout_seconds: int, *,
                     token_hash: str | None = None) -> int:
    """A workflow waiting for ``callback_id`` as the submitter leaves it: claimed (unless it is), registered,
    then made answerable. Returns the callback's deadline."""
    if registry.get_workflow(tenant_id, workflow_id) is None:
        assert registry.claim_workflow(tenant_id, workflow_id, f"arn:test:execution:{tenant_id}:{workflow_id}")
    deadline = registry.register_callback(tenant_id, workflow_id, callback_id, timeout_seconds, token_hash=token_hash)
    assert registry.mark_waiting(tenant_id, workflow_id, callback_id)
    return int(deadline)
