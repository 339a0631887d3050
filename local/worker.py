"""One execution environment: a process that imports a handler once and serves invocations.

Started by :mod:`local.workers` as ``python -m local.worker``. It talks to its parent
over two inherited pipe descriptors with length-prefixed JSON frames, so the
handler's own stdout/stderr (Powertools log lines) stay free for logs.

Frames, parent → worker: ``{"event": ..., "context": {...}, "deadline": epoch_seconds}``.
Worker → parent: first ``{"type": "ready", ...}`` (or ``init_error``), then one
``{"ok": true, "result": ...}`` / ``{"ok": false, "error": {...}}`` per invocation.

The environment is bound to one tenant (``--tenant``): an invocation for another
tenant is refused and the process exits, as a PER_TENANT environment never serves
a second tenant.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import struct
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

_HEADER = struct.Struct(">I")


def write_frame(fd: int, payload: dict[str, Any]) -> None:
    """Write one length-prefixed JSON frame to ``fd``."""
    data = json.dumps(payload).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exact(fd: int, size: int) -> bytes | None:
    """Read exactly ``size`` bytes; ``None`` at end of file."""
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> dict[str, Any] | None:
    """Read one frame; ``None`` when the other side closed the pipe."""
    header = read_exact(fd, _HEADER.size)
    if header is None:
        return None
    body = read_exact(fd, _HEADER.unpack(header)[0])
    return None if body is None else json.loads(body)


@dataclass
class LocalLambdaContext:
    """The Lambda context object handed to the handler (same attributes as Lambda's)."""

    aws_request_id: str
    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    log_group_name: str
    log_stream_name: str
    tenant_id: str | None
    deadline: float
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_exception(exc)[1:],
    }


def _load_handler(spec: str) -> Callable[[Any, Any], Any]:
    module_name, _, attribute = spec.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def serve(handler_spec: str, tenant_id: str | None, fd_in: int, fd_out: int) -> int:
    """Import the handler, then answer invocations until the parent closes the pipe."""
    identity = {"pid": os.getpid(), "tmpdir": tempfile.gettempdir()}
    try:
        handler = _load_handler(handler_spec)
    except Exception as exc:  # noqa: BLE001 - reported to the caller as Lambda does
        write_frame(fd_out, {"type": "init_error", "error": _error(exc, "Runtime.ImportModuleError"), **identity})
        return 1
    write_frame(fd_out, {"type": "ready", **identity})

    while (request := read_frame(fd_in)) is not None:
        context = LocalLambdaContext(**request["context"], deadline=request["deadline"])
        if context.tenant_id != tenant_id:
            message = (
                f"environment bound to tenant {tenant_id!r} refused an invocation for "
                f"tenant {context.tenant_id!r}"
            )
            print(f"[local.worker] FATAL {message}", file=sys.stderr, flush=True)
            write_frame(fd_out, {"ok": False, "fatal": True, "error": _error(RuntimeError(message), "Runtime.TenantMismatch")})
            return 2
        try:
            result = handler(request["event"], context)
        except SystemExit as exc:
            write_frame(fd_out, {"ok": False, "fatal": True, "error": _error(exc, "Runtime.ExitError")})
            return 1
        except Exception as exc:  # noqa: BLE001 - the handler's error is the invocation's error
            frame = {"ok": False, "error": _error(exc)}
        else:
            try:
                json.dumps(result)  # a result Lambda cannot serialize is an error, as in Lambda
                frame = {"ok": True, "result": result}
            except (TypeError, ValueError) as exc:
                frame = {"ok": False, "error": _error(exc, "Runtime.MarshalError")}
        write_frame(fd_out, frame)
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handler", required=True, help="module.attribute of the handler")
    parser.add_argument("--tenant", default=None, help="tenant this environment is bound to")
    parser.add_argument("--fd-in", type=int, required=True)
    parser.add_argument("--fd-out", type=int, required=True)
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group; the local Lambda service decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return serve(args.handler, args.tenant, args.fd_in, args.fd_out)


if __name__ == "__main__":
    sys.exit(main())
