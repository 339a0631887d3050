"""The mapping templates main.tf deploys, rendered locally with a Velocity engine, and one source for both.

Each template file in ``src/shared/api_gateway/`` is rendered on its own here;
``test_gateway.py`` compares those renderings with what the local gateway sends
and answers. The last tests edit a copy of the files and show that the gateway
follows the edit: a template is never hand-coded a second time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import requests

from local.services.contract import API_GATEWAY_DIR, load_gateway_responses
from local.services.vtl import MappingTemplate, TemplateError, TemplateInput, escape_javascript, json_path, message_string, read_template
from tests.local.gateway_fakes import IDENTITY, TENANT, VALID_BODY, WORKFLOW_ID, raw_exchange, running_gateway

TEMPLATES = sorted(API_GATEWAY_DIR.glob("*.vtl"))


def render(text: str, *, body: str = "", context: dict | None = None, **parts: dict[str, str]) -> str:
    return MappingTemplate(text).render(context=context or {}, template_input=TemplateInput(body=body, **parts))


def test_every_template_file_is_used_by_main_tf_and_renders_json() -> None:
    # The Terraform may be split into several files: read them all.
    main_tf = "\n".join(path.read_text() for path in sorted(API_GATEWAY_DIR.parents[2].glob("*.tf")))
    config = {path.name: path.read_text() for path in API_GATEWAY_DIR.glob("*.json")}
    context = {"authorizer": {"workflowId": WORKFLOW_ID, "tenantId": TENANT},
               "error": {"message": "m", "messageString": message_string("m")}}
    assert TEMPLATES
    for template in TEMPLATES:
        assert any(template.name in text for text in config.values()), f"{template.name} is named by no config file"
        rendered = MappingTemplate.from_file(template).render(
            context=context, template_input=TemplateInput(body=json.dumps(VALID_BODY)))
        json.loads(rendered)  # every template of this API renders JSON
    for name in config:
        assert f"/{name}" in main_tf, f"no .tf file reads {name}"


@pytest.mark.parametrize("body", ["{not json", "\ufeff{}", '{"a": NaN'])
def test_input_json_of_a_body_that_is_not_json_is_a_template_error(body: str) -> None:
    # A ValueError the gateway answers with its 500 gateway response (the validator keeps such
    # bodies away from POST /workflow's template: they are 400 before it).
    with pytest.raises(TemplateError, match=r"\$input\.json"):
        render('{"request":$input.json(\'$\')}', body=body)
    assert issubclass(TemplateError, ValueError)


def test_a_template_is_read_as_terraforms_chomp_file(tmp_path: Path) -> None:
    path = tmp_path / "t.vtl"
    path.write_text('{"a":1}\n\n')
    assert read_template(path) == '{"a":1}'


@pytest.mark.parametrize(("message", "expected"), [("Unauthorized", {"message": "Unauthorized"}),
                                                   (None, {"message": None}),
                                                   ('a "quoted" \\ message', {"message": 'a "quoted" \\ message'})])
def test_the_gateway_response_template_renders_the_error_message(message: str | None, expected: dict) -> None:
    template = MappingTemplate.from_file(API_GATEWAY_DIR / "gateway_response.vtl")
    rendered = template.render(context={"error": {"message": message, "messageString": message_string(message)}})
    assert json.loads(rendered) == expected


def test_input_json_and_path_follow_api_gateways_jsonpath() -> None:
    body = json.dumps({"a": {"b": [10, {"c": "é"}]}, "n": 1.5})
    assert render("$input.json('$')", body=body) == '{"a":{"b":[10,{"c":"é"}]},"n":1.5}'
    assert render("$input.json('$.a.b[1]')", body=body) == '{"c":"é"}'
    assert render("$input.json(\"$['a']['b'][0]\")", body=body) == "10"
    assert render("$input.json('$.missing')", body=body) == "null"
    assert render("$input.path('$.a.b[1].c')", body=body) == "é"
    assert render("#set($x = $input.path('$.a'))$x.b.size()", body=body) == "2"
    assert render("$input.json('$')", body="") == "{}"
    with pytest.raises(ValueError, match="unsupported JSONPath"):
        json_path({}, "$..a")


def test_input_params_look_in_path_then_query_then_headers() -> None:
    parts = {"path_parameters": {"id": "p"}, "query": {"id": "q", "page": "2"}, "headers": {"X-Trace": "t"}}
    assert render("$input.params('id')|$input.params('page')|$input.params('x-trace')|$input.params('none')", **parts) \
        == "p|2|t|"
    assert render("$input.params().querystring.page $input.params().header.get('X-Trace')", **parts) == "2 t"


def test_context_variables_that_are_not_set_render_empty_as_on_api_gateway() -> None:
    context = {"requestId": "r-1", "authorizer": {"tenantId": TENANT}, "identity": {"caller": None}}
    assert render('"$context.requestId" "$context.authorizer.tenantId" "$context.authorizer.nope" '
                  '"$context.identity.caller" "$context.nothing"', context=context) == f'"r-1" "{TENANT}" "" "" ""'


@pytest.mark.parametrize(
    ("text", "escaped"),
    [('say "hi"', 'say \\"hi\\"'), ("it's", "it\\'s"), ("a/b", "a\\/b"), ("back\\slash", "back\\\\slash"),
     ("line\nbreak\ttab", "line\\nbreak\\ttab"), ("\x01", "\\u0001"), ("é", "\\u00E9"), ("😀", "\\uD83D\\uDE00")],
)
def test_util_escape_javascript_follows_java_string_rules(text: str, escaped: str) -> None:
    assert escape_javascript(text) == escaped
    assert render("$util.escapeJavaScript($input.path('$.t'))", body=json.dumps({"t": text})) == escaped


def test_util_encodings_and_parse_json() -> None:
    assert render("$util.base64Encode('hé')") == "aMOp"
    assert render("$util.base64Decode('aMOp')") == "hé"
    assert render("$util.urlEncode('a b&c=d/é')") == "a+b%26c%3Dd%2F%C3%A9"
    assert render("$util.urlDecode('a+b%26c')") == "a b&c"
    assert render("#set($o = $util.parseJson('{\"k\": [1, 2]}'))$o.k.size()") == "2"


def _edited_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "api_gateway"
    shutil.copytree(API_GATEWAY_DIR, copy)
    return copy


def test_an_edited_request_template_and_request_parameter_change_what_the_gateway_sends(tmp_path: Path) -> None:
    copy = _edited_copy(tmp_path)
    (copy / "start_workflow.request.vtl").write_text(
        '{"workflowId":"$context.authorizer.workflowId","edited":"$context.authorizer.tenantId",'
        '"amount":$input.json(\'$.amount\')}\n')
    integration = json.loads((copy / "start_workflow_integration.json").read_text())
    integration["requestParameters"]["integration.request.header.X-Amz-Durable-Execution-Name"] = "'fixed-name'"
    (copy / "start_workflow_integration.json").write_text(json.dumps(integration))
    (copy / "start_workflow.accepted.vtl").write_text('{"accepted":"$context.authorizer.workflowId"}')

    with running_gateway(copy) as (gateway, scripted):
        response = requests.post(f"{gateway.url}/workflow", json=VALID_BODY, headers=IDENTITY, timeout=10)
    [call] = scripted.of("workflow")
    assert call.payload == {"workflowId": WORKFLOW_ID, "edited": TENANT, "amount": 10}
    assert call.execution_name == "fixed-name"
    assert (response.status_code, response.json()) == (202, {"accepted": WORKFLOW_ID})


def test_an_edited_gateway_response_changes_what_the_gateway_answers(tmp_path: Path) -> None:
    copy = _edited_copy(tmp_path)
    (copy / "gateway_response.vtl").write_text(
        '{"message":$context.error.messageString,"type":"$context.error.responseType","id":"$context.requestId"}')
    responses = json.loads((copy / "gateway_responses.json").read_text())
    responses["responses"]["UNAUTHORIZED"] = {"statusCode": "418", "headers": {"X-Why": "'no identity'"}}
    (copy / "gateway_responses.json").write_text(json.dumps(responses))

    too_many_headers = "GET /workflow/wf-1 HTTP/1.1\r\n" + "".join(f"x-h{i}: v\r\n" for i in range(120)) + "\r\n"
    with running_gateway(copy) as (gateway, _scripted):
        response = requests.get(f"{gateway.url}/workflow/wf-1", timeout=10)
        # Refusals before routing (here http.server's header count limit) render the same files.
        status, _headers, refused = raw_exchange(gateway.url, too_many_headers.encode())
    assert (status, json.loads(refused)["type"]) == (431, "DEFAULT_4XX")
    assert response.status_code == 418
    assert response.headers["X-Why"] == "no identity"
    body = response.json()
    assert (body["message"], body["type"]) == ("Unauthorized", "UNAUTHORIZED")
    assert body["id"] == response.headers["x-amzn-RequestId"]


SECURITY_HEADERS = {name: f"'{value}'" for name, value in json.loads(
    (API_GATEWAY_DIR / "gateway_responses.json").read_text())["securityHeaders"]["headers"].items()}


def test_gateway_response_types_fall_back_as_on_api_gateway() -> None:
    responses = load_gateway_responses()
    # Configured: main.tf's status and headers.
    assert responses.resolve("AUTHORIZER_FAILURE").status == 503
    assert responses.resolve("AUTHORIZER_FAILURE").headers == {"Retry-After": "'1'", **SECURITY_HEADERS}
    # A type not configured takes DEFAULT_4XX's headers: the security headers, as on API Gateway.
    assert responses.resolve("UNAUTHORIZED").headers == SECURITY_HEADERS
    # Not configured: API Gateway's default status, DEFAULT_4XX/5XX's (null) status leaves it.
    assert responses.resolve("UNAUTHORIZED").status == 401
    assert responses.resolve("ACCESS_DENIED").status == 403
    # Configured with a status and a template of its own: 404 {"message": "Not Found"}.
    assert responses.resolve("MISSING_AUTHENTICATION_TOKEN").status == 404
    assert responses.resolve("MISSING_AUTHENTICATION_TOKEN").template.render(context={}, template_input=TemplateInput()) \
        == '{"message":"Not Found"}'
    assert responses.resolve("DEFAULT_5XX").status == 500
    assert responses.resolve("DEFAULT_5XX", 502).status == 502
