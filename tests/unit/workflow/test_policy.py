"""Request validation against the schema and the tenant's policy (pure)."""

from __future__ import annotations

import pytest

from shared.contract import demo_tenants
from shared.tenants import TenantConfig
from workflow.policy import ACCEPTED, evaluate_request

ACME = TenantConfig.from_item(demo_tenants()[0])


def test_request_within_policy_is_accepted() -> None:
    assert evaluate_request(ACME, {"amount": 10.5, "currency": "EUR", "description": "x"}) == ACCEPTED


def test_amount_equal_to_limit_is_accepted() -> None:
    assert evaluate_request(ACME, {"amount": ACME.max_amount, "currency": "USD"}).accepted


@pytest.mark.parametrize(
    ("request_body", "reason_part"),
    [
        (None, "invalid request"),
        ([], "invalid request"),
        ({"amount": 0, "currency": "EUR"}, "invalid request"),
        ({"amount": -1, "currency": "EUR"}, "invalid request"),
        ({"amount": 1, "currency": "eur"}, "invalid request"),
        ({"amount": 1, "currency": "EUR", "extra": True}, "invalid request"),
        ({"amount": 1, "currency": "EUR", "description": "x" * 257}, "invalid request"),
        ({"amount": True, "currency": "EUR"}, "invalid request"),
        ({"amount": 1, "currency": "GBP"}, "currency GBP is not allowed"),
        ({"amount": ACME.max_amount + 0.01, "currency": "EUR"}, "exceeds the tenant limit"),
    ],
)
def test_bad_request_is_rejected_with_reason(request_body: object, reason_part: str) -> None:
    decision = evaluate_request(ACME, request_body)
    assert not decision.accepted
    assert reason_part in (decision.reason or "")


def test_unknown_and_suspended_tenants_are_rejected() -> None:
    suspended = TenantConfig.from_item(next(t for t in demo_tenants() if t["status"] != "ACTIVE"))
    assert evaluate_request(None, {"amount": 1, "currency": "USD"}).reason == "unknown tenant"
    assert evaluate_request(suspended, {"amount": 1, "currency": "USD"}).reason == "tenant is suspended"


@pytest.mark.parametrize("amount", [float("nan"), float("inf")])
def test_non_finite_amount_is_rejected(amount: float) -> None:
    decision = evaluate_request(ACME, {"amount": amount, "currency": "EUR"})
    assert not decision.accepted and "invalid request" in (decision.reason or "")
