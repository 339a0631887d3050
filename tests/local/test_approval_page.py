"""The approval page over HTTP on the local stack: every header, every status, GET/HEAD change nothing, escaping,
the form's answers, and the gateway's own answers on the token route carrying the page's headers."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from api import pages
from local.services.throttle import MethodThrottle
from tests.harness import StackProcess
from tests.local.gateway_fakes import running_gateway

SCRIPT = "<script>alert(document.cookie)</script>"
START = {"amount": 120, "currency": "EUR", "description": SCRIPT}
FORM = {"content-type": "application/x-www-form-urlencoded"}
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
BRIEF_TENANT = {"tenantId": "tenant-brief-page", "displayName": "Brief Page", "status": "ACTIVE",
                "allowedCurrencies": ["EUR"], "maxAmount": 100, "callbackTimeoutSeconds": 2}


def waiting(stack: StackProcess, tenant: str = "tenant-a", body: dict[str, Any] | None = None) -> tuple[str, str]:
    workflow_id = stack.start_workflow(tenant, body or START)
    return workflow_id, stack.wait_for_status(tenant, workflow_id, "WAITING_FOR_CALLBACK")["callbackUrl"]


def assert_page_headers(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    for name, value in HEADERS.items():
        assert response.headers[name] == value
    csp = response.headers["Content-Security-Policy"]
    assert csp == pages.security_headers()["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    return response.text


def test_the_link_opens_the_page_and_ten_reads_change_nothing(stack: StackProcess) -> None:
    workflow_id, url = waiting(stack)
    html = assert_page_headers(requests.get(url, timeout=30), 200)
    assert "Acme Payments asks for your decision" in html and "120 EUR" in html
    assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in html and SCRIPT not in html
    head = requests.head(url, timeout=30)
    assert_page_headers(head, 200)
    assert head.content == b""
    for _ in range(8):
        assert requests.get(url, timeout=30).status_code == 200
    status = stack.status("tenant-a", workflow_id).json()
    assert status["status"] == "WAITING_FOR_CALLBACK" and status["callbackUrl"] == url


def test_approve_completes_with_the_decision_and_a_repeat_is_already_recorded(stack: StackProcess) -> None:
    workflow_id, url = waiting(stack)
    html = assert_page_headers(requests.post(url, data={"decision": "approve", "comment": "ok by me"}, timeout=30), 200)
    assert "Your approval is recorded" in html
    done = stack.wait_for_status("tenant-a", workflow_id, "COMPLETED")
    assert done["result"]["confirmation"] == {"decision": "approved", "answeredVia": "page", "comment": "ok by me"}
    again = requests.post(url, data={"decision": "approve", "comment": "ok by me"}, timeout=30)
    assert "already recorded" in assert_page_headers(again, 200)
    other = requests.post(url, data={"decision": "decline"}, timeout=30)
    assert "yours was not recorded" in assert_page_headers(other, 409)
    assert "already answered" in assert_page_headers(requests.get(url, timeout=30), 409)
    assert stack.status("tenant-a", workflow_id).json()["result"]["confirmation"]["decision"] == "approved"


def test_decline_completes_with_declined(stack: StackProcess) -> None:
    workflow_id, url = waiting(stack, "tenant-b", {"amount": 20, "currency": "GBP"})
    assert "Your decline is recorded" in assert_page_headers(requests.post(url, data={"decision": "decline"}, timeout=30), 200)
    done = stack.wait_for_status("tenant-b", workflow_id, "COMPLETED")
    assert done["result"]["confirmation"] == {"decision": "declined", "answeredVia": "page"}


@pytest.mark.parametrize(("data", "status", "text"), [
    ({"decision": "approve", "comment": "x" * 1001}, 400, "1,001 characters"),
    ({"decision": "maybe"}, 400, "Choose Approve or Decline"),
    ({"comment": "no decision"}, 400, "Choose Approve or Decline"),
    ("decision=approve&comment=" + "x" * 20_000, 413, "too long"),
])
def test_bad_forms_are_pages_and_change_nothing(stack: StackProcess, data: Any, status: int, text: str) -> None:
    workflow_id, url = waiting(stack)
    assert text in assert_page_headers(requests.post(url, data=data, headers=FORM, timeout=30), status)
    assert stack.status("tenant-a", workflow_id).json()["status"] == "WAITING_FOR_CALLBACK"


def test_unknown_and_expired_links_are_pages(stack: StackProcess) -> None:
    assert "not valid" in assert_page_headers(requests.get(f"{stack.api_url}/callbacks/{'A' * 43}", timeout=30), 404)
    assert "not valid" in assert_page_headers(
        requests.post(f"{stack.api_url}/callbacks/{'A' * 43}", data={"decision": "approve"}, timeout=30), 404)
    stack.put_tenant(BRIEF_TENANT, api_key="brief-page-key")
    workflow_id, url = waiting(stack, BRIEF_TENANT["tenantId"], {"amount": 5, "currency": "EUR"})
    stack.wait_for_status(BRIEF_TENANT["tenantId"], workflow_id, "TIMED_OUT", timeout=60)
    assert "expired" in assert_page_headers(requests.get(url, timeout=30), 410)
    assert "expired" in assert_page_headers(requests.post(url, data={"decision": "approve"}, timeout=30), 410)


def test_json_clients_are_unchanged_and_other_media_types_are_415(stack: StackProcess) -> None:
    workflow_id, url = waiting(stack)
    refused = requests.post(url, data='{"payload": {}}', headers={"content-type": "text/plain"}, timeout=30)
    assert refused.status_code == 415 and refused.json()["message"].startswith("Content-Type must be")
    answered = requests.post(url, json={"payload": {"via": "json"}}, timeout=30)
    assert (answered.status_code, answered.json()) == (200, {"workflowId": workflow_id, "delivered": "success"})
    assert answered.headers["Content-Type"] == "application/json"
    assert stack.wait_for_status("tenant-a", workflow_id, "COMPLETED")["result"]["confirmation"] == {"via": "json"}


def test_the_gateways_own_answers_on_the_token_route_carry_the_headers() -> None:
    clock = [100.0]
    with running_gateway() as (gateway, scripted):
        gateway.method_throttle = MethodThrottle(rate=1, burst=1, clock=lambda: clock[0])
        first = requests.get(f"{gateway.url}/callbacks/{'A' * 43}", timeout=10)
        throttled = requests.get(f"{gateway.url}/callbacks/{'A' * 43}", timeout=10)
        posts = requests.post(f"{gateway.url}/callbacks/{'A' * 43}", json={"payload": {}}, timeout=10)
        missing = requests.get(f"{gateway.url}/callbacks/a/b", timeout=10)
    assert first.status_code == 200 and posts.status_code == 200, "GET and POST have a bucket each"
    assert (throttled.status_code, missing.status_code) == (429, 404)
    for response in (throttled, missing):
        for name, value in HEADERS.items():
            assert response.headers[name] == value
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert throttled.headers["Retry-After"] == "1"
    assert len(scripted.of("api")) == 2
