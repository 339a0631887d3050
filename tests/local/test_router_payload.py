"""The router's start payload is byte for byte what POST /workflow's start template renders (the local
gateway's VTL over src/shared/api_gateway/start_workflow.request.vtl), so the same Idempotency-Key over
HTTP and IdempotencyKey over the queue name one execution with one input, and Lambda answers the second
start as the first (idempotent start), never DurableExecutionAlreadyStartedException."""

from __future__ import annotations

import json

import pytest

from local.services.contract import load_start_integration
from local.services.vtl import TemplateInput
from router.routing import start_payload
from shared import strict_json

BODIES = [
    '{"amount": 12.5, "currency": "EUR"}',
    '{"currency":"USD","amount":100,"description":"order 42"}',
    '{"amount": 1e2, "currency": "GBP", "description": "caf\\u00e9 \\"quoted\\" \\u2603"}',
    '{"amount": 0.1, "currency": "EUR", "description": "line\\nbreak / slash"}',
]


@pytest.mark.parametrize("body", BODIES)
def test_the_router_payload_is_what_the_start_template_renders(body: str) -> None:
    template = load_start_integration().request_templates["application/json"]
    workflow_id = "idem-0123456789abcdef0123456789abcdef01234567"
    rendered = template.render(context={"authorizer": {"workflowId": workflow_id, "tenantId": "tenant-a"}},
                               template_input=TemplateInput(body=body))
    assert start_payload(workflow_id, strict_json.loads(body)) == rendered
    assert json.loads(rendered)["request"] == json.loads(body)
