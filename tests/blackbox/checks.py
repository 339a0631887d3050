"""Black-box checks of the REST API: the same code against a deployed stage and against the local stack.

Nothing here knows how the API runs: every check takes an ``api`` fixture (an
:class:`tests.blackbox.target.ApiTarget`: base URL and API keys) and speaks HTTP.

* ``make test-aws`` runs this file against a deployed stage (``tests/blackbox/conftest.py``
  builds the target from ``API_URL``/``API_KEYS`` or ``terraform output``).
* ``make test`` runs it against the local stack (``tests/local/test_blackbox_local.py``).

The file is not named ``test_*.py`` on purpose: a plain ``pytest`` run collects it
only through the local module, never against a deployment by accident.

For the points AWS does not document (what a refused Lambda Invoke becomes at the
gateway, the exact texts of the gateway's refusals), a check asserts what must
hold everywhere and records what it saw with ``api.observe``; the run prints them.
"""

from __future__ import annotations

import concurrent.futures
import json
import uuid
from typing import Any

import pytest

from tests.blackbox.target import TENANT_A, TENANT_B, ApiTarget

BODY = {"amount": 25, "currency": "USD", "description": "black-box"}
MADE_UP_TOKEN = "A" * 43


def only_message(response: Any) -> str:
    """The JSON error body every refusal has: ``{"message": "..."}``."""
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"message"}, body
    return str(body["message"])


# -- start, status, callback -----------------------------------------------------------------------


def test_start_wait_callback_complete(api: ApiTarget) -> None:
    # start: 202 with the workflow id
    workflow_id, waiting = api.waiting_workflow(TENANT_A)
    # status while waiting: the callbackId and the callbackUrl of the token route
    assert waiting["workflowId"] == workflow_id and waiting["callbackId"]
    assert waiting["callbackUrl"].startswith(("http://", "https://")) and "/callbacks/" in waiting["callbackUrl"]
    # the tenant's own callback with its key
    answered = api.callback(TENANT_A, {"callbackId": waiting["callbackId"], "payload": {"approved": True}})
    assert answered.status_code == 200, answered.text
    assert answered.json() == {"workflowId": workflow_id, "delivered": "success"}
    done = api.wait_for_status(TENANT_A, workflow_id, "COMPLETED")
    assert done["result"]["confirmation"] == {"approved": True}
    # the answer that won, repeated (its client never saw the reply): 200 again
    again = api.callback(TENANT_A, {"callbackId": waiting["callbackId"], "payload": {"approved": True}})
    assert again.status_code == 200, again.text


def test_token_route_completes_with_the_url_alone(api: ApiTarget) -> None:
    workflow_id, waiting = api.waiting_workflow(TENANT_A)
    # heartbeats keep it waiting
    beat = api.answer(waiting["callbackUrl"], {"heartbeat": True})
    assert (beat.status_code, beat.json()["delivered"]) == (200, "heartbeat")
    assert api.status(TENANT_A, workflow_id).json()["status"] == "WAITING_FOR_CALLBACK"
    # the answer with no API key and no tenant header
    answered = api.answer(waiting["callbackUrl"], {"payload": {"approved": "by token"}})
    assert answered.status_code == 200, answered.text
    done = api.wait_for_status(TENANT_A, workflow_id, "COMPLETED")
    assert done["result"]["confirmation"] == {"approved": "by token"}
    # single use: another answer is 409
    other = api.answer(waiting["callbackUrl"], {"payload": {"approved": False}})
    assert other.status_code == 409 and only_message(other)


@pytest.mark.parametrize("route", ["token", "callback"])
def test_failure_answer_fails_the_workflow(api: ApiTarget, route: str) -> None:
    workflow_id, waiting = api.waiting_workflow(TENANT_A)
    error = {"error": {"type": "Declined", "message": "card declined"}}
    if route == "token":
        failed = api.answer(waiting["callbackUrl"], error)
    else:
        failed = api.callback(TENANT_A, {"callbackId": waiting["callbackId"], **error})
    assert (failed.status_code, failed.json()["delivered"]) == (200, "failure")
    assert "card declined" in api.wait_for_status(TENANT_A, workflow_id, "FAILED")["reason"]
    # the first answer won: a success after it is 409, by either route
    late = api.answer(waiting["callbackUrl"], {"payload": {"approved": True}})
    assert late.status_code == 409 and only_message(late)


def test_heartbeats_with_the_key_keep_the_workflow_waiting(api: ApiTarget) -> None:
    workflow_id, waiting = api.waiting_workflow(TENANT_A)
    for _ in range(2):
        beat = api.callback(TENANT_A, {"callbackId": waiting["callbackId"], "heartbeat": True})
        assert (beat.status_code, beat.json()["delivered"]) == (200, "heartbeat")
    assert api.status(TENANT_A, workflow_id).json()["status"] == "WAITING_FOR_CALLBACK"
    assert api.callback(TENANT_A, {"callbackId": waiting["callbackId"], "payload": {}}).status_code == 200
    api.wait_for_status(TENANT_A, workflow_id, "COMPLETED")


def test_unknown_or_malformed_token_is_404(api: ApiTarget) -> None:
    for token in (MADE_UP_TOKEN, "short"):
        response = api.request("POST", f"/callbacks/{token}", json={"payload": {}})
        assert response.status_code == 404 and only_message(response)


# -- tenant isolation ------------------------------------------------------------------------------


def test_another_tenants_workflow_and_callback_are_404_and_it_still_completes(api: ApiTarget) -> None:
    workflow_id, waiting = api.waiting_workflow(TENANT_A)
    unknown = api.status(TENANT_B, f"wf-{uuid.uuid4().hex}")
    foreign = api.status(TENANT_B, workflow_id)
    # another tenant's workflow reads exactly as one that does not exist
    assert foreign.status_code == unknown.status_code == 404
    assert only_message(foreign) == only_message(unknown)
    stolen = api.callback(TENANT_B, {"callbackId": waiting["callbackId"], "payload": {"approved": "by b"}})
    assert stolen.status_code == 404 and only_message(stolen)
    # the owner's answer still wins
    assert api.callback(TENANT_A, {"callbackId": waiting["callbackId"], "payload": {"approved": "by a"}}).status_code == 200
    done = api.wait_for_status(TENANT_A, workflow_id, "COMPLETED")
    assert done["result"]["confirmation"] == {"approved": "by a"}


# -- refusals: 401, 403, 400, 415, unknown routes (404) ----------------------------------------------

ROUTES = {
    "start": ("POST", "/workflow", BODY),
    "status": ("GET", "/workflow/wf-0123456789abcdef", None),
    "callback": ("POST", "/callback", {"callbackId": "abc", "payload": {}}),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_missing_identity_is_401(api: ApiTarget, route: str) -> None:
    method, path, body = ROUTES[route]
    key_only = {"x-api-key": api.keys[TENANT_A]}
    tenant_only = {"x-tenant-id": TENANT_A}
    for headers in ({}, key_only, tenant_only):
        response = api.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (headers.keys(), response.status_code, response.text)
        only_message(response)
    api.observe(f"401 body ({route}, no x-api-key)", response)


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_wrong_or_another_tenants_key_is_403(api: ApiTarget, route: str) -> None:
    method, path, body = ROUTES[route]
    for headers in (api.headers(TENANT_A, key_of=TENANT_B), {"x-tenant-id": TENANT_A, "x-api-key": "not-a-key"}):
        response = api.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (response.status_code, response.text)
        only_message(response)
    api.observe(f"403 body ({route}, wrong key)", response)


@pytest.mark.parametrize(
    "body",
    [{"amount": -1, "currency": "USD"}, {"amount": 10}, {"amount": 10, "currency": "usd"},
     {"amount": 10, "currency": "USD", "admin": True}],
    ids=["negative", "no-currency", "lower-case-currency", "unknown-field"],
)
def test_invalid_start_body_is_400(api: ApiTarget, body: dict[str, Any]) -> None:
    response = api.start(TENANT_A, body)
    assert response.status_code == 400 and only_message(response)
    api.observe("400 body (start body fails the model)", response)


def test_start_body_that_is_not_json_is_400(api: ApiTarget) -> None:
    response = api.request("POST", "/workflow", data=b"{not json",
                           headers={**api.headers(TENANT_A), "Content-Type": "application/json"})
    assert response.status_code == 400 and only_message(response)


def test_start_with_another_content_type_is_415(api: ApiTarget) -> None:
    response = api.request("POST", "/workflow", data=b"amount=25",
                           headers={**api.headers(TENANT_A), "Content-Type": "text/plain"})
    assert response.status_code == 415 and only_message(response)
    api.observe("415 body (start as text/plain)", response)


def test_unknown_route_or_method_is_404_not_found(api: ApiTarget) -> None:
    # main.tf's MISSING_AUTHENTICATION_TOKEN gateway response: 404 {"message": "Not Found"}, not
    # API Gateway's default 403 "Missing Authentication Token"; also for a callback token sent
    # anywhere but in the path of POST /callbacks/{callbackToken}, and for a PUT of that route (GET and HEAD are
    # the approval page).
    for method, path, headers in (
        ("GET", "/nowhere", api.headers(TENANT_A)),
        ("DELETE", "/workflow", api.headers(TENANT_A)),
        ("GET", "/callback", api.headers(TENANT_A)),
        ("POST", "/callbacks?callbackToken=" + "A" * 43, {}),
        ("POST", "/callbacks", {"x-callback-token": "A" * 43}),
        ("PUT", "/callbacks/" + "A" * 43, {}),
    ):
        response = api.request(method, path, headers=headers)
        assert response.status_code == 404 and only_message(response) == "Not Found", (method, path, response.text)
    # API Gateway's own answers carry the approval page's security headers (gateway responses).
    assert PAGE_HEADERS.items() <= response.headers.items()


# -- the approval page and the pending list ----------------------------------------------------------

PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def test_the_callback_link_opens_the_approval_page_and_reading_changes_nothing(api: ApiTarget) -> None:
    workflow_id, waiting = api.waiting_workflow(TENANT_A, {"amount": 12, "currency": "EUR", "description": "<b>x</b>"})
    for _ in range(3):
        page = api.request("GET", waiting["callbackUrl"])
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), page.text[:300]
        assert PAGE_HEADERS.items() <= page.headers.items()
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
    assert api.status(TENANT_A, workflow_id).json()["status"] == "WAITING_FOR_CALLBACK"
    unknown = api.request("GET", "/callbacks/" + "A" * 43)
    assert unknown.status_code == 404 and unknown.headers["Content-Type"].startswith("text/html")
    done = api.until_final(lambda: api.request("POST", waiting["callbackUrl"], data={"decision": "decline"}))
    assert done.status_code == 200 and "text/html" in done.headers["Content-Type"], done.text[:300]
    result = api.wait_for_status(TENANT_A, workflow_id, "COMPLETED")["result"]
    assert result["confirmation"] == {"decision": "declined", "answeredVia": "page"}


def test_the_pending_list_holds_the_tenants_own_waiting_workflows(api: ApiTarget) -> None:
    workflow_id, _ = api.waiting_workflow(TENANT_A)
    listed = api.request("GET", "/workflows?status=WAITING_FOR_CALLBACK&limit=100", headers=api.headers(TENANT_A))
    assert listed.status_code == 200, listed.text[:300]
    assert workflow_id in {item["workflowId"] for item in listed.json()["workflows"]}
    other = api.request("GET", "/workflows?status=WAITING_FOR_CALLBACK&limit=100", headers=api.headers(TENANT_B))
    assert workflow_id not in {item["workflowId"] for item in other.json()["workflows"]}
    assert api.request("GET", "/workflows?limit=0", headers=api.headers(TENANT_A)).status_code == 400


# -- 409, 410 --------------------------------------------------------------------------------------


def test_another_answer_after_completion_is_409(api: ApiTarget) -> None:
    workflow_id, waiting = api.waiting_workflow(TENANT_A)
    assert api.callback(TENANT_A, {"callbackId": waiting["callbackId"], "payload": {"first": True}}).status_code == 200
    api.wait_for_status(TENANT_A, workflow_id, "COMPLETED")
    second = api.callback(TENANT_A, {"callbackId": waiting["callbackId"], "payload": {"second": True}})
    assert second.status_code == 409 and only_message(second)
    assert api.status(TENANT_A, workflow_id).json()["result"]["confirmation"] == {"first": True}


def test_concurrent_different_answers_one_wins_the_others_409(api: ApiTarget) -> None:
    workflow_id, waiting = api.waiting_workflow(TENANT_A)

    def answer(n: int) -> Any:  # each retries 503 (another answer holds the callback's lease) as clients do
        return api.until_final(
            lambda: api.callback(TENANT_A, {"callbackId": waiting["callbackId"], "payload": {"attempt": n}}))

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(answer, range(5)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) == 1 and set(statuses) <= {200, 409}, statuses
    winner = next(n for n, response in enumerate(responses) if response.status_code == 200)
    assert api.wait_for_status(TENANT_A, workflow_id, "COMPLETED")["result"]["confirmation"] == {"attempt": winner}


def test_answer_after_the_callback_timed_out_is_410(api: ApiTarget) -> None:
    assert api.brief_tenant, "needs a tenant whose callbacks time out within a minute (BRIEF_TENANT)"
    workflow_id, waiting = api.waiting_workflow(api.brief_tenant, {"amount": 1, "currency": "USD"})
    api.wait_for_status(api.brief_tenant, workflow_id, "TIMED_OUT")
    late = api.callback(api.brief_tenant, {"callbackId": waiting["callbackId"], "payload": {"late": True}})
    assert late.status_code == 410 and only_message(late)
    by_token = api.answer(waiting["callbackUrl"], {"payload": {"late": True}})
    assert by_token.status_code == 410 and only_message(by_token)


# -- idempotent start ------------------------------------------------------------------------------


def test_same_idempotency_key_and_body_is_the_same_workflow(api: ApiTarget) -> None:
    key = f"order-{uuid.uuid4()}"
    first = api.start(TENANT_A, BODY, idempotency_key=key)
    retry = api.start(TENANT_A, BODY, idempotency_key=key)
    assert first.status_code == retry.status_code == 202, (first.text, retry.text)
    assert first.json()["workflowId"] == retry.json()["workflowId"]
    workflow_id = first.json()["workflowId"]
    waiting = api.wait_for_status(TENANT_A, workflow_id, "WAITING_FOR_CALLBACK")
    assert api.callback(TENANT_A, {"callbackId": waiting["callbackId"], "payload": {}}).status_code == 200
    api.wait_for_status(TENANT_A, workflow_id, "COMPLETED")
    # a retry after completion still names the same workflow and changes nothing
    again = api.start(TENANT_A, BODY, idempotency_key=key)
    assert again.json()["workflowId"] == workflow_id
    assert api.status(TENANT_A, workflow_id).json()["status"] == "COMPLETED"


def test_same_idempotency_key_from_two_tenants_never_collides(api: ApiTarget) -> None:
    key = f"shared-{uuid.uuid4()}"
    started_a = api.start(TENANT_A, BODY, idempotency_key=key)
    started_b = api.start(TENANT_B, {"amount": 20, "currency": "GBP"}, idempotency_key=key)
    assert started_a.status_code == started_b.status_code == 202
    assert started_a.json()["workflowId"] != started_b.json()["workflowId"]
    assert api.status(TENANT_B, started_a.json()["workflowId"]).status_code == 404


def test_idempotency_key_reused_with_another_body_is_refused(api: ApiTarget) -> None:
    # Lambda's Invoke refuses the execution name with another input (DurableExecutionAlreadyStartedException,
    # 409). A Lambda integration's selection patterns match function errors, not the Invoke's status, and
    # AWS documents a rejected invocation as API Gateway's 500 (README, "The API"): never a second 202.
    key = f"order-{uuid.uuid4()}"
    first = api.start(TENANT_A, BODY, idempotency_key=key)
    assert first.status_code == 202
    refused = api.start(TENANT_A, {**BODY, "amount": 26}, idempotency_key=key)
    api.observe("Idempotency-Key reused with another body (Invoke: 409 DurableExecutionAlreadyStarted)", refused)
    assert refused.status_code == 500, (refused.status_code, refused.text)
    assert only_message(refused) == "Internal server error"
    # the same key with the same body is still the first workflow
    again = api.start(TENANT_A, BODY, idempotency_key=key)
    assert (again.status_code, again.json()) == (202, first.json())
    # the first workflow runs on, with its own body
    assert api.wait_for_status(TENANT_A, first.json()["workflowId"], "WAITING_FOR_CALLBACK")


# -- bodies that are not UTF-8 JSON text -----------------------------------------------------------

ENCODED_BODIES = {
    "UTF-8 with a byte-order mark": b"\xef\xbb\xbf" + json.dumps(BODY).encode(),
    "UTF-16 with its byte-order mark": json.dumps(BODY).encode("utf-16"),
    "UTF-16LE without a mark": json.dumps(BODY).encode("utf-16-le"),
}


@pytest.mark.parametrize("encoding", sorted(ENCODED_BODIES))
def test_a_start_body_that_is_not_utf8_json_text_is_400_invalid_request_body(api: ApiTarget, encoding: str) -> None:
    # API Gateway's text payloads are UTF-8 and JSON text carries no byte-order mark (RFC 8259);
    # what its validator does with such a body is not documented: the API documents 400.
    refused = api.request("POST", "/workflow", data=ENCODED_BODIES[encoding],
                          headers={**api.headers(TENANT_A), "Content-Type": "application/json"})
    api.observe(f"POST /workflow body in {encoding}", refused)
    assert refused.status_code == 400, (refused.status_code, refused.text)
    assert only_message(refused) == "Invalid request body"


# -- the admin API (run with ADMIN_CREDENTIALS) --------------------------------------------------


def _admin_tenant() -> dict[str, Any]:
    import uuid

    return {"tenantId": f"blackbox-{uuid.uuid4().hex[:12]}", "displayName": "Black-box check", "tier": "starter",
            "allowedCurrencies": ["USD"], "maxAmount": 100, "callbackTimeoutSeconds": 600}


def test_admin_routes_refuse_unsigned_and_tenant_key_requests(api: ApiTarget) -> None:
    for method, path in (("GET", "/tenants"), ("POST", "/tenants"), ("GET", "/tenants/tenant-a"),
                         ("PATCH", "/tenants/tenant-a"), ("POST", "/tenants/tenant-a/api-keys"),
                         ("DELETE", "/tenants/tenant-a")):
        unsigned = api.admin(method, path, {} if method in ("POST", "PATCH") else None, signed=False)
        assert (unsigned.status_code, unsigned.json()) == (404, {"message": "Not Found"}), (method, path)
        with_key = api.request(method, path, headers=api.headers(TENANT_A))
        assert with_key.status_code == 404, (method, path, with_key.text)


def test_admin_a_tenant_lives_through_onboarding_suspension_rotation_and_offboarding(api: ApiTarget) -> None:
    tenant = _admin_tenant()
    tenant_id = tenant["tenantId"]
    created = api.admin("POST", "/tenants", tenant)
    assert created.status_code == 202 and created.json()["status"] == "PROVISIONING", created.text
    api.keys[tenant_id] = created.json()["apiKey"]
    try:
        assert api.wait_for_tenant(tenant_id, ("ACTIVE", "FAILED"))["status"] == "ACTIVE"
        workflow_id, waiting = api.waiting_workflow(tenant_id, {"amount": 10, "currency": "USD"})
        # suspended: its starts and its tokens are refused at once; reactivated: both work again
        assert api.admin("PATCH", f"/tenants/{tenant_id}", {"status": "SUSPENDED"}).status_code == 200
        assert api.start(tenant_id, {"amount": 1, "currency": "USD"}).status_code == 403
        assert api.answer(waiting["callbackUrl"], {"heartbeat": True}).status_code == 404
        assert api.admin("PATCH", f"/tenants/{tenant_id}", {"status": "ACTIVE"}).status_code == 200
        # rotated with no overlap: the old key is refused at once, the new one works
        old = api.keys[tenant_id]
        rotated = api.admin("POST", f"/tenants/{tenant_id}/api-keys", {"overlapSeconds": 0})
        assert rotated.status_code == 201, rotated.text
        api.keys[tenant_id] = rotated.json()["apiKey"]
        assert api.request("GET", f"/workflow/{workflow_id}", headers={"x-tenant-id": tenant_id, "x-api-key": old}).status_code == 403
        assert api.status(tenant_id, workflow_id).status_code == 200
    finally:
        deleted = api.admin("DELETE", f"/tenants/{tenant_id}")
        assert deleted.status_code == 202, deleted.text
    assert api.wait_for_tenant(tenant_id, ("OFFBOARDED", "FAILED"))["status"] == "OFFBOARDED"
    # offboarded: its key refused, its waiting workflow's token 404, the id kept as a tombstone
    assert api.status(tenant_id, workflow_id).status_code == 403
    assert api.answer(waiting["callbackUrl"], {"payload": {}}).status_code == 404
    assert api.admin("POST", "/tenants", tenant).status_code == 409
