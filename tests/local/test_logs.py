"""The local logs surface (proving-ground/local/services/logs.py): filter patterns, the workers' tee, FilterLogEvents through boto3."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from local.services.logs import FilterPatternError, LocalLogs, _TeeStream, log_file, matches

JSON_LINE = json.dumps({"level": "INFO", "message": "Greeting step started for: ab12",
                        "executionArn": 'arn:aws:lambda:x/durable-execution/a"b/1', "attempt": 1, "ok": True})


@pytest.mark.parametrize(("pattern", "line", "expected"), [
    (None, "anything", True),
    ("", "anything", True),
    ("ERROR", "[ERROR] boom", True),
    ("ERROR", "all fine", False),
    ("step started", "Greeting step started", True),  # every term, anywhere
    ('"step started"', "started step", False),  # a quoted phrase is one term
    ('{ $.level = "INFO" }', JSON_LINE, True),
    ('{ $.level = "ERROR" }', JSON_LINE, False),
    ('{ $.level != "ERROR" }', JSON_LINE, True),
    ('{ ($.executionArn = "arn:aws:lambda:x/durable-execution/a\\"b/1") || ($.other = "x") }', JSON_LINE, True),
    ('{ ($.executionArn = "another") || ($.durableExecutionArn = "another") }', JSON_LINE, False),
    ('{ ($.level = "INFO") && ($.attempt = 1) }', JSON_LINE, True),
    ('{ $.ok = true }', JSON_LINE, True),
    ('{ $.level = "INFO" }', "not json", False),  # JSON patterns match JSON lines only
    ('{ $.level = "INFO" }', '["a list"]', False),
])
def test_filter_patterns(pattern: str | None, line: str, expected: bool) -> None:
    assert matches(pattern, line) is expected


@pytest.mark.parametrize("pattern", ['{ $.level = "INFO"', '{ ($.a = 1) && ($.b = 2) || ($.c = 3) }',
                                     '{ $.a > 1 }'])
def test_unsupported_patterns_are_refused_not_guessed(pattern: str) -> None:
    with pytest.raises(FilterPatternError):
        matches(pattern, JSON_LINE)


def test_the_tee_copies_complete_lines_and_writes_through() -> None:
    through, sink = io.StringIO(), io.StringIO()
    tee = _TeeStream(through, sink, threading.Lock(), "2026/01/01/[1]env")  # type: ignore[arg-type]
    tee.write("first line\nsecond ")
    tee.write("half\n")
    assert through.getvalue() == "first line\nsecond half\n"
    records = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [r["message"] for r in records] == ["first line", "second half"]
    assert all(r["logStreamName"] == "2026/01/01/[1]env" and r["timestamp"] > 0 for r in records)


@pytest.fixture()
def logs(tmp_path: Path) -> Iterator[LocalLogs]:
    service = LocalLogs(tmp_path / "logs")
    service.start()
    yield service
    service.stop()


def _client(logs: LocalLogs):  # noqa: ANN202 - a boto3 client
    return boto3.client("logs", endpoint_url=logs.url, region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def test_filter_log_events_finds_a_functions_lines_by_pattern_and_time(logs: LocalLogs) -> None:
    lines = [(1_000, "START"), (2_000, JSON_LINE), (3_000, '{"message": "other execution", "executionArn": "x"}')]
    log_file(logs.directory, "/aws/lambda/fn").write_text(
        "".join(json.dumps({"timestamp": t, "logStreamName": "s", "message": m}) + "\n" for t, m in lines)
        + '{"timestamp": 4000, "logStr')  # a line cut off by a killed worker
    client = _client(logs)

    found = client.filter_log_events(logGroupName="/aws/lambda/fn", startTime=1_500,
                                     filterPattern='{ $.executionArn = "arn:aws:lambda:x/durable-execution/a\\"b/1" }')
    assert [e["message"] for e in found["events"]] == [JSON_LINE]
    everything = client.filter_log_events(logGroupName="/aws/lambda/fn", endTime=2_500)
    assert [e["timestamp"] for e in everything["events"]] == [1_000, 2_000]


def test_an_unknown_group_and_an_unsupported_pattern_are_aws_shaped_errors(logs: LocalLogs) -> None:
    client = _client(logs)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.filter_log_events(logGroupName="/aws/lambda/none")
    log_file(logs.directory, "/aws/lambda/fn").write_text("")
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.filter_log_events(logGroupName="/aws/lambda/fn", filterPattern="{ $.a > 1 }")
    with pytest.raises(ClientError, match="UnknownOperation"):
        client.describe_log_groups()
