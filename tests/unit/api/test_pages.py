"""The approval page: rendering, escaping, the form, the page for each state (tables), and the token route's GET/HEAD/form POST."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.stub import Stubber

from api import app, pages
from api.callbacks import InvalidRequest, RequestTooLarge
from shared import registry as reg
from shared.callback_tokens import mint_token, token_hash
from shared.registry import WorkflowRecord
from tests.unit.api_events import proxy_event
from tests.unit.conftest import TEST_SIGNING_KEY
from tests.unit.fakes import FakeLambdaContext, register_waiting

CALLBACK_ID = "cb-page-1"
TOKEN = mint_token(TEST_SIGNING_KEY.encode(), "tenant-a", CALLBACK_ID)
FORM = "application/x-www-form-urlencoded"
REQUIRED_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def waiting_record(**changes: Any) -> WorkflowRecord:
    fields: dict[str, Any] = dict(tenant_id="tenant-a", workflow_id="wf-p", status=reg.WAITING_FOR_CALLBACK,
                                  callback_id=CALLBACK_ID, callback_deadline=2_000_000_000,
                                  request_summary={"amount": Decimal("120"), "currency": "EUR", "description": "order 42"})
    fields.update(changes)
    return WorkflowRecord(**fields)


# -- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "shown"), [
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ('" onmouseover="x', "&quot; onmouseover=&quot;x"),
    ("'single'", "&#x27;single&#x27;"),
    ("a & b", "a &amp; b"),
    ("$title ${body}", "$title ${body}"),  # a value is never a placeholder
])
def test_every_value_is_escaped(value: str, shown: str) -> None:
    page = pages.approval_page(pages.approval_request(waiting_record(request_summary={"description": value}), value))
    html = page.html()
    assert shown in html
    assert value not in html or value == shown


def test_only_render_output_passes_unescaped() -> None:
    inner = pages.render(pages.template("message.html"), heading="<b>", text="t")
    assert "&lt;b&gt;" in inner
    outer = pages.Page(200, "x", inner).html()
    assert "<h1>&lt;b&gt;</h1>" in outer and "&amp;lt;" not in outer
    assert "&lt;h1&gt;" in pages.Page(200, "x", str(inner)).html(), "a plain string is escaped, even if it is markup"


def test_the_approval_page_shows_who_what_until_when_and_the_form() -> None:
    html = pages.approval_page(pages.approval_request(waiting_record(), "Acme Payments")).html()
    assert "Acme Payments asks for your decision" in html
    assert "120 EUR" in html and "order 42" in html
    assert '<time datetime="2033-05-18T03:33:20Z">2033-05-18 03:33 UTC</time>' in html
    assert re.search(r'<form method="post"[^>]*>', html) and "action=" not in html, "posts to the page's own URL"
    assert 'name="decision" value="approve"' in html and 'name="decision" value="decline"' in html
    assert f'maxlength="{pages.MAX_COMMENT_CHARS}"' in html
    assert "<script" not in html and " style=" not in html and "http" not in html, "nothing loaded, no script"
    assert 'name="viewport"' in html


@pytest.mark.parametrize(("summary", "amount", "description"), [
    ({"amount": Decimal("12.50"), "currency": "USD"}, "12.5 USD", "(none)"),
    ({"amount": Decimal("1E+3"), "currency": "GBP", "description": ""}, "1000 GBP", "(none)"),
    (None, "not recorded", "(none)"),
])
def test_missing_or_odd_summary_fields(summary: Any, amount: str, description: str) -> None:
    facts = pages.approval_request(waiting_record(request_summary=summary), None)
    assert (facts.requester, facts.amount, facts.description) == ("tenant-a", amount, description)


def test_the_csp_allows_exactly_the_layouts_stylesheet() -> None:
    style = re.search(r"<style>(.*?)</style>", pages.template("page.html").template, re.DOTALL).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    csp = pages.security_headers()["Content-Security-Policy"]
    assert [part.strip() for part in csp.split(";")] == [
        "default-src 'none'", "frame-ancestors 'none'", f"style-src 'sha256-{digest}'", "form-action 'self'",
        "base-uri 'none'"]


# -- which page, for which state: a table ---------------------------------------------------------

NOW = 1_900_000_000


@pytest.mark.parametrize(("record", "status", "heading"), [
    (waiting_record(), 200, "asks for your decision"),
    (waiting_record(callback_deadline=NOW), 410, "This link has expired"),
    (waiting_record(status=reg.TIMED_OUT), 410, "This link has expired"),
    (waiting_record(status=reg.COMPLETED), 409, "This request was already answered"),
    (waiting_record(status=reg.FAILED), 409, "This request was already answered"),
    (waiting_record(status=reg.STARTED), 503, "Not available right now"),
])
def test_page_for_each_state(record: WorkflowRecord, status: int, heading: str) -> None:
    page = pages.page_for_record(record, "Acme", NOW)
    assert page.status == status and heading in page.html()
    assert (page.retry_after is not None) == (status == 503)


@pytest.mark.parametrize(("status", "heading"), [(400, "could not be read"), (404, "This link is not valid"),
                                                 (409, "already answered"), (410, "expired"), (413, "too long"),
                                                 (429, "Too many requests"), (503, "Not available"),
                                                 (502, "Something went wrong"), (500, "Something went wrong")])
def test_refusal_pages(status: int, heading: str) -> None:
    page = pages.refusal_page(status, "some reason")
    assert page.status == status and heading in page.html()
    assert ("Some reason." in page.html()) == (status == 400), "only a 400 shows its reason"


# -- the form: a table --------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "answer"), [
    ("decision=approve", pages.PageAnswer("approved")),
    ("decision=decline&comment=", pages.PageAnswer("declined")),
    ("decision=decline&comment=+%20", pages.PageAnswer("declined")),
    ("comment=fine%0D%0Aby+me&decision=approve", pages.PageAnswer("approved", "fine\nby me")),
    ("decision=approve&comment=" + "%C3%A9" * 1000, pages.PageAnswer("approved", "é" * 1000)),
    ("decision=approve&comment=" + "x%0D%0A" * 500, pages.PageAnswer("approved", "x\n" * 500)),
])
def test_form_bodies_that_are_answers(body: str, answer: pages.PageAnswer) -> None:
    assert pages.parse_answer_form(body) == answer


@pytest.mark.parametrize(("body", "error"), [
    ("", InvalidRequest), (None, InvalidRequest), ("decision=maybe", InvalidRequest),
    ("decision=approve&decision=decline", InvalidRequest), ("decision=approve&comment=a&comment=b", InvalidRequest),
    ("decision=approve&other=1", InvalidRequest), ("decision=approve&comment=" + "x" * 1001, InvalidRequest),
    ("decision=approve&comment=%FF", InvalidRequest), ("a=1&b=2&c=3&d=4", InvalidRequest),
    ("decision=approve&comment=" + "x" * 17000, RequestTooLarge),
])
def test_form_bodies_that_are_refused(body: str | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        pages.parse_answer_form(body)


@pytest.mark.parametrize(("content_type", "kind"), [
    (None, "json"), ("", "json"), ("application/json", "json"), ("Application/JSON; charset=utf-8", "json"),
    ("application/x-www-form-urlencoded", "form"), ("application/x-www-form-urlencoded;charset=UTF-8", "form"),
])
def test_the_media_type_decides_the_path(content_type: str | None, kind: str) -> None:
    assert pages.answer_kind(content_type) == kind


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", "text/html", "application/xml"])
def test_other_media_types_are_refused(content_type: str) -> None:
    with pytest.raises(pages.UnsupportedMediaType):
        pages.answer_kind(content_type)


def test_the_confirmation_is_the_decision_the_channel_and_the_comment() -> None:
    assert pages.confirmation(pages.PageAnswer("approved")) == {"decision": "approved", "answeredVia": "page"}
    assert pages.confirmation(pages.PageAnswer("declined", "no")) == {"decision": "declined", "answeredVia": "page",
                                                                     "comment": "no"}


@pytest.mark.parametrize(("record", "settled", "expected"), [
    (waiting_record(), None, False),
    (waiting_record(), "same", True),
    (waiting_record(), "other", False),
    (waiting_record(status=reg.COMPLETED, result={"confirmation": {"decision": "approved"}}), None, True),
    (waiting_record(status=reg.COMPLETED, result={"confirmation": {"decision": "declined"}}), None, False),
    (waiting_record(status=reg.COMPLETED, result={"confirmation": {"ok": True}}), None, False),
])
def test_already_recorded(record: WorkflowRecord, settled: str | None, expected: bool) -> None:
    assert pages.already_recorded(pages.PageAnswer("approved"), record, settled, "same") is expected


# -- through the handler --------------------------------------------------------------------------


@pytest.fixture
def waiting(tables: Any) -> str:
    app.REGISTRY.claim_workflow("tenant-a", "wf-p", "arn:execution:wf-p",
                                {"amount": 120, "currency": "EUR", "description": "<script>alert('x')</script>"})
    register_waiting(app.REGISTRY, "tenant-a", "wf-p", CALLBACK_ID, 3600, token_hash=token_hash(TOKEN))
    return "wf-p"


@pytest.fixture
def durable() -> Iterator[Stubber]:
    with Stubber(app.LAMBDA_CLIENT) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def call(method: str, token: str = TOKEN, body: str | None = None, content_type: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    event = proxy_event(method=method, resource="/callbacks/{callbackToken}", path=f"/callbacks/{token}",
                        headers=headers, path_parameters={"callbackToken": token}, body=body, authorizer=None)
    return app.handler(event, FakeLambdaContext())


def assert_page(response: dict[str, Any], status: int) -> str:
    headers = response["headers"] if "headers" in response else {}
    headers.update({k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()})
    assert response["statusCode"] == status
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    for name, value in REQUIRED_HEADERS.items():
        assert headers[name] == value
    assert headers["Content-Security-Policy"] == pages.security_headers()["Content-Security-Policy"]
    return str(response["body"])


def test_get_shows_the_page_with_the_description_as_text(waiting: str) -> None:
    html = assert_page(call("GET"), 200)
    assert "Acme Payments" in html and "120 EUR" in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html and "<script>" not in html


def test_head_has_the_headers_and_no_body(waiting: str) -> None:
    assert assert_page(call("HEAD"), 200) == ""


def test_ten_gets_change_nothing(waiting: str) -> None:
    before = app.REGISTRY.get_workflow("tenant-a", "wf-p")
    for method in ["GET", "HEAD"] * 5:
        assert call(method)["statusCode"] == 200
    assert app.REGISTRY.get_workflow("tenant-a", "wf-p") == before
    assert app.REGISTRY.callback_claim("tenant-a", CALLBACK_ID).settled_as is None


@pytest.mark.parametrize("token", [TOKEN[:-1], "A" * 43, mint_token(b"rotated", "tenant-a", CALLBACK_ID)])
def test_an_unknown_or_revoked_link_is_a_404_page(waiting: str, token: str) -> None:
    assert "This link is not valid" in assert_page(call("GET", token), 404)


def test_posting_the_form_succeeds_the_callback_with_the_decision(waiting: str, durable: Stubber) -> None:
    expected = json.dumps({"decision": "declined", "answeredVia": "page", "comment": "too much"},
                          separators=(",", ":")).encode()
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": expected})
    html = assert_page(call("POST", body=urlencode({"decision": "decline", "comment": "too much"}), content_type=FORM), 200)
    assert "Your decline is recorded" in html
    again = assert_page(call("POST", body=urlencode({"decision": "decline", "comment": "too much"}), content_type=FORM), 200)
    assert "already recorded" in again
    other = assert_page(call("POST", body="decision=approve", content_type=FORM), 409)
    assert "yours was not recorded" in other


def test_a_comment_over_the_limit_is_a_400_page(waiting: str) -> None:
    html = assert_page(call("POST", body="decision=approve&comment=" + "x" * 1001, content_type=FORM), 400)
    assert "1,001 characters" in html


def test_a_form_after_the_deadline_is_a_410_page(waiting: str) -> None:
    app.REGISTRY.record_outcome("tenant-a", "wf-p", reg.TIMED_OUT, reason="late")
    assert "expired" in assert_page(call("POST", body="decision=approve", content_type=FORM), 410)
    assert "expired" in assert_page(call("GET"), 410)


def test_another_media_type_is_415_json(waiting: str) -> None:
    response = call("POST", body='{"payload": {}}', content_type="text/plain")
    assert (response["statusCode"], json.loads(response["body"])["message"].split(" ")[0]) == (415, "Content-Type")


def test_json_clients_keep_their_contract(waiting: str, durable: Stubber) -> None:
    durable.add_response("send_durable_execution_callback_success", {}, {"CallbackId": CALLBACK_ID, "Result": b"{}"})
    response = call("POST", body="{\"payload\": {}}", content_type="application/json")
    assert (response["statusCode"], json.loads(response["body"])) == (200, {"workflowId": "wf-p", "delivered": "success"})
    refused = call("POST", TOKEN[:-1], body="{\"payload\": {}}", content_type="application/json")
    assert (refused["statusCode"], json.loads(refused["body"])) == (404, {"message": "callback not found"})


@pytest.mark.parametrize(("request_body", "summary"), [
    ({"amount": 120, "currency": "EUR", "description": "order 42"},
     {"amount": Decimal("120"), "currency": "EUR", "description": "order 42"}),
    ({"amount": 0.1, "currency": "USD"}, {"amount": Decimal("0.1"), "currency": "USD"}),
    ({"amount": True, "currency": 7, "description": ["x"]}, None),
    ({"amount": float("nan"), "currency": "TOO-LONG-CURRENCY", "description": "d" * 300}, {"description": "d" * 256}),
    ("not an object", None),
])
def test_the_registry_keeps_a_bounded_well_typed_summary(request_body: Any, summary: Any) -> None:
    assert reg.request_summary(request_body) == summary
