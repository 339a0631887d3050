"""Step one's typed outcome and the callback's serdes round-trip through checkpoint text."""

from __future__ import annotations

from typing import Any

import pytest

from shared.tenants import TenantConfig
from workflow.checkpoints import ConfirmationSerDes, Validation, ValidationSerDes

TENANT = TenantConfig(tenant_id="t", display_name="T", status="ACTIVE", allowed_currencies=("EUR",), max_amount=10.0,
                      callback_timeout_seconds=60, heartbeat_timeout_seconds=0)


@pytest.mark.parametrize("validation", [
    Validation(accepted=True, environment_id="env", tenant_data_from_cache=True, tenant=TENANT),
    Validation(accepted=False, environment_id="env", reason="too much"),
    Validation(accepted=False, duplicate=True, environment_id="env", reason="duplicate start"),
])
def test_validation_survives_its_checkpoint(validation: Validation) -> None:
    serdes = ValidationSerDes()
    assert serdes.deserialize(serdes.serialize(validation, None), None) == validation  # type: ignore[arg-type]


@pytest.mark.parametrize(("raw", "decoded"), [
    ('{"approved": true}', {"approved": True}), ("plain text", "plain text"), ('{"x": 1e400}', '{"x": 1e400}'),
    ("null", None),
])
def test_confirmation_is_decoded_from_the_raw_callback_result(raw: str, decoded: Any) -> None:
    assert ConfirmationSerDes().deserialize(raw, None) == decoded  # type: ignore[arg-type]
