"""Abuse matrix: every route × every way to misuse it → the documented status, a JSON message,
no 5xx, and no state changed. The table in docs/security.md is generated from these cases."""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.harness import StackProcess

pytestmark = pytest.mark.slow

SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
TABLE_START, TABLE_END = "<!-- abuse-matrix:start -->", "<!-- abuse-matrix:end -->"
VALID_START = {"amount": 10, "currency": "EUR"}


@dataclass(frozen=True)
class Victim:
    """tenant-a's workflow that every attack targets, and tokens of workflows that already ended."""

    workflow_id: str
    callback_id: str
    token: str
    ended_tokens: dict[str, str]
    # A waiting workflow of SUSPENDABLE (a tenant-a-like tenant) and the token its callbackUrl carries.
    suspendable_token: str


@dataclass(frozen=True)
class Attack:
    """One row of the matrix: how the request is built and the status the contract documents."""

    route: str
    case: str
    expected: int
    send: Callable[[StackProcess, Victim], tuple[int, bytes]]
    # The approval page's requests answer pages (text/html with the security headers), not JSON.
    html: bool = False


def http(method: str, path: str, *, tenant: str | None = "tenant-a", key: str | None = "tenant-a",
         body: Any = None, raw_body: bytes | None = None, extra: dict[str, str] | None = None,
         encoding: str = "utf-8") -> Callable[[StackProcess, Victim], tuple[int, bytes]]:
    """A request built at send time: ``key`` names whose API key to send (or a literal key);
    ``body`` is sent as JSON in ``encoding`` (``utf-8-sig``: with a byte-order mark)."""

    def send(stack: StackProcess, victim: Victim) -> tuple[int, bytes]:
        names = {"wf": victim.workflow_id, "token": victim.token, "token_truncated": victim.token[:-1],
                 "suspendable": victim.suspendable_token, **victim.ended_tokens}
        headers = {"content-type": "application/json", **{k: v.format(**names) for k, v in (extra or {}).items()}}
        if tenant is not None:
            headers["x-tenant-id"] = tenant
        if key is not None:
            headers["x-api-key"] = stack.api_keys.get(key, key)
        target = path.format(**names)
        data = raw_body if raw_body is not None else (
            None if body is None else json.dumps(body).replace("VICTIM_CALLBACK", victim.callback_id).encode(encoding))
        response = stack.http.request(method, f"{stack.api_url}{target}", data=data, headers=headers, timeout=60)
        return response.status_code, response.content

    return send


def raw(request_head: str, body: bytes = b"") -> Callable[[StackProcess, Victim], tuple[int, bytes]]:
    """Bytes on a socket, for what HTTP clients refuse to send (CR/LF in a header, bad lengths)."""

    def send(stack: StackProcess, victim: Victim) -> tuple[int, bytes]:
        host, port = urlsplit(stack.api_url).hostname, urlsplit(stack.api_url).port
        head = request_head.format(key=stack.api_keys["tenant-a"], wf=victim.workflow_id, length=len(body))
        with socket.create_connection((host, port), timeout=30) as connection:
            connection.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
            reply = b""
            while b"\r\n\r\n" not in reply or len(reply) < reply.index(b"\r\n\r\n") + 4 + _length(reply):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                reply += chunk
        status = int(reply.split(b" ", 2)[1])
        return status, reply.split(b"\r\n\r\n", 1)[1]

    return send


def _length(reply: bytes) -> int:
    for line in reply.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


IDENTITY_ATTACKS: list[tuple[str, dict[str, Any], int]] = [
    ("no tenant header", {"tenant": None}, 401),
    ("no API key", {"key": None}, 401),
    ("empty tenant id", {"tenant": ""}, 401),
    ("65-character tenant id", {"tenant": "t" * 65}, 401),
    ("tenant id with a space", {"tenant": "tenant a"}, 401),
    ("non-ASCII tenant id", {"tenant": "tenänt-a"}, 401),
    ("path traversal tenant id `../tenant-a`", {"tenant": "../tenant-a"}, 401),
    ("wrong API key", {"key": "not-a-real-key"}, 403),
    ("tenant-b's key claiming tenant-a", {"key": "tenant-b"}, 403),
    ("tenant-a's key claiming tenant-b", {"tenant": "tenant-b"}, 403),
]
ROUTES: dict[str, tuple[str, str, Any]] = {
    "POST /workflow": ("POST", "/workflow", VALID_START),
    "GET /workflow/{id}": ("GET", "/workflow/{wf}", None),
    "POST /callback": ("POST", "/callback", {"callbackId": "VICTIM_CALLBACK", "payload": {"stolen": True}}),
    "GET /workflows": ("GET", "/workflows", None),
}

PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
# The victim's description: the approval page must show it as text.
SCRIPT_DESCRIPTION = "<script>alert(document.cookie)</script>"


def page(method: str, path: str, *, form: Any = None, extra: dict[str, str] | None = None,
         repeat: int = 1, content_type: str | None = None) -> Callable[[StackProcess, Victim], tuple[int, bytes]]:
    """The approval page's request (no tenant headers: the token is the credential), ``repeat`` times in a row.

    Every answer must carry the page's security headers; all answers must agree.
    """

    def send(stack: StackProcess, victim: Victim) -> tuple[int, bytes]:
        names = {"token": victim.token, **victim.ended_tokens}
        headers = dict(extra or {})
        if content_type:
            headers["content-type"] = content_type
        answers = set()
        for _ in range(repeat):
            response = stack.http.request(method, f"{stack.api_url}{path.format(**names)}", data=form, headers=headers,
                                          timeout=60)
            for name, value in PAGE_HEADERS.items():
                assert response.headers.get(name) == value, (name, response.headers)
            assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
            answers.add((response.status_code, response.content))
        assert len(answers) == 1, f"the answers differ: {[status for status, _ in answers]}"
        return answers.pop()

    return send


def random_tokens(count: int) -> Callable[[StackProcess, Victim], tuple[int, bytes]]:
    """``count`` well-formed random tokens in a row: every one must get the same 404."""

    def send(stack: StackProcess, victim: Victim) -> tuple[int, bytes]:
        answers = set()
        for _ in range(count):
            response = stack.http.post(f"{stack.api_url}/callbacks/{secrets.token_urlsafe(32)}",
                                       json={"payload": {}}, timeout=30)
            answers.add((response.status_code, response.content))
        assert len(answers) == 1, f"the answers to random tokens differ: {answers}"
        return answers.pop()

    return send


def another_tenants_next_token() -> Callable[[StackProcess, Victim], tuple[int, bytes]]:
    """tenant-b's own nextToken (it has two or more workflows), replayed by tenant-a."""

    def send(stack: StackProcess, victim: Victim) -> tuple[int, bytes]:
        own = stack.http.get(f"{stack.api_url}/workflows", params={"limit": "1", "status": "COMPLETED"},
                             headers=stack.headers("tenant-b"), timeout=30).json()
        response = stack.http.get(f"{stack.api_url}/workflows", params={"limit": "1", "status": "COMPLETED",
                                                                        "nextToken": own["nextToken"]},
                                  headers=stack.headers("tenant-a"), timeout=30)
        return response.status_code, response.content

    return send


# A tenant like tenant-a whose status an attack flips to SUSPENDED while its workflow waits.
SUSPENDABLE = {"tenantId": "tenant-suspendable-abuse", "displayName": "Suspendable", "status": "ACTIVE",
               "allowedCurrencies": ["EUR"], "maxAmount": 1000, "callbackTimeoutSeconds": 3600}
SUSPENDABLE_KEY = "suspendable-abuse-key-" + "x" * 24


def while_suspended(send: Callable[[StackProcess, Victim], tuple[int, bytes]]
                    ) -> Callable[[StackProcess, Victim], tuple[int, bytes]]:
    """``send`` while SUSPENDABLE's record says SUSPENDED (in the stack's tenants table); ACTIVE again after."""

    def suspended_send(stack: StackProcess, victim: Victim) -> tuple[int, bytes]:
        stack.put_tenant({**SUSPENDABLE, "status": "SUSPENDED"}, api_key=SUSPENDABLE_KEY)
        try:
            return send(stack, victim)
        finally:
            stack.put_tenant(SUSPENDABLE, api_key=SUSPENDABLE_KEY)

    return suspended_send


TOKEN_BODY = {"payload": {"stolen": True}}
# {"a": {"a": ... 250 levels}}: accepted before, the workflow then failed with SerDesError.
DEEP_PAYLOAD: dict[str, Any] = {"a": 1}
for _ in range(249):
    DEEP_PAYLOAD = {"a": DEEP_PAYLOAD}
# The completed workflow won with {"ok": true, "n": 1}: the same answer serialized otherwise is a retry (200).
RETRY_OF_THE_WINNER = "the completed workflow's winning answer again, keys reordered, 1 as 1.0"
TOKEN_ATTACKS = [
    Attack("POST /callbacks/{token}", "another tenant's key and tenant id added (a heartbeat: headers are ignored)", 200,
           http("POST", "/callbacks/{token}", tenant="tenant-b", key="tenant-b", body={"heartbeat": True})),
    Attack("POST /callbacks/{token}", "truncated token", 404,
           http("POST", "/callbacks/{token_truncated}", body=TOKEN_BODY, tenant=None, key=None)),
    Attack("POST /callbacks/{token}", "padded token", 404, http("POST", "/callbacks/{token}A", body=TOKEN_BODY, tenant=None, key=None)),
    Attack("POST /callbacks/{token}", "base64 padding added", 404,
           http("POST", "/callbacks/{token}=", body=TOKEN_BODY, tenant=None, key=None)),
    Attack("POST /callbacks/{token}", "4,000-character token", 404,
           http("POST", "/callbacks/" + "A" * 4000, body=TOKEN_BODY, tenant=None, key=None)),
    Attack("POST /callbacks/{token}", "token in the query string", 404,
           http("POST", "/callbacks?callbackToken={token}", body=TOKEN_BODY, tenant=None, key=None)),
    Attack("POST /callbacks/{token}", "token in a header (`POST /callbacks`, x-callback-token)", 404,
           http("POST", "/callbacks", body=TOKEN_BODY, tenant=None, key=None, extra={"x-callback-token": "{token}"})),
    Attack("POST /callback", "token in a header instead of the path", 401,
           http("POST", "/callback", body=TOKEN_BODY, tenant=None, key=None, extra={"x-callback-token": "{token}"})),
    Attack("POST /callbacks/{token}", "the victim's answer with a UTF-8 byte-order mark", 400,
           http("POST", "/callbacks/{token}", body=TOKEN_BODY, tenant=None, key=None, encoding="utf-8-sig")),
    Attack("POST /callbacks/{token}", "the victim's answer in UTF-16", 400,
           http("POST", "/callbacks/{token}", body=TOKEN_BODY, tenant=None, key=None, encoding="utf-16")),
    Attack("POST /callbacks/{token}", "payload nested 250 levels deep (the workflow could not checkpoint it)", 400,
           http("POST", "/callbacks/{token}", tenant=None, key=None, body={"payload": DEEP_PAYLOAD})),
    Attack("POST /callbacks/{token}", RETRY_OF_THE_WINNER, 200,
           http("POST", "/callbacks/{completed}", tenant=None, key=None, raw_body=b'{"payload": {"n": 1.0, "ok": true}}')),
    Attack("POST /callbacks/{token}", "token of a completed workflow", 409,
           http("POST", "/callbacks/{completed}", body=TOKEN_BODY, tenant=None, key=None)),
    Attack("POST /callbacks/{token}", "token of a failed workflow", 409,
           http("POST", "/callbacks/{failed}", body=TOKEN_BODY, tenant=None, key=None)),
    Attack("POST /callbacks/{token}", "token of a timed-out workflow", 410,
           http("POST", "/callbacks/{timed_out}", body=TOKEN_BODY, tenant=None, key=None)),
    Attack("POST /callbacks/{token}", "a token for the suspended tenant (forged)", 404,
           http("POST", "/callbacks/" + "S" * 43, body=TOKEN_BODY, tenant="tenant-suspended", key="tenant-suspended")),
    Attack("POST /callbacks/{token}", "a real token of a workflow whose tenant was suspended while it waits", 404,
           while_suspended(http("POST", "/callbacks/{suspendable}", body=TOKEN_BODY, tenant=None, key=None))),
    Attack("GET /callbacks/{token}", "script in the description (the page shows it as text)", 200,
           page("GET", "/callbacks/{token}"), html=True),
    Attack("GET /callbacks/{token}", "a framing attempt (`Sec-Fetch-Dest: iframe`, another site's Referer): "
           "`frame-ancestors 'none'` forbids it", 200,
           page("GET", "/callbacks/{token}", extra={"Sec-Fetch-Dest": "iframe", "Referer": "https://evil.example/"}),
           html=True),
    Attack("GET /callbacks/{token}", "a GET flood: 100 GETs of the link in a row (reading never answers)", 200,
           page("GET", "/callbacks/{token}", repeat=100), html=True),
    Attack("HEAD /callbacks/{token}", "HEAD with the token (headers only)", 200, page("HEAD", "/callbacks/{token}"), html=True),
    Attack("POST /callbacks/{token}", "the form with a huge comment (1,001 characters)", 400,
           page("POST", "/callbacks/{token}", form={"decision": "approve", "comment": "x" * 1001}), html=True),
    Attack("POST /callbacks/{token}", "the form with a 1 MB comment", 413,
           page("POST", "/callbacks/{token}", form={"decision": "approve", "comment": "x" * 1_000_000}), html=True),
    Attack("POST /callbacks/{token}", "the form with a decision that is not approve or decline", 400,
           page("POST", "/callbacks/{token}", form={"decision": "yes"}), html=True),
    Attack("POST /callbacks/{token}", "a wrong content type (text/plain with the victim's JSON answer)", 415,
           http("POST", "/callbacks/{token}", body=TOKEN_BODY, tenant=None, key=None, extra={"content-type": "text/plain"})),
    Attack("POST /callbacks/{token}", "the form on a completed workflow's link (another decision)", 409,
           page("POST", "/callbacks/{completed}", form={"decision": "decline"}), html=True),
    Attack("GET /callbacks/{token}", "a used link (completed workflow)", 409, page("GET", "/callbacks/{completed}"), html=True),
    Attack("GET /callbacks/{token}", "an expired link (timed-out workflow)", 410, page("GET", "/callbacks/{timed_out}"), html=True),
    Attack("GET /callbacks/{token}", "an unknown token", 404, page("GET", "/callbacks/" + "A" * 43), html=True),
    Attack("POST /callbacks/{token}", "200 random tokens in a row (one answer shape)", 404, random_tokens(200)),
]

# --- the admin API (AWS_IAM): who may call it, and what it refuses ---

ADMIN_ROUTES: dict[str, tuple[str, str, Any]] = {
    "POST /tenants": ("POST", "/tenants", {"tenantId": "abuse-new", "displayName": "X", "tier": "starter",
                                          "allowedCurrencies": ["EUR"], "maxAmount": 1, "callbackTimeoutSeconds": 60}),
    "GET /tenants": ("GET", "/tenants", None),
    "GET /tenants/{tenantId}": ("GET", "/tenants/tenant-a", None),
    "PATCH /tenants/{tenantId}": ("PATCH", "/tenants/tenant-a", {"status": "SUSPENDED"}),
    "POST /tenants/{tenantId}/api-keys": ("POST", "/tenants/tenant-a/api-keys", {"overlapSeconds": 0}),
    "DELETE /tenants/{tenantId}": ("DELETE", "/tenants/tenant-a", None),
}


def admin(method: str, path: str, body: Any = None, *, secret: str | None = None, access_key: str | None = None,
          age_seconds: int = 0, tenant_key: bool = False, unsigned: bool = False,
          raw_body: bytes | None = None) -> Callable[[StackProcess, Victim], tuple[int, bytes]]:
    """A request to the admin API: signed with the stack's admin credentials (or a wrong secret, another
    access key, a date ``age_seconds`` old), unsigned, or carrying tenant-a's tenant headers instead."""

    def send(stack: StackProcess, victim: Victim) -> tuple[int, bytes]:
        from unittest import mock

        import botocore.auth

        from local.services.iam_auth import AdminCredentials, read_admin_credentials, sign

        real = read_admin_credentials(stack.state_dir)
        credentials = AdminCredentials(access_key or real.access_key_id, secret or real.secret_access_key, real.region)
        url = f"{stack.api_url}{path}"
        data = raw_body if raw_body is not None else (b"" if body is None else json.dumps(body).encode())
        headers = {"content-type": "application/json"} if data else {}
        if tenant_key:
            headers.update({"x-tenant-id": "tenant-a", "x-api-key": stack.api_keys["tenant-a"]})
        elif not unsigned:
            signed_at = botocore.auth.get_current_datetime() - __import__("datetime").timedelta(seconds=age_seconds)
            with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
                headers = sign(credentials, method, url, data, headers)
        response = stack.http.request(method, url, data=data or None, headers=headers, timeout=60)
        return response.status_code, response.content

    return send


ADMIN_IDENTITY_ATTACKS: list[tuple[str, dict[str, Any], int]] = [
    ("unsigned (the gateway's MISSING_AUTHENTICATION_TOKEN: 404)", {"unsigned": True}, 404),
    ("a tenant's API key and tenant id instead of a signature", {"tenant_key": True}, 404),
    ("signed with a wrong secret", {"secret": "not-the-admin-secret"}, 403),
    ("signed with an unknown access key", {"access_key": "AKIAUNKNOWN000000000"}, 403),
    ("replayed: a correct signature 10 minutes old", {"age_seconds": 600}, 403),
]
ADMIN_INPUT_ATTACKS = [
    Attack("POST /tenants", "an invalid tenantId (`../tenant-a`)", 400,
           admin("POST", "/tenants", {**ADMIN_ROUTES["POST /tenants"][2], "tenantId": "../tenant-a"})),
    Attack("POST /tenants", "an unknown tier", 400, admin("POST", "/tenants", {**ADMIN_ROUTES["POST /tenants"][2], "tier": "gold"})),
    Attack("POST /tenants", "a missing field (maxAmount)", 400,
           admin("POST", "/tenants", {k: v for k, v in ADMIN_ROUTES["POST /tenants"][2].items() if k != "maxAmount"})),
    Attack("POST /tenants", "an out-of-range field (callbackTimeoutSeconds 0)", 400,
           admin("POST", "/tenants", {**ADMIN_ROUTES["POST /tenants"][2], "callbackTimeoutSeconds": 0})),
    Attack("POST /tenants", "a field the API does not take (apiKeyHash)", 400,
           admin("POST", "/tenants", {**ADMIN_ROUTES["POST /tenants"][2], "apiKeyHash": "0" * 64})),
    Attack("POST /tenants", "an existing tenant's id (tenant-a)", 409,
           admin("POST", "/tenants", {**ADMIN_ROUTES["POST /tenants"][2], "tenantId": "tenant-a"})),
    Attack("POST /tenants", "non-JSON body", 400, admin("POST", "/tenants", raw_body=b"tenantId=x")),
    Attack("PATCH /tenants/{tenantId}", "status OFFBOARDED (only ACTIVE and SUSPENDED)", 400,
           admin("PATCH", "/tenants/tenant-a", {"status": "OFFBOARDED"})),
    Attack("PATCH /tenants/{tenantId}", "a key hash set through a change", 400,
           admin("PATCH", "/tenants/tenant-a", {"apiKeyHash": "0" * 64})),
    Attack("PATCH /tenants/{tenantId}", "an unknown tenant", 404, admin("PATCH", "/tenants/no-such-tenant", {"maxAmount": 5})),
    Attack("POST /tenants/{tenantId}/api-keys", "a negative overlap", 400,
           admin("POST", "/tenants/tenant-a/api-keys", {"overlapSeconds": -1})),
    Attack("GET /tenants", "limit=101", 400, admin("GET", "/tenants?limit=101")),
    Attack("GET /tenants", "a forged nextToken", 400, admin("GET", "/tenants?nextToken=eyJ0ZW5hbnRJZCI6ICIuLi8ifQ")),
    Attack("GET /tenants/{tenantId}", "a malformed tenant id", 400, admin("GET", "/tenants/a%20b")),
    Attack("DELETE /tenants/{tenantId}", "an unknown tenant", 404, admin("DELETE", "/tenants/no-such-tenant")),
    Attack("PUT /tenants/{tenantId}", "wrong method, signed", 404, admin("PUT", "/tenants/tenant-a", {"status": "ACTIVE"})),
]
ADMIN_ATTACKS = [
    Attack(route, case, status, admin(method, path, body, **change))
    for route, (method, path, body) in ADMIN_ROUTES.items()
    for case, change, status in ADMIN_IDENTITY_ATTACKS
] + ADMIN_INPUT_ATTACKS

ATTACKS: list[Attack] = [
    Attack(route, case, status, http(method, path, body=body, **change))
    for route, (method, path, body) in ROUTES.items()
    for case, change, status in IDENTITY_ATTACKS
] + [
    Attack("GET /workflow/{id}", "tenant-b reads tenant-a's workflow", 404, http("GET", "/workflow/{wf}", tenant="tenant-b", key="tenant-b")),
    Attack("POST /callback", "tenant-b answers tenant-a's callbackId", 404,
           http("POST", "/callback", tenant="tenant-b", key="tenant-b", body={"callbackId": "VICTIM_CALLBACK", "payload": {}})),
    Attack("POST /callback", "tenant-b sends a failure for tenant-a's callbackId", 404,
           http("POST", "/callback", tenant="tenant-b", key="tenant-b",
                body={"callbackId": "VICTIM_CALLBACK", "error": {"type": "X", "message": "y"}})),
    Attack("POST /callback", "tenant-b heartbeats tenant-a's callbackId", 404,
           http("POST", "/callback", tenant="tenant-b", key="tenant-b", body={"callbackId": "VICTIM_CALLBACK", "heartbeat": True})),
    Attack("POST /workflow", "body claims another tenantId", 400, http("POST", "/workflow", body={**VALID_START, "tenantId": "tenant-b"})),
    Attack("POST /workflow", "non-JSON body", 400, http("POST", "/workflow", raw_body=b"amount=10")),
    Attack("POST /workflow", "empty body", 400, http("POST", "/workflow", raw_body=b"")),
    Attack("POST /workflow", "wrong types", 400, http("POST", "/workflow", body={"amount": "10", "currency": 978})),
    Attack("POST /workflow", "NaN amount (not JSON)", 400, http("POST", "/workflow", raw_body=b'{"amount": NaN, "currency": "EUR"}')),
    Attack("POST /workflow", "body with a UTF-8 byte-order mark", 400, http("POST", "/workflow", body=VALID_START, encoding="utf-8-sig")),
    Attack("POST /workflow", "UTF-16 body (with its byte-order mark)", 400, http("POST", "/workflow", body=VALID_START, encoding="utf-16")),
    Attack("POST /workflow", "UTF-16LE body without a mark", 400, http("POST", "/workflow", body=VALID_START, encoding="utf-16-le")),
    Attack("POST /workflow", "100,000-deep nested JSON", 400, http("POST", "/workflow", raw_body=b"[" * 100_000 + b"]" * 100_000)),
    Attack("POST /workflow", "text/plain content type", 415,
           http("POST", "/workflow", body=VALID_START, extra={"content-type": "text/plain"})),
    Attack("POST /workflow", "1 MB description", 400, http("POST", "/workflow", body={**VALID_START, "description": "x" * 1_000_000})),
    Attack("POST /workflow", "body over 10 MB", 413, http("POST", "/workflow", raw_body=b"{" + b" " * (10 * 1024 * 1024 + 1) + b"}")),
    Attack("POST /callback", "non-JSON body", 400, http("POST", "/callback", raw_body=b"callbackId=x")),
    Attack("POST /callback", "wrong types", 400, http("POST", "/callback", body={"callbackId": 7, "payload": []})),
    Attack("POST /callback", "extra fields", 400, http("POST", "/callback", body={"callbackId": "VICTIM_CALLBACK", "payload": {}, "tenantId": "tenant-b"})),
    Attack("POST /callback", "payload and error together", 400,
           http("POST", "/callback", body={"callbackId": "VICTIM_CALLBACK", "payload": {}, "error": {"type": "a", "message": "b"}})),
    Attack("POST /callback", "payload nested 250 levels deep (the workflow could not checkpoint it)", 400,
           http("POST", "/callback", body={"callbackId": "VICTIM_CALLBACK", "payload": DEEP_PAYLOAD})),
    Attack("POST /callback", "payload over 256 KiB", 413, http("POST", "/callback", body={"callbackId": "VICTIM_CALLBACK", "payload": {"x": "y" * 300_000}})),
    Attack("POST /callback", "NaN in payload (not JSON)", 400,
           http("POST", "/callback", raw_body=b'{"callbackId": "x", "payload": {"n": NaN}}')),
    Attack("POST /callback", "the victim's answer with a UTF-8 byte-order mark", 400,
           http("POST", "/callback", body={"callbackId": "VICTIM_CALLBACK", "payload": {}}, encoding="utf-8-sig")),
    Attack("POST /callback", "the victim's answer in UTF-16", 400,
           http("POST", "/callback", body={"callbackId": "VICTIM_CALLBACK", "payload": {}}, encoding="utf-16")),
    Attack("POST /callback", "unknown callbackId", 404, http("POST", "/callback", body={"callbackId": "forged", "payload": {}})),
    Attack("GET /workflow/{id}", "unknown workflowId", 404, http("GET", "/workflow/no-such-workflow")),
    Attack("GET /workflows", "tenant-b's nextToken presented by tenant-a", 400, another_tenants_next_token()),
    Attack("GET /workflows", "a forged nextToken", 400,
           http("GET", "/workflows?nextToken=eyJrIjp7fSwicyI6bnVsbCwidCI6InRlbmFudC1hIn0.AAAA")),
    Attack("GET /workflows", "limit=0", 400, http("GET", "/workflows?limit=0")),
    Attack("GET /workflows", "limit=101", 400, http("GET", "/workflows?limit=101")),
    Attack("GET /workflows", "an unknown status", 400, http("GET", "/workflows?status=PWNED")),
    Attack("GET /workflow/{id}", "malformed workflowId", 400, http("GET", "/workflow/a%20b")),
    Attack("GET /workflow/{id}", "traversal in workflowId", 404, http("GET", "/workflow/../callback")),
    Attack("PUT /workflow", "wrong method", 404, http("PUT", "/workflow", body=VALID_START)),
    Attack("DELETE /workflow/{id}", "wrong method", 404, http("DELETE", "/workflow/{wf}")),
    Attack("GET /callback", "wrong method", 404, http("GET", "/callback")),
    Attack("POST /workflow", "CR/LF header injection in x-tenant-id", 403,
           raw("POST /workflow HTTP/1.1\r\nHost: x\r\nx-tenant-id: tenant-b\r\nx-api-key: {key}\r\nX-Injected: 1\r\n"
               "content-type: application/json\r\nContent-Length: {length}", json.dumps(VALID_START).encode())),
    Attack("POST /workflow", "invalid Content-Length", 400,
           raw("POST /workflow HTTP/1.1\r\nHost: x\r\nx-tenant-id: tenant-a\r\nx-api-key: {key}\r\nContent-Length: ten")),
] + TOKEN_ATTACKS + ADMIN_ATTACKS

OBSERVED: dict[str, int] = {}


def token_of(callback_url: str) -> str:
    return callback_url.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def victim(stack: StackProcess) -> Victim:
    ended: dict[str, str] = {}
    # a completed and a failed workflow of tenant-a, answered through their tokens
    for name, answer in (("completed", {"payload": {"ok": True, "n": 1}}), ("failed", {"error": {"type": "No", "message": "no"}})):
        workflow_id = stack.start_workflow("tenant-a", VALID_START)
        url = stack.wait_for_status("tenant-a", workflow_id, "WAITING_FOR_CALLBACK")["callbackUrl"]
        assert stack.http.post(url, json=answer, timeout=30).status_code == 200
        stack.wait_for_status("tenant-a", workflow_id, "COMPLETED" if name == "completed" else "FAILED")
        ended[name] = token_of(url)
    # a timed-out one, of a tenant whose callbacks time out after 2 seconds
    stack.put_tenant({"tenantId": "tenant-brief-abuse", "displayName": "Brief", "status": "ACTIVE",
                      "allowedCurrencies": ["EUR"], "maxAmount": 100, "callbackTimeoutSeconds": 2}, api_key="brief-abuse-key")
    workflow_id = stack.start_workflow("tenant-brief-abuse", VALID_START)
    ended["timed_out"] = token_of(stack.wait_for_status("tenant-brief-abuse", workflow_id, "WAITING_FOR_CALLBACK")["callbackUrl"])
    stack.wait_for_status("tenant-brief-abuse", workflow_id, "TIMED_OUT", timeout=60)
    # a waiting workflow of a tenant that an attack suspends
    stack.put_tenant(SUSPENDABLE, api_key=SUSPENDABLE_KEY)
    workflow_id = stack.start_workflow(SUSPENDABLE["tenantId"], VALID_START)
    suspendable = token_of(stack.wait_for_status(SUSPENDABLE["tenantId"], workflow_id, "WAITING_FOR_CALLBACK")["callbackUrl"])
    # two completed workflows of tenant-b, so that its list of them has a second page
    for _ in range(2):
        workflow_id = stack.start_workflow("tenant-b", {"amount": 10, "currency": "GBP"})
        callback_id = stack.wait_for_status("tenant-b", workflow_id, "WAITING_FOR_CALLBACK")["callbackId"]
        assert stack.callback("tenant-b", callback_id).status_code == 200
        stack.wait_for_status("tenant-b", workflow_id, "COMPLETED")
    workflow_id = stack.start_workflow("tenant-a", {**VALID_START, "description": SCRIPT_DESCRIPTION})
    waiting = stack.wait_for_status("tenant-a", workflow_id, "WAITING_FOR_CALLBACK")
    return Victim(workflow_id, waiting["callbackId"], token_of(waiting["callbackUrl"]), ended, suspendable)


def attack_id(attack: Attack) -> str:
    return f"{attack.route} | {attack.case}"


@pytest.mark.parametrize("attack", ATTACKS, ids=attack_id)
def test_abuse_gets_documented_status_and_json_message(stack: StackProcess, victim: Victim, attack: Attack) -> None:
    starts_before = stack.invocations("-workflow")
    status, body = attack.send(stack, victim)
    OBSERVED[attack_id(attack)] = status
    assert status < 500, body[:300]
    assert status == attack.expected, body[:300]
    if attack.html:
        # a page, never JSON; what the victim's description holds is text in it
        assert body == b"" if attack.route.startswith("HEAD") else body.startswith(b"<!doctype html>"), body[:300]
        assert SCRIPT_DESCRIPTION.encode() not in body and b"<script" not in body
        if status == 200 and body:
            assert b"&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in body
        message: Any = None
    else:
        message = json.loads(body)
    if attack.html:
        pass
    elif attack.case == RETRY_OF_THE_WINNER:  # told its answer won, again: nothing delivered, nothing changed
        assert message["delivered"] == "success" and message["workflowId"] != victim.workflow_id
    elif status < 400:
        # the one accepted case (a heartbeat with another tenant's headers): it went to the token's workflow
        assert message == {"workflowId": victim.workflow_id, "delivered": "heartbeat"}
    else:
        assert isinstance(message, dict) and isinstance(message.get("message"), str) and message["message"]
    assert b"Traceback" not in body
    # no state changed: no new workflow started, the victim still waits on the same callback
    assert stack.invocations("-workflow") == starts_before
    current = stack.status("tenant-a", victim.workflow_id).json()
    assert (current["status"], current.get("callbackId")) == ("WAITING_FOR_CALLBACK", victim.callback_id)
    if attack in ADMIN_ATTACKS:
        # no tenant changed: tenant-a still ACTIVE with the same key, no tenant onboarded
        from tests.local.tenant_admin import admin as admin_client

        assert stack.status("tenant-a", "no-such-workflow").status_code == 404  # its key still works
        client = admin_client(stack)
        assert client.call("GET", "/tenants/tenant-a").json()["status"] == "ACTIVE"
        assert client.call("GET", "/tenants/abuse-new").status_code == 404


def test_victim_still_completes_with_its_own_answer(stack: StackProcess, victim: Victim) -> None:
    assert stack.callback("tenant-a", victim.callback_id, {"by": "tenant-a"}).status_code == 200
    done = stack.wait_for_status("tenant-a", victim.workflow_id, "COMPLETED")
    assert done["result"]["confirmation"] == {"by": "tenant-a"}


def render_table() -> str:
    rows = ["| route | abuse | documented | observed |", "|---|---|---|---|"]
    for attack in ATTACKS:
        observed = OBSERVED.get(attack_id(attack))
        rows.append(f"| `{attack.route}` | {attack.case} | {attack.expected} | {observed if observed is not None else 'not run'} |")
    return "\n".join(rows)


def test_security_doc_lists_every_case_with_its_outcome() -> None:
    """docs/security.md holds the table this run produced (UPDATE_SECURITY_DOC=1 rewrites it)."""
    if len(OBSERVED) != len(ATTACKS):
        pytest.fail(f"only {len(OBSERVED)} of {len(ATTACKS)} cases ran; run the whole module to regenerate the table")
    table = render_table()
    text = SECURITY_DOC.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    if os.environ.get("UPDATE_SECURITY_DOC") == "1":
        text = text[:start] + "\n" + table + "\n" + text[end:]
        SECURITY_DOC.write_text(text)
        start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    assert text[start:end].strip() == table, "docs/security.md is stale: rerun with UPDATE_SECURITY_DOC=1"
