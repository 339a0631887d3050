"""Read what the durable emulator recorded about an execution, straight from its sqlite store.

The emulator keeps, per execution, the start and end of every handler invocation
it made (``InvocationCompletions``, epoch milliseconds) and every durable operation
with its checkpointed payloads. Its public history API leaves the invocation
times out, so the benchmark reads the store (read-only) for them.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

DB_FILE = "durable-executions.db"
_PAYLOAD_KEYS = {"ExecutionDetails": ("InputPayload",), "StepDetails": ("Result",), "ContextDetails": ("Result",),
                 "CallbackDetails": ("Result",), "WaitDetails": (), "ChainedInvokeDetails": ("Result",)}


def load_executions(state_dir: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """The stored execution JSON of each execution named in ``names`` (missing ones are left out)."""
    connection = sqlite3.connect(f"file:{Path(state_dir) / DB_FILE}?mode=ro", uri=True, timeout=30)
    try:
        found: dict[str, dict[str, Any]] = {}
        for name in names:
            row = connection.execute("SELECT data FROM executions WHERE execution_name = ?", (name,)).fetchone()
            if row:
                found[name] = json.loads(row[0])
        return found
    finally:
        connection.close()


def invocation_durations_ms(execution: dict[str, Any]) -> list[float]:
    """How long each handler invocation took, as the emulator timed its Invoke call."""
    return [float(item["EndTimestamp"] - item["StartTimestamp"]) for item in execution.get("InvocationCompletions", [])]


def durable_operations(execution: dict[str, Any]) -> int:
    """Checkpointed operations, the execution itself included (steps, callbacks, contexts, waits)."""
    return len(execution.get("Operations", []))


def data_written_bytes(execution: dict[str, Any]) -> int:
    """Bytes of checkpointed payloads: the input, every operation result, and the execution's result."""
    total = 0
    for operation in execution.get("Operations", []):
        for details_key, fields in _PAYLOAD_KEYS.items():
            details = operation.get(details_key) or {}
            total += sum(len(str(details[field]).encode()) for field in fields if details.get(field))
    result = execution.get("Result")
    if isinstance(result, dict):
        result = result.get("Result") or result.get("Payload")
    if isinstance(result, str):
        total += len(result.encode())
    return total
