"""Test doubles shared by the unit tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


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
