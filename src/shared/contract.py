"""Load the API contract, request schema and demo tenants: the single sources of truth."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONTRACT_DIR = Path(__file__).resolve().parent
API_CONTRACT_FILE = CONTRACT_DIR / "api_contract.json"
DEMO_TENANTS_FILE = CONTRACT_DIR / "demo_tenants.json"


@dataclass(frozen=True)
class Route:
    """One public route of the REST API."""

    name: str
    method: str
    path: str
    integration: str
    success_status: int
    request_schema: str | None = None
    # False for the callback-token route (the token in its path is the credential)
    # and for the AWS_IAM routes.
    authorizer: bool = True
    # "AWS_IAM": the admin routes, signed with SigV4 (service execute-api).
    authorization: str = "CUSTOM"

    @property
    def iam(self) -> bool:
        """True for a route API Gateway authorizes with IAM (SigV4)."""
        return self.authorization == "AWS_IAM"


@cache
def api_contract() -> dict[str, Any]:
    """Return the parsed ``api_contract.json``."""
    return json.loads(API_CONTRACT_FILE.read_text(encoding="utf-8"))


@cache
def routes() -> dict[str, Route]:
    """Return the API routes keyed by name (``startWorkflow``, ``getWorkflow``, ``sendCallback``)."""
    return {
        name: Route(
            name=name,
            method=spec["method"],
            path=spec["path"],
            integration=spec["integration"],
            success_status=spec["successStatus"],
            request_schema=spec.get("requestSchema"),
            authorizer=spec.get("authorizer", True) and spec.get("authorization") != "AWS_IAM",
            authorization=spec.get("authorization", "CUSTOM" if spec.get("authorizer", True) else "NONE"),
        )
        for name, spec in api_contract()["routes"].items()
    }


@cache
def callback_waiting_event() -> dict[str, str]:
    """``source`` and ``detailType`` of the event a workflow emits when it starts waiting."""
    return dict(api_contract()["callbackWaitingEvent"])


@cache
def workflow_statuses() -> dict[str, bool]:
    """Every workflow status of the public API, and whether it is final (from ``api_contract.json``)."""
    return {name: bool(spec["final"]) for name, spec in api_contract()["workflowStatuses"].items()}


def start_workflow_schema() -> dict[str, Any]:
    """Return the JSON schema of the ``POST /workflow`` body."""
    schema_file = routes()["startWorkflow"].request_schema
    return json.loads((CONTRACT_DIR / str(schema_file)).read_text(encoding="utf-8"))


@cache
def demo_tenants() -> list[dict[str, Any]]:
    """Return the demo tenants that Terraform and the local stack seed."""
    return json.loads(DEMO_TENANTS_FILE.read_text(encoding="utf-8"))


TENANT_HEADER: str = api_contract()["tenantHeader"]
_TENANT_ID_RE = re.compile(api_contract()["tenantIdPattern"])
_WORKFLOW_ID_RE = re.compile(api_contract()["workflowIdPattern"])
CALLBACK_ID_MAX_LENGTH: int = api_contract()["callbackIdMaxLength"]


def is_valid_tenant_id(value: object) -> bool:
    """Return True when ``value`` is a tenant id the contract allows (1-64 of ``[A-Za-z0-9._-]``)."""
    return isinstance(value, str) and _TENANT_ID_RE.fullmatch(value) is not None


def is_valid_workflow_id(value: object) -> bool:
    """Return True when ``value`` has the shape of a workflow id."""
    return isinstance(value, str) and _WORKFLOW_ID_RE.fullmatch(value) is not None
