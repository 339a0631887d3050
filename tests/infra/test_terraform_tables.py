"""proving-ground/scripts/terraform_tables.py: the tables the local stack builds are the tables Terraform plans.

The reader evaluates the tables' HCL itself (python-hcl2, no Terraform), dynamic blocks included; the plan is
Terraform's own evaluation of the same files, so the two must agree key for key.
"""

from __future__ import annotations

from typing import Any

import pytest

from scripts.terraform_tables import evaluate, table_spec

from .test_plan import planned

pytestmark = pytest.mark.slow


def _planned_indexes(table: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {index["name"]: (index["hash_key"], index.get("range_key") or None, index["projection_type"],
                            tuple(sorted(index.get("non_key_attributes") or ())))
            for index in table["global_secondary_index"]}


@pytest.mark.parametrize("resource_name", ["tenants", "workflows"])
def test_the_local_table_is_the_table_terraform_plans(plan_json: dict[str, Any], resource_name: str) -> None:
    table = planned(plan_json, f"aws_dynamodb_table.{resource_name}")
    spec = table_spec(resource_name, table["name"])
    assert (spec.hash_key, spec.range_key) == (table["hash_key"], table.get("range_key") or None)
    assert set(spec.attribute_types) == {(attribute["name"], attribute["type"]) for attribute in table["attribute"]}
    assert {index.name: (index.hash_key, index.range_key, index.projection_type, tuple(sorted(index.non_key_attributes)))
            for index in spec.global_indexes} == _planned_indexes(table)
    ttl = [entry["attribute_name"] for entry in table.get("ttl") or [] if entry.get("enabled")]
    assert ([spec.ttl_attribute] if spec.ttl_attribute else []) == ttl


def test_the_registry_indexes_come_from_the_dynamic_block() -> None:
    # Both list indexes, each on its own partition, from one block over local.workflow_list_indexes.
    indexes = {index.name: index.hash_key for index in table_spec("workflows", "any").global_indexes}
    assert indexes == {"byStatus": "statusPartition", "open": "openPartition"}


ITERATOR = {"index": {"key": "open", "value": {"partition": "openPartition"}}}


@pytest.mark.parametrize(("value", "expected"), [
    ("INCLUDE", "INCLUDE"),
    (["a", "${index.key}"], ["a", "open"]),
    ("${index.value.partition}", "openPartition"),
    ("${local.workflow_list_indexes}", {"byStatus": "statusPartition", "open": "openPartition"}),
])
def test_literals_and_plain_references_are_evaluated(value: Any, expected: Any) -> None:
    assert evaluate(value, ITERATOR) == expected


@pytest.mark.parametrize("value", [
    "${var.dynamodb_kms_key_arn}",          # a variable: only Terraform knows its value
    "${local.no_such_local}",               # names nothing
    "${index.value.no_such_field}",
    "${local.name_prefix}-workflows",       # a template, not a plain reference
    "${upper(local.name_prefix)}",          # a function call
])
def test_an_expression_the_reader_cannot_follow_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="local stack|names nothing"):
        evaluate(value, ITERATOR)
