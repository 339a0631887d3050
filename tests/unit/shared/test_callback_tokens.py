"""Callback tokens: 256-bit, URL-safe, bound to one tenant's one callback, not derivable without the key."""

from __future__ import annotations

import pytest

from shared import callback_tokens as tokens
from shared import registry as reg
from tests.unit.fakes import register_waiting

KEY = b"k" * 32


def test_token_is_url_safe_256_bits_and_deterministic_per_callback() -> None:
    token = tokens.mint_token(KEY, "tenant-a", "cb-1")
    assert tokens.is_well_formed(token) and len(token) == 43
    assert tokens.mint_token(KEY, "tenant-a", "cb-1") == token, "a retried submitter gets the same token"


@pytest.mark.parametrize(("key", "tenant", "callback"), [(b"other-key", "tenant-a", "cb-1"), (KEY, "tenant-b", "cb-1"),
                                                          (KEY, "tenant-a", "cb-2")])
def test_another_key_tenant_or_callback_gives_another_token(key: bytes, tenant: str, callback: str) -> None:
    assert tokens.mint_token(key, tenant, callback) != tokens.mint_token(KEY, "tenant-a", "cb-1")


def test_token_is_not_the_callback_id_or_its_hash() -> None:
    token = tokens.mint_token(KEY, "tenant-a", "cb-1")
    assert "cb-1" not in token and tokens.token_hash(token) != tokens.token_hash("cb-1")


@pytest.mark.parametrize("bad", ["", "short", "x" * 42, "x" * 44, "a" * 42 + "=", "a" * 42 + "/", None, 7])
def test_malformed_tokens_are_refused_before_any_lookup(bad: object) -> None:
    assert not tokens.is_well_formed(bad)


def test_registry_keeps_only_the_hash_and_resolves_it_to_the_owner(tables: object) -> None:
    _, workflows = tables  # type: ignore[misc]
    registry = reg.WorkflowRegistry(workflows, retention_seconds=100, clock=lambda: 1_000.0)
    token = tokens.mint_token(KEY, "tenant-a", "cb-1")
    register_waiting(registry, "tenant-a", "wf-1", "cb-1", 60, token_hash=tokens.token_hash(token))
    items = workflows.scan()["Items"]
    assert not any(token in str(item) for item in items), "the token itself is never stored"
    found = registry.find_by_token(tokens.token_hash(token))
    assert found is not None and (found.tenant_id, found.workflow_id, found.callback_id) == ("tenant-a", "wf-1", "cb-1")
    assert registry.find_by_token(tokens.token_hash(tokens.mint_token(KEY, "tenant-a", "cb-9"))) is None
    assert registry.get_workflow("tenant-a", "token") is None


def test_signing_key_is_kept_for_its_max_age_then_read_again() -> None:
    import boto3
    from aws_lambda_powertools.utilities import parameters

    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name="unit-rotation-test-key", SecretString="first")
    try:
        assert tokens.signing_key("unit-rotation-test-key") == b"first"
        secrets.put_secret_value(SecretId="unit-rotation-test-key", SecretString="second")
        assert tokens.signing_key("unit-rotation-test-key") == b"first", "served from memory until max age"
        parameters.clear_caches()  # what SIGNING_KEY_MAX_AGE_SECONDS passing does
        assert tokens.signing_key("unit-rotation-test-key") == b"second"
    finally:
        secrets.delete_secret(SecretId="unit-rotation-test-key", ForceDeleteWithoutRecovery=True)
        parameters.clear_caches()


def test_tokens_match_only_themselves() -> None:
    token = tokens.mint_token(KEY, "tenant-a", "cb-1")
    assert tokens.matches(token, token)
    assert not tokens.matches(token, tokens.mint_token(b"rotated", "tenant-a", "cb-1"))
