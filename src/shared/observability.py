"""Metrics helper shared by both functions: counts with a tenant dimension (EMF via Powertools)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric


def emit_count(name: str, tenant_id: str) -> None:
    """Emit one count metric with a ``tenant_id`` dimension, flushed immediately.

    In the workflow function this is only called inside durable steps, so a
    replay never emits the same metric twice.
    """
    with single_metric(name=name, unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="tenant_id", value=tenant_id)
