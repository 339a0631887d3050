"""The pattern's functions (workflow, api, authorizer, control, provisioner) as the local Lambda service knows them.

What each function is (handler, memory, timeout, flags, environment) comes from
``src/functions.json``, the file main.tf decodes too; the numbers the file names
(memory, timeouts, the metrics namespace ...) are variables.tf's defaults, read
with proving-ground/scripts/terraform_tables.py. Only the local endpoints differ from AWS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from scripts.terraform_tables import variable_default

from local import SRC_DIR

# The one definition of the functions (main.tf: local.function_definitions).
FUNCTIONS_FILE = SRC_DIR / "functions.json"

DEFAULT_NAME_PREFIX: str = variable_default("name_prefix")
DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
# main.tf's local.workflow_alias_name.
ALIAS = "live"
# The alias points at this published version, as after the first `terraform apply`.
PUBLISHED_VERSION = "1"
LATEST = "$LATEST"

# An execution may wait days for its callback; the tenants' callback timeouts are at most a day.
DEFAULT_EXECUTION_TIMEOUT_SECONDS: int = variable_default("durable_execution_timeout_seconds")
DEFAULT_RETENTION_DAYS: int = variable_default("durable_retention_days")
DEFAULT_FUNCTION_TIMEOUT_SECONDS: int = variable_default("workflow_timeout_seconds")
# The api function and the authorizer answer API Gateway, which waits 29 s at most.
# The callback lease outlives it.
DEFAULT_API_TIMEOUT_SECONDS: int = variable_default("api_timeout_seconds")

_ARN = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:)?(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$"
)


@dataclass(frozen=True)
class FunctionConfig:
    """One Lambda function as deployed.

    Attributes:
        name: Function name.
        handler: ``module.attribute`` of the handler, importable from ``src/``.
        per_tenant: ``tenancy_config { tenant_isolation_mode = "PER_TENANT" }``.
        durable: ``durable_config`` is set: a caller's Invoke starts an execution.
        timeout_seconds: Function timeout for one invocation.
        memory_mb: Reported memory size.
        environment: Environment variables the function gets.
        execution_timeout_seconds: Durable execution timeout.
        retention_days: Durable execution retention.
        code_dir: The function's code (what its zip holds), first on ``PYTHONPATH``.
    """

    name: str
    handler: str
    per_tenant: bool = False
    durable: bool = False
    timeout_seconds: int = DEFAULT_FUNCTION_TIMEOUT_SECONDS
    memory_mb: int = 256
    environment: Mapping[str, str] = field(default_factory=dict)
    execution_timeout_seconds: int = DEFAULT_EXECUTION_TIMEOUT_SECONDS
    retention_days: int = DEFAULT_RETENTION_DAYS
    code_dir: Path = SRC_DIR

    def arn(self, region: str, qualifier: str | None = None) -> str:
        """The function ARN, qualified when ``qualifier`` is given."""
        base = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{self.name}"
        return f"{base}:{qualifier}" if qualifier else base

    @staticmethod
    def executed_version(qualifier: str | None) -> str:
        """The version an invocation with ``qualifier`` runs."""
        return PUBLISHED_VERSION if qualifier in (ALIAS, PUBLISHED_VERSION) else LATEST


@dataclass(frozen=True)
class Names:
    """Resource names derived from one prefix, as Terraform's ``local.name_prefix`` does."""

    prefix: str = DEFAULT_NAME_PREFIX

    def function(self, key: str) -> str:
        """The name of the function ``key`` of src/functions.json (main.tf: ``local.function_names``)."""
        return f"{self.prefix}-{key}"

    @property
    def workflow_function(self) -> str:
        return self.function("workflow")

    @property
    def api_function(self) -> str:
        return self.function("api")

    @property
    def authorizer_function(self) -> str:
        return self.function("authorizer")

    @property
    def tenants_table(self) -> str:
        return f"{self.prefix}-tenants"

    @property
    def workflows_table(self) -> str:
        return f"{self.prefix}-workflows"


def function_definitions() -> dict[str, Any]:
    """src/functions.json: every function's definition and the environment they all get."""
    return json.loads(FUNCTIONS_FILE.read_text(encoding="utf-8"))


def pattern_functions(
    names: Names,
    *,
    common_environment: Mapping[str, str],
    tenant_cache_ttl_seconds: int,
    function_timeout_seconds: int = DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    execution_timeout_seconds: int = DEFAULT_EXECUTION_TIMEOUT_SECONDS,
) -> list[FunctionConfig]:
    """The functions of src/functions.json (workflow: durable, PER_TENANT; api and authorizer: plain).

    Each setting the file names gets the local stack's value: its own table and
    function names, variables.tf's defaults, ``tenant_cache_ttl_seconds``.
    ``function_timeout_seconds`` is the workflow's timeout and caps the others'.

    Args:
        names: The resource names of this stack.
        common_environment: The stack's values of environment variables: one that
            src/functions.json declares (the callback settings, the log level) reaches the
            functions that declare it, and takes the place of the setting's value; any
            other (the local endpoints, AWS_ENDPOINT_URL_*) reaches every function.
            A declared variable with neither a setting nor a value here is left unset.
        tenant_cache_ttl_seconds: TENANT_CACHE_TTL_SECONDS.
        function_timeout_seconds: The workflow function's timeout, and the others' at most.
        execution_timeout_seconds: The durable execution timeout.
    """
    definitions = function_definitions()
    functions = definitions["functions"]
    declared = {*definitions["environment"], *(name for function in functions.values() for name in function.get("environment", {}))}
    endpoints = {name: value for name, value in common_environment.items() if name not in declared}
    settings: dict[str, Any] = {
        "tenants_table_name": names.tenants_table,
        "workflows_table_name": names.workflows_table,
        "metrics_namespace": variable_default("metrics_namespace"),
        "log_level": variable_default("log_level"),
        "tenant_cache_ttl_seconds": tenant_cache_ttl_seconds,
        "workflow_memory_mb": variable_default("workflow_memory_mb"),
        "api_memory_mb": variable_default("api_memory_mb"),
        "workflow_timeout_seconds": function_timeout_seconds,
        "api_timeout_seconds": min(function_timeout_seconds, DEFAULT_API_TIMEOUT_SECONDS),
        # The control plane and the provisioner (the usage plans' ids come with the stack's environment).
        "name_prefix": names.prefix,
        "provisioner_function_name": names.function("provisioner"),
        "throttling_rate_limit": variable_default("throttling_rate_limit"),
        "throttling_burst_limit": variable_default("throttling_burst_limit"),
        "durable_execution_timeout_seconds": execution_timeout_seconds,
        # The router and the start queues (router.tf, main.tf); the router's dead-letter queue
        # URL comes with the stack's environment (it is on the moto server).
        "workflow_live_function": f"{names.workflow_function}:{ALIAS}",
        "start_queue_visibility_timeout_seconds": 6 * min(function_timeout_seconds, DEFAULT_API_TIMEOUT_SECONDS),
    }
    configs = []
    for key, function in functions.items():
        own = {**settings, "function_name": names.function(key)}
        environment = {}
        for variable, setting in {**definitions["environment"], **function.get("environment", {})}.items():
            if variable in common_environment:
                environment[variable] = common_environment[variable]
            elif setting in own:
                environment[variable] = str(own[setting])
        configs.append(FunctionConfig(
            name=names.function(key),
            handler=function["handler"],
            per_tenant=function.get("perTenant", False),
            durable=function.get("durable", False),
            timeout_seconds=own[function["timeoutSeconds"]],
            memory_mb=own[function["memoryMb"]],
            environment=MappingProxyType({**environment, **endpoints}),
            execution_timeout_seconds=execution_timeout_seconds,
            retention_days=DEFAULT_RETENTION_DAYS,
        ))
    return configs


def parse_function_identifier(identifier: str) -> tuple[str, str | None] | None:
    """Split a FunctionName path value (name, ``name:qualifier``, partial or full ARN).

    Returns:
        ``(name, qualifier)``, or ``None`` when the value is not a function identifier.
    """
    match = _ARN.match(identifier)
    if not match:
        return None
    return match.group("name"), match.group("qualifier")
