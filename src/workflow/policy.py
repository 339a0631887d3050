"""Decide whether a tenant may start a workflow for a request: pure, no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shared.contract import start_workflow_schema
from shared.tenants import TenantConfig


@dataclass(frozen=True)
class Decision:
    """The outcome of validating a request against the tenant's policy."""

    accepted: bool
    reason: str | None = None


ACCEPTED = Decision(accepted=True)


def evaluate_request(tenant: TenantConfig | None, request: Any) -> Decision:
    """Check ``request`` against the request schema and the tenant's policy.

    A rejection is a value, not an exception, so the durable step that calls
    this completes once and is never retried for a bad request.

    Args:
        tenant: The tenant's configuration, or None when the tenant is unknown.
        request: The ``POST /workflow`` body.

    Returns:
        ``ACCEPTED`` or a rejected :class:`Decision` naming the first reason.
    """
    if tenant is None:
        return Decision(False, "unknown tenant")
    if not tenant.is_active:
        return Decision(False, f"tenant is {tenant.status.lower()}")
    # Imported here, not at module load: only a start's first step validates, and
    # an environment that only resumes workflows never loads fastjsonschema.
    from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate  # noqa: PLC0415

    try:
        validate(event=request, schema=start_workflow_schema())
    except SchemaValidationError as error:
        return Decision(False, f"invalid request: {error.message}")
    if not math.isfinite(request["amount"]):
        # JSON Schema's "number" admits NaN and Infinity, which compare false with any limit.
        return Decision(False, "invalid request: amount must be a finite number")
    if request["currency"] not in tenant.allowed_currencies:
        allowed = ", ".join(tenant.allowed_currencies)
        return Decision(False, f"currency {request['currency']} is not allowed (allowed: {allowed})")
    if request["amount"] > tenant.max_amount:
        return Decision(False, f"amount {request['amount']} exceeds the tenant limit {tenant.max_amount:g}")
    return ACCEPTED
