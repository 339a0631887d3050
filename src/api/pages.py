"""The approval page of the token route: what a person sees at ``/callbacks/{callbackToken}``, and the form's answer.

Pure: no I/O. The api function reads the token's workflow and the tenant, then
asks this module which page to show (:func:`page_for_record`), how to read the
form (:func:`parse_answer_form`), which answer it sends (:func:`confirmation`)
and what a refusal looks like (:func:`refusal_page`). Every page is rendered
from a template file in ``templates/`` with :func:`render`, which HTML-escapes
every value unless it is a :class:`SafeHtml` that :func:`render` itself made:
a value can never become markup by mistake.

A small standard-library template (``string.Template`` plus ``html.escape``), not
Jinja2: the page has no loops and three fragments, and Jinja2 (with MarkupSafe,
1.2 MB with bytecode in every zip) would add its import and template compile to
each new environment's first page: importing this module and rendering the page
took 10 ms, Jinja2 with autoescape 42 ms for the same templates (python3.13,
bytecode, medians of 9 fresh processes; ``proving-ground/bench/page.py``, item
11 of docs/benchmarks.md).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from api.callbacks import InvalidRequest, RequestTooLarge
from shared import registry as reg
from shared.contract import CONTRACT_DIR
from shared.registry import WorkflowRecord

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
JSON_MEDIA_TYPE = "application/json"
# What a person may add to a decision, in characters (the form's maxlength too).
MAX_COMMENT_CHARS = 1000
# A form body is at most this long: 1,000 characters percent-encoded as UTF-8 take at most 12,000 bytes.
MAX_FORM_BYTES = 16 * 1024
# The form's buttons and the decision each records in the confirmation.
DECISIONS = {"approve": "approved", "decline": "declined"}
ANSWERED_VIA = "page"
_FORM_FIELDS = frozenset({"decision", "comment"})


class UnsupportedMediaType(ValueError):
    """A token-route POST that is neither JSON (an answer) nor the page's form (415)."""


class SafeHtml(str):
    """Markup :func:`render` made: the only kind of value it inserts without escaping."""


def render(template: string.Template, **values: Any) -> SafeHtml:
    """``template`` with every value HTML-escaped (quotes included), except what :func:`render` returned.

    Raises:
        KeyError: The template names a value that was not given.
    """
    escaped = {name: value if isinstance(value, SafeHtml) else html.escape(str(value), quote=True)
               for name, value in values.items()}
    return SafeHtml(template.substitute(escaped))


@cache
def template(name: str) -> string.Template:
    """A template of ``templates/`` (read once per environment)."""
    return string.Template((TEMPLATE_DIR / name).read_text(encoding="utf-8"))


@cache
def style_source() -> str:
    """The ``'sha256-...'`` source of the layout's one inline stylesheet, for ``style-src``.

    The hash is taken from the template file, so no other inline style (an
    injected ``style`` attribute or element) is ever applied, and no script runs.
    """
    found = re.search(r"<style>(.*?)</style>", template("page.html").template, re.DOTALL)
    if found is None or "$" in found.group(1):
        raise RuntimeError("templates/page.html must hold one <style> element without placeholders")
    digest = hashlib.sha256(found.group(1).encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


@cache
def security_headers() -> dict[str, str]:
    """The headers of every page: the gateway responses' security headers, the CSP extended with what the page needs.

    The base is ``securityHeaders`` of ``shared/api_gateway/gateway_responses.json``
    (the gateway's own answers carry the same); the page adds its stylesheet's
    hash, ``form-action 'self'`` (the form posts to this URL only) and
    ``base-uri 'none'``. docs/security.md says why each header is there.
    """
    spec = json.loads((CONTRACT_DIR / "api_gateway" / "gateway_responses.json").read_text(encoding="utf-8"))
    headers = dict(spec["securityHeaders"]["headers"])
    headers["Content-Security-Policy"] += f"; style-src {style_source()}; form-action 'self'; base-uri 'none'"
    return headers


@dataclass(frozen=True)
class Page:
    """A page to answer with: status, title and the rendered ``<main>``."""

    status: int
    title: str
    main: SafeHtml
    retry_after: int | None = None

    def html(self) -> str:
        """The whole document."""
        return render(template("page.html"), title=self.title, body=self.main)

    def headers(self) -> dict[str, str]:
        """The security headers (and ``Retry-After`` for a 429 or 503)."""
        headers = dict(security_headers())
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def message_page(status: int, heading: str, text: str, retry_after: int | None = None) -> Page:
    """A page that says one thing."""
    return Page(status, heading, render(template("message.html"), heading=heading, text=text), retry_after)


@dataclass(frozen=True)
class ApprovalRequest:
    """What the approval page shows: who asks, for what, until when."""

    requester: str
    amount: str
    description: str
    deadline: int | None


def approval_request(record: WorkflowRecord, requester: str | None) -> ApprovalRequest:
    """The page's facts from the workflow's registry item and the tenant's display name."""
    summary = record.request_summary or {}
    amount = summary.get("amount")
    currency = summary.get("currency") or ""
    if isinstance(amount, (int, float, Decimal)):
        shown_amount = f"{_plain_number(amount)} {currency}".strip()
    else:
        shown_amount = "not recorded"
    return ApprovalRequest(
        requester=requester or record.tenant_id,
        amount=shown_amount,
        description=str(summary.get("description") or "(none)"),
        deadline=record.callback_deadline,
    )


def _plain_number(value: int | float | Decimal) -> str:
    """``120`` for 120, ``12.5`` for 12.50: never an exponent."""
    text = format(Decimal(str(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def approval_page(facts: ApprovalRequest) -> Page:
    """``200``: who asks, what, until when, and the form (Approve, Decline, an optional comment)."""
    if facts.deadline is not None:
        deadline_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(facts.deadline))
        deadline_text = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(facts.deadline))
    else:
        deadline_iso, deadline_text = "", "no deadline"
    main = render(template("approval.html"), requester=facts.requester, amount=facts.amount,
                  description=facts.description, deadline_iso=deadline_iso, deadline_text=deadline_text,
                  max_comment=MAX_COMMENT_CHARS)
    return Page(200, f"Decision requested by {facts.requester}", main)


# What each refusal says, by status: a person reads it, so it names what happened
# and what to do, never an internal reason. 404 covers unknown, malformed, revoked
# (a rotated signing key) and suspended-tenant links alike: nothing tells a guesser which.
REFUSALS: dict[int, tuple[str, str]] = {
    400: ("Your answer could not be read", "Go back, check the form and send it again."),
    404: ("This link is not valid",
          "It may be incomplete or mistyped, or it was replaced by a newer link. Ask the sender for the current one."),
    409: ("This request was already answered", "A decision was recorded before; yours was not recorded."),
    410: ("This link has expired", "The time to answer this request has passed; nothing was recorded."),
    413: ("Your answer is too long", f"A comment may have at most {MAX_COMMENT_CHARS:,} characters."),
    429: ("Too many requests", "Wait a moment, then reload this page."),
    503: ("Not available right now", "Wait a moment, then reload this page. Nothing was recorded."),
}
_FALLBACK = ("Something went wrong", "Nothing was recorded. Try again later.")


def refusal_page(status: int, detail: str | None = None, retry_after: int | None = None) -> Page:
    """The page of a refused request (``REFUSALS``); ``detail`` (a 400's reason) is added as text."""
    heading, text = REFUSALS.get(status, _FALLBACK)
    if detail and status == 400:
        text = f"{detail[:1].upper()}{detail[1:]}. {text}"
    return message_page(status, heading, text, retry_after)


def page_for_record(record: WorkflowRecord, requester: str | None, now: float) -> Page:
    """The page ``GET /callbacks/{callbackToken}`` shows for the token's workflow (changes nothing).

    Waiting and before its deadline: the approval page. Answered or otherwise
    ended: 409; timed out (or past the deadline): 410; the wait still being
    registered: 503 (reload shortly).
    """
    if record.status == reg.STARTED:
        return refusal_page(503, retry_after=1)
    if record.status == reg.TIMED_OUT or (
            record.status == reg.WAITING_FOR_CALLBACK and record.callback_deadline is not None
            and now >= record.callback_deadline):
        return refusal_page(410)
    if record.status != reg.WAITING_FOR_CALLBACK:
        return message_page(409, "This request was already answered", "Its decision has been recorded.")
    return approval_page(approval_request(record, requester))


@dataclass(frozen=True)
class PageAnswer:
    """A decision posted by the page's form."""

    decision: str  # "approved" or "declined"
    comment: str | None = None


def answer_kind(content_type: str | None) -> str:
    """Which path a token-route POST takes, by its media type: ``"json"`` (today's contract) or ``"form"`` (the page).

    No ``Content-Type`` at all stays JSON, as before the page existed.

    Raises:
        UnsupportedMediaType: Any other media type (415).
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("", JSON_MEDIA_TYPE):
        return "json"
    if media == FORM_MEDIA_TYPE:
        return "form"
    raise UnsupportedMediaType(f"Content-Type must be {JSON_MEDIA_TYPE} (an answer) "
                               f"or {FORM_MEDIA_TYPE} (the approval page's form)")


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A request header, whatever its case."""
    return next((value for key, value in (headers or {}).items() if key.lower() == name.lower()), None)


def parse_answer_form(body: str | None) -> PageAnswer:
    """Read the form: ``decision=approve|decline`` once, ``comment`` at most once and ``MAX_COMMENT_CHARS`` long.

    Line breaks count as one character (browsers send CRLF); an empty or blank comment is none.

    Raises:
        RequestTooLarge: The body is over ``MAX_FORM_BYTES``.
        InvalidRequest: Not the form's fields, no or two decisions, an unknown decision, a comment too long.
    """
    raw = body or ""
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_FORM_BYTES:
        raise RequestTooLarge(f"the form is over {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(raw, keep_blank_values=True, max_num_fields=len(_FORM_FIELDS) + 1, errors="strict")
    except ValueError as error:  # too many fields, or percent-escapes that are not UTF-8
        raise InvalidRequest("the form could not be read") from error
    unknown = sorted(set(fields) - _FORM_FIELDS)
    if unknown:
        raise InvalidRequest(f"unexpected form fields: {', '.join(unknown)}")
    decisions = fields.get("decision", [])
    if len(decisions) != 1 or decisions[0] not in DECISIONS:
        raise InvalidRequest("choose Approve or Decline")
    comments = fields.get("comment", [])
    if len(comments) > 1:
        raise InvalidRequest("send one comment")
    comment = comments[0].replace("\r\n", "\n") if comments else ""
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidRequest(f"the comment has {len(comment):,} characters; at most {MAX_COMMENT_CHARS:,} are allowed")
    return PageAnswer(DECISIONS[decisions[0]], comment if comment.strip() else None)


def confirmation(answer: PageAnswer) -> dict[str, Any]:
    """The callback's payload, the workflow's ``result.confirmation``: ``{"decision", "answeredVia": "page", "comment"?}``."""
    payload: dict[str, Any] = {"decision": answer.decision, "answeredVia": ANSWERED_VIA}
    if answer.comment is not None:
        payload["comment"] = answer.comment
    return payload


def already_recorded(answer: PageAnswer, record: WorkflowRecord, settled_digest: str | None, digest: str) -> bool:
    """Whether this decision is already the recorded one (a repeat: 200 "already recorded").

    The very same answer settled the callback (its digest), or the workflow
    completed with the same decision (whatever comment came with it).
    """
    if settled_digest is not None and settled_digest == digest:
        return True
    confirmed = (record.result or {}).get("confirmation") if record.status == reg.COMPLETED else None
    return isinstance(confirmed, dict) and confirmed.get("decision") == answer.decision


def answer_page(answer: PageAnswer, *, already: bool) -> Page:
    """``200``: what was recorded (or that it already was)."""
    verb = "approval" if answer.decision == DECISIONS["approve"] else "decline"
    if already:
        return message_page(200, f"Your {verb} was already recorded", "Nothing else is needed; you can close this page.")
    return message_page(200, f"Your {verb} is recorded", "Thank you. You can close this page.")
