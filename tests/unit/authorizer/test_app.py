"""Authorizer handler against moto DynamoDB: the API Gateway response shapes for 401, 403 and Allow."""

from __future__ import annotations

from typing import Any

import pytest

from authorizer import app
from shared.identity import hash_api_key
from tests.unit.fakes import FakeLambdaContext

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/POST/workflow"

LAMBDA_CONTEXT = FakeLambdaContext()


@pytest.fixture
def keyed_tenants(tables: Any) -> None:
    tenants, _ = tables
    for tenant_id in ("tenant-a", "tenant-b"):
        tenants.update_item(
            Key={"tenantId": tenant_id}, UpdateExpression="SET apiKeyHash = :h, meteringKey = :m",
            ExpressionAttributeValues={":h": hash_api_key(f"secret-{tenant_id}"), ":m": f"metering-{tenant_id}"},
        )


def authorize(headers: dict[str, str], method_arn: str = METHOD_ARN) -> dict[str, Any]:
    event = {
        "type": "REQUEST", "methodArn": method_arn, "resource": "/workflow", "path": "/workflow",
        "httpMethod": "POST", "headers": headers,
        "requestContext": {"requestId": "req-42", "resourcePath": "/workflow", "httpMethod": "POST",
                           "stage": "v1", "accountId": "123456789012", "apiId": "abc123"},
    }
    return app.handler(event, LAMBDA_CONTEXT)


def test_own_key_allows_the_request_and_passes_tenant_and_workflow_id(keyed_tenants: None) -> None:
    response = authorize({"x-tenant-id": "tenant-a", "x-api-key": "secret-tenant-a"})
    statement = response["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abc123/v1/*/*"]
    assert response["context"] == {"tenantId": "tenant-a", "workflowId": "req-42"}
    # API Gateway throttles and meters it against tenant-a's tier's usage plan through its
    # metering key, never through the credential it presented.
    assert response["usageIdentifierKey"] == "metering-tenant-a"


def test_a_suspension_refuses_the_very_next_request(keyed_tenants: None, tables: Any) -> None:
    tenants, _ = tables
    assert authorize({"x-tenant-id": "tenant-a", "x-api-key": "secret-tenant-a"})["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    tenants.update_item(Key={"tenantId": "tenant-a"}, UpdateExpression="SET #s = :s",
                        ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": "SUSPENDED"})
    response = authorize({"x-tenant-id": "tenant-a", "x-api-key": "secret-tenant-a"})
    assert response["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert "usageIdentifierKey" not in response


@pytest.mark.parametrize("path", ["/workflow/a%20b", "/workflow/a%2Fb", "/workflow/idem:with:colons"])
def test_unusual_but_valid_paths_are_authorized_not_failed(keyed_tenants: None, path: str) -> None:
    method_arn = f"arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET{path}"
    response = authorize({"x-tenant-id": "tenant-a", "x-api-key": "secret-tenant-a"}, method_arn)
    assert response["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_another_tenants_key_is_denied(keyed_tenants: None) -> None:
    response = authorize({"x-tenant-id": "tenant-b", "x-api-key": "secret-tenant-a"})
    assert response["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert "context" not in response or not response["context"]
    # No usage plan key for a refused request: it is never metered against the claimed tenant.
    assert "usageIdentifierKey" not in response


def test_missing_key_raises_unauthorized(keyed_tenants: None) -> None:
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorize({"x-tenant-id": "tenant-a"})


def test_key_is_never_logged(keyed_tenants: None, json_logs: Any) -> None:
    logs = json_logs(app.logger)
    authorize({"x-tenant-id": "tenant-b", "x-api-key": "secret-tenant-a"})
    assert logs.lines() and "secret-tenant-a" not in str(logs.lines())
