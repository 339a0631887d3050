"""The provisioner's input: an operation, a tenant and a generation, or the execution fails at once (pure)."""

from __future__ import annotations

import pytest

from provisioner.app import Operation


def test_a_valid_input_is_parsed() -> None:
    assert Operation.from_event({"operation": "onboard", "tenantId": "a.b", "generation": 3, "run": "x"}) == \
        Operation("onboard", "a.b", 3)


@pytest.mark.parametrize("event", [
    None, [], {}, {"operation": "delete", "tenantId": "a", "generation": 1},
    {"operation": "onboard", "tenantId": "a b", "generation": 1}, {"operation": "onboard", "tenantId": "a", "generation": -1},
    {"operation": "onboard", "tenantId": "a", "generation": True}, {"operation": "onboard", "tenantId": "a", "generation": "1"},
])
def test_anything_else_is_refused(event: object) -> None:
    with pytest.raises(ValueError):
        Operation.from_event(event)
