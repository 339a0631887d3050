"""Test doubles shared by the unit tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str = "tenant-durable-unit"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tenant-durable-unit"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
