"""The public API as the local gateway serves it, read from ``src/shared/api_contract.json``.

Routes are value objects in a table keyed by method and path template; the request
body validator is compiled from the same schema file Terraform turns into the
API Gateway model. Nothing here is a hand-kept copy of the contract.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable
from urllib.parse import unquote

import fastjsonschema

import local  # noqa: F401 - puts src/ on the import path
from shared import contract as shared_contract

ASYNC_WORKFLOW_START = "workflow-async-invoke"
API_PROXY = "api-proxy"


@dataclass(frozen=True)
class Route:
    """One method on one resource of the REST API.

    Attributes:
        name: The contract's key, e.g. ``startWorkflow``.
        method: HTTP method.
        resource: Path template, e.g. ``/workflow/{workflowId}``.
        integration: ``workflow-async-invoke`` or ``api-proxy``.
        success_status: Status of a successful answer.
        request_schema: File name of the body schema, if the body is validated.
    """

    name: str
    method: str
    resource: str
    integration: str
    success_status: int
    request_schema: str | None = None

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.resource))
        return re.compile(f"^{regex}$")

    def match(self, path: str) -> dict[str, str] | None:
        """Path parameters when ``path`` is this route's resource, else ``None``."""
        found = self._pattern.match(path)
        return {name: unquote(value) for name, value in found.groupdict().items()} if found else None


@dataclass(frozen=True)
class ApiContract:
    """The gateway's view of the contract: the route table and the compiled body validators."""

    routes: tuple[Route, ...]
    validators: dict[str, Callable[[Any], Any]]

    def find(self, method: str, path: str) -> tuple[Route | None, dict[str, str] | None, bool]:
        """Look a request up in the route table.

        Returns:
            ``(route, path parameters, resource exists)``; the route is ``None`` when no
            method of a matching resource fits.
        """
        resource_exists = False
        for route in self.routes:
            params = route.match(path)
            if params is None:
                continue
            resource_exists = True
            if route.method == method.upper():
                return route, params, True
        return None, None, resource_exists

    def validate_body(self, route: Route, body: Any) -> str | None:
        """The validation error for ``body``, or ``None`` when it is valid (or not validated)."""
        if route.request_schema is None:
            return None
        try:
            self.validators[route.request_schema](body)
        except fastjsonschema.JsonSchemaException as error:
            return error.message
        return None


def load_contract() -> ApiContract:
    """Build the gateway's route table from the shared contract and compile each request schema."""
    contract_routes = tuple(
        Route(
            name=route.name,
            method=route.method.upper(),
            resource=route.path,
            integration=route.integration,
            success_status=route.success_status,
            request_schema=route.request_schema,
        )
        for route in shared_contract.routes().values()
    )
    validators = {
        route.request_schema: fastjsonschema.compile(
            json.loads((shared_contract.CONTRACT_DIR / route.request_schema).read_text(encoding="utf-8"))
        )
        for route in contract_routes
        if route.request_schema
    }
    return ApiContract(routes=contract_routes, validators=validators)
