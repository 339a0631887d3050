"""Authorizer decisions: the key must belong to the tenant it comes with (pure)."""

from __future__ import annotations

import pytest

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerRequestEvent

from authorizer.decision import decide
from shared.identity import hash_api_key, mint_workflow_id

NOW = 1_800_000_000.0
TENANTS = {
    "tenant-a": {"status": "ACTIVE", "apiKeyHash": hash_api_key("key-a"), "meteringKey": "metering-a"},
    "tenant-b": {"status": "ACTIVE", "apiKeyHash": hash_api_key("key-b"), "meteringKey": "metering-b"},
    "tenant-s": {"status": "SUSPENDED", "apiKeyHash": hash_api_key("key-s"), "meteringKey": "metering-s"},
    "tenant-o": {"status": "OFFBOARDED"},
    "tenant-p": {"status": "PROVISIONING", "apiKeyHash": hash_api_key("key-p")},
    "tenant-r": {"status": "ACTIVE", "apiKeyHash": hash_api_key("key-new"), "previousApiKeyHash": hash_api_key("key-old"),
                 "previousApiKeyExpiresAt": NOW + 10, "meteringKey": "metering-r"},
}


def verdict(headers: dict[str, str], request_id: str = "req-1", now: float = NOW):
    event = APIGatewayAuthorizerRequestEvent({"headers": headers})
    return decide(event.headers.get, request_id, TENANTS.get, lambda: now)


def test_own_key_is_allowed_with_verified_tenant_and_request_id_as_workflow_id() -> None:
    result = verdict({"X-Tenant-Id": "tenant-a", "X-Api-Key": "key-a"})
    assert (result.allowed, result.tenant_id, result.workflow_id) == (True, "tenant-a", "req-1")
    # API Gateway meters with the tenant's internal key, never with the credential.
    assert result.usage_identifier_key == "metering-a"


@pytest.mark.parametrize(("tenant", "key", "reason"), [
    ("tenant-s", "key-s", "tenant is suspended"),
    ("tenant-p", "key-p", "tenant is provisioning"),
    ("tenant-o", "anything", "API key does not belong to this tenant"),
])
def test_a_tenant_that_is_not_active_is_denied_at_once(tenant: str, key: str, reason: str) -> None:
    result = verdict({"x-tenant-id": tenant, "x-api-key": key})
    assert (result.allowed, result.unauthenticated, result.reason) == (False, False, reason)
    assert result.usage_identifier_key is None


@pytest.mark.parametrize(("key", "now", "allowed"), [
    ("key-new", NOW, True), ("key-old", NOW, True), ("key-old", NOW + 10, False), ("key-new", NOW + 10, True),
])
def test_during_a_rotation_the_previous_key_works_until_its_expiry(key: str, now: float, allowed: bool) -> None:
    result = verdict({"x-tenant-id": "tenant-r", "x-api-key": key}, now=now)
    assert result.allowed is allowed
    assert result.usage_identifier_key == ("metering-r" if allowed else None)


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-tenant-id": "tenant-a"}, {"x-tenant-id": "tenant-a", "x-api-key": ""},
     {"x-api-key": "key-a"}, {"x-api-key": "key-a", "x-tenant-id": "a b"}, {"x-api-key": "key-a", "x-tenant-id": "x" * 65}],
)
def test_missing_key_or_tenant_is_unauthenticated(headers: dict[str, str]) -> None:
    result = verdict(headers)
    assert not result.allowed and result.unauthenticated


@pytest.mark.parametrize(
    "headers",
    [
        {"x-tenant-id": "tenant-b", "x-api-key": "key-a"},  # another tenant's key
        {"x-tenant-id": "tenant-a", "x-api-key": "wrong"},
        {"x-tenant-id": "tenant-zzz", "x-api-key": "key-a"},  # unknown tenant
        {"x-tenant-id": "tenant-a", "x-api-key": "k" * 300},
    ],
)
def test_wrong_key_is_denied(headers: dict[str, str]) -> None:
    result = verdict(headers)
    assert not result.allowed and not result.unauthenticated
    assert result.usage_identifier_key is None


def test_idempotency_key_gives_same_workflow_per_tenant_and_never_across_tenants() -> None:
    first = verdict({"x-tenant-id": "tenant-a", "x-api-key": "key-a", "Idempotency-Key": "order-1"}, "req-1")
    retry = verdict({"x-tenant-id": "tenant-a", "x-api-key": "key-a", "idempotency-key": "order-1"}, "req-2")
    other = verdict({"x-tenant-id": "tenant-b", "x-api-key": "key-b", "Idempotency-Key": "order-1"}, "req-3")
    assert first.workflow_id == retry.workflow_id == mint_workflow_id("tenant-a", "order-1", "ignored")
    assert other.workflow_id != first.workflow_id
