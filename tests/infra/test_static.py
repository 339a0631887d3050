"""The real ``.tf`` files, read as text and as HCL: formatting, providers, the blocks
the offline provider cannot validate (durable_config, tenancy_config), and the
wiring the design depends on.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from . import hcl
from .tfworkspace import REPO_ROOT, SHARED_DIR, parse_version

CONTRACT = json.loads((SHARED_DIR / "api_contract.json").read_text())


@pytest.mark.slow
def test_terraform_files_are_formatted(terraform_setup, tf_env) -> None:
    result = subprocess.run(
        [terraform_setup.binary, "fmt", "-check", "-recursive", "-diff", "-no-color"],
        cwd=REPO_ROOT,
        env=tf_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"run `make fmt`:\n{result.stdout}{result.stderr}"


def test_root_module_files_exist() -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf"):
        assert (REPO_ROOT / name).is_file(), name


def test_aws_provider_is_at_least_6_25() -> None:
    providers = hcl.providers_required()
    assert providers["aws"]["source"] == "hashicorp/aws"
    constraint = providers["aws"]["version"]
    match = re.fullmatch(r">=\s*([0-9.]+),\s*<\s*([0-9.]+)", constraint)
    assert match, f"expected a '>= X, < Y' constraint, got {constraint!r}"
    assert parse_version(match.group(1)) >= (6, 25, 0), constraint
    assert parse_version(match.group(2)) == (7, 0, 0), "allow 6.x from 6.25, not the next major version"


def test_terraform_1_11_is_required_for_the_write_only_signing_key() -> None:
    (block,) = [block for block in hcl.load("main.tf")["terraform"]]
    match = re.fullmatch(r">=\s*([0-9.]+)", block["required_version"])
    assert match and parse_version(match.group(1)) >= (1, 11, 0), block["required_version"]
    version = hcl.resource("main.tf", "aws_secretsmanager_secret_version", "callback_signing_key")
    assert version["secret_string_wo"] == "${ephemeral.aws_secretsmanager_random_password.callback_signing_key.random_password}"
    assert "secret_string" not in version and "secret_binary" not in version


def test_signing_key_is_random_from_secrets_manager_and_written_once() -> None:
    # The key comes from GetRandomPassword (no random provider), never reaches
    # the state, and is written again only when its version is raised.
    (ephemeral,) = [entry["aws_secretsmanager_random_password"]["callback_signing_key"] for entry in hcl.load("main.tf")["ephemeral"]]
    assert ephemeral["password_length"] >= 32
    version = hcl.resource("main.tf", "aws_secretsmanager_secret_version", "callback_signing_key")
    assert version["secret_string_wo_version"] == 1
    assert version["secret_id"] == "${aws_secretsmanager_secret.callback_signing_key.id}"


def test_no_archive_null_or_random_provider() -> None:
    banned = {"archive", "null", "random"}
    assert banned.isdisjoint(hcl.providers_required())
    for tf_file in REPO_ROOT.glob("*.tf"):
        text = tf_file.read_text()
        for name in banned:
            assert not re.search(rf'(resource|data)\s+"{name}_', text), f"{tf_file.name} uses the {name} provider"


def _function_resource() -> dict:
    """The one ``aws_lambda_function`` resource, built per key of ``local.functions``."""
    (name,) = hcl.resources_of_type("main.tf", "aws_lambda_function")
    assert name == "function"
    body = hcl.resource("main.tf", "aws_lambda_function", "function")
    assert body["for_each"] == "${local.functions}"
    return body


def _dynamic_block(body: dict, name: str) -> dict:
    (block,) = [entry[name] for entry in body.get("dynamic", []) if name in entry]
    return block


def test_every_function_is_python_3_13_arm64_from_one_definition() -> None:
    function = _function_resource()
    assert function["runtime"] == "python3.13"
    assert function["architectures"] == ["arm64"]
    assert function["handler"] == "${each.value.handler}"
    assert function["publish"] == "${try(each.value.publish, false)}"
    assert set(hcl.local("functions")) == {"workflow", "api", "authorizer"}


def test_every_function_setting_is_read() -> None:
    # Unset flags default to false (try(each.value.X, false)): a misspelt
    # setting would silently be one, so every setting must be one that a
    # block built from local.functions reads.
    text = (REPO_ROOT / "main.tf").read_text()
    blocks = re.findall(r"^(?:resource|data) .*?\{\n(.*?)^\}", text, re.M | re.S)
    read = {name for body in blocks if "for_each = local.functions\n" in body for name in re.findall(r"each\.value\.(\w+)", body)}
    # ... or that a local made from it reads (for key, function in local.functions : ... function.X).
    read |= {name for line in re.findall(r"for \w+, function in local\.functions : (.*)", text) for name in re.findall(r"\bfunction\.(\w+)", line)}
    assert {"per_tenant", "durable", "publish", "environment", "handler", "role_description"} <= read
    for key, settings in hcl.local("functions").items():
        assert set(settings) <= read, (key, set(settings) - read)


def test_workflow_function_is_durable_tenant_isolated_and_published() -> None:
    workflow = hcl.local("functions")["workflow"]
    assert workflow["handler"] == "workflow.app.handler"
    assert (workflow["per_tenant"], workflow["durable"], workflow["publish"]) == (True, True, True)
    function = _function_resource()
    # Each block is generated exactly when the function's flag says so.
    tenancy = _dynamic_block(function, "tenancy_config")
    assert tenancy["for_each"] == "${try(each.value.per_tenant, false) ? [1] : []}"
    assert tenancy["content"] == [{"tenant_isolation_mode": "PER_TENANT"}]
    durable = _dynamic_block(function, "durable_config")
    assert durable["for_each"] == "${try(each.value.durable, false) ? [1] : []}"
    (content,) = durable["content"]
    assert set(content) == {"execution_timeout", "retention_period"}
    assert content["execution_timeout"] == "${var.durable_execution_timeout_seconds}"
    assert content["retention_period"] == "${var.durable_retention_days}"
    assert "tenancy_config" not in function and "durable_config" not in function


def test_durable_and_tenancy_blocks_appear_once_each() -> None:
    # The offline copy strips exactly these; a second copy elsewhere would go unchecked.
    text = (REPO_ROOT / "main.tf").read_text()
    for block in ("durable_config", "tenancy_config"):
        assert len(re.findall(rf'^\s*(?:{block}|dynamic\s+"{block}")\s*\{{', text, re.M)) == 1, block


def test_api_function_and_authorizer_are_plain_functions() -> None:
    functions = hcl.local("functions")
    assert functions["api"]["handler"] == "api.app.handler"
    assert functions["authorizer"]["handler"] == "authorizer.app.handler"
    for key in ("api", "authorizer"):
        # Not said, so false: the function resource defaults each flag with try(..., false).
        assert {"per_tenant", "durable", "publish"}.isdisjoint(functions[key]), key


def test_alias_live_points_at_the_published_version() -> None:
    alias = hcl.resource("main.tf", "aws_lambda_alias", "workflow_live")
    assert alias["function_version"] == '${aws_lambda_function.function["workflow"].version}'
    assert hcl.local("workflow_alias_name") == "live"


def test_no_policy_statement_is_generated() -> None:
    # checkov reads no dynamic statement block: its IAM checks would pass one unread.
    for _, name, body in hcl.blocks("data"):
        assert "statement" not in {key for entry in body.get("dynamic", []) for key in entry}, name


def test_every_lambda_dynamodb_secret_and_event_statement_names_its_resource() -> None:
    documents = {name: body for kind, name, body in hcl.blocks("data") if kind == "aws_iam_policy_document"}
    for key in hcl.local("functions"):
        assert documents[key]["statement"], key
        for statement in documents[key]["statement"]:
            if any(action.startswith(("lambda:", "dynamodb:", "secretsmanager:", "events:")) for action in statement["actions"]):
                for resource in statement["resources"]:
                    assert re.fullmatch(
                        r'\$\{aws_(dynamodb_table\.\w+|lambda_function\.function\["\w+"\]|secretsmanager_secret\.callback_signing_key|cloudwatch_event_bus\.this)\.arn\}(:\*)?',
                        resource,
                    ), (key, statement)


def _statements_with(document: str, action: str) -> list[dict]:
    documents = {name: body for kind, name, body in hcl.blocks("data") if kind == "aws_iam_policy_document"}
    return [statement for statement in documents[document]["statement"] if action in statement["actions"]]


def test_signing_key_and_event_bus_are_granted_to_exactly_the_functions_that_use_them() -> None:
    secret = ["${aws_secretsmanager_secret.callback_signing_key.arn}"]
    for key, expected in {"workflow": [secret], "api": [secret], "authorizer": []}.items():
        assert [s["resources"] for s in _statements_with(key, "secretsmanager:GetSecretValue")] == expected, key
        assert all(s["actions"] == ["secretsmanager:GetSecretValue"] for s in _statements_with(key, "secretsmanager:GetSecretValue"))
    assert [s["resources"] for s in _statements_with("workflow", "events:PutEvents")] == [["${aws_cloudwatch_event_bus.this.arn}"]]
    assert _statements_with("api", "events:PutEvents") == _statements_with("authorizer", "events:PutEvents") == []


def test_callback_settings_reach_the_functions_that_read_them() -> None:
    # src/shared/settings.py: the workflow mints tokens and puts events, the
    # api function hands out callback URLs; the authorizer needs none.
    secret = "${aws_secretsmanager_secret.callback_signing_key.arn}"
    functions = hcl.local("functions")
    assert functions["workflow"]["environment"] == {
        "TENANT_CACHE_TTL_SECONDS": "${tostring(var.tenant_cache_ttl_seconds)}",
        "CALLBACK_SIGNING_SECRET_NAME": secret,
        "CALLBACK_BASE_URL": "${local.callback_base_url}",
        "EVENT_BUS_NAME": "${aws_cloudwatch_event_bus.this.name}",
    }
    assert functions["api"]["environment"] == {"CALLBACK_SIGNING_SECRET_NAME": secret, "CALLBACK_BASE_URL": "${local.callback_base_url}"}
    assert "environment" not in functions["authorizer"]


def test_callback_base_url_is_built_from_the_api_id_not_the_stage() -> None:
    # The stage depends on the integrations, which depend on the workflow alias:
    # a function reading the stage's invoke_url would close a cycle.
    assert hcl.local("callback_base_url") == (
        "https://${aws_api_gateway_rest_api.this.id}.execute-api.${var.aws_region}.${data.aws_partition.current.dns_suffix}/${var.stage_name}"
    )


def test_callback_queue_names_follow_one_convention() -> None:
    # The local stack names its queues NAME_PREFIX-callbacks-TENANT_ID too.
    assert hcl.local("callback_queue_name_format") == "${local.name_prefix}-callbacks-%s"
    assert hcl.local("callback_queue_names") == (
        "${{for tenant_id in local.seeded_tenant_ids : tenant_id => format(local.callback_queue_name_format, tenant_id)}}"
    )
    for kind in ("aws_sqs_queue", "aws_cloudwatch_event_rule"):
        body = hcl.resource("main.tf", kind, "callbacks")
        assert body["for_each"] == "${local.callback_queue_names}", kind
        assert body["name"] == "${each.value}", kind


def test_access_log_never_holds_the_request_path() -> None:
    # POST /callbacks/{callbackToken}: the path holds the token.
    text = (REPO_ROOT / "main.tf").read_text()
    assert "$context.resourcePath" in text
    assert not re.search(r"\$context\.path\b", text.replace("never $context.path", ""))
    (settings,) = hcl.resource("main.tf", "aws_api_gateway_method_settings", "all")["settings"]
    assert settings["data_trace_enabled"] is False


def test_deployment_redeploys_on_every_api_resource() -> None:
    # A planned change of any resource the deployment snapshots replaces it;
    # none of them may be missing from the list.
    (lifecycle,) = hcl.resource("main.tf", "aws_api_gateway_deployment", "this")["lifecycle"]
    named = {hcl.expression(reference) for reference in lifecycle["replace_triggered_by"]}
    not_snapshotted = {  # the API itself, what reads the deployment, and what lives outside it
        "aws_api_gateway_rest_api.this",
        "aws_api_gateway_deployment.this",
        "aws_api_gateway_stage.this",
        "aws_api_gateway_method_settings.all",
        "aws_api_gateway_account.this",
        "aws_api_gateway_api_key.demo",
        # Stage-level: the usage plans and their keys, the token route's method settings.
        "aws_api_gateway_usage_plan.tenant",
        "aws_api_gateway_usage_plan_key.tenant",
        "aws_api_gateway_method_settings.public_routes",
    }
    declared = {f"{kind}.{name}" for kind, name, _ in hcl.blocks("resource") if kind.startswith("aws_api_gateway_")}
    assert named == declared - not_snapshotted


def test_start_integration_maps_tenant_async_and_execution_name() -> None:
    integration = hcl.resource("main.tf", "aws_api_gateway_integration", "start_workflow")
    assert integration["type"] == "AWS"
    assert integration["uri"] == "${aws_lambda_alias.workflow_live.invoke_arn}"
    assert integration["request_parameters"] == "${local.start_integration.requestParameters}"
    # The mapping is the file the local gateway applies too.
    assert hcl.local("start_integration") == (
        '${jsondecode(file("${local.api_gateway_dir}/start_workflow_integration.json"))}'
    )
    assert hcl.local("api_gateway_dir") == "${local.shared_dir}/api_gateway"
    params = json.loads((SHARED_DIR / "api_gateway" / "start_workflow_integration.json").read_text())["requestParameters"]
    # The tenant and the workflow id come from the authorizer's verified
    # context, never from a header the client controls.
    assert params == {
        "integration.request.header.X-Amz-Tenant-Id": "context.authorizer.tenantId",
        "integration.request.header.X-Amz-Invocation-Type": "'Event'",
        "integration.request.header.X-Amz-Durable-Execution-Name": "context.authorizer.workflowId",
    }


def test_every_route_but_the_token_route_goes_through_the_uncached_tenant_authorizer() -> None:
    authorizer = hcl.resource("main.tf", "aws_api_gateway_authorizer", "tenant")
    assert authorizer["type"] == "REQUEST"
    assert authorizer["authorizer_result_ttl_in_seconds"] == 0
    assert authorizer["authorizer_uri"] == '${aws_lambda_function.function["authorizer"].invoke_arn}'
    methods = hcl.resources_of_type("main.tf", "aws_api_gateway_method")
    assert set(methods) == {"start_workflow", "proxy", "public_proxy"}
    for name in ("start_workflow", "proxy"):
        assert methods[name]["authorization"] == "CUSTOM", name
        assert methods[name]["authorizer_id"] == "${aws_api_gateway_authorizer.tenant.id}", name
    assert methods["proxy"]["for_each"] == "${local.authorized_proxy_routes}"
    # Only the routes the contract opens ("authorizer": false), all of them AWS_PROXY.
    assert methods["public_proxy"]["for_each"] == "${local.public_proxy_routes}"
    assert methods["public_proxy"]["authorization"] == "NONE"
    assert "authorizer_id" not in methods["public_proxy"]
    public = {key for key, route in CONTRACT["routes"].items() if route.get("authorizer") is False}
    assert public == {"sendCallbackWithToken"}
    assert all(CONTRACT["routes"][key]["integration"] == "api-proxy" for key in public)


def test_routes_and_header_come_from_the_contract_file() -> None:
    assert hcl.local("contract") == '${jsondecode(file("${local.shared_dir}/api_contract.json"))}'
    assert hcl.local("tenant_header") == "${local.contract.tenantHeader}"
    code = "\n".join(
        line for line in (REPO_ROOT / "main.tf").read_text().splitlines() if not line.lstrip().startswith("#")
    )
    for route in CONTRACT["routes"].values():
        assert f'"{route["path"]}"' not in code, f"{route['path']} is hard-coded in main.tf"
    assert f'"{CONTRACT["tenantHeader"]}' not in code, "the tenant header is hard-coded in main.tf"
    assert f'"{CONTRACT["apiKeyHeader"]}' not in code, "the API key header is hard-coded in main.tf"


def test_api_key_header_comes_from_the_contract_like_the_authorizer_code() -> None:
    from shared.identity import API_KEY_HEADER

    assert hcl.local("api_key_header") == "${local.contract.apiKeyHeader}"
    assert API_KEY_HEADER == CONTRACT["apiKeyHeader"]


def test_every_variable_has_description_type_and_a_validation_where_it_matters() -> None:
    variables = hcl.variables()
    for name, body in variables.items():
        assert body.get("description"), f"variable {name} has no description"
        assert body.get("type"), f"variable {name} has no type"
    must_validate = {
        "aws_region",
        "name_prefix",
        "stage_name",
        "durable_execution_timeout_seconds",
        "durable_retention_days",
        "workflow_timeout_seconds",
        "api_timeout_seconds",
        "tenant_cache_ttl_seconds",
        "log_retention_days",
    }
    for name in must_validate:
        assert variables[name].get("validation"), f"variable {name} has no validation"


def test_every_output_has_a_description() -> None:
    outputs = {}
    for entry in hcl.load("outputs.tf").get("output", []):
        outputs.update(entry)
    assert outputs
    for name, body in outputs.items():
        assert body.get("description"), f"output {name} has no description"


def test_main_tf_has_a_banner_per_concern() -> None:
    banners = re.findall(r"^# =+\n# (.+)\n# =+$", (REPO_ROOT / "main.tf").read_text(), re.M)
    for concern in ("provider", "DynamoDB", "Callback tokens", "event bus", "log groups", "IAM", "Workflow function", "API function", "REST API", "stage"):
        assert any(concern.lower() in banner.lower() for banner in banners), f"no banner for {concern}: {banners}"


def test_no_terraform_lock_file_pins_the_offline_provider() -> None:
    # The offline 5.x provider must never leak into the repository's lock file.
    lock = REPO_ROOT / ".terraform.lock.hcl"
    if lock.exists():
        match = re.search(r'provider "registry.terraform.io/hashicorp/aws"\s*\{\s*version\s*=\s*"([^"]+)"', lock.read_text())
        assert match and parse_version(match.group(1)) >= (6, 25, 0), lock.read_text()
