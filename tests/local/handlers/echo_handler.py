"""A tiny handler for the worker-pool tests: reports where it ran, and misbehaves on request."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("crash"):
        os._exit(3)
    if event.get("raise"):
        raise ValueError(event["raise"])
    if event.get("write"):
        Path(tempfile.gettempdir(), event["write"]).write_text(context.tenant_id or "-")
    return {
        "pid": os.getpid(),
        "tmpdir": tempfile.gettempdir(),
        "files": sorted(os.listdir(tempfile.gettempdir())),
        "tenant": context.tenant_id,
        "environmentId": os.environ.get("LOCAL_LAMBDA_ENVIRONMENT_ID"),
        "remainingMs": context.get_remaining_time_in_millis(),
    }
