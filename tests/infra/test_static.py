"""The real ``.tf`` files, read as text and as HCL: the layer for what neither a plan nor
an apply can show. Formatting, file layout and naming, providers and versions, the
blocks the offline provider cannot plan (durable_config, tenancy_config, generated
from src/functions.json's flags), the form checkov needs (no generated policy
statement), and the single sources the module reads (contract, integration file,
function definitions). What a plan shows is checked in test_plan*.py, what an apply
creates and wires in test_apply_moto.py; each property in one layer only.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from . import hcl
from .tfworkspace import REPO_ROOT, SHARED_DIR, parse_version, root_tf_files

CONTRACT = json.loads((SHARED_DIR / "api_contract.json").read_text())
FUNCTION_DEFINITIONS = hcl.function_definitions()


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


# The root module by concern, and the banner each file opens with.
CONCERN_FILES = {
    "main.tf": ("Terraform and provider", "Shared data", "Functions", "CloudWatch log groups"),
    "dynamodb.tf": ("DynamoDB",),
    "notifications.tf": ("Callback tokens and notification",),
    "iam.tf": ("IAM",),
    "api.tf": ("REST API", "POST /workflow", "Proxy routes", "The admin API"),
    "api_stage.tf": ("Deployment and stage",),
    "operations.tf": ("Usage plans: one per tier", "Dead-letter queue"),
    "monitoring.tf": ("Alarms", "Dashboard"),
    "router.tf": ("Queue entry", "The provisioner's part"),
}
MAX_TF_LINES = 500


def test_root_module_is_split_by_concern_and_every_file_is_short() -> None:
    names = {tf_file.name for tf_file in root_tf_files()}
    assert names == {*CONCERN_FILES, "variables.tf", "outputs.tf"}
    for tf_file in root_tf_files():
        lines = len(tf_file.read_text().splitlines())
        assert lines <= MAX_TF_LINES, f"{tf_file.name} has {lines} lines; split it by concern"


def test_each_file_has_a_banner_per_concern_it_holds() -> None:
    for name, concerns in CONCERN_FILES.items():
        banners = re.findall(r"^# =+\n# (.+)\n# =+$", (REPO_ROOT / name).read_text(), re.M)
        for concern in concerns:
            assert any(banner.startswith(concern) for banner in banners), f"{name}: no banner for {concern}: {banners}"


def test_main_tf_names_every_file_of_the_module() -> None:
    # Its header is the map of the module; a new file must be on it.
    header = (REPO_ROOT / "main.tf").read_text().split("\nterraform {", 1)[0]
    for tf_file in root_tf_files():
        assert tf_file.name in header, f"main.tf's header does not name {tf_file.name}"


def test_aws_provider_is_at_least_6_25() -> None:
    providers = hcl.providers_required()
    assert providers["aws"]["source"] == "hashicorp/aws"
    constraint = providers["aws"]["version"]
    match = re.fullmatch(r">=\s*([0-9.]+),\s*<\s*([0-9.]+)", constraint)
    assert match, f"expected a '>= X, < Y' constraint, got {constraint!r}"
    assert parse_version(match.group(1)) >= (6, 25, 0), constraint
    assert parse_version(match.group(2)) == (7, 0, 0), "allow 6.x from 6.25, not the next major version"


def test_terraform_1_11_is_required_for_the_write_only_signing_key() -> None:
    # (The plan shows the key written only through secret_string_wo: test_plan.py.)
    (block,) = [block for block in hcl.load("main.tf")["terraform"]]
    match = re.fullmatch(r">=\s*([0-9.]+)", block["required_version"])
    assert match and parse_version(match.group(1)) >= (1, 11, 0), block["required_version"]


def test_no_archive_null_or_random_provider() -> None:
    banned = {"archive", "null", "random"}
    assert banned.isdisjoint(hcl.providers_required())
    for tf_file in root_tf_files():
        text = tf_file.read_text()
        for name in banned:
            assert not re.search(rf'(resource|data)\s+"{name}_', text), f"{tf_file.name} uses the {name} provider"


def _function_resource() -> dict:
    """The one ``aws_lambda_function`` resource, built per function of src/functions.json."""
    (name,) = hcl.resources_of_type("aws_lambda_function")
    assert name == "function"
    body = hcl.resource("aws_lambda_function", "function")
    assert body["for_each"] == "${local.functions}"
    return body


def _dynamic_block(body: dict, name: str) -> dict:
    (block,) = [entry[name] for entry in body.get("dynamic", []) if name in entry]
    return block


def test_the_functions_are_the_ones_src_functions_json_defines() -> None:
    # The one source: main.tf decodes the file the local stack reads (proving-ground/local/runtime/functions.py).
    assert hcl.local("function_definitions") == '${jsondecode(file("${path.module}/src/functions.json"))}'
    assert set(FUNCTION_DEFINITIONS["functions"]) == {"workflow", "api", "authorizer", "control", "provisioner", "router"}
    functions = hcl.local("functions")
    assert functions.startswith("${{for key, function in local.function_definitions.functions : key =>"), functions


def test_every_key_of_functions_json_is_one_main_tf_reads() -> None:
    # Unset flags default to false (try(function.X, false)): a misspelt key would
    # silently be one, so every key must be one the functions local reads.
    read = set(re.findall(r"\bfunction\.(\w+)", hcl.local("functions")))
    assert {"handler", "memoryMb", "timeoutSeconds", "perTenant", "durable", "publish", "environment"} <= read
    for key, definition in FUNCTION_DEFINITIONS["functions"].items():
        # "why" is the file's comment.
        assert set(definition) - {"why"} <= read, (key, set(definition) - {"why"} - read)
    # Every setting the file names is one main.tf gives a value (the plan fails on a
    # missing one; the local stack would leave the variable unset).
    settings = re.findall(r"(?:^|, )(\w+) = ", hcl.local("function_settings").split("=> {", 1)[1])
    named = {definition[field] for definition in FUNCTION_DEFINITIONS["functions"].values()
             for field in ("memoryMb", "timeoutSeconds")}
    named |= {setting for definition in [FUNCTION_DEFINITIONS, *FUNCTION_DEFINITIONS["functions"].values()]
              for setting in definition.get("environment", {}).values()}
    assert named <= set(settings), named - set(settings)


def test_only_the_workflow_function_is_durable_and_tenant_isolated() -> None:
    # The offline provider cannot plan these two blocks (they are stripped from
    # the test copies), so this file is where they are checked.
    flags = {key: (definition.get("perTenant", False), definition.get("durable", False), definition.get("publish", False))
             for key, definition in FUNCTION_DEFINITIONS["functions"].items()}
    # The provisioner is durable (its onboarding and offboarding are named executions) and
    # published (started on its alias), but serves the operator: not tenant-isolated.
    assert flags == {"workflow": (True, True, True), "api": (False, False, False), "authorizer": (False, False, False),
                     "control": (False, False, False), "provisioner": (False, True, True), "router": (False, False, False)}
    function = _function_resource()
    # Each block is generated exactly when the function's flag says so.
    tenancy = _dynamic_block(function, "tenancy_config")
    assert tenancy["for_each"] == "${each.value.per_tenant ? [1] : []}"
    assert tenancy["content"] == [{"tenant_isolation_mode": "PER_TENANT"}]
    durable = _dynamic_block(function, "durable_config")
    assert durable["for_each"] == "${each.value.durable ? [1] : []}"
    (content,) = durable["content"]
    assert set(content) == {"execution_timeout", "retention_period"}
    assert content["execution_timeout"] == "${var.durable_execution_timeout_seconds}"
    assert content["retention_period"] == "${var.durable_retention_days}"
    assert "tenancy_config" not in function and "durable_config" not in function
    assert "per_tenant = try(function.perTenant, false)" in hcl.local("functions")
    assert "durable = try(function.durable, false)" in hcl.local("functions")


def test_durable_and_tenancy_blocks_appear_once_each() -> None:
    # The offline copy strips exactly these; a second copy elsewhere would go unchecked.
    text = hcl.module_text()
    for block in ("durable_config", "tenancy_config"):
        assert len(re.findall(rf'^\s*(?:{block}|dynamic\s+"{block}")\s*\{{', text, re.M)) == 1, block


def test_no_policy_statement_is_generated() -> None:
    # checkov reads no dynamic statement block: its IAM checks would pass one unread.
    for _, name, body in hcl.blocks("data"):
        assert "statement" not in {key for entry in body.get("dynamic", []) for key in entry}, name


def test_deployment_redeploys_on_every_api_resource() -> None:
    # A planned change of any resource the deployment snapshots replaces it;
    # none of them may be missing from the list.
    (lifecycle,) = hcl.resource("aws_api_gateway_deployment", "this")["lifecycle"]
    named = {hcl.expression(reference) for reference in lifecycle["replace_triggered_by"]}
    not_snapshotted = {  # the API itself, what reads the deployment, and what lives outside it
        "aws_api_gateway_rest_api.this",
        "aws_api_gateway_deployment.this",
        "aws_api_gateway_stage.this",
        "aws_api_gateway_method_settings.all",
        "aws_api_gateway_account.this",
        # Stage-level: the tiers' usage plans, the token route's method settings.
        "aws_api_gateway_usage_plan.tier",
        "aws_api_gateway_method_settings.public_routes",
    }
    declared = {f"{kind}.{name}" for kind, name, _ in hcl.blocks("resource") if kind.startswith("aws_api_gateway_")}
    assert named == declared - not_snapshotted


def test_start_integration_is_the_file_the_local_gateway_applies() -> None:
    # (What the deployed integration holds: test_apply_moto.py.)
    integration = hcl.resource("aws_api_gateway_integration", "start_workflow")
    assert integration["request_parameters"] == "${local.start_integration.requestParameters}"
    assert integration["request_templates"] == "${local.start_request_templates}"
    assert hcl.local("start_integration") == (
        '${jsondecode(file("${local.api_gateway_dir}/start_workflow_integration.json"))}'
    )
    assert hcl.local("api_gateway_dir") == "${local.shared_dir}/api_gateway"


def test_routes_and_header_come_from_the_contract_file() -> None:
    assert hcl.local("contract") == '${jsondecode(file("${local.shared_dir}/api_contract.json"))}'
    assert hcl.local("tenant_header") == "${local.contract.tenantHeader}"
    code = "\n".join(line for line in hcl.module_text().splitlines() if not line.lstrip().startswith("#"))
    for route in CONTRACT["routes"].values():
        assert f'"{route["path"]}"' not in code, f"{route['path']} is hard-coded in the .tf files"
    assert f'"{CONTRACT["tenantHeader"]}' not in code, "the tenant header is hard-coded in the .tf files"
    assert f'"{CONTRACT["apiKeyHeader"]}' not in code, "the API key header is hard-coded in the .tf files"


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
    for tf_file in root_tf_files():
        for entry in hcl.load(tf_file.name).get("output", []):
            outputs.update(entry)
    assert outputs
    for name, body in outputs.items():
        assert body.get("description"), f"output {name} has no description"


def test_no_checkov_skip_of_the_dead_letter_check_remains() -> None:
    # Every function has a dead_letter_config (test_plan_production.py), so CKV_AWS_116 needs no skip.
    assert "CKV_AWS_116" not in hcl.module_text()


def test_no_terraform_lock_file_pins_the_offline_provider() -> None:
    # The offline 5.x provider must never leak into the repository's lock file.
    lock = REPO_ROOT / ".terraform.lock.hcl"
    if lock.exists():
        match = re.search(r'provider "registry.terraform.io/hashicorp/aws"\s*\{\s*version\s*=\s*"([^"]+)"', lock.read_text())
        assert match and parse_version(match.group(1)) >= (6, 25, 0), lock.read_text()
