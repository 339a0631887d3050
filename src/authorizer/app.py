"""Request authorizer: the API key must belong to the x-tenant-id it comes with."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from authorizer.decision import TENANT_FIELDS, Verdict, decide
from shared.aws_clients import DYNAMODB_CONFIG
from shared.settings import load_settings

logger = Logger()
SETTINGS = load_settings()
TENANTS_TABLE = boto3.resource("dynamodb", config=DYNAMODB_CONFIG).Table(SETTINGS.tenants_table)


_PROJECTION = ", ".join(f"#f{index}" for index in range(len(TENANT_FIELDS)))
_NAMES = {f"#f{index}": name for index, name in enumerate(TENANT_FIELDS)}


def tenant_credentials(tenant_id: str) -> dict[str, Any] | None:
    """The tenant's status, key hashes and metering key; None for an unknown tenant.

    Strongly consistent, on every request: a suspension, an offboarding or a
    rotation with no overlap refuses the very next request.
    """
    return TENANTS_TABLE.get_item(Key={"tenantId": tenant_id}, ConsistentRead=True,
                                  ProjectionExpression=_PROJECTION, ExpressionAttributeNames=_NAMES).get("Item")


@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    """401 (raise ``Unauthorized``) without identity, 403 (Deny) for a key of another tenant or a tenant
    that is not ACTIVE, else Allow with the tenant's metering key as ``usageIdentifierKey``."""
    verdict: Verdict = decide(event.headers.get, event.request_context.request_id, tenant_credentials)
    logger.append_keys(tenant_id=verdict.tenant_id or "-", workflow_id=verdict.workflow_id or "-")
    if verdict.unauthenticated:
        logger.info("request refused", extra={"status": 401, "reason": verdict.reason})
        # API Gateway answers 401 only for this exact message.
        raise Exception("Unauthorized")  # noqa: TRY002
    # Only region, account, API and stage are read from the method ARN: the path
    # part may hold ":" (valid in a workflow id), which a full parse would split.
    arn = event.parsed_arn
    response = APIGatewayAuthorizerResponse(
        principal_id=verdict.tenant_id or "anonymous",
        region=arn.region, aws_account_id=arn.aws_account_id, api_id=arn.api_id, stage=arn.stage,
        context={"tenantId": verdict.tenant_id, "workflowId": verdict.workflow_id} if verdict.allowed else None,
        # API Gateway throttles and meters the request with the tenant's tier's
        # usage plan through this key (api_key_source = "AUTHORIZER" in api.tf).
        usage_identifier_key=verdict.usage_identifier_key if verdict.allowed else None,
    )
    if not verdict.allowed:
        logger.info("request refused", extra={"status": 403, "reason": verdict.reason})
        response.deny_all_routes()
        return response.asdict()
    # The whole stage for this tenant: results are never cached (TTL 0), so the
    # policy only ever covers this one request, and every route re-checks the
    # verified tenant against its own data.
    response.allow_all_routes()
    return response.asdict()
