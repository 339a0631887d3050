"""proving-ground/local/runtime/functions.py: the local stack's functions are the ones src/functions.json defines.

main.tf decodes the same file (tests/infra/test_plan.py compares the plan with it,
tests/infra/test_apply_moto.py the deployed environments).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import local.runtime.functions as functions_module
from local.runtime.functions import FUNCTIONS_FILE, FunctionConfig, Names, pattern_functions
from scripts.terraform_tables import variable_default

DEFINITIONS = json.loads(FUNCTIONS_FILE.read_text())
NAMES = Names("unit-prefix")
# What the local stack hands over (proving-ground/local/stack.py): its endpoints, the callback settings, a log level.
STACK_ENVIRONMENT = {
    "AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:1",
    "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:2",
    "CALLBACK_SIGNING_SECRET_NAME": "local-signing-key",
    "CALLBACK_BASE_URL": "http://127.0.0.1:3/v1",
    "EVENT_BUS_NAME": "unit-prefix-workflow-events",
    "ROUTER_DEAD_LETTER_QUEUE_URL": "http://127.0.0.1:2/123456789012/unit-prefix-router-dlq",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
ENDPOINTS = {name: value for name, value in STACK_ENVIRONMENT.items() if name.startswith("AWS_ENDPOINT_URL_")}


def _stack_functions(**overrides: object) -> dict[str, FunctionConfig]:
    arguments = {"common_environment": STACK_ENVIRONMENT, "tenant_cache_ttl_seconds": 7, **overrides}
    return {config.name: config for config in pattern_functions(NAMES, **arguments)}


def test_the_functions_are_the_ones_the_file_defines_with_its_handlers_and_flags() -> None:
    configs = _stack_functions()
    assert set(configs) == {NAMES.function(key) for key in DEFINITIONS["functions"]}
    for key, definition in DEFINITIONS["functions"].items():
        config = configs[NAMES.function(key)]
        assert config.handler == definition["handler"], key
        assert (config.per_tenant, config.durable) == (definition.get("perTenant", False), definition.get("durable", False)), key
        # The memory the file names: the variable's default, as main.tf deploys it.
        assert config.memory_mb == variable_default(definition["memoryMb"]), key
    assert configs[NAMES.workflow_function].durable and configs[NAMES.workflow_function].per_tenant


def test_timeouts_are_the_variables_defaults_and_the_stack_cap() -> None:
    configs = _stack_functions()
    for key, definition in DEFINITIONS["functions"].items():
        assert configs[NAMES.function(key)].timeout_seconds == variable_default(definition["timeoutSeconds"]), key
    # --function-timeout: the workflow's timeout, and a cap for the others.
    capped = _stack_functions(function_timeout_seconds=3)
    assert {config.timeout_seconds for config in capped.values()} == {3}


def test_each_function_gets_the_variables_the_file_declares_for_it_plus_the_local_endpoints() -> None:
    configs = _stack_functions()
    for key, definition in DEFINITIONS["functions"].items():
        declared = {**DEFINITIONS["environment"], **definition.get("environment", {})}
        environment = dict(configs[NAMES.function(key)].environment)
        assert set(environment) == set(declared) | set(ENDPOINTS), key
        assert {name: environment[name] for name in ENDPOINTS} == ENDPOINTS
        # The service Powertools tags logs and metrics with is the function's name, as on AWS.
        assert environment["POWERTOOLS_SERVICE_NAME"] == NAMES.function(key)
        assert environment["TENANTS_TABLE_NAME"] == NAMES.tenants_table
        assert environment["WORKFLOWS_TABLE_NAME"] == NAMES.workflows_table
        assert environment["POWERTOOLS_METRICS_NAMESPACE"] == variable_default("metrics_namespace")
        assert environment["POWERTOOLS_LOG_LEVEL"] == "WARNING"
    workflow = configs[NAMES.workflow_function].environment
    assert workflow["TENANT_CACHE_TTL_SECONDS"] == "7"
    assert workflow["EVENT_BUS_NAME"] == STACK_ENVIRONMENT["EVENT_BUS_NAME"]
    # The authorizer is not handed the callback settings, as on AWS.
    assert not {"CALLBACK_SIGNING_SECRET_NAME", "CALLBACK_BASE_URL", "EVENT_BUS_NAME"} & set(configs[NAMES.authorizer_function].environment)


def test_without_a_value_from_the_stack_the_log_level_is_the_variables_default() -> None:
    configs = _stack_functions(common_environment=ENDPOINTS)
    for config in configs.values():
        assert config.environment["POWERTOOLS_LOG_LEVEL"] == variable_default("log_level")
        # A setting only the stack can give (the callback settings) is left unset.
        assert "CALLBACK_BASE_URL" not in config.environment


def test_an_edited_definition_file_changes_the_local_functions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edited = json.loads(json.dumps(DEFINITIONS))
    edited["functions"]["api"]["handler"] = "api.other.handler"
    edited["functions"]["api"]["perTenant"] = True
    edited["environment"]["EXTRA_TABLE"] = "workflows_table_name"
    path = tmp_path / "functions.json"
    path.write_text(json.dumps(edited))
    monkeypatch.setattr(functions_module, "FUNCTIONS_FILE", path)
    api = _stack_functions()[NAMES.api_function]
    assert (api.handler, api.per_tenant) == ("api.other.handler", True)
    assert api.environment["EXTRA_TABLE"] == NAMES.workflows_table
