"""The admin API's validation, field by field, with each range's edges (pure), and the tenant's public view."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from control.requests import (
    InvalidField,
    Limits,
    decode_next_token,
    encode_next_token,
    parse_create,
    parse_json_object,
    parse_list,
    parse_overlap,
    parse_patch,
    tenant_view,
)

LIMITS = Limits(execution_timeout_seconds=604_800)
VALID = {"tenantId": "acme.eu-1", "displayName": "Acme", "tier": "starter", "allowedCurrencies": ["USD", "EUR"],
         "maxAmount": 250, "callbackTimeoutSeconds": 3600}


def test_a_valid_onboarding_is_parsed_with_its_currencies_sorted() -> None:
    request = parse_create(dict(VALID), LIMITS)
    assert (request.tenant_id, request.tier) == ("acme.eu-1", "starter")
    assert request.policy == {"displayName": "Acme", "allowedCurrencies": ["EUR", "USD"], "maxAmount": 250,
                              "callbackTimeoutSeconds": 3600}


@pytest.mark.parametrize(("change", "field"), [
    ({"tenantId": None}, "tenantId"), ({"tenantId": ""}, "tenantId"), ({"tenantId": "a" * 65}, "tenantId"),
    ({"tenantId": "a b"}, "tenantId"), ({"tenantId": "a/b"}, "tenantId"), ({"tenantId": 7}, "tenantId"),
    ({"tier": "gold"}, "tier"), ({"tier": None}, "tier"),
    ({"displayName": ""}, "displayName"), ({"displayName": " "}, "displayName"), ({"displayName": "x" * 129}, "displayName"),
    ({"displayName": "a\nb"}, "displayName"), ({"displayName": 5}, "displayName"),
    ({"allowedCurrencies": []}, "allowedCurrencies"), ({"allowedCurrencies": ["usd"]}, "allowedCurrencies"),
    ({"allowedCurrencies": ["USD", "USD"]}, "allowedCurrencies"), ({"allowedCurrencies": "USD"}, "allowedCurrencies"),
    ({"allowedCurrencies": [f"A{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(21)]}, "allowedCurrencies"),
    ({"maxAmount": 0}, "maxAmount"), ({"maxAmount": -1}, "maxAmount"), ({"maxAmount": 1_000_000_001}, "maxAmount"),
    ({"maxAmount": True}, "maxAmount"), ({"maxAmount": "5"}, "maxAmount"), ({"maxAmount": float("inf")}, "maxAmount"),
    ({"callbackTimeoutSeconds": 0}, "callbackTimeoutSeconds"), ({"callbackTimeoutSeconds": 604_501}, "callbackTimeoutSeconds"),
    ({"callbackTimeoutSeconds": 1.5}, "callbackTimeoutSeconds"), ({"callbackTimeoutSeconds": "60"}, "callbackTimeoutSeconds"),
    ({"heartbeatTimeoutSeconds": -1}, "heartbeatTimeoutSeconds"), ({"heartbeatTimeoutSeconds": 86_401}, "heartbeatTimeoutSeconds"),
    ({"heartbeatTimeoutSeconds": 3601}, "heartbeatTimeoutSeconds"),  # above the callback timeout
    ({"status": "ACTIVE"}, "status"), ({"apiKeyHash": "x"}, "apiKeyHash"),  # not fields of an onboarding
])
def test_every_bad_field_of_an_onboarding_is_a_400_naming_it(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidField) as refused:
        parse_create({**VALID, **change}, LIMITS)
    assert refused.value.field == field and str(refused.value).startswith(f"{field}: ")


@pytest.mark.parametrize("missing", ["tenantId", "displayName", "tier", "allowedCurrencies", "maxAmount",
                                     "callbackTimeoutSeconds"])
def test_a_missing_field_is_a_400_naming_it(missing: str) -> None:
    with pytest.raises(InvalidField) as refused:
        parse_create({key: value for key, value in VALID.items() if key != missing}, LIMITS)
    assert refused.value.field == missing


@pytest.mark.parametrize(("field", "value"), [
    ("tenantId", "a" * 64), ("tenantId", "."), ("displayName", "x" * 128), ("maxAmount", 0.01),
    ("maxAmount", 1_000_000_000), ("callbackTimeoutSeconds", 1), ("callbackTimeoutSeconds", 604_500),
    ("heartbeatTimeoutSeconds", 0), ("heartbeatTimeoutSeconds", 3600),
    ("allowedCurrencies", [f"A{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(20)]),
])
def test_each_range_includes_its_edges(field: str, value: Any) -> None:
    assert parse_create({**VALID, field: value}, LIMITS)


def test_the_callback_timeout_is_bounded_by_the_deployments_execution_timeout() -> None:
    assert Limits(execution_timeout_seconds=3600).callback_timeout_max == 3300
    with pytest.raises(InvalidField):
        parse_create({**VALID, "callbackTimeoutSeconds": 3301}, Limits(execution_timeout_seconds=3600))


@pytest.mark.parametrize(("body", "field"), [
    ({}, "body"), ({"status": "OFFBOARDED"}, "status"), ({"status": "active"}, "status"), ({"tier": "gold"}, "tier"),
    ({"maxAmount": 0}, "maxAmount"), ({"tenantId": "x"}, "tenantId"), ({"apiKeyHash": "x"}, "apiKeyHash"),
])
def test_a_bad_change_is_a_400_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidField) as refused:
        parse_patch(body, LIMITS)
    assert refused.value.field == field


def test_a_change_takes_any_subset_of_status_tier_and_policy() -> None:
    request = parse_patch({"status": "SUSPENDED", "tier": "business", "maxAmount": 9}, LIMITS)
    assert (request.status, request.tier, request.policy) == ("SUSPENDED", "business", {"maxAmount": 9})


@pytest.mark.parametrize(("body", "overlap"), [({}, 3600), ({"overlapSeconds": 0}, 0), ({"overlapSeconds": 604_800}, 604_800)])
def test_the_overlap_defaults_to_an_hour_and_zero_revokes(body: dict[str, Any], overlap: int) -> None:
    assert parse_overlap(body) == overlap


@pytest.mark.parametrize("body", [{"overlapSeconds": -1}, {"overlapSeconds": 604_801}, {"overlapSeconds": "1"},
                                  {"overlapSeconds": None}, {"overlap": 5}])
def test_a_bad_overlap_is_a_400(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidField):
        parse_overlap(body)


@pytest.mark.parametrize(("query", "field"), [
    ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "x"}, "limit"), ({"limit": "-1"}, "limit"),
    ({"status": "GONE"}, "status"), ({"nextToken": "not-a-token"}, "nextToken"), ({"page": "2"}, "page"),
    ({"nextToken": encode_next_token({"tenantId": "../x"})}, "nextToken"),
])
def test_a_bad_list_query_is_a_400_naming_the_parameter(query: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidField) as refused:
        parse_list(query)
    assert refused.value.field == field


def test_list_defaults_and_tokens_round_trip() -> None:
    request = parse_list({})
    assert (request.limit, request.start_key, request.status) == (20, None, None)
    token = encode_next_token({"tenantId": "tenant-b"})
    assert decode_next_token(token) == {"tenantId": "tenant-b"}
    assert parse_list({"limit": "100", "nextToken": token, "status": "OFFBOARDED"}).limit == 100


@pytest.mark.parametrize("body", ["[1]", "nope", '{"a": NaN}', '"x"', "[" * 5000])
def test_a_body_that_is_no_json_object_is_a_400(body: str) -> None:
    with pytest.raises(InvalidField) as refused:
        parse_json_object(body)
    assert refused.value.field == "body"


def test_the_view_never_shows_a_key_or_a_hash_and_numbers_are_json_numbers() -> None:
    item = {"tenantId": "t", "status": "ACTIVE", "tier": "starter", "displayName": "T", "maxAmount": Decimal("2.5"),
            "callbackTimeoutSeconds": Decimal("60"), "allowedCurrencies": ["EUR"], "apiKeyHash": "h",
            "previousApiKeyHash": "p", "previousApiKeyExpiresAt": Decimal(5), "meteringKey": "m", "meteringKeyId": "i",
            "generation": Decimal(3), "createdAt": Decimal(1), "updatedAt": Decimal(2)}
    view = tenant_view(item)
    assert {key: value for key, value in view.items() if value is not None} == {
        "tenantId": "t", "status": "ACTIVE", "tier": "starter", "displayName": "T", "maxAmount": 2.5,
        "callbackTimeoutSeconds": 60, "allowedCurrencies": ["EUR"], "createdAt": 1, "updatedAt": 2}
    assert view["callbackQueueUrl"] is None
