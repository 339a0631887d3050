"""The emulator's private state the local stack relies on still exists (fails loudly on a new release)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from local.durable import DurableEmulator
from local.emulator_internals import REQUIRED, EmulatorChanged, EmulatorInternals
from local.http_base import free_port


def test_the_installed_emulator_has_everything_the_restart_re_arming_uses(tmp_path: Path) -> None:
    emulator = DurableEmulator(host="127.0.0.1", port=free_port(), lambda_endpoint="http://127.0.0.1:9",
                               state_dir=tmp_path, region="us-east-1", invocation_timeout_seconds=5)
    emulator.start()
    try:
        internals = EmulatorInternals(emulator._runner)  # noqa: SLF001 - what start() itself does
        assert internals.running_executions() == []
    finally:
        emulator.stop()


def test_a_renamed_private_attribute_is_named_in_the_error() -> None:
    executor = SimpleNamespace(**{name: None for name in REQUIRED["executor"] if name != "_callback_timeouts"})
    runner = SimpleNamespace(_executor=executor, _scheduler=SimpleNamespace(create_event=None, call_later=None),
                             _store=SimpleNamespace(query=None))
    with pytest.raises(EmulatorChanged, match="_callback_timeouts"):
        EmulatorInternals(runner)
