"""Bounded property-based fuzzing of the REST API on the local stack: no 5xx, no crash, JSON errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import StackProcess

pytestmark = pytest.mark.slow

# Deterministic (derandomize) and bounded, so CI runs the same cases in seconds.
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CASES: dict[str, int] = {}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
start_bodies = st.one_of(
    st.fixed_dictionaries({}, optional={"amount": json_values | st.floats(min_value=-1e12, max_value=1e12),
                                        "currency": json_values | st.from_regex(r"[A-Z]{3}", fullmatch=True),
                                        "description": json_values}),
    json_values,
)
callback_bodies = st.one_of(
    st.fixed_dictionaries({}, optional={"callbackId": json_values, "payload": json_values,
                                        "error": json_values, "heartbeat": json_values}),
    json_values,
)
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)


def check(response: Any, route: str, allowed: set[int]) -> None:
    CASES[route] = CASES.get(route, 0) + 1
    assert response.status_code < 500, (route, response.status_code, response.text[:300])
    assert response.status_code in allowed, (route, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert isinstance(response.json().get("message"), str)


@FUZZ
@given(body=start_bodies)
def test_start_route_never_fails_on_any_json_body(stack: StackProcess, body: Any) -> None:
    response = stack.http.post(f"{stack.api_url}/workflow", data=json.dumps(body),
                               headers={**stack.headers("tenant-b"), "content-type": "application/json"}, timeout=30)
    # An active tenant (a suspended one is refused by the authorizer before its body is read);
    # a valid body starts a workflow, which tenant-b's policy mostly rejects at once (GBP/USD only).
    check(response, "POST /workflow", {202, 400})


@FUZZ
@given(body=callback_bodies)
def test_callback_route_never_fails_on_any_json_body(stack: StackProcess, body: Any) -> None:
    response = stack.http.post(f"{stack.api_url}/callback", data=json.dumps(body),
                               headers={**stack.headers("tenant-b"), "content-type": "application/json"}, timeout=30)
    check(response, "POST /callback", {400, 404, 413})


@FUZZ
@given(workflow_id=st.text(max_size=200), tenant=header_values, key=header_values)
def test_status_route_never_fails_on_any_id_or_identity(stack: StackProcess, workflow_id: str, tenant: str, key: str) -> None:
    from urllib.parse import quote

    response = stack.http.get(f"{stack.api_url}/workflow/{quote(workflow_id, safe='')}",
                              headers={"x-tenant-id": tenant.strip(), "x-api-key": key.strip()}, timeout=30)
    # An empty id is GET /workflow/, a route that does not exist: 404 before any key check.
    check(response, "GET /workflow/{id}", {401, 403} if workflow_id else {404})


def test_fuzz_case_count_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    total = sum(CASES.values())
    with capsys.disabled():
        print(f"\nfuzzing: {total} generated requests, no 5xx ({', '.join(f'{r}: {n}' for r, n in CASES.items())})")
    assert total >= 3 * 50, CASES
