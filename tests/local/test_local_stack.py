"""The whole pattern on the local stack, end to end, driven like a client with requests."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.harness import StackProcess

pytestmark = pytest.mark.slow

WORKFLOW_FUNCTION = "-workflow"
TENANT_A, TENANT_B = "tenant-a", "tenant-b"


def run_to_completion(stack: StackProcess, tenant_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start, wait for the callbackId, call back, wait for COMPLETED; returns the final status."""
    workflow_id = stack.start_workflow(tenant_id, body)
    waiting = stack.wait_for_status(tenant_id, workflow_id, "WAITING_FOR_CALLBACK")
    response = stack.callback(tenant_id, waiting["callbackId"], {"approved": True, "by": tenant_id})
    assert response.status_code == 200, response.text
    done = stack.wait_for_status(tenant_id, workflow_id, "COMPLETED")
    assert done["result"]["tenantId"] == tenant_id
    return done


def environments_of(done: dict[str, Any]) -> set[str]:
    return set(done["result"]["environments"].values())


def workflow_workers(stack: StackProcess, tenant_id: str) -> list[dict[str, Any]]:
    return [w for w in stack.workers() if w["functionName"].endswith(WORKFLOW_FUNCTION) and w["tenantId"] == tenant_id]


def test_two_tenants_run_concurrent_workflows_in_separate_environments(stack: StackProcess) -> None:
    # WHEN both tenants run two workflows at the same time
    tenants = [TENANT_A, TENANT_B, TENANT_A, TENANT_B]
    bodies = {TENANT_A: {"amount": 100, "currency": "EUR"}, TENANT_B: {"amount": 50, "currency": "GBP"}}
    with concurrent.futures.ThreadPoolExecutor(len(tenants)) as executor:
        done = list(executor.map(lambda tenant: (tenant, run_to_completion(stack, tenant, bodies[tenant])), tenants))

    # THEN every workflow completed, and no environment ever served both tenants
    seen: dict[str, set[str]] = {TENANT_A: set(), TENANT_B: set()}
    for tenant_id, status in done:
        assert status["status"] == "COMPLETED"
        seen[tenant_id] |= environments_of(status)
    assert seen[TENANT_A] and seen[TENANT_B]
    assert not seen[TENANT_A] & seen[TENANT_B]
    # and the service's own view agrees: each environment id belongs to exactly one tenant
    owners = {w["environmentId"]: w["tenantId"] for w in stack.workers() if w["functionName"].endswith(WORKFLOW_FUNCTION)}
    for tenant_id, environment_ids in seen.items():
        assert all(owners.get(environment_id, tenant_id) == tenant_id for environment_id in environment_ids)


def test_file_in_one_tenants_temporary_directory_is_invisible_to_the_other(stack: StackProcess) -> None:
    run_to_completion(stack, TENANT_A)
    run_to_completion(stack, TENANT_B)
    dirs_a = [Path(w["tmpdir"]) for w in workflow_workers(stack, TENANT_A)]
    dirs_b = [Path(w["tmpdir"]) for w in workflow_workers(stack, TENANT_B)]
    assert dirs_a and dirs_b

    secret = f"tenant-a-secret-{uuid.uuid4().hex}"
    (dirs_a[0] / secret).write_text("only for tenant-a")

    for directory in dirs_b:
        assert not (directory / secret).exists()
        assert secret not in os.listdir(directory)
        assert not set(dirs_a) & {directory, *directory.parents}


def test_second_workflow_of_a_tenant_reuses_the_warm_environment_and_its_cache(stack: StackProcess, wait_until) -> None:
    first = run_to_completion(stack, TENANT_B, {"amount": 10, "currency": "USD"})
    # COMPLETED is visible before the invocation that wrote it returns; a start that arrives while
    # that environment is still busy rightly gets a fresh one (as on AWS), so wait for it to idle.
    wait_until(lambda: not any(w["busy"] for w in workflow_workers(stack, TENANT_B)), 10, "tenant-b's workers idle")
    warm = {w["environmentId"] for w in workflow_workers(stack, TENANT_B) if w["alive"]}
    assert first["result"]["environments"]["finalizedIn"] in warm

    second = run_to_completion(stack, TENANT_B, {"amount": 20, "currency": "USD"})

    # earlier tests may have left more than one warm environment; any of them is a warm start
    assert second["result"]["environments"]["validatedIn"] in warm
    assert second["result"]["tenantDataFromCache"]["validate"] is True


def test_killing_the_tenants_worker_while_waiting_does_not_lose_the_workflow(stack: StackProcess, wait_until) -> None:
    workflow_id = stack.start_workflow(TENANT_B, {"amount": 5, "currency": "USD"})
    callback_id = stack.wait_for_status(TENANT_B, workflow_id, "WAITING_FOR_CALLBACK")["callbackId"]
    victims = workflow_workers(stack, TENANT_B)
    assert victims

    for victim in victims:
        os.kill(victim["pid"], signal.SIGKILL)
    killed = {victim["environmentId"] for victim in victims}
    wait_until(lambda: not any(w["alive"] for w in workflow_workers(stack, TENANT_B) if w["environmentId"] in killed),
               10, "killed workers seen dead")

    assert stack.callback(TENANT_B, callback_id).status_code == 200
    done = stack.wait_for_status(TENANT_B, workflow_id, "COMPLETED")
    assert done["result"]["environments"]["finalizedIn"] not in killed
    assert {w["tenantId"] for w in stack.workers() if w["environmentId"] == done["result"]["environments"]["finalizedIn"]} == {TENANT_B}


def test_restarting_the_whole_stack_while_waiting_does_not_lose_the_workflow(stack: StackProcess) -> None:
    workflow_id = stack.start_workflow(TENANT_A, {"amount": 42, "currency": "USD"})
    callback_id = stack.wait_for_status(TENANT_A, workflow_id, "WAITING_FOR_CALLBACK")["callbackId"]

    stack.restart()

    after = stack.status(TENANT_A, workflow_id)
    assert after.status_code == 200 and after.json()["status"] == "WAITING_FOR_CALLBACK"
    assert after.json()["callbackId"] == callback_id
    assert stack.callback(TENANT_A, callback_id, {"approved": True}).status_code == 200
    done = stack.wait_for_status(TENANT_A, workflow_id, "COMPLETED")
    assert done["result"]["confirmation"] == {"approved": True}
