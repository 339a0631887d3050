"""End-to-end fixtures: the local stack as a subprocess on free loopback ports.

One stack serves the whole session (``stack``); ``stack.restart()`` stops it and
starts it again on the same ports with the same state directory, as a user would
stop and rerun ``make run``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.harness import StackProcess, wait_until


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    """``wait_until(predicate, timeout, message)``: bounded polling for the tests."""
    return wait_until


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """The local stack, started once for the session and stopped at its end."""
    base = tmp_path_factory.mktemp("local-stack")
    process = StackProcess(base / "state", base / "stack.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def faulty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """A stack of its own (per test module) whose functions reach DynamoDB, EventBridge, SQS and the
    durable service through the fault proxy (``--fault-injection``)."""
    base = tmp_path_factory.mktemp("fault-stack")
    process = StackProcess(base / "state", base / "stack.log", extra_args=["--fault-injection", "--log-level", "INFO"])
    process.start()
    yield process
    process.stop()
