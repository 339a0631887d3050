"""API function: GET /workflow/{workflowId}, POST /callback and POST /callbacks/{callbackToken} (AWS_PROXY)."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from api import pages, pending
from api.callbacks import (
    AnswerKind,
    CallbackRequest,
    InvalidRequest,
    NotFound,
    Unauthenticated,
    RequestTooLarge,
    parse_callback_request,
    status_view,
)
from api.decision import Verdict
from api.delivery import CallbackDelivery, CallbackRefused
from api.repair import converge_on_read
from api.tokens import CallbackTokens
from shared import registry as reg
from shared.aws_clients import DYNAMODB_CONFIG, LAMBDA_CONFIG
from shared.callback_tokens import signing_key
from shared.contract import is_valid_tenant_id, is_valid_workflow_id, routes
from shared.observability import emit_count
from shared.registry import WorkflowRecord, WorkflowRegistry
from shared.settings import load_settings
from shared.tenants import read_tenant, read_tenant_status

logger = Logger()
SETTINGS = load_settings()
_DYNAMODB = boto3.resource("dynamodb", config=DYNAMODB_CONFIG)
REGISTRY = WorkflowRegistry(_DYNAMODB.Table(SETTINGS.workflows_table), SETTINGS.registry_retention_seconds)
TENANTS_TABLE = _DYNAMODB.Table(SETTINGS.tenants_table)
LAMBDA_CLIENT = boto3.client("lambda", config=LAMBDA_CONFIG)
# The tenant is read on every token request (no cache): a suspension stops its
# tokens at once, and only a token that resolved costs the read.
TOKENS = CallbackTokens(REGISTRY, lambda tenant_id: read_tenant_status(TENANTS_TABLE, tenant_id),
                        SETTINGS.callback_signing_secret, SETTINGS.callback_base_url)
app = APIGatewayRestResolver()

# Domain errors map to HTTP statuses here, once; routes never catch.
ERROR_STATUS: dict[type[Exception], int] = {
    InvalidRequest: 400,
    Unauthenticated: 401,
    NotFound: 404,
    RequestTooLarge: 413,
    pages.UnsupportedMediaType: 415,
}
# DynamoDB's and Lambda's throttling codes: the caller should back off and retry (429).
THROTTLING_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "TooManyRequestsException", "TransactionConflictException",
})
RETRY_AFTER_SECONDS = 1


def json_error(status: int, message: str, retry_after: int | None = None) -> Response:
    """Every error body is ``{"message": ...}``; 429 and 503 say when to retry.

    On the approval page's requests (GET, HEAD and the form's POST) the error is a page instead.
    """
    if app.context.get(PAGE_REQUEST):
        return page_response(pages.refusal_page(status, message, retry_after))
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps({"message": message}), headers=headers)


# Set (app.append_context) by the routes a browser reaches: their answers, errors included, are pages.
PAGE_REQUEST = "page"


def page_response(page: pages.Page) -> Response:
    """A page with its security headers; a HEAD gets the headers only."""
    body = "" if app.current_event.http_method == "HEAD" else page.html()
    return Response(status_code=page.status, content_type=pages.HTML_CONTENT_TYPE, body=body, headers=page.headers())


def caller_tenant() -> str:
    """The calling tenant as the request authorizer verified it (never the raw header).

    Raises:
        Unauthenticated: No verified tenant in the authorizer context.
    """
    tenant_id = _verified_tenant()
    if tenant_id is None:
        raise Unauthenticated("request carries no verified tenant identity")
    return tenant_id


def _verified_tenant() -> str | None:
    authorizer = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    tenant_id = authorizer.get("tenantId")
    return tenant_id if is_valid_tenant_id(tenant_id) else None


def bind_log_keys(router: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    """Put ``tenant_id`` and ``workflow_id`` on every log line of the request."""
    # Powertools drops keys whose value is None, so "-" stands for "not known (yet)".
    logger.append_keys(tenant_id=_verified_tenant() or "-", workflow_id="-")
    return next_middleware(router)


app.use(middlewares=[bind_log_keys])


def get_workflow(workflowId: str) -> dict[str, Any]:  # noqa: N803 - name fixed by the route template
    tenant_id = caller_tenant()
    if not is_valid_workflow_id(workflowId):
        raise InvalidRequest("workflowId is malformed")
    logger.append_keys(workflow_id=workflowId)
    record = REGISTRY.get_workflow(tenant_id, workflowId)
    if record is None:
        raise NotFound("workflow not found")
    record = converge_on_read(REGISTRY, LAMBDA_CLIENT, record, time.time())
    return status_view(record, TOKENS.url_for(record))


def send_callback() -> dict[str, Any]:
    tenant_id = caller_tenant()
    request = parse_callback_request(app.current_event.body)
    return _answer(REGISTRY.find_by_callback(tenant_id, request.callback_id), request)


def send_callback_with_token(callbackToken: str) -> dict[str, Any] | Response:  # noqa: N803 - name fixed by the route template
    """The external party's answer: the token is the only credential; its item names the tenant.

    Whatever identity headers the caller adds are ignored: this route has no
    authorizer, and the tenant comes only from the token's record. A token of an
    earlier signing key, or of a tenant that is not ACTIVE, is 404 like an unknown one.
    The approval page's form (``application/x-www-form-urlencoded``) is answered
    with a page; any media type but JSON (or none) is 415.
    """
    if pages.answer_kind(pages.header(app.current_event.headers, "content-type")) == "form":
        return answer_from_page(callbackToken)
    record = TOKENS.resolve(callbackToken)
    logger.append_keys(tenant_id=record.tenant_id)
    return _answer(record, parse_callback_request(app.current_event.body, callback_id=record.callback_id))


def show_approval_page(callbackToken: str) -> Response:  # noqa: N803 - name fixed by the route template
    """``GET`` (and ``HEAD``) of the token route: the approval page. Reads only: link scanners may fetch it freely."""
    app.append_context(**{PAGE_REQUEST: True})
    record = TOKENS.resolve(callbackToken)
    logger.append_keys(tenant_id=record.tenant_id, workflow_id=record.workflow_id)
    tenant = read_tenant(TENANTS_TABLE, record.tenant_id) if record.status == reg.WAITING_FOR_CALLBACK else None
    return page_response(pages.page_for_record(record, tenant.display_name if tenant else None, time.time()))


def answer_from_page(callbackToken: str) -> Response:  # noqa: N803 - name fixed by the route template
    """The approval page's form: the decision succeeds the callback as ``{"decision", "answeredVia": "page", "comment"?}``."""
    app.append_context(**{PAGE_REQUEST: True})
    record = TOKENS.resolve(callbackToken)
    logger.append_keys(tenant_id=record.tenant_id, workflow_id=record.workflow_id)
    answer = pages.parse_answer_form(app.current_event.decoded_body)
    request = CallbackRequest(callback_id=str(record.callback_id), payload=pages.confirmation(answer))
    settled = REGISTRY.callback_claim(record.tenant_id, request.callback_id).settled_digest
    if pages.already_recorded(answer, record, settled, request.answer_digest()):
        return page_response(pages.answer_page(answer, already=True))
    _answer(record, request)  # a different decision recorded first: 409; past the deadline: 410
    logger.info("decision recorded from the approval page", extra={"decision": answer.decision})
    return page_response(pages.answer_page(answer, already=False))


def list_workflows() -> dict[str, Any]:
    """``GET /workflows``: the calling tenant's workflows, newest first, one Query per page."""
    tenant_id = caller_tenant()
    request = pending.parse_list_request(app.current_event.multi_value_query_string_parameters, tenant_id,
                                         _list_key)
    page = REGISTRY.list_workflows(tenant_id, request.status, request.limit, request.start_key)
    return pending.list_view(page, TOKENS.url_for,
                             lambda last_key: pending.next_token(_list_key(), tenant_id, request.status, last_key))


def _list_key() -> bytes:
    """The ``nextToken`` key, derived from the signing key (503 when it is not configured or cannot be read)."""
    if not SETTINGS.callback_signing_secret:
        raise GetParameterError("no callback signing secret is configured: nextToken cannot be signed")
    return pending.list_key(signing_key(SETTINGS.callback_signing_secret))


def _answer(found: WorkflowRecord | None, request: CallbackRequest) -> dict[str, Any]:
    """Deliver ``request`` to the callback of ``found`` (the caller's tenant's record, or the token's).

    Raises:
        CallbackRefused: Not a 200 (``api.decision`` says which status, and why).
    """
    if found is not None:
        logger.append_keys(workflow_id=found.workflow_id)
    context = app.lambda_context
    decision = CallbackDelivery(
        registry=REGISTRY,
        lambda_client=LAMBDA_CLIENT,
        record=found,
        request=request,
        owner=context.aws_request_id,
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
    ).deliver()
    assert found is not None  # a missing callback is never a 200
    logger.info("callback delivered", extra={"delivered": request.kind, "verdict": decision.verdict.name})
    if decision.verdict == Verdict.DELIVERED:
        emit_count("CallbackHeartbeat" if request.kind == AnswerKind.HEARTBEAT else "CallbackDelivered", found.tenant_id)
    return {"workflowId": found.workflow_id, "delivered": request.kind}


def _resolver_rule(path: str) -> str:
    """``/workflow/{workflowId}`` (API Gateway) -> ``/workflow/<workflowId>`` (Powertools)."""
    return path.replace("{", "<").replace("}", ">")


# Routes come from the shared contract, the same file Terraform reads.
_VIEWS = {"getWorkflow": get_workflow, "sendCallback": send_callback, "sendCallbackWithToken": send_callback_with_token,
          "showApprovalPage": show_approval_page, "headApprovalPage": show_approval_page,
          "listWorkflows": list_workflows}
for _route in routes().values():
    if _route.name in _VIEWS:
        app.route(_resolver_rule(_route.path), method=_route.method)(_VIEWS[_route.name])


@app.exception_handler(list(ERROR_STATUS))
def handle_domain_error(error: Exception) -> Response:
    status = next(code for kind, code in ERROR_STATUS.items() if isinstance(error, kind))
    logger.info("request refused", extra={"status": status, "reason": str(error)})
    retry_after = getattr(error, "retry_after_seconds", RETRY_AFTER_SECONDS) if status in (429, 503) else None
    return json_error(status, str(error), retry_after)


@app.exception_handler(CallbackRefused)
def handle_refused_callback(error: CallbackRefused) -> Response:
    """The callback decision's answers other than 200."""
    logger.info("callback refused", extra={"status": error.status, "verdict": error.decision.verdict.name})
    return json_error(error.status, str(error), error.retry_after_seconds)


@app.exception_handler([ClientError, BotoCoreError, GetParameterError])
def handle_dependency_error(error: Exception) -> Response:
    """A registry, durable-service or Secrets Manager call that failed after its retries: 429 or 503, never 500."""
    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
    if code in THROTTLING_CODES:
        logger.warning("dependency throttled", extra={"error": code})
        return json_error(429, "too many requests, retry later", RETRY_AFTER_SECONDS)
    logger.warning("dependency unavailable", extra={"error": code or type(error).__name__})
    return json_error(503, "a dependency is unavailable, retry later", RETRY_AFTER_SECONDS)


@app.not_found
def handle_not_found(_error: Exception) -> Response:
    return json_error(404, "route not found")


@app.exception_handler(Exception)
def handle_unexpected(_error: Exception) -> Response:
    logger.exception("unexpected error")
    return json_error(500, "internal error")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
