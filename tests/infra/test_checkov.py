"""checkov over the root module (offline: ``--skip-download``): zero failed checks,
and every skipped check is an inline ``#checkov:skip=CKV_...:reason`` comment
with a reason, in the resource it skips.

checkov runs from its own virtualenv, .venv-checkov (pinned, heavy dependencies
that must not meet the project's), created by conftest.py when missing.

trivy is not run: it is not packaged for Debian here, and its PyPI wrapper
downloads the binary from outside the package registries at install time.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .tfworkspace import copy_module_files, root_tf_files

pytestmark = pytest.mark.slow

SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$")
RESOURCE_HEADER = re.compile(r'^resource\s+"([^"]+)"\s+"([^"]+)"')
MIN_REASON_LENGTH = 40


@pytest.fixture(scope="module")
def checkov_report(checkov_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """checkov's JSON report for a copy of the root .tf files (and the data they read)."""
    module = tmp_path_factory.mktemp("checkov") / "module"
    copy_module_files(module)
    result = subprocess.run(
        [str(checkov_bin), "--directory", str(module), "--framework", "terraform", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Exit 1 means failed checks; the report says which.
    assert result.returncode in (0, 1), f"checkov exited {result.returncode}:\n{result.stderr}"
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def _skip_comments() -> list[tuple[str, str, str]]:
    """``(check_id, "type.name", reason)`` for every skip comment in the root .tf files."""
    found = []
    for tf_file in root_tf_files():
        current = None
        for line in tf_file.read_text().splitlines():
            if header := RESOURCE_HEADER.match(line):
                current = f"{header.group(1)}.{header.group(2)}"
            if "checkov:skip" in line:
                match = SKIP_COMMENT.search(line.strip())
                assert match, f"{tf_file.name}: malformed skip comment: {line.strip()}"
                assert current, f"{tf_file.name}: skip comment outside a resource: {line.strip()}"
                found.append((match.group(1), current, (match.group(2) or "").strip()))
    return found


def test_checkov_scanned_the_module(checkov_report) -> None:
    summary = checkov_report["summary"]
    assert summary["checkov_version"] == "3.3.30"
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 40, summary
    assert summary["passed"] > 0, summary


def test_checkov_finds_no_failed_check(checkov_report) -> None:
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}:{check['file_line_range']}): {check['check_name']}"
        for check in checkov_report["results"].get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)


def test_every_skip_is_an_inline_comment_with_a_reason(checkov_report) -> None:
    comments = _skip_comments()
    for check_id, resource, reason in comments:
        assert len(reason) >= MIN_REASON_LENGTH, f"{check_id} on {resource}: give a reason a reviewer can accept"
    skipped = checkov_report["results"].get("skipped_checks", [])
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment", "")) >= MIN_REASON_LENGTH, check["check_id"]
    # The same set both ways: no skip outside a comment, and no stale comment
    # for a check that no longer fires.
    assert sorted((check["check_id"], check["resource"]) for check in skipped) == sorted(
        (check_id, resource) for check_id, resource, _ in comments
    )
