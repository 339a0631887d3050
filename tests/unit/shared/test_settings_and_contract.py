"""Settings from the environment and the shared contract files."""

from __future__ import annotations

import pytest

from shared.contract import demo_tenants, is_valid_tenant_id, routes, start_workflow_schema
from shared.settings import SettingsError, load_settings

BASE = {"TENANTS_TABLE_NAME": "t", "WORKFLOWS_TABLE_NAME": "w"}


def test_defaults_apply_when_optional_values_are_absent() -> None:
    settings = load_settings(BASE)
    assert settings.tenant_cache_ttl_seconds == 300 and settings.workflows_table == "w"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "TENANTS_TABLE_NAME, WORKFLOWS_TABLE_NAME"),
        ({**BASE, "TENANT_CACHE_TTL_SECONDS": "soon"}, "must be an integer"),
        ({**BASE, "TENANT_CACHE_TTL_SECONDS": "0"}, "must be positive"),
    ],
)
def test_bad_settings_fail_clearly(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


@pytest.mark.parametrize("tenant_id", ["tenant-a", "A.b_c-9", "x" * 64])
def test_valid_tenant_ids(tenant_id: str) -> None:
    assert is_valid_tenant_id(tenant_id)


@pytest.mark.parametrize("tenant_id", ["", "x" * 65, "a b", "tenant/a", "../a", "tenänt", "a\r\nb", None, 7])
def test_invalid_tenant_ids(tenant_id: object) -> None:
    assert not is_valid_tenant_id(tenant_id)


def test_contract_files_agree() -> None:
    assert {"startWorkflow", "getWorkflow", "sendCallback", "sendCallbackWithToken", "showApprovalPage",
            "headApprovalPage", "listWorkflows"} <= set(routes())
    token_route = {r.method for r in routes().values() if r.path == "/callbacks/{callbackToken}"}
    assert token_route == {"POST", "GET", "HEAD"}
    assert not any(r.authorizer for r in routes().values() if r.path == "/callbacks/{callbackToken}")
    assert routes()["listWorkflows"].authorizer
    assert routes()["startWorkflow"].success_status == 202
    assert start_workflow_schema()["$schema"].startswith("http://json-schema.org/draft-04")
    statuses = {t["status"] for t in demo_tenants()}
    assert len([t for t in demo_tenants() if t["status"] == "ACTIVE"]) == 2 and "SUSPENDED" in statuses


def test_registry_statuses_are_the_contracts_and_docs_api_lists_them() -> None:
    import re
    from pathlib import Path

    from shared import registry
    from shared.contract import workflow_statuses

    statuses = workflow_statuses()
    assert registry.FINAL_STATUSES | registry.OPEN_STATUSES == set(statuses)
    assert registry.OPEN_STATUSES == {registry.STARTED, registry.WAITING_FOR_CALLBACK}
    api_doc = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text()
    listed = re.findall(r"Workflow statuses: (.*?)\.", api_doc, re.S)
    assert len(listed) == 1, "docs/api.md must list the workflow statuses once, as 'Workflow statuses: `A`, `B`.'"
    assert set(re.findall(r"`([A-Z_]+)`", listed[0])) == set(statuses)
