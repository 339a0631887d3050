"""One execution environment: a process that imports a handler once and serves invocations.

Started by :mod:`local.runtime.workers` as ``python -m local.runtime.worker``. It talks to its parent
over two inherited pipe descriptors with length-prefixed JSON frames, so the
handler's own stdout/stderr (Powertools log lines) stay free for logs.

Frames, parent → worker: ``{"event": ..., "context": {...}, "deadline": epoch_seconds}``.
Worker → parent: first ``{"type": "ready", ...}`` (or ``init_error``), then one
``{"ok": true, "body": "<the marshalled result>"}`` / ``{"ok": false, "error": {...}}``
per invocation.

What the handler sees and what the caller gets follow the managed Python runtime
(``awslambdaric``): the result is marshalled as its encoder does (a ``Decimal`` is
written as the number it holds, ``bytes`` go out as they are); an error payload is
``{errorMessage, errorType, requestId, stackTrace}`` with ``stackTrace`` the
handler's frames only (``traceback.format_list``: no chained exceptions, no
carets); init errors carry the runtime's types (``Runtime.ImportModuleError``,
``Runtime.UserCodeSyntaxError``, ``Runtime.HandlerNotFound``,
``Runtime.MalformedHandlerName``, or the exception's own type when the module
raised while it was imported; ``requestId`` empty, as the runtime reports init
errors before any request); ``context.identity`` is a ``CognitoIdentity`` whose
fields are None and ``context.client_context`` is None, as for an Invoke without them.

The environment is bound to one tenant (``--tenant``): an invocation for another
tenant is refused and the process exits, as a PER_TENANT environment never serves
a second tenant.
"""

from __future__ import annotations

import argparse
import base64
import decimal
import importlib
import json
import math
import os
import re
import signal
import struct
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
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


class CognitoIdentity:
    """``context.identity`` as the runtime builds it: both fields None for an Invoke without Cognito."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, cognito_identity_id: str | None = None, cognito_identity_pool_id: str | None = None) -> None:
        self.cognito_identity_id = cognito_identity_id
        self.cognito_identity_pool_id = cognito_identity_pool_id

    def __repr__(self) -> str:
        return (f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
                f"cognito_identity_pool_id={self.cognito_identity_pool_id}])")


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
    identity: CognitoIdentity = field(default_factory=CognitoIdentity)
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


class InitError(Exception):
    """The handler could not be loaded; ``payload`` is what the runtime reports."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload["errorMessage"])
        self.payload = payload


def make_error(message: str, error_type: str, stack_trace: list[str] | None, request_id: str = "") -> dict[str, Any]:
    """The runtime's error payload (awslambdaric ``make_error``)."""
    return {"errorMessage": message or "", "errorType": error_type or "", "requestId": request_id,
            "stackTrace": stack_trace or []}


def _frames(exc: BaseException) -> list[str]:
    """The exception's own frames, from the first one outside this module (the runtime drops its bootstrap)."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = os.path.abspath(__file__)
    index = next((i for i, frame in enumerate(frames) if os.path.abspath(frame.filename) != own), len(frames))
    return traceback.format_list(frames[index:])


def _error(exc: BaseException, error_type: str | None = None, request_id: str = "") -> dict[str, Any]:
    return make_error(str(exc), error_type or type(exc).__name__, _frames(exc), request_id)


def _load_handler(spec: str) -> Callable[[Any, Any], Any]:
    """Import the handler as the runtime does; :class:`InitError` with the runtime's error types."""
    try:
        module_name, attribute = spec.rsplit(".", 1)
    except ValueError as exc:
        raise InitError(make_error(f"Bad handler '{spec}': {exc}", "Runtime.MalformedHandlerName", None)) from None
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise InitError(make_error(f"Cannot use built-in module {module_name} as a handler module",
                                       "Runtime.BuiltInModuleConflict", None))
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise InitError(make_error(f"Unable to import module '{module_name}': {exc}",
                                   "Runtime.ImportModuleError", None)) from None
    except SyntaxError as exc:
        trace = ['  File "%s" Line %s\n    %s' % (exc.filename, exc.lineno, exc.text)]
        raise InitError(make_error(f"Syntax error in module '{module_name}': {exc}",
                                   "Runtime.UserCodeSyntaxError", trace)) from None
    except InitError:
        raise
    except Exception as exc:  # noqa: BLE001 - the module raised while imported: its own type, as the runtime
        raise InitError(_error(exc)) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise InitError(make_error(f"Handler '{attribute}' missing on module '{module_name}'",
                                   "Runtime.HandlerNotFound", None)) from None


_DECIMAL_MARK = f"\x00decimal-{uuid.uuid4().hex}:"
_DECIMAL_TEXT = re.compile(r'"\\u0000decimal-%s:([^"]*)"' % _DECIMAL_MARK[len("\x00decimal-"):-1])


def _json_default(obj: Any) -> Any:
    if isinstance(obj, decimal.Decimal):
        # awslambdaric writes a Decimal as the number it holds (simplejson RawJSON), NaN as NaN.
        return math.nan if obj.is_nan() else f"{_DECIMAL_MARK}{obj}"
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def marshal_response(result: Any) -> tuple[str, bool]:
    """The response body as the runtime marshals it; ``(text, False)``, or ``(base64, True)`` for bytes.

    Raises:
        TypeError: The result holds something JSON cannot carry (``ValueError`` for a circular one).
    """
    if isinstance(result, bytes):
        return base64.b64encode(result).decode(), True
    return _DECIMAL_TEXT.sub(r"\1", json.dumps(result, default=_json_default)), False


def serve(handler_spec: str, tenant_id: str | None, fd_in: int, fd_out: int) -> int:
    """Import the handler, then answer invocations until the parent closes the pipe."""
    identity = {"pid": os.getpid(), "tmpdir": tempfile.gettempdir()}
    try:
        handler = _load_handler(handler_spec)
    except InitError as error:  # reported to the caller as Lambda does
        write_frame(fd_out, {"type": "init_error", "error": error.payload, **identity})
        return 1
    write_frame(fd_out, {"type": "ready", **identity})

    while (request := read_frame(fd_in)) is not None:
        context = LocalLambdaContext(**request["context"], deadline=request["deadline"])
        request_id = context.aws_request_id
        if context.tenant_id != tenant_id:
            message = (
                f"environment bound to tenant {tenant_id!r} refused an invocation for "
                f"tenant {context.tenant_id!r}"
            )
            print(f"[local.runtime.worker] FATAL {message}", file=sys.stderr, flush=True)
            write_frame(fd_out, {"ok": False, "fatal": True,
                                 "error": make_error(message, "Runtime.TenantMismatch", None, request_id)})
            return 2
        try:
            result = handler(request["event"], context)
        except SystemExit as exc:
            write_frame(fd_out, {"ok": False, "fatal": True, "error": _error(exc, "Runtime.ExitError", request_id)})
            return 1
        except Exception as exc:  # noqa: BLE001 - the handler's error is the invocation's error
            frame = {"ok": False, "error": _error(exc, request_id=request_id)}
        else:
            try:
                body, binary = marshal_response(result)
                frame = {"ok": True, "body": body, "binary": binary}
            except (TypeError, ValueError) as exc:  # as the runtime: a FaultException without a trace
                frame = {"ok": False, "error": make_error(f"Unable to marshal response: {exc}",
                                                          "Runtime.MarshalError", None, request_id)}
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
    # One write per log line (print() writes the text and the newline apart when unbuffered):
    # environments share the stack's output, and their JSON log lines must not interleave.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True, write_through=False)  # type: ignore[union-attr]
    if os.environ.get("LOCAL_LOGS_DIR"):  # a local logs surface keeps this function's lines (proving-ground/local/services/logs.py)
        from local.services.logs import tee_function_output

        tee_function_output()
    return serve(args.handler, args.tenant, args.fd_in, args.fd_out)


if __name__ == "__main__":
    sys.exit(main())
