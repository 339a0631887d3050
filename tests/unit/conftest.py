"""Unit-test fixtures: fake AWS credentials, moto DynamoDB tables built from the demo tenant data."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

# Set before any handler module is imported: they read settings at import time,
# exactly as on Lambda. Fake credentials and a fixed region keep boto3 offline.
TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "TENANTS_TABLE_NAME": "unit-tenants",
    "WORKFLOWS_TABLE_NAME": "unit-workflows",
    "TENANT_CACHE_TTL_SECONDS": "300",
    "POWERTOOLS_SERVICE_NAME": "tenant-durable-unit",
    "POWERTOOLS_METRICS_NAMESPACE": "TenantDurableUnit",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "CALLBACK_SIGNING_SECRET_NAME": "unit-callback-signing-key",
    "CALLBACK_BASE_URL": "https://api.example.test/v1",
    "EVENT_BUS_NAME": "unit-workflow-events",
}
# The signing key of the callback tokens (a test value; a deployment's is random, in Secrets Manager).
TEST_SIGNING_KEY = "unit-test-signing-key-not-a-secret"
for _name, _value in TEST_ENV.items():
    os.environ[_name] = _value
for _name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_LAMBDA", "AWS_PROFILE"):
    os.environ.pop(_name, None)

_MOCK = mock_aws()
_MOCK.start()


@pytest.fixture(autouse=True)
def signing_secret_and_event_bus() -> None:
    """The callback signing secret and the event bus, present for every test.

    Created per test, not at import: other suites (tests/local) run moto servers
    in this process, and moto's backends are process-wide, so what was created at
    collection time may be gone by the time a unit test runs.
    """
    secrets = boto3.client("secretsmanager")
    try:
        secrets.create_secret(Name=TEST_ENV["CALLBACK_SIGNING_SECRET_NAME"], SecretString=TEST_SIGNING_KEY)
    except secrets.exceptions.ResourceExistsException:
        pass
    events = boto3.client("events")
    try:
        events.create_event_bus(Name=TEST_ENV["EVENT_BUS_NAME"])
    except events.exceptions.ResourceAlreadyExistsException:
        pass


def create_tables() -> tuple[Any, Any]:
    """Create both tables with the key schema main.tf declares, and seed the demo tenants."""
    from scripts.terraform_tables import table_spec
    from shared.contract import demo_tenants
    from shared.tenants import tenant_item

    dynamodb = boto3.resource("dynamodb")
    tenants, workflows = (
        dynamodb.create_table(BillingMode="PAY_PER_REQUEST", **spec.create_table_arguments())
        for spec in (
            table_spec("tenants", TEST_ENV["TENANTS_TABLE_NAME"]),
            table_spec("workflows", TEST_ENV["WORKFLOWS_TABLE_NAME"]),
        )
    )
    for tenant in demo_tenants():
        tenants.put_item(Item=tenant_item(tenant))
    return tenants, workflows


@pytest.fixture
def tables() -> Iterator[tuple[Any, Any]]:
    """Fresh, seeded tables for one test."""
    tenants, workflows = create_tables()
    yield tenants, workflows
    tenants.delete()
    workflows.delete()


class JsonLogCapture:
    """Collects what a Powertools logger writes, one parsed JSON object per line."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._stream.getvalue().splitlines() if line.startswith("{")]


@pytest.fixture
def json_logs() -> Iterator[Callable[[Any], JsonLogCapture]]:
    """Point a Powertools logger at a buffer (its stream is bound at import, before capsys)."""
    restore: list[tuple[logging.StreamHandler[Any], Any]] = []

    def capture(powertools_logger: Any) -> JsonLogCapture:
        handler = powertools_logger.registered_handler
        stream = io.StringIO()
        restore.append((handler, handler.setStream(stream)))
        return JsonLogCapture(stream)

    yield capture
    for handler, previous in restore:
        handler.setStream(previous)
