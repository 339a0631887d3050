"""``terraform validate`` and ``terraform plan`` of an offline copy, and checks over the plan JSON.

The copy differs from the repository only where the offline provider forces it:
when the mirrored hashicorp/aws is older than 6.25, ``durable_config`` and
``tenancy_config`` are removed and the version constraint is pinned to the
mirrored one (see ``tfworkspace.py``); test_static.py checks those two blocks.
The provider is configured with fake credentials and every skip_* flag: the
plan makes no AWS call. Values AWS assigns (ARNs, ids) are unknown in a plan,
so for those the tests check what the configuration references instead; the
moto apply (test_apply_moto.py) checks the resolved values.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from shared.tenants import TenantConfig, tenant_item

from . import hcl
from .conftest import plan_override
from .tfworkspace import NEW_PROVIDER_BLOCKS, SHARED_DIR, Workspace, copy_module

pytestmark = pytest.mark.slow

CONTRACT = json.loads((SHARED_DIR / "api_contract.json").read_text())
REQUEST_SCHEMA = json.loads((SHARED_DIR / CONTRACT["routes"]["startWorkflow"]["requestSchema"]).read_text())
DEMO_TENANTS = json.loads((SHARED_DIR / "demo_tenants.json").read_text())
TENANT_HEADER = CONTRACT["tenantHeader"]
PREFIX = "tenant-durable"
CLOUDWATCH_RETENTION_DAYS = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

GATEWAY_RESPONSES = ("DEFAULT_4XX", "DEFAULT_5XX", "BAD_REQUEST_BODY", "BAD_REQUEST_PARAMETERS", "INTEGRATION_FAILURE",
                     "AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR", "THROTTLED", "QUOTA_EXCEEDED",
                     "MISSING_AUTHENTICATION_TOKEN")
# The method throttle of the token route unless the callback_throttling_* variables
# override it: the stage's default (variables.tf), which the local gateway enforces too.
STAGE_THROTTLING = {"rateLimit": hcl.variables()["throttling_rate_limit"]["default"],
                    "burstLimit": hcl.variables()["throttling_burst_limit"]["default"]}
FUNCTIONS = ("workflow", "api", "authorizer")
PROXY_ROUTES = [key for key, route in CONTRACT["routes"].items() if route["integration"] == "api-proxy"]
# The routes the contract opens ("authorizer": false): POST /callbacks/{callbackToken}.
PUBLIC_ROUTES = [key for key in PROXY_ROUTES if CONTRACT["routes"][key].get("authorizer") is False]
AUTHORIZED_PROXY_ROUTES = [key for key in PROXY_ROUTES if key not in PUBLIC_ROUTES]
WAITING_EVENT = CONTRACT["callbackWaitingEvent"]
COMMON_ENV = {"TENANTS_TABLE_NAME", "WORKFLOWS_TABLE_NAME", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}


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


def planned_data(plan: dict[str, Any], data_type: str) -> dict[str, dict[str, Any]]:
    """The planned reads of a data source type (deferred to apply when they depend on new resources)."""
    return {
        change["address"]: change["change"]["after"]
        for change in plan["resource_changes"]
        if change["type"] == data_type and change["mode"] == "data"
    }


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
    assert "aws_lambda_alias.workflow_live" in declared_instances
    for tenant in DEMO_TENANTS:
        assert f'aws_dynamodb_table_item.demo_tenant["{tenant["tenantId"]}"]' in declared_instances
        assert f'aws_api_gateway_api_key.demo["{tenant["tenantId"]}"]' in declared_instances
    assert {f'aws_api_gateway_method.proxy["{key}"]' for key in AUTHORIZED_PROXY_ROUTES} <= declared_instances
    assert {f'aws_api_gateway_method.public_proxy["{key}"]' for key in PUBLIC_ROUTES} <= declared_instances
    assert {f'aws_api_gateway_integration.proxy["{key}"]' for key in PROXY_ROUTES} <= declared_instances
    # The signing key, the bus, and a queue, rule, policy and target per demo tenant.
    assert {"aws_secretsmanager_secret.callback_signing_key", "aws_secretsmanager_secret_version.callback_signing_key",
            "aws_cloudwatch_event_bus.this"} <= declared_instances
    for tenant in DEMO_TENANTS:
        for kind in ("aws_sqs_queue", "aws_cloudwatch_event_rule", "aws_sqs_queue_policy", "aws_cloudwatch_event_target"):
            assert f'{kind}.callbacks["{tenant["tenantId"]}"]' in declared_instances
    assert {f'aws_api_gateway_gateway_response.json["{kind}"]' for kind in GATEWAY_RESPONSES} <= declared_instances


def test_plan_outputs_are_the_documented_ones(plan_json) -> None:
    assert set(plan_json["output_changes"]) >= {
        "demo_api_keys",
        "export_api_key_command",
        "authorizer_function_name",
        "api_url",
        "start_workflow_curl",
        "workflow_status_curl",
        "send_callback_curl",
        "workflow_alias_arn",
        "workflow_function_name",
        "api_function_name",
        "tenants_table_name",
        "workflows_table_name",
        "event_bus_name",
        "callback_queue_urls",
        "callback_signing_secret_arn",
    }
    assert plan_json["output_changes"]["demo_api_keys"]["after_sensitive"] is True
    outputs = plan_json["planned_values"]["outputs"]
    assert outputs["workflow_function_name"]["value"] == f"{PREFIX}-workflow"
    assert outputs["tenants_table_name"]["value"] == f"{PREFIX}-tenants"
    assert outputs["event_bus_name"]["value"] == f"{PREFIX}-workflow-events"
    # One queue URL per demo tenant (the URLs are known after apply).
    assert set(plan_json["output_changes"]["callback_queue_urls"]["after_unknown"]) == {t["tenantId"] for t in DEMO_TENANTS}


# --- workflow function and alias ---


def test_workflow_function_settings(plan_json) -> None:
    workflow = planned(plan_json, function("workflow"))
    assert workflow["function_name"] == f"{PREFIX}-workflow"
    assert workflow["runtime"] == "python3.13"
    assert workflow["architectures"] == ["arm64"]
    assert workflow["handler"] == "workflow.app.handler"
    assert workflow["publish"] is True
    assert workflow["tracing_config"] == [{"mode": "Active"}]
    assert workflow["logging_config"][0]["log_format"] == "JSON"
    assert workflow["logging_config"][0]["log_group"] == f"/aws/lambda/{PREFIX}-workflow"


def _planned_environment(plan: dict[str, Any], key: str) -> tuple[dict[str, str], bool]:
    """A function's planned variables, and whether the provider left them unknown."""
    change = next(c["change"] for c in plan["resource_changes"] if c["address"] == function(key))
    (environment,) = change["after"]["environment"]
    unknown = change["after_unknown"].get("environment", [{}])[0].get("variables") is True
    return environment.get("variables", {}), unknown


def test_callback_environment_of_the_workflow_and_api_functions(plan_json, plan_workspace) -> None:
    # The secret's ARN and the API id are known after apply only, and the
    # provider then leaves the whole map unknown: the plan says so, the
    # configuration says what goes in (every name src/shared/settings.py
    # reads), and test_apply_moto.py compares the applied values.
    for key in ("workflow", "api"):
        assert _planned_environment(plan_json, key) == ({}, True), key
    expressions = config(plan_json, "aws_lambda_function.function")["environment"][0]
    assert "each.value.environment" in references(expressions, "variables")
    workflow_env = hcl.local("functions")["workflow"]["environment"]
    api_env = hcl.local("functions")["api"]["environment"]
    assert set(workflow_env) == {"TENANT_CACHE_TTL_SECONDS", "CALLBACK_SIGNING_SECRET_NAME", "CALLBACK_BASE_URL", "EVENT_BUS_NAME"}
    assert set(api_env) == {"CALLBACK_SIGNING_SECRET_NAME", "CALLBACK_BASE_URL"}
    assert planned(plan_json, "aws_cloudwatch_event_bus.this")["name"] == plan_workspace.evaluate("local.event_bus_name")


def test_durable_blocks_are_in_the_plan_when_the_provider_knows_them(plan_json, terraform_setup) -> None:
    workflow = planned(plan_json, function("workflow"))
    if terraform_setup.provider_knows_durable_blocks:
        assert workflow["tenancy_config"] == [{"tenant_isolation_mode": "PER_TENANT"}]
        assert workflow["durable_config"][0]["execution_timeout"] == 604800
    else:
        # hashicorp/aws < 6.25: the blocks were stripped from the copy (checked by HCL parse instead).
        assert "tenancy_config" not in workflow and "durable_config" not in workflow


def test_api_function_settings(plan_json) -> None:
    api = planned(plan_json, function("api"))
    assert api["runtime"] == "python3.13"
    assert api["architectures"] == ["arm64"]
    assert api["handler"] == "api.app.handler"
    assert api["timeout"] <= 29


def test_authorizer_function_settings(plan_json) -> None:
    authorizer = planned(plan_json, function("authorizer"))
    assert authorizer["runtime"] == "python3.13"
    assert authorizer["architectures"] == ["arm64"]
    assert authorizer["handler"] == "authorizer.app.handler"
    assert authorizer["environment"][0]["variables"] == {
        "TENANTS_TABLE_NAME": f"{PREFIX}-tenants",
        "WORKFLOWS_TABLE_NAME": f"{PREFIX}-workflows",
        "POWERTOOLS_SERVICE_NAME": f"{PREFIX}-authorizer",
        "POWERTOOLS_METRICS_NAMESPACE": "TenantDurableWorkflow",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_alias_live_follows_the_published_version(plan_json) -> None:
    assert planned(plan_json, "aws_lambda_alias.workflow_live")["name"] == "live"
    expressions = config(plan_json, "aws_lambda_alias.workflow_live")
    assert f"{function('workflow')}.version" in references(expressions, "function_version")


# --- DynamoDB ---


def test_tables_keys_billing_recovery_encryption_ttl(plan_json) -> None:
    tenants = planned(plan_json, "aws_dynamodb_table.tenants")
    workflows = planned(plan_json, "aws_dynamodb_table.workflows")
    assert (tenants["hash_key"], tenants.get("range_key")) == ("tenantId", None)
    assert (workflows["hash_key"], workflows["range_key"]) == ("tenantId", "recordId")
    for table in (tenants, workflows):
        assert table["billing_mode"] == "PAY_PER_REQUEST"
        assert table["point_in_time_recovery"][0]["enabled"] is True
        assert table["server_side_encryption"][0]["enabled"] is True
    assert workflows["ttl"] == [{"attribute_name": "expiresAt", "enabled": True}]


def test_demo_tenants_are_seeded_with_their_api_key_hashes(plan_json) -> None:
    # The item holds the hash of a key API Gateway generates, so its value is
    # known only after apply; test_apply_moto.py compares the stored items.
    items = planned_of_type(plan_json, "aws_dynamodb_table_item")
    assert set(items) == {f'aws_dynamodb_table_item.demo_tenant["{tenant["tenantId"]}"]' for tenant in DEMO_TENANTS}
    item_refs = references(config(plan_json, "aws_dynamodb_table_item.demo_tenant"), "item")
    assert "aws_api_gateway_api_key.demo" in item_refs
    assert "local.demo_tenant_items" in item_refs
    keys = planned_of_type(plan_json, "aws_api_gateway_api_key")
    assert {after["name"] for after in keys.values()} == {f"{PREFIX}-{tenant['tenantId']}" for tenant in DEMO_TENANTS}


def _as_read_back(items: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """DynamoDB JSON items as boto3 reads them (numbers as Decimal)."""
    deserializer = TypeDeserializer()
    return {tenant_id: {field: deserializer.deserialize(value) for field, value in item.items()} for tenant_id, item in items.items()}


def test_every_field_of_every_demo_tenant_is_seeded(plan_workspace) -> None:
    # The seeded item (apiKeyHash aside, added at apply) is what the
    # handlers' own writer makes of the tenant's JSON entry, field for field.
    items = _as_read_back(plan_workspace.evaluate("local.demo_tenant_items"))
    assert items == {tenant["tenantId"]: tenant_item(tenant) for tenant in DEMO_TENANTS}
    for tenant in DEMO_TENANTS:
        assert TenantConfig.from_item(items[tenant["tenantId"]]) == TenantConfig.from_item(tenant)


# Fields a tenant may gain: one of every supported type, on one tenant only.
EXTRA_FIELDS = {"heartbeatTimeoutSeconds": 300, "note": "12", "ratio": -0.25, "premium": True, "tags": ["a", "b"], "aliases": []}
UNSUPPORTED_FIELDS = {"limits": {"daily": 1}, "parent": None, "levels": [1, 2], "mixed": ["a", 1]}


@pytest.fixture(scope="module")
def extra_fields_workspace(terraform_setup, tf_env, tmp_path_factory, plan_workspace, plan_endpoint) -> Workspace:
    """A copy whose demo_tenants.json gives the first tenant fields the repository's file does not have."""
    workspace = copy_module(
        tmp_path_factory.mktemp("extra-fields") / "module",
        binary=terraform_setup.binary,
        env=tf_env,
        strip=() if terraform_setup.provider_knows_durable_blocks else NEW_PROVIDER_BLOCKS,
        override=plan_override(terraform_setup.provider_version, plan_endpoint),
    )
    (workspace.path / ".terraform.lock.hcl").write_text((plan_workspace.path / ".terraform.lock.hcl").read_text())
    workspace.run("init", "-input=false", "-no-color")
    return workspace


def _write_demo_tenants(workspace: Workspace, extra: dict[str, Any]) -> list[dict[str, Any]]:
    tenants = [{**DEMO_TENANTS[0], **extra}, *DEMO_TENANTS[1:]]
    (workspace.path / "src" / "shared" / "demo_tenants.json").write_text(json.dumps(tenants))
    return tenants


def test_a_field_added_to_the_demo_tenants_is_seeded_too(extra_fields_workspace) -> None:
    tenants = _write_demo_tenants(extra_fields_workspace, EXTRA_FIELDS)
    items = _as_read_back(extra_fields_workspace.evaluate("local.demo_tenant_items"))
    assert items == {tenant["tenantId"]: tenant_item(tenant) for tenant in tenants}
    assert TenantConfig.from_item(items[tenants[0]["tenantId"]]).heartbeat_timeout_seconds == 300
    # Tenants that differ in their fields still plan (keyed by tenant id).
    extra_fields_workspace.run("plan", "-input=false", "-no-color", "-lock=false")


def test_a_field_dynamodb_cannot_take_as_is_is_refused(extra_fields_workspace) -> None:
    tenant_id = _write_demo_tenants(extra_fields_workspace, UNSUPPORTED_FIELDS)[0]["tenantId"]
    result = extra_fields_workspace.run("plan", "-input=false", "-no-color", "-lock=false", check=False)
    assert result.returncode != 0
    assert "Demo tenant fields must be strings, numbers, booleans or lists of strings" in result.stderr
    for field in UNSUPPORTED_FIELDS:
        assert f"{tenant_id}.{field}" in " ".join(result.stderr.split()), field


# --- REST API: POST /workflow ---


def test_start_method_requires_tenant_header_validator_and_body_model(plan_json) -> None:
    start = CONTRACT["routes"]["startWorkflow"]
    method = planned(plan_json, "aws_api_gateway_method.start_workflow")
    assert method["http_method"] == start["method"]
    assert method["authorization"] == "CUSTOM"
    assert "aws_api_gateway_authorizer.tenant.id" in references(config(plan_json, "aws_api_gateway_method.start_workflow"), "authorizer_id")
    # The key comes from the authorizer (api_key_source AUTHORIZER): the tenant's usage plan applies.
    assert method["api_key_required"] is True
    assert method["request_parameters"] == {f"method.request.header.{TENANT_HEADER}": True}
    assert method["request_models"] == {"application/json": "StartWorkflowRequest"}
    assert "aws_api_gateway_request_validator.body_and_params.id" in references(
        config(plan_json, "aws_api_gateway_method.start_workflow"), "request_validator_id"
    )
    validator = planned(plan_json, "aws_api_gateway_request_validator.body_and_params")
    assert validator["validate_request_body"] is True
    assert validator["validate_request_parameters"] is True


def test_body_model_is_the_shared_schema_verbatim(plan_json) -> None:
    model = planned(plan_json, "aws_api_gateway_model.start_workflow_request")
    assert model["content_type"] == "application/json"
    # The provider normalises JSON whitespace; the content must be the file's.
    assert json.loads(model["schema"]) == REQUEST_SCHEMA


def test_start_integration_invokes_the_alias_asynchronously_with_the_verified_tenant(plan_json) -> None:
    integration = planned(plan_json, "aws_api_gateway_integration.start_workflow")
    assert integration["type"] == "AWS"
    assert integration["integration_http_method"] == "POST"
    assert integration["passthrough_behavior"] == "NEVER"
    assert integration["request_parameters"] == {
        "integration.request.header.X-Amz-Tenant-Id": "context.authorizer.tenantId",
        "integration.request.header.X-Amz-Invocation-Type": "'Event'",
        "integration.request.header.X-Amz-Durable-Execution-Name": "context.authorizer.workflowId",
    }
    assert integration["request_templates"] == {
        "application/json": "{\"workflowId\":\"$context.authorizer.workflowId\",\"request\":$input.json('$')}"
    }
    uri_refs = references(config(plan_json, "aws_api_gateway_integration.start_workflow"), "uri")
    assert "aws_lambda_alias.workflow_live.invoke_arn" in uri_refs
    assert not any(ref.startswith("aws_lambda_function.") for ref in uri_refs)


def test_start_responses_202_only_when_accepted_and_errors_are_json(plan_json) -> None:
    accepted = planned(plan_json, 'aws_api_gateway_integration_response.start_workflow["accepted"]')
    failed = planned(plan_json, 'aws_api_gateway_integration_response.start_workflow["failed"]')
    assert accepted["status_code"] == "202"
    assert accepted.get("selection_pattern") in (None, "")
    assert accepted["response_templates"] == {
        "application/json": '{"workflowId":"$context.authorizer.workflowId","status":"STARTED"}'
    }
    assert failed["status_code"] == "502"
    assert failed["selection_pattern"] == ".+"
    assert json.loads(failed["response_templates"]["application/json"]) == {"message": "The workflow could not be started"}


def test_gateway_responses_return_json_messages(plan_json) -> None:
    responses = {after["response_type"]: after for after in planned_of_type(plan_json, "aws_api_gateway_gateway_response").values()}
    assert set(responses) == set(GATEWAY_RESPONSES)
    for kind, response in responses.items():
        # One fixed body for an unknown route or method; API Gateway's own message for the rest.
        template = '{"message":"Not Found"}' if kind == "MISSING_AUTHENTICATION_TOKEN" else '{"message":$context.error.messageString}'
        assert response["response_templates"] == {"application/json": template}, kind
    # An unknown resource or method (a token anywhere but the path) is 404 like an unknown token, not 403.
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["status_code"] == "404"
    # Every 429 (usage plan, method throttle, daily quota) tells the caller when to retry.
    for kind in ("THROTTLED", "QUOTA_EXCEEDED"):
        assert responses[kind]["status_code"] == "429"
        assert responses[kind]["response_parameters"] == {"gatewayresponse.header.Retry-After": "'1'"}
    assert responses["BAD_REQUEST_BODY"]["status_code"] == "400"
    assert responses["BAD_REQUEST_PARAMETERS"]["status_code"] == "400"
    # An invoke Lambda refuses must not look like success.
    assert responses["INTEGRATION_FAILURE"]["status_code"].startswith("5")
    # An authorizer that cannot decide is a dependency failure to retry: 503 with Retry-After, never 500.
    for kind in ("AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR"):
        assert responses[kind]["status_code"] == "503"
        assert responses[kind]["response_parameters"] == {"gatewayresponse.header.Retry-After": "'1'"}


def test_start_permission_is_scoped_to_alias_and_execution_arn(plan_json) -> None:
    permission = planned(plan_json, "aws_lambda_permission.start_workflow")
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["qualifier"] == "live"
    expressions = config(plan_json, "aws_lambda_permission.start_workflow")
    assert "aws_lambda_alias.workflow_live.name" in references(expressions, "qualifier")
    source = references(expressions, "source_arn")
    assert "aws_api_gateway_rest_api.this.execution_arn" in source
    assert "var.stage_name" in source
    assert "local.start_route.path" in source


# --- REST API: AWS_PROXY routes ---


@pytest.mark.parametrize("route_key", AUTHORIZED_PROXY_ROUTES)
def test_proxy_routes_require_tenant_header_and_use_aws_proxy(plan_json, route_key) -> None:
    route = CONTRACT["routes"][route_key]
    method = planned(plan_json, f'aws_api_gateway_method.proxy["{route_key}"]')
    assert method["http_method"] == route["method"]
    assert method["authorization"] == "CUSTOM"
    assert "aws_api_gateway_authorizer.tenant.id" in references(config(plan_json, "aws_api_gateway_method.proxy"), "authorizer_id")
    assert method["request_parameters"][f"method.request.header.{TENANT_HEADER}"] is True
    if "{workflowId}" in route["path"]:
        assert method["request_parameters"]["method.request.path.workflowId"] is True
    assert "aws_api_gateway_request_validator.params_only.id" in references(
        config(plan_json, "aws_api_gateway_method.proxy"), "request_validator_id"
    )
    _assert_proxies_to_the_api_function(plan_json, route_key)


def test_every_method_but_the_token_route_uses_the_authorizer(plan_json) -> None:
    methods = {**planned_of_type(plan_json, "aws_api_gateway_method")}
    open_methods = {address for address, method in methods.items() if method["authorization"] != "CUSTOM"}
    assert open_methods == {f'aws_api_gateway_method.public_proxy["{key}"]' for key in PUBLIC_ROUTES}
    assert PUBLIC_ROUTES == ["sendCallbackWithToken"]
    assert len(methods) == len(CONTRACT["routes"])


@pytest.mark.parametrize("route_key", PUBLIC_ROUTES)
def test_token_route_has_no_authorizer_and_proxies_to_the_api_function(plan_json, route_key) -> None:
    route = CONTRACT["routes"][route_key]
    method = planned(plan_json, f'aws_api_gateway_method.public_proxy["{route_key}"]')
    assert method["http_method"] == route["method"]
    assert method["authorization"] == "NONE"
    assert method["authorizer_id"] is None
    # No tenant key on this route, so no usage plan: its own method settings throttle it.
    assert method["api_key_required"] is False
    # The token in the path is the credential; no header is required (or read).
    assert method["request_parameters"] == {"method.request.path.callbackToken": True}
    assert "aws_api_gateway_request_validator.params_only.id" in references(
        config(plan_json, "aws_api_gateway_method.public_proxy"), "request_validator_id"
    )
    _assert_proxies_to_the_api_function(plan_json, route_key)


def _assert_proxies_to_the_api_function(plan_json: dict[str, Any], route_key: str) -> None:
    route = CONTRACT["routes"][route_key]
    integration = planned(plan_json, f'aws_api_gateway_integration.proxy["{route_key}"]')
    assert integration["type"] == "AWS_PROXY"
    assert integration["integration_http_method"] == "POST"
    assert f"{function('api')}.invoke_arn" in references(config(plan_json, "aws_api_gateway_integration.proxy"), "uri")
    assert integration["http_method"] == route["method"]
    permission = planned(plan_json, f'aws_lambda_permission.proxy["{route_key}"]')
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["function_name"] == f"{PREFIX}-api"
    assert "aws_api_gateway_rest_api.this.execution_arn" in references(config(plan_json, "aws_lambda_permission.proxy"), "source_arn")


def test_authorizer_is_uncached_request_authorizer_with_scoped_permission(plan_json) -> None:
    authorizer = planned(plan_json, "aws_api_gateway_authorizer.tenant")
    assert authorizer["type"] == "REQUEST"
    # The context carries a per-request workflow id: a cached answer would reuse it.
    assert authorizer["authorizer_result_ttl_in_seconds"] == 0
    assert authorizer["identity_source"] == f"method.request.header.{TENANT_HEADER},method.request.header.{CONTRACT['apiKeyHeader']}"
    assert f"{function('authorizer')}.invoke_arn" in references(config(plan_json, "aws_api_gateway_authorizer.tenant"), "authorizer_uri")
    permission = planned(plan_json, "aws_lambda_permission.authorizer")
    assert permission["principal"] == "apigateway.amazonaws.com"
    source = references(config(plan_json, "aws_lambda_permission.authorizer"), "source_arn")
    assert "aws_api_gateway_rest_api.this.execution_arn" in source
    assert "aws_api_gateway_authorizer.tenant.id" in source


def test_api_resources_follow_the_contract_paths(plan_json) -> None:
    parts = sorted(after["path_part"] for after in planned_of_type(plan_json, "aws_api_gateway_resource").values())
    expected = sorted({segment for route in CONTRACT["routes"].values() for segment in route["path"].strip("/").split("/")})
    assert parts == expected


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
        "data.aws_iam_policy_document.function",
        "data.aws_iam_policy_document.lambda_assume_role",
        "data.aws_iam_policy_document.callback_queue",
        "data.aws_iam_policy_document.dead_letter",
        "data.aws_iam_policy_document.alarm_topic",
    }
    for address, statements in documents.items():
        for statement in statements:
            actions = statement["actions"]["constant_value"]
            assert not any(action.endswith(":*") or action == "*" for action in actions), (address, actions)
            if any(action.startswith(("lambda:", "dynamodb:", "secretsmanager:", "events:", "sqs:")) for action in actions):
                resources = statement["resources"]
                assert "constant_value" not in resources, (address, statement)
                assert resources["references"], (address, statement)


def test_policies_are_attached_from_the_documents(plan_json) -> None:
    # Each role gets its function's document plus its own logs and traces.
    assert "data.aws_iam_policy_document.function" in references(config(plan_json, "aws_iam_role_policy.function"), "policy")
    assert "local.function_policies" in references(config(plan_json, "data.aws_iam_policy_document.function"), "source_policy_documents")
    assert hcl.local("function_policies") == {key: f"${{data.aws_iam_policy_document.{key}.json}}" for key in FUNCTIONS}
    assert set(hcl.local("functions")) == set(FUNCTIONS)
    reads = {address: after for address, after in planned_data(plan_json, "aws_iam_policy_document").items() if "function[" in address}
    assert set(reads) == {f'data.aws_iam_policy_document.function["{key}"]' for key in FUNCTIONS}
    for address, after in reads.items():
        assert [statement["sid"] for statement in after["statement"]] == ["WriteOwnLogs", "WriteTraces"], address


def test_durable_and_callback_actions_target_the_workflow_function(plan_json) -> None:
    documents = _policy_statements(plan_json)

    def statement(address: str, sid: str) -> dict[str, Any]:
        return next(s for s in documents[address] if s["sid"]["constant_value"] == sid)

    checkpoints = statement("data.aws_iam_policy_document.workflow", "DurableExecutionCheckpoints")
    assert set(checkpoints["actions"]["constant_value"]) == {"lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"}
    assert f"{function('workflow')}.arn" in checkpoints["resources"]["references"]
    callbacks = statement("data.aws_iam_policy_document.api", "CompleteWorkflowCallbacks")
    assert set(callbacks["actions"]["constant_value"]) == {
        "lambda:SendDurableExecutionCallbackSuccess",
        "lambda:SendDurableExecutionCallbackFailure",
        "lambda:SendDurableExecutionCallbackHeartbeat",
    }
    assert f"{function('workflow')}.arn" in callbacks["resources"]["references"]
    reads = statement("data.aws_iam_policy_document.api", "ReadWorkflowExecutions")
    assert set(reads["actions"]["constant_value"]) == {"lambda:GetDurableExecution", "lambda:GetDurableExecutionHistory"}
    assert f"{function('workflow')}.arn" in reads["resources"]["references"]


def _statements_granting(plan: dict[str, Any], action: str) -> dict[str, list[list[str]]]:
    """For each policy document: the resource references of its statements that allow ``action``."""
    found: dict[str, list[list[str]]] = {}
    for address, statements in _policy_statements(plan).items():
        for statement in statements:
            if action in statement["actions"]["constant_value"]:
                found.setdefault(address, []).append(statement["resources"]["references"])
    return found


def test_signing_key_is_readable_by_the_workflow_and_api_functions_only(plan_json) -> None:
    secret = ["aws_secretsmanager_secret.callback_signing_key.arn", "aws_secretsmanager_secret.callback_signing_key"]
    assert _statements_granting(plan_json, "secretsmanager:GetSecretValue") == {
        "data.aws_iam_policy_document.workflow": [secret],
        "data.aws_iam_policy_document.api": [secret],
    }


def test_tenants_table_is_read_by_the_functions_that_check_a_tenant(plan_json) -> None:
    # The authorizer checks keys; the api function's token route refuses tokens
    # of a tenant that is not ACTIVE. Neither may write it.
    table = [["aws_dynamodb_table.tenants.arn", "aws_dynamodb_table.tenants"]]
    readers = _statements_granting(plan_json, "dynamodb:GetItem")
    assert readers["data.aws_iam_policy_document.authorizer"] == table
    assert table[0] in readers["data.aws_iam_policy_document.api"]
    assert not _statements_granting(plan_json, "dynamodb:PutItem").get("data.aws_iam_policy_document.api")


def test_only_the_workflow_function_puts_events_and_only_on_the_bus(plan_json) -> None:
    assert _statements_granting(plan_json, "events:PutEvents") == {
        "data.aws_iam_policy_document.workflow": [["aws_cloudwatch_event_bus.this.arn", "aws_cloudwatch_event_bus.this"]],
    }


# --- callback tokens and notification ---


def test_signing_key_secret_is_written_once_and_never_planned(plan_json) -> None:
    secret = planned(plan_json, "aws_secretsmanager_secret.callback_signing_key")
    assert secret["name_prefix"] == f"{PREFIX}-callback-signing-key-"
    assert secret["recovery_window_in_days"] == 7
    version = planned(plan_json, "aws_secretsmanager_secret_version.callback_signing_key")
    # Write-only: the key is in neither the plan nor the state.
    assert version["secret_string"] is None and version["secret_binary"] is None
    assert version["secret_string_wo"] is None
    assert version["secret_string_wo_version"] == 1
    assert "password" not in json.dumps(planned_of_type(plan_json, "aws_secretsmanager_secret_version"))
    expressions = config(plan_json, "aws_secretsmanager_secret_version.callback_signing_key")
    assert "ephemeral.aws_secretsmanager_random_password.callback_signing_key.random_password" in references(expressions, "secret_string_wo")


def test_event_bus_and_a_rule_per_tenant_matching_only_its_waiting_events(plan_json) -> None:
    bus = planned(plan_json, "aws_cloudwatch_event_bus.this")
    assert bus["name"] == f"{PREFIX}-workflow-events"
    rules = planned_of_type(plan_json, "aws_cloudwatch_event_rule")
    assert set(rules) == {f'aws_cloudwatch_event_rule.callbacks["{t["tenantId"]}"]' for t in DEMO_TENANTS}
    for tenant in DEMO_TENANTS:
        rule = rules[f'aws_cloudwatch_event_rule.callbacks["{tenant["tenantId"]}"]']
        assert rule["event_bus_name"] == bus["name"]
        assert rule["name"] == f"{PREFIX}-callbacks-{tenant['tenantId']}"
        assert json.loads(rule["event_pattern"]) == {
            "source": [WAITING_EVENT["source"]],
            "detail-type": [WAITING_EVENT["detailType"]],
            "detail": {"tenantId": [tenant["tenantId"]]},
        }


def test_a_queue_per_tenant_encrypted_and_named_by_the_convention(plan_json) -> None:
    # (The other queue, the workflow's dead-letter queue: test_plan_production.py.)
    queues = {address: queue for address, queue in planned_of_type(plan_json, "aws_sqs_queue").items()
              if address.startswith("aws_sqs_queue.callbacks[")}
    assert {address: queue["name"] for address, queue in queues.items()} == {
        f'aws_sqs_queue.callbacks["{t["tenantId"]}"]': f"{PREFIX}-callbacks-{t['tenantId']}" for t in DEMO_TENANTS
    }
    for address, queue in queues.items():
        assert queue["sqs_managed_sse_enabled"] is True or queue["kms_master_key_id"], address
        assert queue["fifo_queue"] is False, address


def test_each_queue_admits_eventbridge_for_its_own_rule_only(plan_json) -> None:
    (statement,) = _policy_statements(plan_json)["data.aws_iam_policy_document.callback_queue"]
    assert statement["actions"]["constant_value"] == ["sqs:SendMessage"]
    assert statement.get("effect", {}).get("constant_value", "Allow") == "Allow"
    # A reference with a dynamic key loses its attribute in the plan JSON: the
    # plan shows which resource, the .tf file which attribute of it.
    assert statement["resources"]["references"] == ["aws_sqs_queue.callbacks", "each.key"]
    (document,) = [body for kind, name, body in hcl.blocks("data") if (kind, name) == ("aws_iam_policy_document", "callback_queue")]
    (written,) = document["statement"]
    assert written["resources"] == ["${aws_sqs_queue.callbacks[each.key].arn}"]
    assert written["condition"][0]["values"] == ["${aws_cloudwatch_event_rule.callbacks[each.key].arn}"]
    (principals,) = statement["principals"]
    assert (principals["type"]["constant_value"], principals["identifiers"]["constant_value"]) == ("Service", ["events.amazonaws.com"])
    (condition,) = statement["condition"]
    assert condition["test"]["constant_value"] == "ArnEquals"
    assert condition["variable"]["constant_value"] == "aws:SourceArn"
    assert condition["values"]["references"] == ["aws_cloudwatch_event_rule.callbacks", "each.key"]
    policies = planned_of_type(plan_json, "aws_sqs_queue_policy")
    assert set(policies) == {f'aws_sqs_queue_policy.callbacks["{t["tenantId"]}"]' for t in DEMO_TENANTS}
    expressions = config(plan_json, "aws_sqs_queue_policy.callbacks")
    assert references(expressions, "policy") == ["data.aws_iam_policy_document.callback_queue", "each.key"]
    assert references(expressions, "queue_url") == ["aws_sqs_queue.callbacks", "each.key"]
    written = hcl.resource("main.tf", "aws_sqs_queue_policy", "callbacks")
    assert (written["policy"], written["queue_url"]) == ("${data.aws_iam_policy_document.callback_queue[each.key].json}", "${aws_sqs_queue.callbacks[each.key].id}")


def test_each_rule_targets_its_tenants_queue(plan_json) -> None:
    targets = planned_of_type(plan_json, "aws_cloudwatch_event_target")
    assert set(targets) == {f'aws_cloudwatch_event_target.callbacks["{t["tenantId"]}"]' for t in DEMO_TENANTS}
    for address, target in targets.items():
        assert target["event_bus_name"] == f"{PREFIX}-workflow-events", address
    expressions = config(plan_json, "aws_cloudwatch_event_target.callbacks")
    assert references(expressions, "arn") == ["aws_sqs_queue.callbacks", "each.key"]
    assert references(expressions, "rule") == ["aws_cloudwatch_event_rule.callbacks", "each.key"]
    written = hcl.resource("main.tf", "aws_cloudwatch_event_target", "callbacks")
    assert (written["arn"], written["rule"]) == ("${aws_sqs_queue.callbacks[each.key].arn}", "${aws_cloudwatch_event_rule.callbacks[each.key].name}")


# --- logs and stage ---


def test_every_log_group_has_a_retention(plan_json) -> None:
    groups = planned_of_type(plan_json, "aws_cloudwatch_log_group")
    assert len(groups) == 5
    for address, group in groups.items():
        assert group["retention_in_days"] in CLOUDWATCH_RETENTION_DAYS, address
        assert group["retention_in_days"] == 14, address


def test_stage_has_json_access_logs_tracing_and_throttling(plan_json) -> None:
    stage = planned(plan_json, "aws_api_gateway_stage.this")
    assert stage["stage_name"] == "v1"
    # No X-Ray on the stage: its segments record the full URL, the token's on the token route.
    assert stage["xray_tracing_enabled"] is False
    (access,) = stage["access_log_settings"]
    access_format = json.loads(access["format"])
    assert access_format["requestId"] == "$context.requestId"
    assert access_format["status"] == "$context.status"
    assert access_format["tenantId"] == "$context.authorizer.tenantId"
    # Never the request path: on POST /callbacks/{callbackToken} it holds the token.
    assert access_format["resourcePath"] == "$context.resourcePath"
    assert not any("$context.path" in value for value in access_format.values()), access_format
    assert 'aws_cloudwatch_log_group.this["api_access"].arn' in references(
        config(plan_json, "aws_api_gateway_stage.this")["access_log_settings"][0], "destination_arn"
    )
    settings = planned(plan_json, "aws_api_gateway_method_settings.all")
    assert settings["method_path"] == "*/*"
    (values,) = settings["settings"]
    assert values["throttling_rate_limit"] > 0
    assert values["throttling_burst_limit"] >= 1
    assert values["logging_level"] == "ERROR"
    assert values["caching_enabled"] is False
    assert values["data_trace_enabled"] is False
