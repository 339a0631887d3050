"""The public API as the local gateway serves it, read from ``src/shared/api_contract.json``.

Routes are the shared contract's value objects, matched by path template; the request
body validator is compiled from the same schema file Terraform turns into the
API Gateway model. Nothing here is a hand-kept copy of the contract.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable
from urllib.parse import unquote

import fastjsonschema

from shared import contract as shared_contract
from shared.contract import Route

ASYNC_WORKFLOW_START = "workflow-async-invoke"
API_PROXY = "api-proxy"


def path_parameters(route: Route, path: str) -> dict[str, str] | None:
    """Path parameters when ``path`` is ``route``'s resource (``/workflow/{workflowId}``), else ``None``."""
    found = _resource_pattern(route.path).match(path)
    return {name: unquote(value) for name, value in found.groupdict().items()} if found else None


@cache
def _resource_pattern(resource: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(resource))
    return re.compile(f"^{regex}$")


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
            params = path_parameters(route, path)
            if params is None:
                continue
            resource_exists = True
            if route.method.upper() == method.upper():
                return route, params, True
        return None, None, resource_exists

    def find_resource(self, path: str) -> tuple[Route | None, dict[str, str] | None, bool]:
        """Like :meth:`find`, for any method: the first route whose resource ``path`` is."""
        for route in self.routes:
            params = path_parameters(route, path)
            if params is not None:
                return route, params, True
        return None, None, False

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
    contract_routes = tuple(shared_contract.routes().values())
    validators = {
        route.request_schema: fastjsonschema.compile(
            json.loads((shared_contract.CONTRACT_DIR / route.request_schema).read_text(encoding="utf-8"))
        )
        for route in contract_routes
        if route.request_schema
    }
    return ApiContract(routes=contract_routes, validators=validators)
