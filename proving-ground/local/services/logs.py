"""A small CloudWatch Logs surface: the functions' log lines, per function, queryable.

Lambda sends each line a function writes to stdout or stderr to the log group
``/aws/lambda/<function>``; CloudWatch Logs ``FilterLogEvents`` finds them again.
Locally, a worker whose environment names a logs directory (``LOCAL_LOGS_DIR``,
set by :meth:`LocalLogs.function_environment`) copies each line it writes to
that group's file (:func:`tee_function_output`, called by ``local.runtime.worker``), and
:class:`LocalLogs` answers ``FilterLogEvents`` over those files with the JSON
protocol boto3 speaks, so ``boto3.client("logs", endpoint_url=...)`` works unchanged.

Filter patterns: empty (every line), terms (every term in the line; a quoted
phrase as one term), and JSON patterns of ``$.field = "value"`` / ``!=``
comparisons joined by ``&&`` or ``||``, as CloudWatch reads structured lines.
Anything else is refused (400 ``InvalidParameterException``), never guessed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from local.services.http_base import DEFAULT_HOST, LocalHttpService, Request, Response

LOGS_DIR_ENV = "LOCAL_LOGS_DIR"
TARGET_PREFIX = "Logs_20140328."
MAX_EVENTS = 10_000

_COMPARISON = re.compile(r'^\(?\s*\$\.([A-Za-z0-9_.]+)\s*(=|!=)\s*(?:"((?:[^"\\]|\\.)*)"|([^\s()"]+))\s*\)?$')
_TERMS = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


class FilterPatternError(ValueError):
    """A filter pattern this surface does not read."""


def log_file(directory: Path, log_group: str) -> Path:
    """The file holding ``log_group``'s lines (one JSON object a line)."""
    return Path(directory) / f"{quote(log_group, safe='')}.jsonl"


def matches(pattern: str | None, message: str) -> bool:
    """Whether a log line matches a CloudWatch Logs filter pattern (the subset in the module docstring).

    Raises:
        FilterPatternError: The pattern is outside that subset.
    """
    pattern = (pattern or "").strip()
    if not pattern:
        return True
    if pattern.startswith("{"):
        if not pattern.endswith("}"):
            raise FilterPatternError(f"unbalanced JSON filter pattern: {pattern}")
        return _json_matches(pattern[1:-1].strip(), message)
    terms = [m.group(1) if m.group(1) is not None else m.group(2) for m in _TERMS.finditer(pattern)]
    return all(term.replace('\\"', '"') in message for term in terms)


def _json_matches(body: str, message: str) -> bool:
    if "&&" in body and "||" in body:
        raise FilterPatternError("mixing && and || is not supported locally")
    joiner, parts = (any, body.split("||")) if "||" in body else (all, body.split("&&"))
    comparisons = []
    for part in parts:
        match = _COMPARISON.match(part.strip())
        if not match:
            raise FilterPatternError(f"unsupported JSON filter expression: {part.strip()}")
        field, operator, quoted, bare = match.groups()
        comparisons.append((field.split("."), operator, quoted.replace('\\"', '"') if quoted is not None else bare))
    try:
        record = json.loads(message)
    except ValueError:
        return False  # CloudWatch applies JSON patterns to JSON lines only
    if not isinstance(record, dict):
        return False

    def holds(path: list[str], operator: str, wanted: str) -> bool:
        value: Any = record
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            equal = False
        else:  # JSON true/false read as the pattern writes them
            equal = (str(value).lower() if isinstance(value, bool) else str(value)) == wanted
        return equal if operator == "=" else not equal

    return joiner(holds(*comparison) for comparison in comparisons)


class _TeeStream:
    """A text stream that writes through and copies each complete line to the log file."""

    def __init__(self, stream: TextIO, sink: TextIO, lock: threading.Lock, log_stream: str) -> None:
        self._stream = stream
        self._sink = sink
        self._lock = lock
        self._log_stream = log_stream
        self._pending = ""

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            record = {"timestamp": int(time.time() * 1000), "logStreamName": self._log_stream, "message": line}
            with self._lock:
                self._sink.write(json.dumps(record) + "\n")
                self._sink.flush()
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def tee_function_output() -> None:
    """In a worker: copy each line of stdout and stderr to the function's log group file, if asked.

    Does nothing unless the environment names a logs directory (``LOCAL_LOGS_DIR``);
    the log group and stream are the ones Lambda's environment names.
    """
    directory = os.environ.get(LOGS_DIR_ENV)
    group = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
    if not directory or not group:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    sink = log_file(Path(directory), group).open("a", encoding="utf-8")
    lock = threading.Lock()
    stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
    sys.stdout = _TeeStream(sys.stdout, sink, lock, stream_name)  # type: ignore[assignment]
    sys.stderr = _TeeStream(sys.stderr, sink, lock, stream_name)  # type: ignore[assignment]


def filter_log_events(directory: Path, request: dict[str, Any]) -> dict[str, Any]:
    """``FilterLogEvents`` over the files in ``directory``.

    Raises:
        FileNotFoundError: No function has written to the log group.
        FilterPatternError: The filter pattern is outside the supported subset.
    """
    path = log_file(directory, str(request.get("logGroupName") or ""))
    start = request.get("startTime")
    end = request.get("endTime")
    pattern = request.get("filterPattern")
    matches(pattern, "")  # refuse an unsupported pattern even when the group is empty
    events = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut off by a killed worker
            stamp = record["timestamp"]
            if (start is not None and stamp < start) or (end is not None and stamp > end):
                continue
            if matches(pattern, record["message"]):
                events.append({"logStreamName": record["logStreamName"], "timestamp": stamp,
                               "message": record["message"], "ingestionTime": stamp, "eventId": str(number)})
    return {"events": events[:MAX_EVENTS], "searchedLogStreams": []}


class LocalLogs(LocalHttpService):
    """CloudWatch Logs ``FilterLogEvents`` over the functions' log files.

    Args:
        directory: Where the workers write their log groups' files.
        host: Interface to bind.
        port: Port to bind (0: any free).
    """

    name = "logs"

    def __init__(self, directory: Path, host: str = DEFAULT_HOST, port: int = 0) -> None:
        super().__init__(host, port)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def function_environment(self) -> dict[str, str]:
        """The environment that makes a function's worker write its lines here."""
        return {LOGS_DIR_ENV: str(self.directory)}

    def handle(self, request: Request) -> Response:
        target = request.header("X-Amz-Target") or ""
        if request.method != "POST" or target != f"{TARGET_PREFIX}FilterLogEvents":
            return _error(400, "UnknownOperationException", f"Unsupported operation {target or request.method}")
        try:
            body = json.loads(request.body or b"{}")
            return Response(200, {"Content-Type": "application/x-amz-json-1.1"},
                            json.dumps(filter_log_events(self.directory, body)).encode())
        except FileNotFoundError:
            return _error(400, "ResourceNotFoundException", "The specified log group does not exist.")
        except (FilterPatternError, ValueError, TypeError) as error:
            return _error(400, "InvalidParameterException", str(error))


def _error(status: int, error_type: str, message: str) -> Response:
    return Response(status, {"Content-Type": "application/x-amz-json-1.1"},
                    json.dumps({"__type": error_type, "message": message}).encode())
