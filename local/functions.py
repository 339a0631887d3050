"""The pattern's functions (workflow, api, authorizer) as the local Lambda service knows them.

Names, handlers, alias and settings mirror the Terraform defaults (name prefix
``tenant-durable``, alias ``live``); only the endpoint variables differ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from local import SRC_DIR

DEFAULT_NAME_PREFIX = "tenant-durable"
AUTHORIZER_HANDLER = "authorizer.app.handler"
DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
ALIAS = "live"
# The alias points at this published version, as after the first `terraform apply`.
PUBLISHED_VERSION = "1"
LATEST = "$LATEST"

# An execution may wait days for its callback; the tenants' callback timeouts are at most a day.
DEFAULT_EXECUTION_TIMEOUT_SECONDS = 7 * 24 * 3600
DEFAULT_RETENTION_DAYS = 7
DEFAULT_FUNCTION_TIMEOUT_SECONDS = 60
# The api function and the authorizer answer API Gateway, which waits 29 s at most;
# variables.tf's api_timeout_seconds defaults to 10. The callback lease outlives it.
DEFAULT_API_TIMEOUT_SECONDS = 10

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

    @property
    def workflow_function(self) -> str:
        return f"{self.prefix}-workflow"

    @property
    def api_function(self) -> str:
        return f"{self.prefix}-api"

    @property
    def authorizer_function(self) -> str:
        return f"{self.prefix}-authorizer"

    @property
    def tenants_table(self) -> str:
        return f"{self.prefix}-tenants"

    @property
    def workflows_table(self) -> str:
        return f"{self.prefix}-workflows"


def pattern_functions(
    names: Names,
    *,
    common_environment: Mapping[str, str],
    tenant_cache_ttl_seconds: int,
    function_timeout_seconds: int = DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    execution_timeout_seconds: int = DEFAULT_EXECUTION_TIMEOUT_SECONDS,
) -> list[FunctionConfig]:
    """The workflow (durable, PER_TENANT), api and request-authorizer (plain) functions."""
    shared = {
        "TENANTS_TABLE_NAME": names.tenants_table,
        "WORKFLOWS_TABLE_NAME": names.workflows_table,
        "POWERTOOLS_METRICS_NAMESPACE": "TenantDurableWorkflow",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        **common_environment,
    }
    functions = [
        FunctionConfig(
            name=names.workflow_function,
            handler="workflow.app.handler",
            per_tenant=True,
            durable=True,
            timeout_seconds=function_timeout_seconds,
            execution_timeout_seconds=execution_timeout_seconds,
            environment=MappingProxyType(
                {
                    **shared,
                    "POWERTOOLS_SERVICE_NAME": "workflow",
                    "TENANT_CACHE_TTL_SECONDS": str(tenant_cache_ttl_seconds),
                }
            ),
        ),
        FunctionConfig(
            name=names.api_function,
            handler="api.app.handler",
            timeout_seconds=min(function_timeout_seconds, DEFAULT_API_TIMEOUT_SECONDS),
            environment=MappingProxyType({**shared, "POWERTOOLS_SERVICE_NAME": "api"}),
        ),
        FunctionConfig(
            name=names.authorizer_function,
            handler=AUTHORIZER_HANDLER,
            timeout_seconds=min(function_timeout_seconds, DEFAULT_API_TIMEOUT_SECONDS),
            environment=MappingProxyType({**shared, "POWERTOOLS_SERVICE_NAME": "authorizer"}),
        ),
    ]
    return functions


def parse_function_identifier(identifier: str) -> tuple[str, str | None] | None:
    """Split a FunctionName path value (name, ``name:qualifier``, partial or full ARN).

    Returns:
        ``(name, qualifier)``, or ``None`` when the value is not a function identifier.
    """
    match = _ARN.match(identifier)
    if not match:
        return None
    return match.group("name"), match.group("qualifier")
