"""A real ``terraform apply`` against moto's server on loopback, read back with boto3.

Then a second plan must show no changes, and ``terraform destroy`` must leave
nothing behind. The tests run in file order: the apply is shared (module
fixture), the no-change plan and the destroy come last.

This is the layer for what is created and wired: resolved ARNs, ids and names,
the functions' environments, each role's complete grants, the API as stored.
What a plan alone shows is in test_plan*.py, the HCL form in test_static.py.

What moto (5.2.5) cannot represent, and so is not applied here:

* ``tenancy_config`` and ``durable_config``: moto's Lambda has neither tenant
  isolation nor durable execution; it would drop the settings and every later
  plan would want to add them again. Both blocks are removed from this copy
  (as for the offline provider), and are checked by test_static.py (HCL) and
  test_plan.py (plan, when the provider knows them).
* ``logging_config`` and ``dead_letter_config`` of the functions: moto drops
  LoggingConfig and DeadLetterConfig, so they are removed from this copy too;
  test_plan.py and test_plan_production.py check them.
* Behaviour: moto stores the API (VTL templates, request validators, gateway
  responses, permissions, IAM policies, queue policies) but does not execute
  or enforce it, and runs no function code. It does route events: an event put
  on the bus reaches the queue of the rule that matches it (tested below), but
  without checking the queue policy. What a request through the deployed API returns
  is tested against the local stack (tests/local), not here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
import requests
from moto.server import ThreadedMotoServer

from provisioner.resources import TenantResources, callback_queue_policy

from . import hcl
from .conftest import free_port
from .tfworkspace import FAKE_CREDENTIALS, NEW_PROVIDER_BLOCKS, SHARED_DIR, Workspace, copy_module, provider_override

pytestmark = pytest.mark.slow

CONTRACT = json.loads((SHARED_DIR / "api_contract.json").read_text())
DEMO_TENANTS = json.loads((SHARED_DIR / "demo_tenants.json").read_text())
TENANT_HEADER = CONTRACT["tenantHeader"]
REGION = hcl.variables()["aws_region"]["default"]
PREFIX = hcl.variables()["name_prefix"]["default"]
STAGE = hcl.variables()["stage_name"]["default"]
RETENTION_DAYS = hcl.variables()["log_retention_days"]["default"]
MOTO_ACCOUNT_ID = "123456789012"
# Every service the module touches, sent to moto.
MOTO_SERVICES = ("apigateway", "cloudwatch", "dynamodb", "events", "iam", "lambda", "logs", "secretsmanager", "sqs", "sts")
PROXY_ROUTES = [key for key, route in CONTRACT["routes"].items() if route["integration"] == "api-proxy"]
PUBLIC_ROUTES = [key for key in PROXY_ROUTES if CONTRACT["routes"][key].get("authorizer") is False]
WAITING_EVENT = CONTRACT["callbackWaitingEvent"]
APIGW_CLOUDWATCH_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's server on 127.0.0.1 with AWS managed IAM policies loaded."""
    previous = os.environ.get("MOTO_IAM_LOAD_MANAGED_POLICIES")
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        # Start from empty backends, rebuilt now that managed policies are on.
        requests.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()
        yield endpoint
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)
        else:
            os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = previous


@pytest.fixture(scope="module")
def aws(moto_endpoint: str):
    """boto3 clients bound to the moto server."""

    def client(service: str):
        return boto3.client(
            service,
            endpoint_url=moto_endpoint,
            region_name=REGION,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    return client


@pytest.fixture(scope="module")
def moto_workspace(terraform_setup, tf_env, tmp_path_factory, plan_workspace, moto_endpoint) -> Workspace:
    """An initialised copy whose provider sends every call to moto."""
    workspace = copy_module(
        tmp_path_factory.mktemp("moto") / "module",
        binary=terraform_setup.binary,
        env=tf_env,
        strip=(*NEW_PROVIDER_BLOCKS, "logging_config", "dead_letter_config"),
        override=provider_override(terraform_setup.provider_version, endpoint=moto_endpoint, endpoint_services=MOTO_SERVICES),
    )
    functions = len(hcl.resources_of_type("aws_lambda_function"))
    assert workspace.stripped == {"durable_config": 1, "tenancy_config": 1, "logging_config": functions,
                                  "dead_letter_config": functions}, workspace.stripped
    # Same lock file as the plan copy: the provider comes from the shared plugin cache.
    (workspace.path / ".terraform.lock.hcl").write_text((plan_workspace.path / ".terraform.lock.hcl").read_text())
    workspace.run("init", "-input=false", "-no-color")
    return workspace


@pytest.fixture(scope="module")
def outputs(moto_workspace: Workspace, aws) -> dict[str, Any]:
    """Apply once for the module; the outputs as plain values."""
    assert aws("iam").get_policy(PolicyArn=APIGW_CLOUDWATCH_POLICY)["Policy"]["Arn"] == APIGW_CLOUDWATCH_POLICY
    moto_workspace.run("apply", "-input=false", "-no-color", "-auto-approve")
    raw = json.loads(moto_workspace.run("output", "-json").stdout)
    return {name: output["value"] for name, output in raw.items()}


@pytest.fixture(scope="module")
def rest_api(outputs, aws) -> dict[str, Any]:
    """The REST API: id and resources by path."""
    api_id = outputs["rest_api_id"]
    resources = aws("apigateway").get_resources(restApiId=api_id, limit=500)["items"]
    return {"id": api_id, "resources": {resource["path"]: resource for resource in resources}}


def _route(route_key: str) -> dict[str, str]:
    return CONTRACT["routes"][route_key]


# --- REST API ---


def test_rest_api_resources_and_methods_match_the_contract(rest_api) -> None:
    expected_paths = {"/"} | {route["path"] for route in CONTRACT["routes"].values()}
    expected_paths |= {"/" + route["path"].strip("/").split("/")[0] for route in CONTRACT["routes"].values()}
    assert set(rest_api["resources"]) == expected_paths
    for route in CONTRACT["routes"].values():
        assert route["method"] in rest_api["resources"][route["path"]].get("resourceMethods", {}), route


@pytest.fixture(scope="module")
def authorizer(rest_api, aws) -> dict[str, Any]:
    (found,) = aws("apigateway").get_authorizers(restApiId=rest_api["id"])["items"]
    return found


def test_authorizer_is_an_uncached_request_authorizer_on_the_authorizer_function(authorizer, outputs, aws) -> None:
    assert authorizer["type"] == "REQUEST"
    assert authorizer.get("authorizerResultTtlInSeconds", 0) == 0
    assert authorizer["identitySource"] == f"method.request.header.{TENANT_HEADER},method.request.header.{CONTRACT['apiKeyHeader']}"
    function_arn = aws("lambda").get_function(FunctionName=outputs["function_names"]["authorizer"])["Configuration"]["FunctionArn"]
    assert authorizer["authorizerUri"] == f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{function_arn}/invocations"


def test_authorizer_permission_is_scoped_to_this_authorizer(rest_api, authorizer, outputs, aws) -> None:
    policy = json.loads(aws("lambda").get_policy(FunctionName=outputs["function_names"]["authorizer"])["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == (
        f"arn:aws:execute-api:{REGION}:{MOTO_ACCOUNT_ID}:{rest_api['id']}/authorizers/{authorizer['id']}"
    )


def test_every_route_but_the_token_route_requires_the_authorizer(rest_api, authorizer, aws) -> None:
    apigw = aws("apigateway")
    assert PUBLIC_ROUTES == ["sendCallbackWithToken", "showApprovalPage", "headApprovalPage"]
    for key, route in CONTRACT["routes"].items():
        method = apigw.get_method(restApiId=rest_api["id"], resourceId=rest_api["resources"][route["path"]]["id"], httpMethod=route["method"])
        if key in PUBLIC_ROUTES:
            assert method["authorizationType"] == "NONE", route
            assert not method.get("authorizerId"), route
            assert method.get("apiKeyRequired") is False, route
        elif route["integration"] == "control-proxy":
            # The admin API: SigV4 only (execute-api:Invoke), never a tenant key, no usage plan.
            assert method["authorizationType"] == "AWS_IAM", route
            assert not method.get("authorizerId"), route
            assert method.get("apiKeyRequired") is False, route
            integration = apigw.get_integration(restApiId=rest_api["id"], resourceId=rest_api["resources"][route["path"]]["id"],
                                                httpMethod=route["method"])
            assert integration["type"] == "AWS_PROXY" and f":function:{PREFIX}-control/" in integration["uri"], integration
        else:
            assert method["authorizationType"] == "CUSTOM", route
            assert method["authorizerId"] == authorizer["id"], route
            # The authorizer returns the tenant's key: its usage plan applies.
            assert method["apiKeyRequired"] is True, route


def _runtime_resources(outputs, aws) -> dict[str, list[Any]]:
    return {
        "keys": aws("apigateway").get_api_keys()["items"],
        "items": aws("dynamodb").scan(TableName=outputs["tenants_table_name"])["Items"],
        "rules": aws("events").list_rules(EventBusName=outputs["event_bus_name"])["Rules"],
        "queues": aws("sqs").list_queues(QueueNamePrefix=outputs["callback_queue_name_prefix"]).get("QueueUrls", []),
    }


def test_terraform_creates_no_tenant(provisioned) -> None:
    # Tenants come and go at runtime (the admin API and the provisioner): no item, no
    # key, no rule, no tenant queue after an apply, so no key is ever in the state.
    assert provisioned["before"] == {"keys": [], "items": [], "rules": [], "queues": []}


def test_start_method_requires_tenant_header_and_validates_body_and_params(rest_api, aws) -> None:
    apigw = aws("apigateway")
    route = _route("startWorkflow")
    method = apigw.get_method(restApiId=rest_api["id"], resourceId=rest_api["resources"][route["path"]]["id"], httpMethod=route["method"])
    assert method["apiKeyRequired"] is True
    assert method["requestParameters"] == {f"method.request.header.{TENANT_HEADER}": True}
    assert method["requestModels"] == {"application/json": "StartWorkflowRequest"}
    validator = apigw.get_request_validator(restApiId=rest_api["id"], requestValidatorId=method["requestValidatorId"])
    assert validator["validateRequestBody"] is True
    assert validator["validateRequestParameters"] is True
    model = apigw.get_model(restApiId=rest_api["id"], modelName="StartWorkflowRequest")
    schema_file = SHARED_DIR / route["requestSchema"]
    assert json.loads(model["schema"]) == json.loads(schema_file.read_text())


def test_start_integration_targets_the_live_alias_with_async_tenant_headers(rest_api, outputs, aws) -> None:
    route = _route("startWorkflow")
    integration = aws("apigateway").get_integration(
        restApiId=rest_api["id"], resourceId=rest_api["resources"][route["path"]]["id"], httpMethod=route["method"]
    )
    assert integration["type"] == "AWS"
    assert integration["httpMethod"] == "POST"
    assert integration["passthroughBehavior"] == "NEVER"
    assert integration["uri"] == (
        f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{outputs['workflow_alias_arn']}/invocations"
    )
    assert outputs["workflow_alias_arn"].endswith(f":function:{PREFIX}-workflow:live")
    assert integration["requestParameters"] == {
        "integration.request.header.X-Amz-Tenant-Id": "context.authorizer.tenantId",
        "integration.request.header.X-Amz-Invocation-Type": "'Event'",
        "integration.request.header.X-Amz-Durable-Execution-Name": "context.authorizer.workflowId",
    }
    assert integration["requestTemplates"] == {
        "application/json": "{\"workflowId\":\"$context.authorizer.workflowId\",\"request\":$input.json('$')}"
    }
    responses = integration["integrationResponses"]
    assert set(responses) == {"202", "502"}
    assert not responses["202"].get("selectionPattern")
    assert responses["202"]["responseTemplates"] == {
        "application/json": '{"workflowId":"$context.authorizer.workflowId","status":"STARTED"}'
    }
    assert responses["502"]["selectionPattern"] == ".+"
    assert json.loads(responses["502"]["responseTemplates"]["application/json"]) == {"message": "The workflow could not be started"}


@pytest.mark.parametrize("route_key", PROXY_ROUTES)
def test_proxy_routes_require_their_parameters_and_proxy_to_the_api_function(rest_api, route_key, aws) -> None:
    apigw = aws("apigateway")
    route = _route(route_key)
    resource_id = rest_api["resources"][route["path"]]["id"]
    method = apigw.get_method(restApiId=rest_api["id"], resourceId=resource_id, httpMethod=route["method"])
    path_parameters = {f"method.request.path.{name}": True for name in re.findall(r"{([^}]+)}", route["path"])}
    if route_key in PUBLIC_ROUTES:
        # The token route needs no header: the token in the path is the credential.
        assert method["requestParameters"] == {"method.request.path.callbackToken": True} == path_parameters
    else:
        assert method["requestParameters"] == {f"method.request.header.{TENANT_HEADER}": True, **path_parameters}
    validator = apigw.get_request_validator(restApiId=rest_api["id"], requestValidatorId=method["requestValidatorId"])
    # moto leaves a false flag out.
    assert (validator["validateRequestParameters"], validator.get("validateRequestBody", False)) == (True, False)
    integration = apigw.get_integration(restApiId=rest_api["id"], resourceId=resource_id, httpMethod=route["method"])
    assert integration["type"] == "AWS_PROXY"
    assert integration["httpMethod"] == "POST"
    api_function_arn = aws("lambda").get_function(FunctionName=f"{PREFIX}-api")["Configuration"]["FunctionArn"]
    assert integration["uri"] == f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{api_function_arn}/invocations"


SECURITY_HEADERS = {f"gatewayresponse.header.{name}": f"'{value}'" for name, value in json.loads(
    (SHARED_DIR / "api_gateway" / "gateway_responses.json").read_text())["securityHeaders"]["headers"].items()}


def test_gateway_responses_are_json_messages(rest_api, aws) -> None:
    apigw = aws("apigateway")
    kinds = json.loads((SHARED_DIR / "api_gateway" / "gateway_responses.json").read_text())["responses"]
    assert set(kinds) >= {"DEFAULT_4XX", "DEFAULT_5XX", "BAD_REQUEST_BODY", "BAD_REQUEST_PARAMETERS", "INTEGRATION_FAILURE",
                          "AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR", "THROTTLED", "QUOTA_EXCEEDED",
                          "MISSING_AUTHENTICATION_TOKEN"}
    responses = {kind: apigw.get_gateway_response(restApiId=rest_api["id"], responseType=kind) for kind in kinds}
    for kind, response in responses.items():
        # One fixed body for an unknown route or method; API Gateway's own message for the rest.
        template = '{"message":"Not Found"}' if kind == "MISSING_AUTHENTICATION_TOKEN" else '{"message":$context.error.messageString}'
        assert response["responseTemplates"] == {"application/json": template}, kind
    # An unknown resource or method (a token anywhere but the path) is 404 like an unknown token, not 403.
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"
    assert responses["BAD_REQUEST_BODY"]["statusCode"] == responses["BAD_REQUEST_PARAMETERS"]["statusCode"] == "400"
    # An invoke Lambda refuses must not look like success.
    assert responses["INTEGRATION_FAILURE"]["statusCode"] == "502"
    # Every 429 (usage plan, method throttle, daily quota) tells the caller when to retry; an
    # authorizer that cannot decide is a dependency failure to retry: 503 with Retry-After, never 500.
    for kind, status in (("AUTHORIZER_FAILURE", "503"), ("AUTHORIZER_CONFIGURATION_ERROR", "503"),
                         ("THROTTLED", "429"), ("QUOTA_EXCEEDED", "429")):
        assert responses[kind]["statusCode"] == status, kind
        assert responses[kind]["responseParameters"] == {"gatewayresponse.header.Retry-After": "'1'",
                                                         **SECURITY_HEADERS}, kind
    # Every gateway response carries the approval page's security headers (the token route's 404 and 429 too).
    for kind, response in responses.items():
        assert SECURITY_HEADERS.items() <= response["responseParameters"].items(), kind


def test_start_permission_allows_only_this_api_route_on_the_alias(rest_api, outputs, aws) -> None:
    policy = json.loads(aws("lambda").get_policy(FunctionName=f"{PREFIX}-workflow", Qualifier="live")["Policy"])
    (statement,) = [s for s in policy["Statement"] if s["Sid"] == "AllowApiGatewayStartWorkflow"]
    route = _route("startWorkflow")
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"] == outputs["workflow_alias_arn"]
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == (
        f"arn:aws:execute-api:{REGION}:{MOTO_ACCOUNT_ID}:{rest_api['id']}/{STAGE}/{route['method']}{route['path']}"
    )


def test_api_function_permissions_cover_every_proxy_route(rest_api, outputs, aws) -> None:
    policy = json.loads(aws("lambda").get_policy(FunctionName=outputs["function_names"]["api"])["Policy"])
    for statement in policy["Statement"]:
        assert (statement["Principal"], statement["Action"]) == ({"Service": "apigateway.amazonaws.com"}, "lambda:InvokeFunction")
    arns = {statement["Sid"]: statement["Condition"]["ArnLike"]["AWS:SourceArn"] for statement in policy["Statement"]}
    execute_api = f"arn:aws:execute-api:{REGION}:{MOTO_ACCOUNT_ID}:{rest_api['id']}/{STAGE}"
    assert arns == {
        f"AllowApiGateway-{key}": f"{execute_api}/{_route(key)['method']}{re.sub(r'{[^}]+}', '*', _route(key)['path'])}" for key in PROXY_ROUTES
    }
    assert arns["AllowApiGateway-sendCallbackWithToken"] == f"{execute_api}/POST/callbacks/*"
    assert arns["AllowApiGateway-showApprovalPage"] == f"{execute_api}/GET/callbacks/*"
    assert arns["AllowApiGateway-headApprovalPage"] == f"{execute_api}/HEAD/callbacks/*"
    assert arns["AllowApiGateway-listWorkflows"] == f"{execute_api}/GET/workflows"


def test_stage_has_access_logs_tracing_and_throttling(rest_api, aws) -> None:
    stage = aws("apigateway").get_stage(restApiId=rest_api["id"], stageName=STAGE)
    access_group = f"/aws/apigateway/{PREFIX}-api/{STAGE}/access"
    assert stage["accessLogSettings"]["destinationArn"] == f"arn:aws:logs:{REGION}:{MOTO_ACCOUNT_ID}:log-group:{access_group}"
    access_format = json.loads(stage["accessLogSettings"]["format"])
    assert access_format["requestId"] == "$context.requestId"
    assert access_format["status"] == "$context.status"
    assert access_format["tenantId"] == "$context.authorizer.tenantId"
    # The path of POST /callbacks/{callbackToken} holds the token: never logged.
    assert access_format["resourcePath"] == "$context.resourcePath"
    assert "$context.path" not in stage["accessLogSettings"]["format"]
    # Off: an X-Ray segment of the stage records the full URL, on the token route the token.
    assert stage.get("tracingEnabled", False) is False  # moto leaves the field out when false
    settings = stage["methodSettings"]["*/*"]
    assert settings["throttlingRateLimit"] == hcl.variables()["throttling_rate_limit"]["default"]
    assert settings["throttlingBurstLimit"] == hcl.variables()["throttling_burst_limit"]["default"]
    assert settings["loggingLevel"] == "ERROR"
    # No cache (answers are per request) and no full request logs (the token route's path is a credential).
    assert (settings.get("cachingEnabled", False), settings.get("dataTraceEnabled", False)) == (False, False)


def test_api_gateway_account_uses_the_logging_role(outputs, aws) -> None:
    account = aws("apigateway").get_account()
    assert account["cloudwatchRoleArn"] == f"arn:aws:iam::{MOTO_ACCOUNT_ID}:role/{PREFIX}-apigw-cloudwatch"
    attached = aws("iam").list_attached_role_policies(RoleName=f"{PREFIX}-apigw-cloudwatch")["AttachedPolicies"]
    assert [policy["PolicyArn"] for policy in attached] == [APIGW_CLOUDWATCH_POLICY]


# --- DynamoDB ---


def test_tables_have_keys_ttl_recovery_and_encryption(outputs, aws) -> None:
    dynamodb = aws("dynamodb")
    tenants = dynamodb.describe_table(TableName=outputs["tenants_table_name"])["Table"]
    workflows = dynamodb.describe_table(TableName=outputs["workflows_table_name"])["Table"]
    assert tenants["KeySchema"] == [{"AttributeName": "tenantId", "KeyType": "HASH"}]
    assert workflows["KeySchema"] == [
        {"AttributeName": "tenantId", "KeyType": "HASH"},
        {"AttributeName": "recordId", "KeyType": "RANGE"},
    ]
    for table in (tenants, workflows):
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["SSEDescription"]["Status"] == "ENABLED"
        backups = dynamodb.describe_continuous_backups(TableName=table["TableName"])["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    # The pending list's indexes: each partitioned by the tenant (GET /workflows, one Query per page).
    indexes = {index["IndexName"]: index for index in workflows["GlobalSecondaryIndexes"]}
    assert {name: [key["AttributeName"] for key in index["KeySchema"]] for name, index in indexes.items()} == {
        "byStatus": ["statusPartition", "createdKey"], "open": ["openPartition", "createdKey"]}
    assert {index["Projection"]["ProjectionType"] for index in indexes.values()} == {"INCLUDE"}
    ttl = dynamodb.describe_time_to_live(TableName=outputs["workflows_table_name"])["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")


# --- Lambda ---


def _deployed_environment(key: str, outputs: dict[str, Any]) -> dict[str, str]:
    """What src/functions.json's environment of function ``key`` should resolve to in this deployment."""
    definitions = hcl.function_definitions()
    variables = hcl.variables()
    settings = {
        "function_name": outputs["function_names"][key],
        "tenants_table_name": outputs["tenants_table_name"],
        "workflows_table_name": outputs["workflows_table_name"],
        "callback_signing_secret_arn": outputs["callback_signing_secret_arn"],
        # The callback base URL is the stage's invoke URL, built without reading the stage.
        "callback_base_url": outputs["api_url"],
        "event_bus_name": outputs["event_bus_name"],
        "provisioner_function_name": outputs["function_names"]["provisioner"],
        # The router and the start queues (router.tf, main.tf).
        "workflow_live_function": f"{outputs['function_names']['workflow']}:live",
        "router_dead_letter_queue_url": outputs["router_dead_letter_queue_url"],
        "start_queue_visibility_timeout_seconds": 6 * variables["api_timeout_seconds"]["default"],
    }
    environment = {**definitions["environment"], **definitions["functions"][key].get("environment", {})}
    return {name: str(settings[setting] if setting in settings else variables[setting]["default"])
            for name, setting in environment.items()}


@pytest.mark.parametrize("key", ["workflow", "api", "authorizer", "control", "provisioner", "router"])
def test_each_function_runs_as_its_role_with_the_environment_functions_json_names(outputs, aws, key) -> None:
    # (Handler, memory, timeout and flags as planned: test_plan.py.)
    config = aws("lambda").get_function_configuration(FunctionName=outputs["function_names"][key])
    assert config["Role"] == f"arn:aws:iam::{MOTO_ACCOUNT_ID}:role/{PREFIX}-{key}"
    assert config["Environment"]["Variables"] == _deployed_environment(key, outputs)
    # Powertools' service dimension is the function's name, which the alarms and dashboard select.
    assert config["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == f"{PREFIX}-{key}"


def test_the_authorizer_gets_no_callback_setting(outputs, aws) -> None:
    config = aws("lambda").get_function_configuration(FunctionName=outputs["function_names"]["authorizer"])
    assert not {"CALLBACK_SIGNING_SECRET_NAME", "CALLBACK_BASE_URL", "EVENT_BUS_NAME"} & set(config["Environment"]["Variables"])


def test_live_alias_points_at_the_published_version(outputs, aws) -> None:
    lam = aws("lambda")
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=outputs["function_names"]["workflow"])["Versions"]]
    assert outputs["workflow_function_version"] in versions and outputs["workflow_function_version"] != "$LATEST"
    alias = lam.get_alias(FunctionName=outputs["function_names"]["workflow"], Name="live")
    assert alias["FunctionVersion"] == outputs["workflow_function_version"]
    assert alias["AliasArn"] == outputs["workflow_alias_arn"]


# --- IAM and logs, as stored ---


def _role_statements(aws, role: str) -> list[dict[str, Any]]:
    iam = aws("iam")
    statements = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        statements += document["Statement"]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == [], role
    return statements


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _grants(aws, role: str) -> set[tuple[str, str]]:
    """Every (action, resource) the role's inline policies allow; every statement is an Allow without conditions."""
    grants = set()
    for statement in _role_statements(aws, role):
        assert statement["Effect"] == "Allow" and "Condition" not in statement, statement
        grants |= {(action, resource) for action in _as_list(statement["Action"]) for resource in _as_list(statement["Resource"])}
    return grants


def test_each_role_is_granted_exactly_what_its_function_calls(outputs, aws) -> None:
    # The whole of each role, as stored: every action on the named resource it needs and
    # nothing else (no "*" but X-Ray's, which has no resource-level permissions).
    function_arn = f"arn:aws:lambda:{REGION}:{MOTO_ACCOUNT_ID}:function:{outputs['function_names']['workflow']}"
    # Durable executions are sub-resources of a version: NAME:VERSION/durable-execution/...
    executions = f"{function_arn}:*"
    table = f"arn:aws:dynamodb:{REGION}:{MOTO_ACCOUNT_ID}:table/"
    tenants, workflows = table + outputs["tenants_table_name"], table + outputs["workflows_table_name"]
    secret = outputs["callback_signing_secret_arn"]
    bus = aws("events").describe_event_bus(Name=outputs["event_bus_name"])["Arn"]

    def common(key: str) -> set[tuple[str, str]]:
        log_group = f"arn:aws:logs:{REGION}:{MOTO_ACCOUNT_ID}:log-group:/aws/lambda/{PREFIX}-{key}:*"
        return {("logs:CreateLogStream", log_group), ("logs:PutLogEvents", log_group),
                ("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*"),
                ("sqs:SendMessage", outputs["dead_letter_queue_arn"])}

    assert _grants(aws, f"{PREFIX}-workflow") == common("workflow") | {
        ("dynamodb:GetItem", tenants),
        ("dynamodb:PutItem", workflows), ("dynamodb:UpdateItem", workflows),
        ("lambda:CheckpointDurableExecution", executions), ("lambda:GetDurableExecutionState", executions),
        ("secretsmanager:GetSecretValue", secret),
        ("events:PutEvents", bus),
    }
    # The token route reads the tenant (a token of a tenant that is not ACTIVE is refused).
    assert _grants(aws, f"{PREFIX}-api") == common("api") | {
        ("dynamodb:GetItem", workflows), ("dynamodb:UpdateItem", workflows),
        ("dynamodb:GetItem", tenants),
        ("lambda:SendDurableExecutionCallbackSuccess", executions),
        ("lambda:SendDurableExecutionCallbackFailure", executions),
        ("lambda:SendDurableExecutionCallbackHeartbeat", executions),
        ("lambda:GetDurableExecution", executions), ("lambda:GetDurableExecutionHistory", executions),
        ("secretsmanager:GetSecretValue", secret),
    }
    assert _grants(aws, f"{PREFIX}-authorizer") == common("authorizer") | {("dynamodb:GetItem", tenants)}
    # The admin API: the tenants table (items and the capacity ledger) and the provisioner's alias, nothing else.
    provisioner_alias = aws("lambda").get_alias(FunctionName=outputs["function_names"]["provisioner"], Name="live")["AliasArn"]
    assert _grants(aws, f"{PREFIX}-control") == common("control") | {
        ("dynamodb:GetItem", tenants), ("dynamodb:PutItem", tenants), ("dynamodb:UpdateItem", tenants),
        ("dynamodb:ConditionCheckItem", tenants), ("dynamodb:Scan", tenants),
        ("lambda:InvokeFunction", provisioner_alias),
    }


def _conditional_grants(aws, role: str, policy: str) -> set[tuple[str, str, str]]:
    """(action, resource, condition as JSON) of one inline policy of the role."""
    document = aws("iam").get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    return {(action, resource, json.dumps(statement.get("Condition"), sort_keys=True))
            for statement in document["Statement"] for action in _as_list(statement["Action"])
            for resource in _as_list(statement["Resource"])}


def test_the_provisioner_may_create_and_delete_only_this_deployments_keys_queues_and_rules(outputs, aws) -> None:
    bus = aws("events").describe_event_bus(Name=outputs["event_bus_name"])["Arn"]
    table = f"arn:aws:dynamodb:{REGION}:{MOTO_ACCOUNT_ID}:table/"
    tenants, workflows = table + outputs["tenants_table_name"], table + outputs["workflows_table_name"]
    workflow_arn = f"arn:aws:lambda:{REGION}:{MOTO_ACCOUNT_ID}:function:{outputs['function_names']['workflow']}"
    own_arn = f"arn:aws:lambda:{REGION}:{MOTO_ACCOUNT_ID}:function:{outputs['function_names']['provisioner']}"
    queues = f"arn:aws:sqs:{REGION}:{MOTO_ACCOUNT_ID}:{PREFIX}-callbacks*"
    rules = f"{bus.replace(':event-bus/', ':rule/')}/{PREFIX}-callbacks*"
    apigw = f"arn:aws:apigateway:{REGION}::"
    plans = [plan["id"] for plan in aws("apigateway").get_usage_plans()["items"]]
    tagged_create = json.dumps({"StringEquals": {"aws:RequestTag/deployment": PREFIX}}, sort_keys=True)
    tagged_delete = json.dumps({"StringEquals": {"aws:ResourceTag/deployment": PREFIX}}, sort_keys=True)
    none = "null"
    expected = {
        ("dynamodb:GetItem", tenants, none), ("dynamodb:UpdateItem", tenants, none), ("dynamodb:Query", workflows, none),
        ("lambda:SendDurableExecutionCallbackFailure", f"{workflow_arn}:*", none),
        ("lambda:CheckpointDurableExecution", f"{own_arn}:*", none), ("lambda:GetDurableExecutionState", f"{own_arn}:*", none),
        *{(f"sqs:{action}", queues, none) for action in
          ("CreateQueue", "DeleteQueue", "GetQueueAttributes", "GetQueueUrl", "SetQueueAttributes")},
        *{(f"events:{action}", rules, none) for action in
          ("PutRule", "DeleteRule", "PutTargets", "RemoveTargets", "DescribeRule")},
        ("apigateway:POST", f"{apigw}/apikeys", tagged_create), ("apigateway:POST", f"{apigw}/tags/*", tagged_create),
        ("apigateway:DELETE", f"{apigw}/apikeys/*", tagged_delete),
        ("apigateway:GET", f"{apigw}/apikeys", none), ("apigateway:GET", f"{apigw}/apikeys/*", none),
        ("apigateway:GET", f"{apigw}/usageplans", none),
        *{(f"apigateway:{verb}", f"{apigw}/usageplans/{plan}/keys*", none) for plan in plans for verb in ("POST", "DELETE", "GET")},
    }
    assert _conditional_grants(aws, f"{PREFIX}-provisioner", "provisioner-least-privilege") == expected | {
        (action, resource, none) for action, resource in (
            ("logs:CreateLogStream", f"arn:aws:logs:{REGION}:{MOTO_ACCOUNT_ID}:log-group:/aws/lambda/{PREFIX}-provisioner:*"),
            ("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{MOTO_ACCOUNT_ID}:log-group:/aws/lambda/{PREFIX}-provisioner:*"),
            ("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*"))}
    # The names the provisioner gives, for the longest tenant ids too, fall under those globs (and no other deployment's).
    from fnmatch import fnmatchcase

    from shared.tenants import tenant_resource_names

    for tenant_id in ("tenant-a", "t" * 64, "a.b." * 16):
        names = tenant_resource_names(PREFIX, tenant_id)
        assert fnmatchcase(f"arn:aws:sqs:{REGION}:{MOTO_ACCOUNT_ID}:{names.callback_queue}", queues)
        assert fnmatchcase(f"{bus.replace(':event-bus/', ':rule/')}/{names.callback_rule}", rules)
    assert not fnmatchcase(f"arn:aws:sqs:{REGION}:{MOTO_ACCOUNT_ID}:other-callbacks-x", queues)



def test_the_router_role_polls_only_start_queues_and_starts_only_workflow_live(outputs, aws) -> None:
    # router.tf: the mapping's three SQS actions on this deployment's start queues only (a glob no other queue
    # of the deployment matches), dead letters to its own queue, the tenant's item and index, the live alias.
    table = f"arn:aws:dynamodb:{REGION}:{MOTO_ACCOUNT_ID}:table/{outputs['tenants_table_name']}"
    start_queues = f"arn:aws:sqs:{REGION}:{MOTO_ACCOUNT_ID}:{PREFIX}-start-*"
    log_group = f"arn:aws:logs:{REGION}:{MOTO_ACCOUNT_ID}:log-group:/aws/lambda/{PREFIX}-router:*"
    assert _grants(aws, f"{PREFIX}-router") == {
        ("logs:CreateLogStream", log_group), ("logs:PutLogEvents", log_group),
        ("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*"),
        ("sqs:SendMessage", outputs["dead_letter_queue_arn"]),
        ("sqs:ReceiveMessage", start_queues), ("sqs:DeleteMessage", start_queues),
        ("sqs:GetQueueAttributes", start_queues),
        ("sqs:SendMessage", outputs["router_dead_letter_queue_arn"]),
        ("dynamodb:Query", f"{table}/index/startQueue"), ("dynamodb:GetItem", table),
        ("lambda:InvokeFunction", outputs["workflow_alias_arn"]),
    }
    assert outputs["router_dead_letter_queue_arn"] == f"arn:aws:sqs:{REGION}:{MOTO_ACCOUNT_ID}:{PREFIX}-router-dlq"
    attributes = aws("sqs").get_queue_attributes(QueueUrl=outputs["router_dead_letter_queue_url"],
                                                 AttributeNames=["All"])["Attributes"]
    assert (attributes["SqsManagedSseEnabled"], attributes["MessageRetentionPeriod"]) == ("true", "1209600")


def test_the_provisioner_maps_start_queues_to_the_router_only(outputs, aws) -> None:
    statements = {s["Sid"]: s for s in _role_statements(aws, f"{PREFIX}-provisioner")
                  if s.get("Sid") in ("ManageStartQueues", "MapStartQueuesToTheRouterOnly",
                                      "UnmapStartQueuesFromTheRouterOnly", "FindStartQueueMappings")}
    router = f"arn:aws:lambda:{REGION}:{MOTO_ACCOUNT_ID}:function:{outputs['function_names']['router']}"
    only_router = {"ArnEquals": {"lambda:FunctionArn": router}}
    assert (statements["MapStartQueuesToTheRouterOnly"]["Action"], statements["MapStartQueuesToTheRouterOnly"]["Resource"],
            statements["MapStartQueuesToTheRouterOnly"]["Condition"]) == ("lambda:CreateEventSourceMapping", "*", only_router)
    unmap = statements["UnmapStartQueuesFromTheRouterOnly"]
    assert (unmap["Action"], unmap["Resource"], unmap["Condition"]) == (
        "lambda:DeleteEventSourceMapping", f"arn:aws:lambda:{REGION}:{MOTO_ACCOUNT_ID}:event-source-mapping:*", only_router)
    assert statements["ManageStartQueues"]["Resource"] == f"arn:aws:sqs:{REGION}:{MOTO_ACCOUNT_ID}:{PREFIX}-start-*"
    assert (statements["FindStartQueueMappings"]["Action"], statements["FindStartQueueMappings"]["Resource"]) == (
        "lambda:ListEventSourceMappings", "*")


# --- callback tokens and notification ---


def test_signing_key_is_a_random_secret_outside_the_state(moto_workspace, outputs, aws) -> None:
    secrets = aws("secretsmanager")
    described = secrets.describe_secret(SecretId=outputs["callback_signing_secret_arn"])
    assert described["Name"].startswith(f"{PREFIX}-callback-signing-key-")
    key = secrets.get_secret_value(SecretId=outputs["callback_signing_secret_arn"])["SecretString"]
    assert re.fullmatch(r"[A-Za-z0-9]{64}", key), "64 letters and digits from GetRandomPassword"
    # Write-only: neither the state nor the plan ever holds it.
    assert key not in moto_workspace.run("show", "-json").stdout
    assert key not in (moto_workspace.path / "terraform.tfstate").read_text()


@pytest.fixture(scope="module")
def provisioned(outputs, aws) -> dict[str, Any]:
    """Two tenants' runtime resources, made by the provisioner's own code against the applied deployment."""
    before = _runtime_resources(outputs, aws)
    resources = TenantResources(prefix=PREFIX, event_bus=outputs["event_bus_name"], apigateway=aws("apigateway"),
                                sqs=aws("sqs"), events=aws("events"), lambda_client=aws("lambda"), workflows_table=None)
    return {"before": before, **{tenant_id: {"queue_url": resources.ensure_callback_route(tenant_id),
                        "key": resources.ensure_metering_key(tenant_id, tier), "resources": resources}
            for tenant_id, tier in (("tenant-a", "business"), ("tenant-b", "starter"))}}


def test_the_provisioners_rules_and_queues_route_each_tenants_events_to_its_queue(outputs, aws, provisioned) -> None:
    events, sqs = aws("events"), aws("sqs")
    bus = outputs["event_bus_name"]
    assert bus == f"{PREFIX}-workflow-events"
    rules = {rule["Name"]: rule for rule in events.list_rules(EventBusName=bus)["Rules"]}
    tenants = ("tenant-a", "tenant-b")
    assert set(rules) <= {f"{PREFIX}-callbacks-{tenant_id}" for tenant_id in tenants}
    for tenant_id in (tenant for tenant in tenants if f"{PREFIX}-callbacks-{tenant}" in rules):
        made = provisioned[tenant_id]
        name = f"{PREFIX}-callbacks-{tenant_id}"
        assert json.loads(rules[name]["EventPattern"]) == {
            "source": [WAITING_EVENT["source"]],
            "detail-type": [WAITING_EVENT["detailType"]],
            "detail": {"tenantId": [tenant_id]},
        }
        queue_url = made["queue_url"]
        assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == queue_url
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        assert attributes["SqsManagedSseEnabled"] == "true"
        assert attributes.get("FifoQueue", "false") == "false"
        (target,) = events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]
        assert target["Arn"] == attributes["QueueArn"]
        (statement,) = json.loads(attributes["Policy"])["Statement"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Resource"] == attributes["QueueArn"]
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rules[name]["Arn"]}}
        assert json.loads(attributes["Policy"]) == callback_queue_policy(attributes["QueueArn"], rules[name]["Arn"])


def test_a_waiting_event_reaches_its_tenants_queue_only(outputs, aws, provisioned) -> None:
    # The event exactly as src/workflow/notify.py puts it (moto routes it by the rules).
    from workflow.notify import waiting_event

    tenant_id, other = "tenant-a", "tenant-b"
    callback_url = f"{outputs['api_url']}/callbacks/{'t' * 43}"
    entry = waiting_event(outputs["event_bus_name"], tenant_id, "wf-moto-1", callback_url, 1_900_000_000)
    assert aws("events").put_events(Entries=[entry])["FailedEntryCount"] == 0
    sqs = aws("sqs")
    (message,) = sqs.receive_message(QueueUrl=provisioned[tenant_id]["queue_url"], MaxNumberOfMessages=10)["Messages"]
    event = json.loads(message["Body"])
    assert (event["source"], event["detail-type"]) == (WAITING_EVENT["source"], WAITING_EVENT["detailType"])
    assert event["detail"] == {"tenantId": tenant_id, "workflowId": "wf-moto-1", "callbackUrl": callback_url, "expiresAt": 1_900_000_000}
    assert "Messages" not in sqs.receive_message(QueueUrl=provisioned[other]["queue_url"], MaxNumberOfMessages=10)


def test_the_provisioners_keys_join_their_tiers_plans_and_offboarding_removes_everything(outputs, aws, provisioned) -> None:
    apigw = aws("apigateway")
    plans = {plan["name"]: plan["id"] for plan in apigw.get_usage_plans()["items"]}
    for tenant_id, tier in (("tenant-a", "business"), ("tenant-b", "starter")):
        keys = apigw.get_usage_plan_keys(usagePlanId=plans[f"{PREFIX}-{tier}"])["items"]
        assert provisioned[tenant_id]["key"].key_id in {key["id"] for key in keys}
        (key,) = [key for key in apigw.get_api_keys(includeValues=True)["items"] if key["name"] == f"{PREFIX}-{tenant_id}"]
        assert key["tags"]["deployment"] == PREFIX and key["value"] == provisioned[tenant_id]["key"].value
    resources = provisioned["tenant-b"]["resources"]
    resources.remove_callback_route("tenant-b")
    assert resources.remove_metering_key("tenant-b") == 1
    # Idempotent: a second offboarding finds nothing and fails on nothing.
    resources.remove_callback_route("tenant-b")
    assert resources.remove_metering_key("tenant-b") == 0
    assert {rule["Name"] for rule in aws("events").list_rules(EventBusName=outputs["event_bus_name"])["Rules"]} == {
        f"{PREFIX}-callbacks-tenant-a"}
    assert f"{PREFIX}-tenant-b" not in {key["name"] for key in apigw.get_api_keys()["items"]}


def test_log_groups_exist_with_retention(outputs, aws) -> None:
    logs = aws("logs")
    names = [
        f"/aws/lambda/{outputs['function_names']['workflow']}",
        f"/aws/lambda/{outputs['function_names']['api']}",
        f"/aws/lambda/{outputs['function_names']['authorizer']}",
        outputs["access_log_group_name"],
        f"API-Gateway-Execution-Logs_{outputs['rest_api_id']}/{STAGE}",
    ]
    for name in names:
        (group,) = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
        assert group["retentionInDays"] == RETENTION_DAYS, name


# --- outputs a user pastes ---


def test_outputs_are_ready_to_paste(rest_api, outputs) -> None:
    api_url = f"https://{rest_api['id']}.execute-api.{REGION}.amazonaws.com/{STAGE}"
    assert outputs["api_url"] == api_url
    tenant = next(t["tenantId"] for t in DEMO_TENANTS if t["status"] == "ACTIVE")
    auth = f"-H '{TENANT_HEADER}: {tenant}' -H \"x-api-key: $API_KEY\""
    start = outputs["start_workflow_curl"]
    assert start.startswith(f"curl -sS -X POST '{api_url}/workflow' ") and auth in start
    body = json.loads(shlex.split(start)[-1])
    jsonschema.validate(body, json.loads((SHARED_DIR / _route("startWorkflow")["requestSchema"]).read_text()))
    assert outputs["workflow_status_curl"] == f"curl -sS -X GET '{api_url}/workflow/WORKFLOW_ID' {auth}"
    assert outputs["event_bus_name"] == f"{PREFIX}-workflow-events"
    assert outputs["tenants_api_url"] == f"{api_url}/tenants"
    callback = outputs["send_callback_curl"]
    assert callback.startswith(f"curl -sS -X POST '{api_url}/callback' ") and auth in callback
    assert json.loads(shlex.split(callback)[-1])["callbackId"] == "CALLBACK_ID"


def test_export_api_key_command_sets_the_tenant_key(moto_workspace, outputs) -> None:
    # make deploy's tenantctl create-demo writes the demo keys to .state/api-keys.json.
    tenant = next(t["tenantId"] for t in DEMO_TENANTS if t["status"] == "ACTIVE")
    (moto_workspace.path / ".state").mkdir(exist_ok=True)
    (moto_workspace.path / ".state" / "api-keys.json").write_text(json.dumps({tenant: "key-from-tenantctl"}))
    env = {**moto_workspace.env, "PATH": f"{Path(moto_workspace.binary).parent}:{moto_workspace.env.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "-c", f'{outputs["export_api_key_command"]} && printf %s "$API_KEY"'],
        cwd=moto_workspace.path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "key-from-tenantctl"


# --- the tiers' usage plans, dead-letter queue, alarms, dashboard ---


def test_one_usage_plan_per_tier_on_the_stage(rest_api, outputs, aws) -> None:
    apigw = aws("apigateway")
    # API Gateway meters with the key the authorizer returns (usageIdentifierKey).
    assert apigw.get_rest_api(restApiId=rest_api["id"])["apiKeySource"] == "AUTHORIZER"
    tiers = json.loads((SHARED_DIR / "tiers.json").read_text())["tiers"]
    plans = {plan["name"]: plan for plan in apigw.get_usage_plans()["items"]}
    assert set(plans) == {f"{PREFIX}-{tier}" for tier in tiers}
    for tier, spec in tiers.items():
        plan = plans[f"{PREFIX}-{tier}"]
        assert plan["throttle"] == {"rateLimit": spec["rateLimit"], "burstLimit": spec["burstLimit"]}
        assert (plan["quota"]["limit"], plan["quota"]["period"]) == (spec["dailyQuota"], "DAY")
        assert plan["apiStages"] == [{"apiId": rest_api["id"], "stage": STAGE}]
        assert outputs["usage_plans"][tier] == {"id": plan["id"], "rate_limit": spec["rateLimit"],
                                                "burst_limit": spec["burstLimit"], "daily_quota": spec["dailyQuota"]}


def test_the_token_route_is_throttled_by_method_settings_of_its_own(rest_api, aws) -> None:
    settings = aws("apigateway").get_stage(restApiId=rest_api["id"], stageName=STAGE)["methodSettings"]
    for key in PUBLIC_ROUTES:
        route = _route(key)
        own = settings[f"{route['path'].replace('/', '~1')}/{route['method']}"]
        # The stage's default method throttle (variables.tf), which the local gateway enforces too,
        # unless the callback_throttling_* variables (null by default) say otherwise.
        assert {hcl.variables()[f"callback_throttling_{kind}_limit"]["default"] for kind in ("rate", "burst")} == {None}
        assert (own.get("cachingEnabled", False), own.get("dataTraceEnabled", False)) == (False, False)
        assert own["throttlingRateLimit"] == hcl.variables()["throttling_rate_limit"]["default"]
        assert own["throttlingBurstLimit"] == hcl.variables()["throttling_burst_limit"]["default"]


def test_dead_letter_queue_is_encrypted_and_every_role_has_its_own_policy_for_it(outputs, aws) -> None:
    attributes = aws("sqs").get_queue_attributes(QueueUrl=outputs["dead_letter_queue_url"], AttributeNames=["All"])["Attributes"]
    assert attributes["QueueArn"] == outputs["dead_letter_queue_arn"] == f"arn:aws:sqs:{REGION}:{MOTO_ACCOUNT_ID}:{PREFIX}-workflow-dlq"
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert attributes["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    # A policy of its own on each role, so Lambda finds it at the function's creation (what
    # each role may do in all: test_each_role_is_granted_exactly_what_its_function_calls).
    iam = aws("iam")
    for role in ("workflow", "api", "authorizer"):
        assert f"{role}-dead-letter-queue" in iam.list_role_policies(RoleName=f"{PREFIX}-{role}")["PolicyNames"], role


def test_workflow_live_events_are_retried_then_kept(outputs, aws) -> None:
    config = aws("lambda").get_function_event_invoke_config(FunctionName=outputs["function_names"]["workflow"], Qualifier="live")
    assert config["MaximumRetryAttempts"] == hcl.variables()["workflow_retry_attempts"]["default"]
    assert config["MaximumEventAgeInSeconds"] == hcl.variables()["workflow_max_event_age_seconds"]["default"]
    # No destination: the dead_letter_config keeps the event (a destination too would keep it twice).
    assert not config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"), config


@pytest.fixture(scope="module")
def alarms(outputs, aws) -> dict[str, dict[str, Any]]:
    found = aws("cloudwatch").describe_alarms(AlarmNamePrefix=f"{PREFIX}-")["MetricAlarms"]
    return {alarm["AlarmName"]: alarm for alarm in found}


def test_the_alarms_and_metric_filters_exist(outputs, alarms, aws) -> None:
    # (What each alarm and filter watches: test_plan_production.py.)
    assert sorted(alarms) == sorted(outputs["alarm_names"])
    group = f"/aws/apigateway/{PREFIX}-api/{STAGE}/access"
    filters = {f["metricTransformations"][0]["metricName"] for f in aws("logs").describe_metric_filters(logGroupName=group)["metricFilters"]}
    assert filters == {"AuthorizerFailures", "ThrottledRequests"}


def test_dashboard_has_a_graph_per_tenant_metric_and_every_alarm(outputs, alarms, aws) -> None:
    body = json.loads(aws("cloudwatch").get_dashboard(DashboardName=f"{PREFIX}-workflows")["DashboardBody"])
    assert outputs["dashboard_url"].endswith(f"#dashboards/dashboard/{PREFIX}-workflows")
    (alarm_widget,) = [widget for widget in body["widgets"] if widget["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(alarm["AlarmArn"] for alarm in alarms.values())
    searches = [metric[0]["expression"] for widget in body["widgets"] if widget["type"] == "metric"
                for metric in widget["properties"]["metrics"] if isinstance(metric[0], dict)]
    assert {re.search(r'MetricName="(\w+)"', search).group(1) for search in searches} == {
        "WorkflowAccepted", "WorkflowCompleted", "WorkflowRejected", "WorkflowFailed", "WorkflowTimedOut",
        "CallbackDelivered", "ThrottledRequests"}
    assert all(search.startswith("SEARCH('{") for search in searches), searches


# --- idempotence and teardown (keep these last) ---


def test_second_plan_shows_no_changes(moto_workspace, outputs) -> None:
    result = moto_workspace.run("plan", "-input=false", "-no-color", "-detailed-exitcode", check=False)
    assert result.returncode == 0, f"the plan after apply is not empty (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"


def test_a_changed_part_of_the_api_redeploys_it(moto_workspace, outputs) -> None:
    # The request schema is the model's content: an in-place update of the
    # model must replace the deployment (and so move the stage to the new one).
    schema_file = moto_workspace.path / "src" / "shared" / _route("startWorkflow")["requestSchema"]
    original = schema_file.read_text()
    schema = json.loads(original)
    schema["description"] = "changed by the test"
    schema_file.write_text(json.dumps(schema))
    try:
        moto_workspace.run("plan", "-input=false", "-no-color", "-out=changed.tfplan")
        changes = {change["address"]: change for change in moto_workspace.show_json("changed.tfplan")["resource_changes"]}
    finally:
        schema_file.write_text(original)
    assert changes["aws_api_gateway_model.start_workflow_request"]["change"]["actions"] == ["update"]
    deployment = changes["aws_api_gateway_deployment.this"]
    assert deployment["change"]["actions"] == ["create", "delete"]
    assert deployment["action_reason"] == "replace_by_triggers"
    assert changes["aws_api_gateway_stage.this"]["change"]["actions"] == ["update"]
    changed = [address for address, change in changes.items() if change["change"]["actions"] != ["no-op"] and change["mode"] == "managed"]
    assert sorted(changed) == ["aws_api_gateway_deployment.this", "aws_api_gateway_model.start_workflow_request", "aws_api_gateway_stage.this"]


def test_destroy_removes_everything(moto_workspace, outputs, aws, provisioned) -> None:
    # make destroy offboards every tenant first (their keys, queues and rules are no
    # Terraform resource, and a bus with rules cannot be deleted): here the provisioner's own code.
    for tenant_id in ("tenant-a", "tenant-b"):
        provisioned["tenant-a"]["resources"].remove_callback_route(tenant_id)
        provisioned["tenant-a"]["resources"].remove_metering_key(tenant_id)
    # The state was just refreshed by the no-change plan.
    moto_workspace.run("destroy", "-input=false", "-no-color", "-auto-approve", "-refresh=false")
    assert moto_workspace.run("state", "list", check=False).stdout.strip() == ""
    assert aws("apigateway").get_rest_apis()["items"] == []
    assert aws("dynamodb").list_tables()["TableNames"] == []
    assert aws("lambda").list_functions()["Functions"] == []
    assert aws("apigateway").get_api_keys()["items"] == []
    roles = [role["RoleName"] for role in aws("iam").list_roles()["Roles"]]
    assert not [name for name in roles if name.startswith(PREFIX)], roles
    groups = [g["logGroupName"] for g in aws("logs").describe_log_groups()["logGroups"]]
    assert groups == [], groups
    assert aws("sqs").list_queues().get("QueueUrls", []) == []
    assert aws("apigateway").get_usage_plans()["items"] == []
    assert aws("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert aws("cloudwatch").list_dashboards()["DashboardEntries"] == []
    assert [bus["Name"] for bus in aws("events").list_event_buses()["EventBuses"]] == ["default"]
    # Deleted with its recovery window: only scheduled for deletion.
    secrets = aws("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"]
    assert [bool(secret.get("DeletedDate")) for secret in secrets] == [True], secrets
    assert aws("secretsmanager").list_secrets()["SecretList"] == []
