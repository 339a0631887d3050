"""The local REST gateway: routes and validation from the shared contract, as API Gateway answers."""

from __future__ import annotations

import codecs
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from local.services.contract import API_GATEWAY_DIR, API_PROXY, ASYNC_WORKFLOW_START, load_contract
from local.services.gateway import INTEGRATION_TIMEOUT_SECONDS, InvokeOutcome, LocalGateway, json_text, policy_decision
from local.services.throttle import QUOTA_EXCEEDED, THROTTLED, MethodThrottle, UsageRefusal
from local.services.vtl import MappingTemplate, message_string
from shared.contract import API_CONTRACT_FILE as CONTRACT_FILE
from tests.harness import StackProcess
from tests.local.gateway_fakes import (
    IDENTITY, TENANT, WORKFLOW_ID, ScriptedLambda, allow, outcome, raw_exchange, refuse, running_gateway,
)

VALID_BODY = {"amount": 10, "currency": "EUR"}


def test_route_table_is_the_contract() -> None:
    contract = load_contract()
    raw = json.loads(CONTRACT_FILE.read_text())

    assert {(r.name, r.method, r.path) for r in contract.routes} == {
        (name, spec["method"], spec["path"]) for name, spec in raw["routes"].items()
    }
    route, params, _ = contract.find("GET", "/workflow/abc-123")
    assert route is not None and route.integration == API_PROXY and params == {"workflowId": "abc-123"}
    assert contract.find("POST", "/workflow")[0].integration == ASYNC_WORKFLOW_START
    assert contract.find("DELETE", "/workflow") == (None, None, True)
    assert contract.find("GET", "/nowhere") == (None, None, False)


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"amount": 1, "currency": "USD", "description": "x"}, True),
        ({"amount": 0, "currency": "USD"}, False),
        ({"amount": 1, "currency": "usd"}, False),
        ({"amount": 1}, False),
        ({"amount": 1, "currency": "USD", "extra": True}, False),
        (["not", "an", "object"], False),
    ],
)
def test_body_schema_is_the_shared_request_schema(body: object, valid: bool) -> None:
    contract = load_contract()
    route = contract.find("POST", "/workflow")[0]

    assert (contract.validate_body(route, body) is None) is valid


def test_authorizer_policy_explicit_deny_wins_and_no_allow_is_an_implicit_deny() -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:local/v1/GET/workflow/abc"
    allow_statement = {"Effect": "Allow", "Action": "execute-api:Invoke",
                       "Resource": ["arn:aws:execute-api:*:*:local/v1/GET/workflow/*"]}
    deny = {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": ["*"]}
    other_action = {"Effect": "Allow", "Action": "execute-api:ManageConnections", "Resource": "*"}

    assert policy_decision({"Statement": [allow_statement]}, arn) == "Allow"
    assert policy_decision({"Statement": allow_statement}, arn) == "Allow"
    assert policy_decision({"Statement": [allow_statement, deny]}, arn) == "Deny"
    assert policy_decision({"Statement": []}, arn) is None
    assert policy_decision({"Statement": [other_action]}, arn) is None


def _gateway_answer(response_type: str, message: str | None) -> dict[str, Any]:
    """What main.tf's gateway response template renders for this error."""
    template = MappingTemplate.from_file(API_GATEWAY_DIR / "gateway_response.vtl")
    return json.loads(template.render(context={"error": {
        "message": message, "messageString": message_string(message), "responseType": response_type}}))


def _start(url: str, body: Any = None, headers: dict[str, str] | None = None, data: bytes | None = None):
    return requests.post(f"{url}/workflow", json=body if data is None else None, data=data,
                         headers={**IDENTITY, **(headers or {})}, timeout=10)


@pytest.mark.parametrize("missing", [{"x-tenant-id": None}, {"x-api-key": None}, {"x-api-key": ""}, {"x-tenant-id": ""}],
                         ids=["no tenant header", "no key", "empty key", "empty tenant header"])
@pytest.mark.parametrize("path", ["/workflow", "/workflow/wf-1", "/callback"])
def test_a_missing_identity_source_is_401_without_invoking_the_authorizer(missing: dict[str, None], path: str) -> None:
    headers = {name: value for name, value in {**IDENTITY, **missing}.items() if value is not None}
    with running_gateway() as (gateway, scripted):
        method = "GET" if path.startswith("/workflow/") else "POST"
        response = requests.request(method, f"{gateway.url}{path}", json={}, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"} == _gateway_answer("UNAUTHORIZED", "Unauthorized")
    assert response.headers["x-amzn-ErrorType"] == "UnauthorizedException"
    assert scripted.calls == []


def test_an_authorizer_failing_with_unauthorized_is_401() -> None:
    with running_gateway() as (gateway, scripted):
        scripted.authorizer = lambda event: outcome({"errorMessage": "Unauthorized", "errorType": "Exception"},
                                                    function_error="Unhandled")
        response = _start(gateway.url, VALID_BODY)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert scripted.of("workflow") == []


MALFORMED_RESULTS = {
    "fails with another message": outcome({"errorMessage": "boom", "errorType": "KeyError"}, function_error="Unhandled"),
    "no principalId": outcome({k: v for k, v in allow().items() if k != "principalId"}),
    "nested context value": outcome(allow({"tenantId": TENANT, "workflowId": WORKFLOW_ID, "extra": {"a": 1}})),
    "list context value": outcome(allow({"tenantId": TENANT, "workflowId": WORKFLOW_ID, "extra": [1]})),
    "policy is not a policy": outcome({**allow(), "policyDocument": "Allow"}),
    "not a JSON object": outcome(None),
    "not JSON": InvokeOutcome(200, b"<html>"),
}


@pytest.mark.parametrize("answer", MALFORMED_RESULTS.values(), ids=MALFORMED_RESULTS.keys())
def test_an_authorizer_error_or_malformed_result_is_the_authorizer_configuration_error_of_main_tf(
    answer: InvokeOutcome,
) -> None:
    responses = json.loads((API_GATEWAY_DIR / "gateway_responses.json").read_text())["responses"]
    deployed = responses["AUTHORIZER_CONFIGURATION_ERROR"]
    with running_gateway() as (gateway, scripted):
        scripted.authorizer = lambda event: answer
        response = _start(gateway.url, VALID_BODY)
    # API Gateway: AUTHORIZER_CONFIGURATION_ERROR, message null; main.tf makes it 503 with Retry-After.
    assert response.status_code == int(deployed["statusCode"]) == 503
    assert response.json() == {"message": None} == _gateway_answer("AUTHORIZER_CONFIGURATION_ERROR", None)
    assert response.headers["Retry-After"] == deployed["headers"]["Retry-After"].strip("'") == "1"
    assert scripted.of("workflow") == []


def test_an_authorizer_lambda_refuses_to_invoke_is_the_same_configuration_error() -> None:
    with running_gateway() as (gateway, scripted):
        scripted.authorizer = refuse(429, "TooManyRequestsException")
        response = _start(gateway.url, VALID_BODY)
    assert (response.status_code, response.json(), response.headers["Retry-After"]) == (503, {"message": None}, "1")


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        ([{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "*"}],
         "User is not authorized to access this resource with an explicit deny"),
        ([{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:aws:execute-api:*:*:local/v1/GET/*"}],
         "User is not authorized to access this resource"),
        ([], "User is not authorized to access this resource"),
    ],
    ids=["explicit deny", "allow for another method", "no statement"],
)
def test_explicit_and_implicit_deny_answer_api_gateways_two_messages(statements: list[Any], message: str) -> None:
    with running_gateway() as (gateway, scripted):
        scripted.authorizer = lambda event: outcome({**allow(), "policyDocument": {"Statement": statements}})
        response = _start(gateway.url, VALID_BODY)
    assert response.status_code == 403
    assert response.json() == {"message": message} == _gateway_answer("ACCESS_DENIED", message)
    assert scripted.of("workflow") == []


def test_authorizer_context_values_reach_the_function_as_strings() -> None:
    context = {"tenantId": TENANT, "workflowId": WORKFLOW_ID, "count": 42, "ratio": 1.5, "flag": True}
    with running_gateway() as (gateway, scripted):
        scripted.authorizer = lambda event: outcome(allow(context))
        assert requests.get(f"{gateway.url}/workflow/wf-1", headers=IDENTITY, timeout=10).status_code == 200
    authorizer = scripted.of("api")[0].payload["requestContext"]["authorizer"]
    assert {key: value for key, value in authorizer.items() if key != "integrationLatency"} == {
        "principalId": TENANT, "tenantId": TENANT, "workflowId": WORKFLOW_ID, "count": "42", "ratio": "1.5", "flag": "true",
    }
    assert isinstance(authorizer["integrationLatency"], int)


def test_the_start_sends_what_the_deployed_template_and_request_parameters_make() -> None:
    body = {"amount": 10, "currency": "EUR", "description": "caf\u00e9 \"quoted\""}
    with running_gateway() as (gateway, scripted):
        response = _start(gateway.url, body)
    [call] = scripted.of("workflow")
    # The request parameters of start_workflow_integration.json, as Invoke arguments.
    assert (call.invocation_type, call.tenant_id, call.execution_name) == ("Event", TENANT, WORKFLOW_ID)
    # The request template, rendered on its own, is what the workflow function got.
    template = MappingTemplate.from_file(API_GATEWAY_DIR / "start_workflow.request.vtl")
    from local.services.vtl import TemplateInput
    rendered = template.render(context={"authorizer": {"workflowId": WORKFLOW_ID}},
                               template_input=TemplateInput(body=json.dumps(body)))
    assert call.payload == json.loads(rendered) == {"workflowId": WORKFLOW_ID, "request": body}
    accepted = MappingTemplate.from_file(API_GATEWAY_DIR / "start_workflow.accepted.vtl")
    assert response.status_code == 202
    assert response.json() == json.loads(accepted.render(context={"authorizer": {"workflowId": WORKFLOW_ID}}))
    assert response.json() == {"workflowId": WORKFLOW_ID, "status": "STARTED"}


def test_a_function_error_on_the_start_selects_the_failed_integration_response() -> None:
    with running_gateway() as (gateway, scripted):
        scripted.workflow = lambda payload: outcome({"errorMessage": "boom"}, function_error="Unhandled")
        response = _start(gateway.url, VALID_BODY)
    failed = MappingTemplate.from_file(API_GATEWAY_DIR / "start_workflow.failed.vtl")
    assert response.status_code == 502
    assert response.json() == json.loads(failed.render(context={})) == {"message": "The workflow could not be started"}


def test_a_body_the_validator_refuses_is_invalid_request_body_with_the_details_only_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running_gateway() as (gateway, scripted), caplog.at_level(logging.INFO, logger="local.services.gateway"):
        response = _start(gateway.url, {"amount": -1, "currency": "EUR"})
        not_json = _start(gateway.url, data=b"{not json", headers={"content-type": "application/json"})
    for answer in (response, not_json):
        assert answer.status_code == 400
        assert answer.json() == {"message": "Invalid request body"} == _gateway_answer("BAD_REQUEST_BODY", "Invalid request body")
    assert "amount" in caplog.text  # the validator's detail
    assert scripted.of("workflow") == []


VALID_TEXT = json.dumps(VALID_BODY)


@pytest.mark.parametrize(
    "data",
    [codecs.BOM_UTF8 + VALID_TEXT.encode(), VALID_TEXT.encode("utf-16"), VALID_TEXT.encode("utf-16-le"),
     VALID_TEXT.encode("utf-16-be"), VALID_TEXT.encode("utf-32"), b'{"amount": 10, "currency": "EUR\xff"}'],
    ids=["UTF-8 with a byte-order mark", "UTF-16 with its mark", "UTF-16LE", "UTF-16BE", "UTF-32", "invalid UTF-8"],
)
def test_a_body_that_is_not_utf8_json_text_is_invalid_request_body_before_any_template(data: bytes) -> None:
    # GIVEN a body whose JSON is valid once decoded, but which is not UTF-8 text without a mark
    with running_gateway() as (gateway, scripted):
        response = _start(gateway.url, data=data, headers={"content-type": "application/json"})
        # the same body as plain UTF-8 is accepted
        plain = _start(gateway.url, data=VALID_TEXT.encode(), headers={"content-type": "application/json; charset=utf-8"})
    # THEN the validator refuses it with the documented 400, never a template failure's 500
    assert response.status_code == 400
    assert response.json() == _gateway_answer("BAD_REQUEST_BODY", "Invalid request body")
    assert plain.status_code == 202 and plain.json()["workflowId"] == WORKFLOW_ID
    assert [call.payload["request"] for call in scripted.of("workflow")] == [VALID_BODY]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [(b'{"a":1}', None), ('{"a":"\u00e9\ufeff"}'.encode(), None), (b"", None),
     (codecs.BOM_UTF8 + b"{}", "byte-order mark"), (codecs.BOM_UTF16_LE + b"{\x00}\x00", "not UTF-8"),
     (codecs.BOM_UTF16_BE + b"\x00{\x00}", "not UTF-8"), (b"{\x00}\x00", "not UTF-8"), (b"\xc3(", "utf-8")],
    ids=["ASCII", "a mark inside a string is text", "empty", "UTF-8 mark", "UTF-16LE mark", "UTF-16BE mark",
         "NUL bytes", "invalid UTF-8"],
)
def test_json_text_is_utf8_without_a_byte_order_mark(raw: bytes, problem: str | None) -> None:
    if problem is None:
        assert json_text(raw) == raw.decode("utf-8")
    else:
        with pytest.raises(ValueError, match=problem):
            json_text(raw)


def test_a_template_that_fails_is_the_gateway_response_500_not_a_crash(tmp_path: Path) -> None:
    # A request template that cannot render (a JSONPath beyond API Gateway's) is answered with the
    # deployed DEFAULT_5XX response, as a configuration error, never the HTTP server's fallback.
    edited = tmp_path / "api_gateway"
    edited.mkdir()
    for path in API_GATEWAY_DIR.iterdir():
        (edited / path.name).write_bytes(path.read_bytes())
    (edited / "start_workflow.request.vtl").write_text("{\"request\":$input.json('$..amount')}")
    with running_gateway(edited) as (gateway, scripted):
        response = _start(gateway.url, VALID_BODY)
    assert response.status_code == 500
    assert response.json() == _gateway_answer("DEFAULT_5XX", "Internal server error")
    assert response.headers["x-amzn-ErrorType"] == "InternalServerErrorException"
    assert scripted.of("workflow") == []


@contextmanager
def gateway_with_timeout(seconds: float) -> Iterator[tuple[LocalGateway, ScriptedLambda]]:
    scripted = ScriptedLambda()
    gateway = LocalGateway(contract=load_contract(), invoker=scripted, workflow_function="t-workflow",
                           api_function="t-api", authorizer_function="t-authorizer",
                           integration_timeout_seconds=seconds)
    gateway.start()
    try:
        yield gateway, scripted
    finally:
        gateway.stop()


@pytest.mark.parametrize("route", ["start", "proxy"])
def test_an_integration_past_the_timeout_is_504_endpoint_request_timed_out(route: str) -> None:
    released, ended = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow(answer: InvokeOutcome) -> Any:
        def invoke(_payload: dict[str, Any]) -> InvokeOutcome:
            released.wait(30)  # longer than the gateway waits; released once the answer came
            finished.append(route)
            ended.set()
            return answer
        return invoke

    # GIVEN a gateway whose integrations may take 0.2 s, and functions that answer only when released
    with gateway_with_timeout(0.2) as (gateway, scripted):
        scripted.workflow = slow(InvokeOutcome(202))
        scripted.api = slow(outcome({"statusCode": 200, "body": "{}"}))
        try:
            response = (_start(gateway.url, VALID_BODY) if route == "start"
                        else requests.get(f"{gateway.url}/workflow/wf-1", headers=IDENTITY, timeout=10))
        finally:
            released.set()
        # THEN API Gateway's INTEGRATION_TIMEOUT through the deployed template: 504, its message
        assert response.status_code == 504
        assert response.json() == {"message": "Endpoint request timed out"}
        assert response.json() == _gateway_answer("INTEGRATION_TIMEOUT", "Endpoint request timed out")
        # AND the invocation was not cut off: it ran on and ended after the answer
        assert ended.wait(10)
    assert finished == [route]


@pytest.mark.parametrize("route", ["start", "proxy"])
def test_an_integration_answering_within_the_timeout_is_answered_as_usual(route: str) -> None:
    with gateway_with_timeout(5) as (gateway, scripted):
        response = (_start(gateway.url, VALID_BODY) if route == "start"
                    else requests.get(f"{gateway.url}/workflow/wf-1", headers=IDENTITY, timeout=10))
    assert response.status_code == (202 if route == "start" else 200)


def test_the_integration_timeout_is_api_gateways_default_which_no_tf_file_changes() -> None:
    # The local gateway's 29 s is AWS's default timeout_milliseconds: should a .tf file set
    # it, the gateway must read that value instead of this constant.
    root = API_GATEWAY_DIR.parents[2]
    assert INTEGRATION_TIMEOUT_SECONDS == 29.0
    assert list(root.glob("*.tf"))
    assert not [path.name for path in root.glob("*.tf") if "timeout_milliseconds" in path.read_text()]


def test_a_media_type_without_a_template_is_415() -> None:
    with running_gateway() as (gateway, scripted):
        response = _start(gateway.url, data=b"amount=10", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert response.json() == {"message": "Unsupported Media Type"}
    assert scripted.of("workflow") == []


@pytest.mark.parametrize(
    ("status", "code", "expected_status"),
    [(429, "TooManyRequestsException", 502), (409, "DurableExecutionAlreadyStartedException", 500),
     (400, "InvalidParameterValueException", 500), (500, "ServiceException", 500)],
    ids=["throttled: INTEGRATION_FAILURE (main.tf 502)", "conflict", "invalid parameter", "service error"],
)
@pytest.mark.parametrize("route", ["start", "proxy"])
def test_an_invoke_lambda_refuses_is_integration_failure_when_throttled_else_500(
    status: int, code: str, expected_status: int, route: str
) -> None:
    deployed = json.loads((API_GATEWAY_DIR / "gateway_responses.json").read_text())["responses"]
    with running_gateway() as (gateway, scripted):
        scripted.workflow = scripted.api = refuse(status, code)
        if route == "start":
            response = _start(gateway.url, VALID_BODY)
        else:
            response = requests.get(f"{gateway.url}/workflow/wf-1", headers=IDENTITY, timeout=10)
    if status == 429:
        assert expected_status == int(deployed["INTEGRATION_FAILURE"]["statusCode"])
    assert response.status_code == expected_status
    assert response.json() == {"message": "Internal server error"}


def test_a_function_error_or_malformed_proxy_answer_is_502_internal_server_error() -> None:
    with running_gateway() as (gateway, scripted):
        scripted.api = lambda event: outcome({"errorMessage": "boom"}, function_error="Unhandled")
        failed = requests.get(f"{gateway.url}/workflow/wf-1", headers=IDENTITY, timeout=10)
        scripted.api = lambda event: outcome({"body": "no status"})
        malformed = requests.get(f"{gateway.url}/workflow/wf-1", headers=IDENTITY, timeout=10)
    for response in (failed, malformed):
        assert (response.status_code, response.json()) == (502, {"message": "Internal server error"})


def test_a_chunked_body_is_accepted() -> None:
    body = json.dumps(VALID_BODY).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:5], body[5:])) + b"0\r\n\r\n"
    head = (f"POST /workflow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"x-tenant-id: {TENANT}\r\nx-api-key: k\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    with running_gateway() as (gateway, scripted):
        status, _headers, answer = raw_exchange(gateway.url, head.encode() + chunks)
    assert status == 202, answer
    assert scripted.of("workflow")[0].payload["request"] == VALID_BODY


@pytest.mark.parametrize(
    ("request_head", "status", "message"),
    [
        ("get /workflow/wf-1 HTTP/1.1", 404, "Not Found"),
        ("FOO /workflow HTTP/1.1", 404, "Not Found"),
        ("GET /" + "x" * 70_000 + " HTTP/1.1", 414, "Request-URI Too Long"),
        ("GET /workflow/wf-1 HTTP/1.1\r\n" + "\r\n".join(f"x-h{i}: v" for i in range(120)), 431,
         "Request Header Fields Too Large"),
        ("GET /workflow/wf-1 HTTP/1.1\r\nx-big: " + "v" * 11_000, 431, "Request Header Fields Too Large"),
        ("GET /workflow/wf-1 HTTP/1.1\r\nTransfer-Encoding: gzip", 400, "Unsupported Transfer-Encoding"),
    ],
    ids=["lower-case method", "unknown method", "request line over 64 KiB", "over 100 headers",
         "headers over API Gateway's 10,240 bytes", "unknown transfer coding"],
)
def test_malformed_requests_get_json_error_bodies(request_head: str, status: int, message: str) -> None:
    with running_gateway() as (gateway, scripted):
        answer_status, headers, body = raw_exchange(
            gateway.url, f"{request_head}\r\nHost: x\r\nx-tenant-id: {TENANT}\r\nx-api-key: k\r\n\r\n".encode())
    assert answer_status == status
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": message}
    assert scripted.calls == []


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/callbacks?callbackToken=abc", {}),
        ("POST", "/callbacks", {"x-callback-token": "abc"}),
        ("PUT", "/callbacks/abc", {}),
        ("DELETE", "/workflow", IDENTITY),
        ("GET", "/nowhere", IDENTITY),
    ],
    ids=["token in the query string", "token in a header", "PUT of the token route", "wrong method", "unknown resource"],
)
def test_an_unknown_route_or_method_is_404_not_found_without_invoking_anything(
    method: str, path: str, headers: dict[str, str]
) -> None:
    # main.tf's MISSING_AUTHENTICATION_TOKEN response: 404 and a fixed message, never API Gateway's
    # 403 "Missing Authentication Token" (which hints that a credential is missing).
    with running_gateway() as (gateway, scripted):
        response = requests.request(method, f"{gateway.url}{path}", headers=headers, json={"payload": {}}, timeout=10)
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert scripted.calls == []


@pytest.mark.parametrize("refusal", [THROTTLED, QUOTA_EXCEEDED], ids=lambda refusal: refusal.response_type)
def test_a_usage_plan_refusal_is_429_with_retry_after(refusal: UsageRefusal) -> None:
    class Refusing:
        """A usage plan that refuses every key with ``refusal``."""

        def admit(self, _key: str | None) -> UsageRefusal:
            return refusal

    with running_gateway() as (gateway, scripted):
        gateway.usage_plans = Refusing()  # type: ignore[assignment]
        response = requests.get(f"{gateway.url}/workflow/{WORKFLOW_ID}", headers=IDENTITY, timeout=10)
    assert (response.status_code, response.json()) == (429, {"message": refusal.message})
    assert response.headers["Retry-After"] == "1"
    assert [call.function.split(":")[0] for call in scripted.calls] == ["t-authorizer"]


def test_the_token_route_has_its_own_method_throttle_with_retry_after() -> None:
    clock = [100.0]
    with running_gateway() as (gateway, scripted):
        gateway.method_throttle = MethodThrottle(rate=1, burst=2, clock=lambda: clock[0])
        answers = [requests.post(f"{gateway.url}/callbacks/token-{n}", json={"payload": {}}, timeout=10) for n in range(3)]
        clock[0] += 1.0  # one token back
        later = requests.post(f"{gateway.url}/callbacks/token-3", json={"payload": {}}, timeout=10)
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].json() == {"message": THROTTLED.message} and answers[2].headers["Retry-After"] == "1"
    assert later.status_code == 200
    # The throttled request never reached the api function; the tenants' routes are not metered by it.
    assert len(scripted.of("api")) == 3


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tenant", "api_key", "status", "message"),
    [
        (None, None, 401, "Unauthorized"),
        ("tenant-a", None, 401, "Unauthorized"),
        (None, "own", 401, "Unauthorized"),
        ("bad tenant!", "own", 401, "Unauthorized"),
        ("t" * 65, "own", 401, "Unauthorized"),
        ("tenant-a", "wrong-key", 403, "User is not authorized"),
        ("tenant-b", "tenant-a", 403, "User is not authorized"),
    ],
)
@pytest.mark.parametrize("route", ["start", "status", "callback"])
def test_requests_without_a_verified_tenant_are_refused_before_any_function_behind_the_gateway_runs(
    stack: StackProcess, tenant: str | None, api_key: str | None, status: int, message: str, route: str
) -> None:
    # GIVEN the tenant header and a key that is missing, wrong, or another tenant's
    headers = {"content-type": "application/json"}
    if tenant is not None:
        headers["x-tenant-id"] = tenant
    if api_key is not None:
        headers["x-api-key"] = stack.api_keys["tenant-a"] if api_key in ("own", "tenant-a") else api_key
    before = stack.invocations("-workflow") + stack.invocations("-api")
    # WHEN it calls any route
    if route == "start":
        response = stack.http.post(f"{stack.api_url}/workflow", json=VALID_BODY, headers=headers, timeout=30)
    elif route == "status":
        response = stack.http.get(f"{stack.api_url}/workflow/some-id", headers=headers, timeout=30)
    else:
        response = stack.http.post(f"{stack.api_url}/callback", json={"callbackId": "x", "payload": {}},
                                   headers=headers, timeout=30)
    # THEN the authorizer refuses it and neither the workflow nor the api function runs
    assert response.status_code == status
    assert response.json()["message"].startswith(message)
    assert stack.invocations("-workflow") + stack.invocations("-api") == before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "Invalid request body"),
        ({"amount": -1, "currency": "EUR"}, "Invalid request body"),
        ({"amount": 1, "currency": "EUR", "tenantId": "tenant-b"}, "Invalid request body"),
    ],
)
def test_invalid_start_bodies_are_refused_before_the_workflow_runs(stack: StackProcess, body: object, message: str) -> None:
    starts_before = stack.invocations("-workflow")
    data = body if isinstance(body, str) else json.dumps(body)

    response = stack.http.post(f"{stack.api_url}/workflow", data=data,
                               headers={**stack.headers("tenant-a"), "content-type": "application/json"}, timeout=30)

    assert response.status_code == 400
    assert response.json()["message"].startswith(message)
    assert stack.invocations("-workflow") == starts_before
