"""The public API as the local gateway serves it, read from ``src/shared/``.

Routes are the shared contract's value objects, matched by path template; the request
body validator is compiled from the same schema file Terraform turns into the
API Gateway model; the start integration (request parameters, mapping templates,
integration responses) and the gateway responses are the files in
``src/shared/api_gateway/`` that main.tf deploys. Nothing here is a hand-kept copy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

import fastjsonschema

from local.services.vtl import MappingTemplate
from shared import contract as shared_contract
from shared.contract import Route

ASYNC_WORKFLOW_START = "workflow-async-invoke"
API_PROXY = "api-proxy"
# The admin API's AWS_PROXY integration (the control function), behind AWS_IAM.
CONTROL_PROXY = "control-proxy"
API_GATEWAY_DIR = shared_contract.CONTRACT_DIR / "api_gateway"

# API Gateway's default status of each gateway response type (its developer guide,
# "Gateway response types"), used where gateway_responses.json sets none.
DEFAULT_STATUS = {
    "ACCESS_DENIED": 403,
    "API_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_FAILURE": 500,
    "BAD_REQUEST_BODY": 400,
    "BAD_REQUEST_PARAMETERS": 400,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "INVALID_SIGNATURE": 403,
    "INVALID_API_KEY": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "QUOTA_EXCEEDED": 429,
    "REQUEST_TOO_LARGE": 413,
    "THROTTLED": 429,
    "UNAUTHORIZED": 401,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}
# The x-amzn-ErrorType header API Gateway sends with its own errors.
ERROR_TYPE = {
    "ACCESS_DENIED": "AccessDeniedException",
    "AUTHORIZER_CONFIGURATION_ERROR": "AuthorizerConfigurationException",
    "AUTHORIZER_FAILURE": "AuthorizerFailureException",
    "BAD_REQUEST_BODY": "BadRequestException",
    "BAD_REQUEST_PARAMETERS": "BadRequestException",
    "DEFAULT_5XX": "InternalServerErrorException",
    "INTEGRATION_FAILURE": "InternalServerErrorException",
    "INVALID_API_KEY": "ForbiddenException",
    "INVALID_SIGNATURE": "InvalidSignatureException",
    "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
    "QUOTA_EXCEEDED": "LimitExceededException",
    "REQUEST_TOO_LARGE": "RequestTooLargeException",
    "THROTTLED": "TooManyRequestsException",
    "UNAUTHORIZED": "UnauthorizedException",
    "UNSUPPORTED_MEDIA_TYPE": "UnsupportedMediaTypeException",
}


@dataclass(frozen=True)
class GatewayResponse:
    """What API Gateway answers for one gateway response type: status, header mappings, template."""

    response_type: str
    status: int
    headers: dict[str, str]
    template: MappingTemplate | None


@dataclass(frozen=True)
class GatewayResponses:
    """The gateway responses of ``gateway_responses.json``, resolved as API Gateway resolves them.

    A type not configured falls back to ``DEFAULT_4XX``/``DEFAULT_5XX`` (by its default
    status) for headers and template; its status is its own configured one, else the
    fallback's configured one, else API Gateway's default for the type.
    """

    configured: dict[str, dict[str, Any]]
    template: MappingTemplate
    # The types that name a template of their own ("template" in gateway_responses.json).
    own_templates: dict[str, MappingTemplate] = field(default_factory=dict)

    def resolve(self, response_type: str, default_status: int | None = None) -> GatewayResponse:
        """The response for ``response_type``; ``default_status`` overrides the type's default status."""
        status = default_status or DEFAULT_STATUS.get(response_type) or (
            400 if response_type == "DEFAULT_4XX" else 500
        )
        fallback = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        own = self.configured.get(response_type)
        chosen = own if own is not None else self.configured.get(fallback)
        configured_status = (own or {}).get("statusCode") or (
            None if own is not None else (self.configured.get(fallback) or {}).get("statusCode")
        )
        return GatewayResponse(
            response_type=response_type,
            status=int(configured_status) if configured_status else status,
            headers=dict((chosen or {}).get("headers") or {}),
            # An unconfigured API still answers {"message": ...}: API Gateway's default template.
            template=self.own_templates.get(response_type if own is not None else fallback, self.template),
        )


@dataclass(frozen=True)
class IntegrationResponse:
    """One integration response of the start integration."""

    status: int
    selection_pattern: str | None
    templates: dict[str, MappingTemplate]


@dataclass(frozen=True)
class StartIntegration:
    """``POST /workflow``'s AWS integration, from ``start_workflow_integration.json``."""

    request_parameters: dict[str, str]
    request_templates: dict[str, MappingTemplate]
    responses: tuple[IntegrationResponse, ...]

    def response_for(self, error_message: str | None) -> IntegrationResponse:
        """The integration response API Gateway picks: a function error's message against the
        selection patterns (a whole-string match, as Java's ``String.matches``), else the default."""
        if error_message is not None:
            for response in self.responses:
                if response.selection_pattern and re.fullmatch(response.selection_pattern, error_message):
                    return response
        return next(response for response in self.responses if not response.selection_pattern)


def load_start_integration(directory: Path = API_GATEWAY_DIR) -> StartIntegration:
    """The start integration as main.tf deploys it."""
    spec = json.loads((directory / "start_workflow_integration.json").read_text(encoding="utf-8"))

    def templates(names: dict[str, str]) -> dict[str, MappingTemplate]:
        return {content_type.lower(): MappingTemplate.from_file(directory / name) for content_type, name in names.items()}

    return StartIntegration(
        request_parameters=dict(spec["requestParameters"]),
        request_templates=templates(spec["requestTemplates"]),
        responses=tuple(
            IntegrationResponse(int(response["statusCode"]), response.get("selectionPattern"),
                                templates(response["templates"]))
            for response in spec["responses"].values()
        ),
    )


def load_gateway_responses(directory: Path = API_GATEWAY_DIR) -> GatewayResponses:
    """The gateway responses as main.tf deploys them."""
    spec = json.loads((directory / "gateway_responses.json").read_text(encoding="utf-8"))
    # main.tf adds the security headers to every type, as quoted literals, before the type's own.
    security = {name: f"'{value}'" for name, value in (spec.get("securityHeaders") or {}).get("headers", {}).items()}
    configured = {kind: {**response, "headers": {**security, **(response.get("headers") or {})}}
                  for kind, response in spec["responses"].items()}
    return GatewayResponses(configured=configured,
                            template=MappingTemplate.from_file(directory / spec["template"]),
                            own_templates={kind: MappingTemplate.from_file(directory / response["template"])
                                           for kind, response in spec["responses"].items() if response.get("template")})


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
    start_integration: StartIntegration
    gateway_responses: GatewayResponses
    # The REQUEST authorizer's identity sources (main.tf: method.request.header.<each>).
    identity_headers: tuple[str, ...]

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
            # Methods are case-sensitive: "get" is no method of any resource.
            if route.method == method:
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


def load_contract(api_gateway_dir: Path = API_GATEWAY_DIR) -> ApiContract:
    """Build the gateway's route table from the shared contract and compile each request schema.

    Args:
        api_gateway_dir: Where the integration and gateway response files are
            (tests point it at an edited copy).
    """
    contract_routes = tuple(shared_contract.routes().values())
    validators = {
        route.request_schema: fastjsonschema.compile(
            json.loads((shared_contract.CONTRACT_DIR / route.request_schema).read_text(encoding="utf-8"))
        )
        for route in contract_routes
        if route.request_schema
    }
    raw = shared_contract.api_contract()
    return ApiContract(
        routes=contract_routes,
        validators=validators,
        start_integration=load_start_integration(api_gateway_dir),
        gateway_responses=load_gateway_responses(api_gateway_dir),
        identity_headers=(raw["tenantHeader"], raw["apiKeyHeader"]),
    )
