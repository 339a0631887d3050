"""router.tf in the plan: the router function and dead-letter queue, its role's statements as written, the
provisioner's router-only mapping permission, and no per-tenant start queue or mapping (runtime resources).

What the statements resolve to (ARNs) is checked after the moto apply (test_apply_moto.py, the router tests).
"""

from __future__ import annotations

from typing import Any

import pytest

from . import hcl
from .test_plan import PREFIX, config, function, planned

pytestmark = pytest.mark.slow


def _statements(plan: dict[str, Any], document: str) -> dict[str, dict[str, Any]]:
    for resource in plan["configuration"]["root_module"]["resources"]:
        if resource["address"] == f"data.aws_iam_policy_document.{document}":
            return {s["sid"]["constant_value"]: s for s in resource["expressions"]["statement"]}
    raise KeyError(document)


def _actions(statement: dict[str, Any]) -> list[str]:
    return statement["actions"]["constant_value"]


def test_the_router_is_planned_as_functions_json_defines_it(plan_json) -> None:
    definition = hcl.function_definitions()["functions"]["router"]
    after = planned(plan_json, function("router"))
    assert (after["function_name"], after["handler"]) == (f"{PREFIX}-router", definition["handler"])
    assert after["publish"] is False
    assert "tenancy_config" not in after or not after["tenancy_config"]
    assert "durable_config" not in after or not after["durable_config"]


def test_the_router_dead_letter_queue_is_encrypted_and_keeps_messages_14_days(plan_json) -> None:
    queue = planned(plan_json, "aws_sqs_queue.router_dead_letter")
    assert queue["name"] == f"{PREFIX}-router-dlq"
    assert queue["sqs_managed_sse_enabled"] is True
    assert queue["message_retention_seconds"] == 1209600


def test_no_plan_holds_a_start_queue_or_an_event_source_mapping(plan_json) -> None:
    # Each tenant's start queue and mapping are made by the provisioner at runtime.
    for change in plan_json["resource_changes"]:
        assert change["type"] != "aws_lambda_event_source_mapping", change["address"]
        if change["type"] == "aws_sqs_queue":
            assert not str(change["change"]["after"].get("name", "")).startswith(f"{PREFIX}-start-"), change["address"]


def test_the_router_role_polls_start_queues_sends_dead_letters_and_starts_workflow_live_only(plan_json) -> None:
    statements = _statements(plan_json, "router")
    assert {sid: _actions(s) for sid, s in statements.items()} == {
        "PollStartQueues": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
        "SendRefusedRecords": ["sqs:SendMessage"],
        "FindQueueOwner": ["dynamodb:Query"],
        "ReadQueueOwnerStatus": ["dynamodb:GetItem"],
        "StartWorkflows": ["lambda:InvokeFunction"],
    }
    refs = {sid: s["resources"].get("references", []) for sid, s in statements.items()}
    assert "local.start_queue_arn_glob" in refs["PollStartQueues"]
    assert "aws_sqs_queue.router_dead_letter.arn" in refs["SendRefusedRecords"]
    assert "local.start_queue_index_arn" in refs["FindQueueOwner"]
    assert "aws_dynamodb_table.tenants.arn" in refs["ReadQueueOwnerStatus"]
    assert "aws_lambda_alias.workflow_live.arn" in refs["StartWorkflows"]
    assert all("constant_value" not in s["resources"] for s in statements.values())


def test_the_provisioner_may_map_start_queues_to_the_router_only(plan_json) -> None:
    statements = _statements(plan_json, "provisioner_start_queues")
    create, delete = statements["MapStartQueuesToTheRouterOnly"], statements["UnmapStartQueuesFromTheRouterOnly"]
    assert _actions(create) == ["lambda:CreateEventSourceMapping"]
    assert _actions(delete) == ["lambda:DeleteEventSourceMapping"]
    for statement in (create, delete):
        [condition] = statement["condition"]
        assert (condition["test"]["constant_value"], condition["variable"]["constant_value"]) == (
            "ArnEquals", "lambda:FunctionArn")
        assert "local.router_function_arn" in condition["values"]["references"]
    assert _actions(statements["FindStartQueueMappings"]) == ["lambda:ListEventSourceMappings"]
    assert "local.start_queue_arn_glob" in statements["ManageStartQueues"]["resources"]["references"]
    policy = config(plan_json, "aws_iam_role_policy.provisioner_start_queues")
    assert 'aws_iam_role.function["provisioner"]' in policy["role"]["references"]


def test_the_start_queue_glob_and_the_dead_letter_queue_never_overlap(plan_workspace) -> None:
    prefix = plan_workspace.evaluate("local.start_queue_name_prefix")
    assert prefix == f"{PREFIX}-start-"
    assert not f"{PREFIX}-router-dlq".startswith(prefix)
