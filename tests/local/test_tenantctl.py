"""tenantctl --local against the running stack: every command, with the progress line and the time limit."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.harness import REPO_ROOT, StackProcess


def tenantctl(stack: StackProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "tenantctl", "--local", "--state-dir", str(stack.state_dir), *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False)


def test_tenantctl_walks_a_tenant_through_its_life(stack: StackProcess) -> None:
    created = tenantctl(stack, "create", "ctl-one", "--display-name", "Ctl One", "--tier", "starter",
                        "--currencies", "EUR,USD", "--max-amount", "50", "--callback-timeout", "600")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout.splitlines()[0])["apiKey"]
    assert "ctl-one: ACTIVE after" in created.stderr  # the progress line
    assert stack.http.get(f"{stack.api_url}/workflow/none", timeout=30,
                          headers={"x-tenant-id": "ctl-one", "x-api-key": key}).status_code == 404
    assert json.loads(tenantctl(stack, "get", "ctl-one").stdout)["status"] == "ACTIVE"
    assert json.loads(tenantctl(stack, "suspend", "ctl-one").stdout)["status"] == "SUSPENDED"
    assert json.loads(tenantctl(stack, "activate", "ctl-one").stdout)["status"] == "ACTIVE"
    assert json.loads(tenantctl(stack, "set-tier", "ctl-one", "starter").stdout)["tier"] == "starter"
    rotated = json.loads(tenantctl(stack, "rotate-key", "ctl-one", "--overlap", "0").stdout)
    assert rotated["apiKey"] != key
    listed = json.loads(tenantctl(stack, "list", "--all").stdout)["tenants"]
    assert "ctl-one" in {tenant["tenantId"] for tenant in listed}
    deleted = tenantctl(stack, "delete", "ctl-one")
    assert deleted.returncode == 0 and json.loads(deleted.stdout)["status"] == "OFFBOARDED", deleted.stderr
    # Refusals are reported on stderr with a non-zero status, never a trace.
    again = tenantctl(stack, "create", "ctl-one", "--display-name", "x", "--tier", "starter", "--currencies", "EUR",
                      "--max-amount", "1", "--callback-timeout", "60")
    assert again.returncode == 1 and "409" in again.stderr and "Traceback" not in again.stderr
    bad = tenantctl(stack, "create", "ctl-two", "--display-name", "x", "--tier", "gold", "--currencies", "EUR",
                    "--max-amount", "1", "--callback-timeout", "60")
    assert bad.returncode == 1 and "400: tier:" in bad.stderr
