"""Control function: the admin API under /tenants (AWS_IAM authorization, AWS_PROXY).

Onboard, list, read, change (status, tier, policy), rotate the key of, and
offboard tenants at runtime. Onboarding and offboarding run in the provisioner
(a durable function) as named executions; this function writes the tenant's
item and starts them. Keys are shown once and stored as hashes only.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from control.requests import (
    InvalidField,
    Limits,
    encode_next_token,
    parse_create,
    parse_json_object,
    parse_list,
    parse_overlap,
    parse_patch,
    tenant_view,
)
from control.store import Conflict, ProvisioningNotStarted, StageThrottle, TenantNotFound, TenantStore
from shared.aws_clients import DYNAMODB_CONFIG, LAMBDA_CONFIG
from shared.contract import is_valid_tenant_id
from shared.identity import hash_api_key, new_api_key
from shared.settings import load_settings
from shared.tenants import PROVISIONING

logger = Logger()
SETTINGS = load_settings()
LIMITS = Limits(execution_timeout_seconds=int(os.environ.get("WORKFLOW_EXECUTION_TIMEOUT_SECONDS", "604800")))
STORE = TenantStore(
    boto3.resource("dynamodb", config=DYNAMODB_CONFIG).Table(SETTINGS.tenants_table),
    boto3.client("lambda", config=LAMBDA_CONFIG),
    os.environ.get("PROVISIONER_FUNCTION_NAME", ""),
    StageThrottle(float(os.environ.get("STAGE_THROTTLE_RATE_LIMIT", "100")),
                  int(os.environ.get("STAGE_THROTTLE_BURST_LIMIT", "200"))),
)
app = APIGatewayRestResolver()


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def _tenant_id(raw: str) -> str:
    if not is_valid_tenant_id(raw):
        raise InvalidField("tenantId", "must be 1 to 64 letters, digits, '.', '_' or '-'")
    logger.append_keys(tenant_id=raw)
    return raw


def _body() -> dict[str, Any]:
    return parse_json_object(app.current_event.body)


@app.post("/tenants")
def create_tenant() -> Response:
    """Onboard: 202 with the key, shown this once."""
    request = parse_create(_body(), LIMITS)
    logger.append_keys(tenant_id=request.tenant_id)
    api_key = new_api_key()
    STORE.create(request, hash_api_key(api_key))
    logger.info("tenant onboarding started", extra={"tier": request.tier, "caller": _caller()})
    return _json(202, {"tenantId": request.tenant_id, "status": PROVISIONING, "apiKey": api_key})


@app.get("/tenants")
def list_tenants() -> Response:
    """A page of tenants; OFFBOARDED tombstones only with ?status=OFFBOARDED."""
    request = parse_list(dict(app.current_event.query_string_parameters or {}))
    items, last_key = STORE.list(request)
    body: dict[str, Any] = {"tenants": [tenant_view(item) for item in items]}
    token = encode_next_token({"tenantId": last_key["tenantId"]} if last_key else None)
    if token:
        body["nextToken"] = token
    return _json(200, body)


@app.get("/tenants/<tenantId>")
def get_tenant(tenantId: str) -> Response:  # noqa: N803 - the path parameter's name
    """One tenant, without any key."""
    return _json(200, tenant_view(STORE.get(_tenant_id(tenantId))))


@app.patch("/tenants/<tenantId>")
def patch_tenant(tenantId: str) -> Response:  # noqa: N803
    """Suspend, reactivate, change the tier or the policy."""
    tenant_id = _tenant_id(tenantId)
    request = parse_patch(_body(), LIMITS)
    item, _old_tier = STORE.patch(tenant_id, request)
    logger.info("tenant changed", extra={"fields": sorted([*request.policy, *(["status"] if request.status else []),
                                                           *(["tier"] if request.tier else [])]),
                                         "status": item["status"], "caller": _caller()})
    return _json(200, tenant_view(item))


@app.post("/tenants/<tenantId>/api-keys")
def rotate_key(tenantId: str) -> Response:  # noqa: N803
    """A new key; the previous one keeps working for overlapSeconds (default 3600, 0: revoked now)."""
    tenant_id = _tenant_id(tenantId)
    overlap = parse_overlap(_body())
    api_key = new_api_key()
    expires_at = STORE.rotate(tenant_id, hash_api_key(api_key), overlap)
    logger.info("tenant key rotated", extra={"overlap_seconds": overlap, "caller": _caller()})
    return _json(201, {"apiKey": api_key, "previousKeyExpiresAt": expires_at})


@app.delete("/tenants/<tenantId>")
def delete_tenant(tenantId: str) -> Response:  # noqa: N803
    """Offboard: 202 OFFBOARDING (repeating answers the current status)."""
    tenant_id = _tenant_id(tenantId)
    status = STORE.offboard(tenant_id)
    logger.info("tenant offboarding", extra={"status": status, "caller": _caller()})
    return _json(202, {"tenantId": tenant_id, "status": status})


def _caller() -> str:
    """The IAM principal that signed the request (from API Gateway's identity), for the audit line."""
    identity = app.current_event.request_context.identity
    return str(identity.user_arn or identity.caller or "-")


@app.exception_handler(InvalidField)
def _invalid(error: InvalidField) -> Response:
    return _json(400, {"message": str(error)})


@app.exception_handler(TenantNotFound)
def _not_found(_error: TenantNotFound) -> Response:
    return _json(404, {"message": "tenant not found"})


@app.exception_handler(Conflict)
def _conflict(error: Conflict) -> Response:
    logger.info("request refused", extra={"status": 409, "reason": str(error)})
    return _json(409, {"message": str(error)})


@app.exception_handler(ProvisioningNotStarted)
def _not_started(error: ProvisioningNotStarted) -> Response:
    logger.error("provisioner not invoked", extra={"reason": str(error)})
    return _json(503, {"message": str(error)})


@app.exception_handler((ClientError, BotoCoreError))
def _aws_error(error: Exception) -> Response:
    code = error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
    logger.warning("dependency failed", extra={"error": code})
    return Response(status_code=503, content_type=content_types.APPLICATION_JSON, headers={"Retry-After": "1"},
                    body=json.dumps({"message": "the tenants table or the provisioner is unavailable; retry"}))


@app.not_found
def _no_route(_error: Exception) -> Response:
    return _json(404, {"message": "Not Found"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """AWS_PROXY entry point."""
    return app.resolve(event, context)
