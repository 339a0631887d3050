"""The black-box API checks of ``make test-aws`` (``tests/blackbox/checks.py``), run against the local stack.

The same test functions as against a deployed stage, with an ``api`` target built
from the session's local stack: its URL, the keys ``make run`` writes, and a
tenant whose callbacks time out after a few seconds (the ``410`` check). A last
check runs ``make test-aws``'s own entry (``API_URL``/``API_KEYS``) against the
stack, so the deployed smoke test cannot rot unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.blackbox.checks import *  # noqa: F403 - the shared checks, collected here against the local stack
from tests.blackbox.target import ApiTarget, TargetUnavailable, target_from_environment
from tests.harness import REPO_ROOT, StackProcess

pytestmark = pytest.mark.slow

BRIEF_TENANT = "tenant-brief-blackbox"


@pytest.fixture(scope="module")
def api(stack: StackProcess) -> ApiTarget:
    stack.put_tenant({"tenantId": BRIEF_TENANT, "displayName": "Brief Black-box Ltd", "status": "ACTIVE",
                      "allowedCurrencies": ["USD"], "maxAmount": 100, "callbackTimeoutSeconds": 3},
                     api_key=uuid.uuid4().hex)
    from tests.blackbox.target import admin_credentials

    credentials, region = admin_credentials(str(stack.state_dir / "admin-credentials.json"), {})
    return ApiTarget(stack.api_url, stack.api_keys, brief_tenant=BRIEF_TENANT, poll_seconds=0.25,
                     admin_credentials=credentials, admin_region=region)


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


def test_make_test_aws_without_a_target_says_what_it_needs() -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("API_URL", "API_KEYS", "PYTEST_ADDOPTS")}
    env["TF"] = "false"  # terraform output fails: no deployment here
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/blackbox/checks.py"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode != 0
    assert "make test-aws needs a deployed stage" in done.stdout + done.stderr


def test_without_api_url_the_target_comes_from_terraform_output_and_the_keys_make_deploy_wrote(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a terraform that answers `output -raw api_url`, and the keys file make deploy's tenantctl wrote
    fake = tmp_path / "terraform"
    fake.write_text('#!/bin/sh\n'
                    'case "$*" in\n'
                    '  "output -raw api_url") printf "https://abc.execute-api.eu-west-1.amazonaws.com/v1" ;;\n'
                    '  *) exit 1 ;;\n'
                    'esac\n')
    fake.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".state").mkdir()
    (tmp_path / ".state" / "api-keys.json").write_text(json.dumps({"tenant-a": "ka", "tenant-b": "kb"}))

    target = target_from_environment({"TF": str(fake)})

    assert target.base_url == "https://abc.execute-api.eu-west-1.amazonaws.com/v1"
    assert target.keys == {"tenant-a": "ka", "tenant-b": "kb"} and target.brief_tenant is None
    assert target.admin_credentials is None  # the admin checks need ADMIN_CREDENTIALS
    admin = tmp_path / "admin.json"
    admin.write_text(json.dumps({"accessKeyId": "AKIA1", "secretAccessKey": "s", "region": "eu-west-1"}))
    with_admin = target_from_environment({"TF": str(fake), "ADMIN_CREDENTIALS": str(admin)})
    assert (with_admin.admin_credentials.access_key, with_admin.admin_region) == ("AKIA1", "eu-west-1")
    with pytest.raises(TargetUnavailable, match="ADMIN_CREDENTIALS"):
        target_from_environment({"TF": str(fake), "ADMIN_CREDENTIALS": str(tmp_path / "missing.json")})
    # API_URL and API_KEYS win over the outputs; a keys file without the demo tenants is refused
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"tenant-a": "x", "tenant-b": "y", "tenant-brief": "z"}))
    local = target_from_environment({"TF": str(fake), "API_URL": "http://127.0.0.1:3000/", "API_KEYS": str(keys),
                                     "BRIEF_TENANT": "tenant-brief"})
    assert (local.base_url, local.keys["tenant-a"], local.brief_tenant) == ("http://127.0.0.1:3000", "x", "tenant-brief")
    keys.write_text(json.dumps({"tenant-a": "x"}))
    with pytest.raises(TargetUnavailable, match="no API key for tenant-b"):
        target_from_environment({"API_URL": "http://127.0.0.1:3000", "API_KEYS": str(keys)})
