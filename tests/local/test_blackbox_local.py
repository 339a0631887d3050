"""The black-box API checks of ``make test-aws`` (``tests/blackbox/checks.py``), run against the local stack.

The same test functions as against a deployed stage, with an ``api`` target built
from the session's local stack: its URL, the keys ``make run`` writes, and a
tenant whose callbacks time out after a few seconds (the ``410`` check). A last
check runs ``make test-aws``'s own entry (``API_URL``/``API_KEYS``) against the
stack, so the deployed smoke test cannot rot unnoticed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.blackbox.checks import *  # noqa: F403 - the shared checks, collected here against the local stack
from tests.blackbox.target import ApiTarget
from tests.harness import REPO_ROOT, StackProcess

pytestmark = pytest.mark.slow

BRIEF_TENANT = "tenant-brief-blackbox"


@pytest.fixture(scope="module")
def api(stack: StackProcess) -> ApiTarget:
    stack.put_tenant({"tenantId": BRIEF_TENANT, "displayName": "Brief Black-box Ltd", "status": "ACTIVE",
                      "allowedCurrencies": ["USD"], "maxAmount": 100, "callbackTimeoutSeconds": 3},
                     api_key=uuid.uuid4().hex)
    return ApiTarget(stack.api_url, stack.api_keys, brief_tenant=BRIEF_TENANT)


def test_make_test_aws_entry_runs_against_api_url_and_api_keys(stack: StackProcess) -> None:
    # WHEN the deployed smoke test's own entry is pointed at the local stack, as the README shows for make run
    env = {key: value for key, value in os.environ.items() if key not in ("BRIEF_TENANT", "PYTEST_ADDOPTS")}
    env.update(API_URL=stack.api_url, API_KEYS=str(stack.state_dir / "api-keys.json"), TF="false")
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/blackbox/checks.py",
         "-k", "unknown_route or reused_with_another_body or timed_out"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    out = done.stdout + done.stderr
    # THEN the checks pass, and it says where it ran, what it observed and what it could not check
    assert done.returncode == 0, out[-3000:]
    assert "2 passed" in out, out[-3000:]
    assert f"black-box checks against {stack.api_url}" in out
    assert "Idempotency-Key reused with another body" in out
    assert "not run: test_answer_after_the_callback_timed_out_is_410: set BRIEF_TENANT" in out


def test_make_test_aws_without_a_target_says_what_it_needs(tmp_path: object) -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("API_URL", "API_KEYS", "PYTEST_ADDOPTS")}
    env["TF"] = "false"  # terraform output fails: no deployment here
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/blackbox/checks.py"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode != 0
    assert "make test-aws needs a deployed stage" in done.stdout + done.stderr
