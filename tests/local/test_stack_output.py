"""What ``make run`` prints when a service behind it breaks: one clear line per distinct error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from local.cli import ServerErrorSummary, configure_logging, describe_server_error
from tests.harness import StackProcess

# werkzeug's message for a request moto raised on (trimmed): PutEvents routed to a rule
# whose pattern matching imports jsonpath_ng, absent from the virtualenv.
JSONPATH_TRACEBACK = """127.0.0.1 - - [06/Dec/2026 10:34:48] Error on request:
Traceback (most recent call last):
  File "/v/lib/python3.11/site-packages/werkzeug/serving.py", line 374, in run_wsgi
    execute(self.server.app)
  File "/v/lib/python3.11/site-packages/moto/core/responses.py", line 456, in call_action
    response = method()
  File "/v/lib/python3.11/site-packages/moto/events/responses.py", line 176, in put_events
    entries = self.events_backend.put_events(events)
  File "/v/lib/python3.11/site-packages/moto/events/utils.py", line 99, in _does_item_match_named_filter
    from jsonpath_ng.ext import parse
ModuleNotFoundError: No module named 'jsonpath_ng'
"""


@pytest.mark.parametrize(("text", "expected"), [
    (JSONPATH_TRACEBACK, ("EventBridge", "ModuleNotFoundError: No module named 'jsonpath_ng'")),
    # a service without a friendly name keeps moto's package name; moto's core frames name none
    ("Error on request:\n  File \"/v/moto/core/x.py\"\n  File \"/v/moto/kinesis/models.py\"\nKeyError: 'a: b'\n\n",
     ("kinesis", "KeyError: 'a: b'")),
    ("Error on request:\n  File \"/v/moto/core/utils.py\", line 1\nValueError: boom", ("moto", "ValueError: boom")),
    ("Error on request:", ("moto", "Error on request:")),
])
def test_a_server_error_is_named_by_its_service_and_last_line(text: str, expected: tuple[str, str]) -> None:
    assert describe_server_error(text) == expected


def test_a_server_error_is_summarised_once_and_its_repeats_dropped(caplog: pytest.LogCaptureFixture) -> None:
    werkzeug = logging.getLogger("test-werkzeug")
    werkzeug.addFilter(ServerErrorSummary(logging.getLogger("test-stack")))
    other = JSONPATH_TRACEBACK.replace("jsonpath_ng'", "other'")

    with caplog.at_level(logging.INFO):
        for text in (JSONPATH_TRACEBACK, JSONPATH_TRACEBACK, "127.0.0.1 - - GET / 200", other, JSONPATH_TRACEBACK):
            werkzeug.error("%s", text)

    assert [(record.name, record.getMessage().splitlines()[0]) for record in caplog.records] == [
        ("test-stack", "local moto server: EventBridge failed a request (HTTP 500): ModuleNotFoundError: No module "
                       "named 'jsonpath_ng' (a package missing from the virtualenv: is proving-ground/requirements-run.txt installed?); "
                       "its traceback follows, repeats of this error are not shown"),
        ("test-werkzeug", "127.0.0.1 - - [06/Dec/2026 10:34:48] Error on request:"),
        ("test-werkzeug", "127.0.0.1 - - GET / 200"),
        ("test-stack", "local moto server: EventBridge failed a request (HTTP 500): ModuleNotFoundError: No module "
                       "named 'other' (a package missing from the virtualenv: is proving-ground/requirements-run.txt installed?); "
                       "its traceback follows, repeats of this error are not shown"),
        ("test-werkzeug", "127.0.0.1 - - [06/Dec/2026 10:34:48] Error on request:"),
    ]


def test_configuring_the_log_twice_summarises_once(monkeypatch: pytest.MonkeyPatch) -> None:
    werkzeug = logging.getLogger("werkzeug")
    monkeypatch.setattr(werkzeug, "filters", [])
    noisy = [logging.getLogger(name) for name in ("aws_durable_execution_sdk_python_testing", "botocore", "moto")]
    levels = [(logger, logger.level) for logger in (*noisy, werkzeug)]
    try:
        configure_logging("INFO")
        configure_logging("INFO")  # parse_args again, in one process
    finally:
        for logger, level in levels:
            logger.setLevel(level)

    assert len([known for known in werkzeug.filters if isinstance(known, ServerErrorSummary)]) == 1


@pytest.mark.slow
def test_make_run_names_a_moto_import_error_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the stack's process without jsonpath_ng (a package on PYTHONPATH that fails its import, as a
    # virtualenv without it does; the functions' environments get a PYTHONPATH of their own)
    shadow = tmp_path / "shadow" / "jsonpath_ng"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'jsonpath_ng\'", name="jsonpath_ng")\n')
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    stack = StackProcess(tmp_path / "state", tmp_path / "stack.log")
    stack.start()
    try:
        # WHEN a workflow's callback event reaches EventBridge (its submitter retries PutEvents, boto3 each call)
        workflow_id = stack.start_workflow("tenant-a")
        failed = stack.wait_for_status("tenant-a", workflow_id, "FAILED")
        assert failed["reason"] == "could not register the callback"
    finally:
        stack.stop()

    # THEN the run's output names the service and the error in one line, once, with one traceback
    log = (tmp_path / "stack.log").read_text()
    assert log.count("PutEvents operation (reached max retries") > 1, log[-3000:]  # the error did repeat
    assert log.count("local moto server: EventBridge failed a request (HTTP 500): "
                     "ModuleNotFoundError: No module named 'jsonpath_ng' (a package missing from the virtualenv: "
                     "is proving-ground/requirements-run.txt installed?)") == 1, log[-3000:]
    assert log.count("Error on request:") == 1, log[-3000:]
