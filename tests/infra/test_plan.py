"""``terraform validate`` and ``terraform plan`` of an offline copy, and checks over the plan JSON.

The copy differs from the repository only where the offline provider forces it:
when the mirrored hashicorp/aws is older than 6.25, ``durable_config`` and
``tenancy_config`` are removed and the version constraint is pinned to the
mirrored one (see ``tfworkspace.py``); test_static.py checks those two blocks.
The provider is configured with fake credentials and every skip_* flag: the
plan makes no AWS call (but the one GetRandomPassword sent to moto).

Each property is checked in the one layer that proves it: here what the plan
shows and an apply against moto cannot (the functions' settings from
src/functions.json, the resource set, the seeded items typed as the handlers
write them, refused inputs, the write-only signing key, the module-wide IAM
rule). What is created and wired, with the values AWS assigns (ARNs, ids), is
checked after the moto apply (test_apply_moto.py); the HCL form in test_static.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from . import hcl
from .tfworkspace import SHARED_DIR

pytestmark = pytest.mark.slow

CONTRACT = json.loads((SHARED_DIR / "api_contract.json").read_text())
DEMO_TENANTS = json.loads((SHARED_DIR / "demo_tenants.json").read_text())
PREFIX = "tenant-durable"

GATEWAY_RESPONSES = ("DEFAULT_4XX", "DEFAULT_5XX", "BAD_REQUEST_BODY", "BAD_REQUEST_PARAMETERS", "INTEGRATION_FAILURE",
                     "AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR", "THROTTLED", "QUOTA_EXCEEDED",
                     "MISSING_AUTHENTICATION_TOKEN")
FUNCTIONS = ("workflow", "api", "authorizer", "control", "provisioner", "router")
TIERS = json.loads((SHARED_DIR / "tiers.json").read_text())["tiers"]
# The admin API: AWS_IAM, AWS_PROXY to the control function.
CONTROL_ROUTES = {key: route for key, route in CONTRACT["routes"].items() if route["integration"] == "control-proxy"}
PROXY_ROUTES = [key for key, route in CONTRACT["routes"].items() if route["integration"] == "api-proxy"]
# The routes the contract opens ("authorizer": false): POST /callbacks/{callbackToken}.
PUBLIC_ROUTES = [key for key in PROXY_ROUTES if CONTRACT["routes"][key].get("authorizer") is False]
AUTHORIZED_PROXY_ROUTES = [key for key in PROXY_ROUTES if key not in PUBLIC_ROUTES]


def function(key: str) -> str:
    """The address of one of the three functions."""
    return f'aws_lambda_function.function["{key}"]'


@pytest.fixture(scope="module")
def declared_instances(plan_workspace) -> set[str]:
    """Every managed resource instance the ``.tf`` files declare, read with python-hcl2.

    ``for_each`` and ``count`` are evaluated by ``terraform console`` in the
    plan's copy (the same defaults as the plan), so the keys come from the
    configuration and the data files it reads, not from a list kept here.
    """
    single, keyed, counted = [], {}, {}
    for resource_type, name, body in hcl.blocks("resource"):
        address = f"{resource_type}.{name}"
        if "for_each" in body:
            keyed[address] = hcl.expression(body["for_each"])
        elif "count" in body:
            counted[address] = hcl.expression(body["count"]) if isinstance(body["count"], str) else str(body["count"])
        else:
            single.append(address)
    names = {address: f"r{index}" for index, address in enumerate([*keyed, *counted])}
    values = plan_workspace.evaluate(
        "{"
        + ", ".join(f"{names[address]} = [for key, value in {expr} : key]" for address, expr in keyed.items())
        + "".join(f", {names[address]} = {expr}" for address, expr in counted.items())
        + "}"
    )
    instances = set(single)
    for address in keyed:
        instances |= {f'{address}["{key}"]' for key in values[names[address]]}
    for address in counted:
        instances |= {f"{address}[{index}]" for index in range(values[names[address]])}
    return instances


# --- helpers over the plan JSON ---


def planned(plan: dict[str, Any], address: str) -> dict[str, Any]:
    """The ``after`` values of a planned resource change."""
    for change in plan["resource_changes"]:
        if change["address"] == address:
            return change["change"]["after"]
    raise KeyError(address)


def planned_of_type(plan: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        change["address"]: change["change"]["after"]
        for change in plan["resource_changes"]
        if change["type"] == resource_type and change["mode"] == "managed"
    }


def config(plan: dict[str, Any], address: str) -> dict[str, Any]:
    """The configuration expressions of a resource (``address`` without instance keys)."""
    for resource in plan["configuration"]["root_module"]["resources"]:
        if resource["address"] == address:
            return resource["expressions"]
    raise KeyError(address)


def references(expressions: dict[str, Any], attribute: str) -> list[str]:
    return expressions[attribute].get("references", [])


# --- validate and plan ---


def test_terraform_validate_succeeds(plan_workspace) -> None:
    result = plan_workspace.run("validate", "-json", "-no-color")
    report = json.loads(result.stdout)
    assert report["valid"] is True, report
    assert report["warning_count"] == 0, report["diagnostics"]


def test_plan_creates_exactly_the_declared_resources(plan_json, declared_instances) -> None:
    changes = {change["address"]: change["change"]["actions"] for change in plan_json["resource_changes"] if change["mode"] == "managed"}
    assert set(changes) == declared_instances, (
        f"not in the plan: {sorted(declared_instances - set(changes))}; not declared: {sorted(set(changes) - declared_instances)}"
    )
    assert all(actions == ["create"] for actions in changes.values()), changes
    assert plan_json["errored"] is False


def test_declared_resources_cover_the_pattern(declared_instances) -> None:
    # What the design needs, whatever the .tf files are: three functions with
    # a role, a policy and a log group each; the live alias; a seeded item and
    # an API key per demo tenant; every route's method; every JSON error.
    for key in FUNCTIONS:
        for address in (function(key), f'aws_iam_role.function["{key}"]', f'aws_iam_role_policy.function["{key}"]',
                        f'aws_cloudwatch_log_group.this["{key}"]'):
            assert address in declared_instances, address
    assert {"aws_lambda_alias.workflow_live", "aws_lambda_alias.provisioner_live"} <= declared_instances
    assert {f'aws_api_gateway_method.proxy["{key}"]' for key in AUTHORIZED_PROXY_ROUTES} <= declared_instances
    assert {f'aws_api_gateway_method.public_proxy["{key}"]' for key in PUBLIC_ROUTES} <= declared_instances
    assert {f'aws_api_gateway_integration.proxy["{key}"]' for key in PROXY_ROUTES} <= declared_instances
    # The signing key and the bus; each tenant's queue and rule are the provisioner's, at runtime.
    assert {"aws_secretsmanager_secret.callback_signing_key", "aws_secretsmanager_secret_version.callback_signing_key",
            "aws_cloudwatch_event_bus.this"} <= declared_instances
    assert {f'aws_api_gateway_usage_plan.tier["{tier}"]' for tier in TIERS} <= declared_instances
    assert {f'aws_api_gateway_method.control["{key}"]' for key in CONTROL_ROUTES} <= declared_instances
    assert {f'aws_api_gateway_gateway_response.json["{kind}"]' for kind in GATEWAY_RESPONSES} <= declared_instances


def test_plan_outputs_are_the_documented_ones(plan_json) -> None:
    assert set(plan_json["output_changes"]) >= {
        "export_api_key_command",
        "create_demo_tenants",
        "aws_region",
        "tenants_api_url",
        "callback_queue_name_prefix",
        "usage_plans",
        "api_url",
        "start_workflow_curl",
        "workflow_status_curl",
        "send_callback_curl",
        "workflow_alias_arn",
        "function_names",
        "tenants_table_name",
        "workflows_table_name",
        "event_bus_name",
        "callback_signing_secret_arn",
    }
    # No key of any tenant is an output (none is in the state).
    assert not {"demo_api_keys", "callback_queue_urls"} & set(plan_json["output_changes"])
    outputs = plan_json["planned_values"]["outputs"]
    assert outputs["function_names"]["value"] == {key: f"{PREFIX}-{key}" for key in FUNCTIONS}
    assert outputs["tenants_table_name"]["value"] == f"{PREFIX}-tenants"
    assert outputs["callback_queue_name_prefix"]["value"] == f"{PREFIX}-callbacks"
    assert outputs["create_demo_tenants"]["value"] is True


# --- functions ---


def _function_setting(key: str, setting: str) -> Any:
    """The default value main.tf gives a setting named in src/functions.json (those known at plan)."""
    variables = hcl.variables()
    return {"function_name": f"{PREFIX}-{key}"}.get(setting, variables.get(setting, {}).get("default"))


@pytest.mark.parametrize("key", FUNCTIONS)
def test_each_function_is_planned_as_src_functions_json_defines_it(plan_json, key) -> None:
    # One definition for AWS and the local stack (tests/local/test_functions.py reads the
    # same file); the environment, known only after apply, is compared in test_apply_moto.py.
    definition = hcl.function_definitions()["functions"][key]
    after = planned(plan_json, function(key))
    assert after["function_name"] == f"{PREFIX}-{key}"
    assert after["description"] == definition["description"]
    assert after["handler"] == definition["handler"]
    assert after["memory_size"] == _function_setting(key, definition["memoryMb"])
    assert after["timeout"] == _function_setting(key, definition["timeoutSeconds"])
    assert after["publish"] is definition.get("publish", False)
    assert after["runtime"] == "python3.13"
    assert after["architectures"] == ["arm64"]
    assert after["tracing_config"] == [{"mode": "Active"}]
    assert after["logging_config"][0]["log_format"] == "JSON"
    assert after["logging_config"][0]["log_group"] == f"/aws/lambda/{PREFIX}-{key}"
    # API Gateway waits 29 s at most for the functions it calls synchronously
    # (the workflow and the provisioner are invoked asynchronously).
    if key not in ("workflow", "provisioner"):
        assert after["timeout"] <= 29
    role = planned(plan_json, f'aws_iam_role.function["{key}"]')
    assert role["description"] == definition["roleDescription"]



def test_durable_blocks_are_in_the_plan_when_the_provider_knows_them(plan_json, terraform_setup) -> None:
    workflow = planned(plan_json, function("workflow"))
    if terraform_setup.provider_knows_durable_blocks:
        assert workflow["tenancy_config"] == [{"tenant_isolation_mode": "PER_TENANT"}]
        assert workflow["durable_config"][0]["execution_timeout"] == 604800
    else:
        # hashicorp/aws < 6.25: the blocks were stripped from the copy (checked by HCL parse instead).
        assert "tenancy_config" not in workflow and "durable_config" not in workflow


# --- tenants at runtime: no per-tenant resource, the admin API, the provisioner's scope ---

# Resource types that would only ever exist per tenant.
PER_TENANT_TYPES = {"aws_dynamodb_table_item", "aws_api_gateway_api_key", "aws_api_gateway_usage_plan_key",
                    "aws_sqs_queue_policy", "aws_cloudwatch_event_rule", "aws_cloudwatch_event_target"}


def test_no_plan_holds_a_per_tenant_resource(plan_json) -> None:
    # Tenants come and go at runtime: a new tenant never changes Terraform's resources.
    addresses = [change["address"] for change in plan_json["resource_changes"] if change["mode"] == "managed"]
    assert not [address for address in addresses if address.split(".")[0] in PER_TENANT_TYPES]
    for tenant in DEMO_TENANTS:
        assert not [address for address in addresses if tenant["tenantId"] in address], tenant["tenantId"]
    # The queues are the deployment's own: the dead-letter queues only.
    queues = {planned["name"] for planned in planned_of_type(plan_json, "aws_sqs_queue").values()}
    assert all(name.endswith("-dlq") for name in queues), queues
    # One usage plan per tier, with the tier's numbers.
    plans = planned_of_type(plan_json, "aws_api_gateway_usage_plan")
    assert set(plans) == {f'aws_api_gateway_usage_plan.tier["{tier}"]' for tier in TIERS}
    for tier, spec in TIERS.items():
        plan = plans[f'aws_api_gateway_usage_plan.tier["{tier}"]']
        assert plan["name"] == f"{PREFIX}-{tier}"
        assert plan["throttle_settings"] == [{"rate_limit": spec["rateLimit"], "burst_limit": spec["burstLimit"]}]
        assert plan["quota_settings"][0]["limit"] == spec["dailyQuota"]


def test_the_admin_routes_use_aws_iam_and_the_control_function(plan_json) -> None:
    assert CONTROL_ROUTES, "the contract names the admin routes"
    for key, route in CONTROL_ROUTES.items():
        method = planned(plan_json, f'aws_api_gateway_method.control["{key}"]')
        assert (method["http_method"], method["authorization"]) == (route["method"], "AWS_IAM")
        assert method["api_key_required"] is False and method.get("authorizer_id") is None
        integration = planned(plan_json, f'aws_api_gateway_integration.proxy["{key}"]')
        assert integration["type"] == "AWS_PROXY"
        # The invoke ARN is known only after apply (test_apply_moto reads it); the
        # permission's function name is planned: the control function, never the api one.
        permission = planned(plan_json, f'aws_lambda_permission.proxy["{key}"]')
        assert permission["function_name"] == f"{PREFIX}-control"
    # No other route is AWS_IAM, and no admin route is CUSTOM.
    for resource in ("aws_api_gateway_method.proxy", "aws_api_gateway_method.public_proxy",
                     "aws_api_gateway_method.start_workflow"):
        for planned_method in planned_of_type(plan_json, "aws_api_gateway_method").items():
            if planned_method[0].startswith(resource):
                assert planned_method[1]["authorization"] != "AWS_IAM"


def _statements(plan: dict[str, Any], document: str) -> dict[str, dict[str, Any]]:
    return {statement["sid"]["constant_value"]: statement for statement in _policy_statements(plan)[document]}


def test_the_provisioner_may_manage_only_this_deployments_keys_queues_and_rules(plan_json) -> None:
    statements = _statements(plan_json, "data.aws_iam_policy_document.provisioner")
    for sid in ("ManageCallbackQueues", "ManageCallbackRules"):
        resources = statements[sid]["resources"]
        assert "constant_value" not in resources, sid
        assert any(reference.startswith("local.callback_") for reference in resources["references"]), (sid, resources)
    create, delete = statements["CreateDeploymentTaggedKeys"], statements["DeleteDeploymentTaggedKeys"]
    assert create["actions"]["constant_value"] == ["apigateway:POST"]
    assert delete["actions"]["constant_value"] == ["apigateway:DELETE"]
    assert create["condition"][0]["variable"]["constant_value"] == "aws:RequestTag/deployment"
    assert delete["condition"][0]["variable"]["constant_value"] == "aws:ResourceTag/deployment"
    for statement in (create, delete):
        assert "local.name_prefix" in statement["condition"][0]["values"]["references"]
    plan_keys = statements["KeysInTheTiersPlans"]["resources"]
    assert "local.tier_usage_plan_key_globs" in plan_keys["references"]
    for statement in statements.values():
        assert "constant_value" not in statement["resources"], statement["sid"]


def test_the_control_plane_may_start_only_the_provisioner(plan_json) -> None:
    statements = _statements(plan_json, "data.aws_iam_policy_document.control")
    invoke = statements["StartProvisioning"]
    assert invoke["actions"]["constant_value"] == ["lambda:InvokeFunction"]
    assert invoke["resources"]["references"][0].startswith("aws_lambda_alias.provisioner_live")
    environment = planned(plan_json, function("control"))["environment"][0]["variables"]
    assert environment["PROVISIONER_FUNCTION_NAME"] == f"{PREFIX}-provisioner"
    assert environment["STAGE_THROTTLE_RATE_LIMIT"] == str(hcl.variables()["throttling_rate_limit"]["default"])


# --- IAM ---


def _policy_statements(plan: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    statements = {}
    for resource in plan["configuration"]["root_module"]["resources"]:
        if resource["mode"] == "data" and resource["type"] == "aws_iam_policy_document":
            statements[resource["address"]] = resource["expressions"]["statement"]
    return statements


def test_no_iam_statement_grants_lambda_or_dynamodb_on_star(plan_json) -> None:
    documents = _policy_statements(plan_json)
    assert set(documents) == {
        "data.aws_iam_policy_document.workflow",
        "data.aws_iam_policy_document.api",
        "data.aws_iam_policy_document.authorizer",
        "data.aws_iam_policy_document.control",
        "data.aws_iam_policy_document.provisioner",
        "data.aws_iam_policy_document.router",  # router.tf
        "data.aws_iam_policy_document.provisioner_start_queues",  # router.tf
        "data.aws_iam_policy_document.function",
        "data.aws_iam_policy_document.lambda_assume_role",
        "data.aws_iam_policy_document.dead_letter",
        "data.aws_iam_policy_document.alarm_topic",
    }
    for address, statements in documents.items():
        for statement in statements:
            actions = statement["actions"]["constant_value"]
            assert not any(action.endswith(":*") or action == "*" for action in actions), (address, actions)
            if any(action.startswith(("lambda:", "dynamodb:", "secretsmanager:", "events:", "sqs:")) for action in actions):
                resources = statement["resources"]
                if _star_allowed(statement):
                    continue
                assert "constant_value" not in resources, (address, statement)
                assert resources["references"], (address, statement)


def _star_allowed(statement: dict[str, Any]) -> bool:
    """The two "*" IAM cannot narrow by resource (router.tf): CreateEventSourceMapping, narrowed by the
    lambda:FunctionArn condition instead, and ListEventSourceMappings, which reads only."""
    actions = statement["actions"]["constant_value"]
    if actions == ["lambda:ListEventSourceMappings"]:
        return True
    conditions = statement.get("condition", [])
    return actions == ["lambda:CreateEventSourceMapping"] and any(
        c["variable"]["constant_value"] == "lambda:FunctionArn" and c["values"].get("references") for c in conditions)


# --- callback tokens and notification ---


def test_signing_key_secret_is_written_once_and_never_planned(plan_json) -> None:
    # (Its name and the random key it holds: test_apply_moto.py.)
    secret = planned(plan_json, "aws_secretsmanager_secret.callback_signing_key")
    assert secret["recovery_window_in_days"] == 7
    version = planned(plan_json, "aws_secretsmanager_secret_version.callback_signing_key")
    # Write-only: the key is in neither the plan nor the state.
    assert version["secret_string"] is None and version["secret_binary"] is None
    assert version["secret_string_wo"] is None
    assert version["secret_string_wo_version"] == 1
    assert "password" not in json.dumps(planned_of_type(plan_json, "aws_secretsmanager_secret_version"))
    expressions = config(plan_json, "aws_secretsmanager_secret_version.callback_signing_key")
    assert "ephemeral.aws_secretsmanager_random_password.callback_signing_key.random_password" in references(expressions, "secret_string_wo")


# --- issue 21: the approval page's methods, the pending list, its indexes ---


def test_the_pending_list_uses_the_request_authorizer_and_the_tenants_key(plan_json) -> None:
    route = CONTRACT["routes"]["listWorkflows"]
    assert (route["method"], route["path"], route.get("authorizer", True)) == ("GET", "/workflows", True)
    method = planned(plan_json, 'aws_api_gateway_method.proxy["listWorkflows"]')
    assert (method["http_method"], method["authorization"], method["api_key_required"]) == ("GET", "CUSTOM", True)
    assert method["request_parameters"] == {"method.request.header.x-tenant-id": True}
    expressions = config(plan_json, "aws_api_gateway_method.proxy")
    assert "aws_api_gateway_authorizer.tenant.id" in references(expressions, "authorizer_id")


def test_the_token_route_has_get_and_head_without_the_authorizer(plan_json) -> None:
    for key, verb in (("showApprovalPage", "GET"), ("headApprovalPage", "HEAD"), ("sendCallbackWithToken", "POST")):
        method = planned(plan_json, f'aws_api_gateway_method.public_proxy["{key}"]')
        assert (method["http_method"], method["authorization"], method["api_key_required"]) == (verb, "NONE", False)
        assert method["request_parameters"] == {"method.request.path.callbackToken": True}
        assert planned(plan_json, f'aws_api_gateway_integration.proxy["{key}"]')["type"] == "AWS_PROXY"
        settings = planned(plan_json, f'aws_api_gateway_method_settings.public_routes["{key}"]')
        assert settings["method_path"] == f"~1callbacks~1{{callbackToken}}/{verb}"


def test_every_gateway_response_carries_the_security_headers(plan_json) -> None:
    headers = json.loads((SHARED_DIR / "api_gateway" / "gateway_responses.json").read_text())["securityHeaders"]["headers"]
    responses = planned_of_type(plan_json, "aws_api_gateway_gateway_response")
    assert responses
    for address, response in responses.items():
        for name, value in headers.items():
            assert response["response_parameters"][f"gatewayresponse.header.{name}"] == f"'{value}'", address


def test_the_registry_has_the_pending_lists_indexes_partitioned_by_tenant(plan_json) -> None:
    table = planned(plan_json, "aws_dynamodb_table.workflows")
    indexes = {index["name"]: index for index in table["global_secondary_index"]}
    assert set(indexes) == {"byStatus", "open"}
    assert (indexes["byStatus"]["hash_key"], indexes["byStatus"]["range_key"]) == ("statusPartition", "createdKey")
    assert (indexes["open"]["hash_key"], indexes["open"]["range_key"]) == ("openPartition", "createdKey")
    for index in indexes.values():
        # What a listed item shows, never the result (up to 384 KB per item).
        assert index["projection_type"] == "INCLUDE" and "resultJson" not in index["non_key_attributes"]
        assert {"workflowId", "status", "createdAt", "callbackId", "callbackDeadline"} <= set(index["non_key_attributes"])
