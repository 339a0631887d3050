"""Bad variable values are refused by ``terraform plan`` with the validation's own message.

Every plan loads the 700 MB provider, so the cases are batched: each round
sets at most one bad value per variable, and Terraform reports every invalid
variable of a round. A diagnostic is matched to its case by the variable it
names (``var.X``) and must carry that variable's ``error_message`` from
variables.tf, so a missing validation, or a refusal for another reason, fails
the case. Rounds run two at a time (this machine has two cores).
"""

from __future__ import annotations

import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from . import hcl

pytestmark = pytest.mark.slow

BAD_VALUES: list[tuple[str, str]] = [
    ("aws_region", "US-EAST-1"),
    ("aws_region", "us-east"),
    ("aws_region", "eu-west-1a"),
    ("name_prefix", "Tenant_Durable"),
    ("name_prefix", "ab"),
    ("name_prefix", "a" * 33),
    ("name_prefix", "tenant-"),
    ("stage_name", "v 1"),
    ("workflow_zip_path", "build/workflow.tar.gz"),
    ("api_zip_path", "build/api"),
    ("authorizer_zip_path", "authorizer.zip.bak"),
    ("durable_execution_timeout_seconds", "0"),
    ("durable_execution_timeout_seconds", "31622401"),
    ("durable_execution_timeout_seconds", "3600.5"),
    ("durable_retention_days", "0"),
    ("durable_retention_days", "91"),
    ("workflow_timeout_seconds", "0"),
    ("workflow_timeout_seconds", "901"),
    ("api_timeout_seconds", "-1"),
    ("api_timeout_seconds", "30"),
    ("workflow_memory_mb", "64"),
    ("api_memory_mb", "10241"),
    ("tenant_cache_ttl_seconds", "0"),
    ("tenant_cache_ttl_seconds", "-5"),
    ("log_retention_days", "0"),
    ("log_retention_days", "10"),
    ("log_retention_days", "366"),
    ("log_level", "VERBOSE"),
    ("metrics_namespace", "AWS/Lambda"),
    ("throttling_rate_limit", "0"),
    ("throttling_burst_limit", "0"),
    ("dynamodb_kms_key_arn", "alias/aws/dynamodb"),
    ("callback_throttling_rate_limit", "0"),
    ("callback_throttling_burst_limit", "0"),
    ("callback_throttling_burst_limit", "2.5"),
    ("workflow_max_event_age_seconds", "59"),
    ("workflow_max_event_age_seconds", "21601"),
    ("workflow_retry_attempts", "3"),
    ("throttled_requests_alarm_threshold", "-1"),
    ("alarm_emails", '["not-an-address"]'),
    # An address, but no topic to subscribe it to (create_alarm_topic defaults to false).
    ("alarm_emails", '["oncall@example.com"]'),
]


def _rounds() -> list[list[tuple[str, str]]]:
    by_variable: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for case in BAD_VALUES:
        by_variable[case[0]].append(case)
    depth = max(len(cases) for cases in by_variable.values())
    return [[cases[i] for cases in by_variable.values() if i < len(cases)] for i in range(depth)]


def _plan_diagnostics(workspace, assignments: list[str]) -> tuple[int, list[dict[str, Any]]]:
    result = workspace.run("plan", "-json", "-input=false", "-lock=false", *assignments, check=False)
    diagnostics = []
    for line in result.stdout.splitlines():
        message = json.loads(line)
        if message.get("type") == "diagnostic" and message["diagnostic"]["severity"] == "error":
            diagnostics.append(message["diagnostic"])
    return result.returncode, diagnostics


@pytest.fixture(scope="session")
def refusals(plan_workspace) -> dict[tuple[str, str], tuple[int, list[dict[str, Any]]]]:
    """For each bad (variable, value): the plan's exit code and the diagnostics naming that variable."""

    def run_round(cases: list[tuple[str, str]]):
        code, diagnostics = _plan_diagnostics(plan_workspace, [f"-var={name}={value}" for name, value in cases])
        return {
            case: (code, [d for d in diagnostics if any(v["traversal"] == f"var.{case[0]}" for v in d.get("snippet", {}).get("values", []))])
            for case in cases
        }

    results: dict[tuple[str, str], tuple[int, list[dict[str, Any]]]] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for round_result in pool.map(run_round, _rounds()):
            results.update(round_result)
    return results


def _error_message(variable: str) -> str:
    (validation,) = hcl.variables()[variable]["validation"]
    return validation["error_message"]


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES, ids=[f"{n}={v[:20]}" for n, v in BAD_VALUES])
def test_bad_value_is_refused_with_the_validation_message(refusals, variable, value) -> None:
    code, diagnostics = refusals[(variable, value)]
    assert code != 0, f"terraform plan accepted {variable}={value!r}"
    assert diagnostics, f"no diagnostic names var.{variable} for {value!r}"
    (diagnostic,) = diagnostics
    assert diagnostic["summary"] == "Invalid value for variable"
    assert diagnostic["detail"].startswith(_error_message(variable)), diagnostic["detail"]


def test_every_validated_variable_has_a_bad_value_case() -> None:
    validated = {name for name, body in hcl.variables().items() if body.get("validation")}
    assert validated == {name for name, _ in BAD_VALUES}


def test_missing_package_is_refused_with_a_build_hint(plan_workspace) -> None:
    code, diagnostics = _plan_diagnostics(plan_workspace, ["-var=workflow_zip_path=build/missing.zip"])
    assert code != 0
    (diagnostic,) = diagnostics
    assert diagnostic["summary"] == "Resource precondition failed"
    assert "run `make build` first" in diagnostic["detail"]


def test_a_short_execution_timeout_plans_and_bounds_the_tenants_callback_timeout_at_runtime(plan_workspace) -> None:
    # Tenants are created at runtime: the control plane refuses a callbackTimeoutSeconds above
    # the execution timeout minus 300 s (src/control/requests.py); the plan only passes the timeout on.
    code, diagnostics = _plan_diagnostics(plan_workspace, ["-var=durable_execution_timeout_seconds=3600"])
    assert (code, diagnostics) == (0, [])
    from control.requests import Limits

    assert Limits(execution_timeout_seconds=3600).callback_timeout_max == 3300
    assert hcl.function_definitions()["functions"]["control"]["environment"]["WORKFLOW_EXECUTION_TIMEOUT_SECONDS"] == \
        "durable_execution_timeout_seconds"
