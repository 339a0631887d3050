"""Environment binding: the first tenant owns the environment."""

from __future__ import annotations

import pytest

from workflow.isolation import EnvironmentBinding, TenantIsolationViolation, environment_id


def test_binds_first_tenant_and_accepts_it_again() -> None:
    binding = EnvironmentBinding()
    assert binding.bind("tenant-a") == "tenant-a"
    assert binding.bind("tenant-a") == "tenant-a"
    assert binding.tenant_id == "tenant-a"


def test_refuses_other_tenant_without_rebinding() -> None:
    binding = EnvironmentBinding()
    binding.bind("tenant-a")
    with pytest.raises(TenantIsolationViolation, match="tenant-b"):
        binding.bind("tenant-b")
    assert binding.tenant_id == "tenant-a"


@pytest.mark.parametrize("missing", [None, ""])
def test_refuses_invocation_without_tenant(missing: str | None) -> None:
    with pytest.raises(TenantIsolationViolation, match="no tenant id"):
        EnvironmentBinding().bind(missing)


def test_environment_id_uses_lambda_log_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/23/[7]0123456789abcdef")
    assert environment_id() == "0123456789abcdef"
    monkeypatch.delenv("AWS_LAMBDA_LOG_STREAM_NAME")
    assert environment_id().startswith("pid")
