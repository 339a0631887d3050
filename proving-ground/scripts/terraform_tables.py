"""What the local stack takes from the Terraform files: the DynamoDB tables' key schemas (whichever
.tf file declares them, dynamodb.tf today) and variable defaults (variables.tf), one definition for
AWS, moto and tests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

MODULE_DIR = Path(__file__).resolve().parents[2]
VARIABLES_TF = MODULE_DIR / "variables.tf"
_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


@cache
def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=_OPTIONS)


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index as the Terraform definition declares it."""

    name: str
    hash_key: str
    range_key: str | None
    projection_type: str
    non_key_attributes: tuple[str, ...] = ()

    def definition(self) -> dict[str, Any]:
        """One entry of ``GlobalSecondaryIndexes`` for ``CreateTable`` (on-demand: no throughput)."""
        keys = [(self.hash_key, "HASH")] + ([(self.range_key, "RANGE")] if self.range_key else [])
        projection: dict[str, Any] = {"ProjectionType": self.projection_type}
        if self.non_key_attributes:
            projection["NonKeyAttributes"] = list(self.non_key_attributes)
        return {"IndexName": self.name, "KeySchema": [{"AttributeName": n, "KeyType": k} for n, k in keys],
                "Projection": projection}


@dataclass(frozen=True)
class TableSpec:
    """Key schema and TTL attribute of one table, as the Terraform definition declares them."""

    name: str
    hash_key: str
    range_key: str | None = None
    ttl_attribute: str | None = None
    attribute_types: tuple[tuple[str, str], ...] = ()
    global_indexes: tuple[IndexSpec, ...] = ()

    def create_table_arguments(self) -> dict[str, Any]:
        """Every ``CreateTable`` argument but billing: name, keys, attributes and the global secondary indexes."""
        arguments: dict[str, Any] = {"TableName": self.name, "KeySchema": self.key_schema(),
                                     "AttributeDefinitions": self.attribute_definitions()}
        if self.global_indexes:
            arguments["GlobalSecondaryIndexes"] = [index.definition() for index in self.global_indexes]
        return arguments

    def key_schema(self) -> list[dict[str, str]]:
        """``KeySchema`` for ``CreateTable``."""
        keys = [(self.hash_key, "HASH")] + ([(self.range_key, "RANGE")] if self.range_key else [])
        return [{"AttributeName": name, "KeyType": kind} for name, kind in keys]

    def attribute_definitions(self) -> list[dict[str, str]]:
        """``AttributeDefinitions`` for ``CreateTable``."""
        return [{"AttributeName": name, "AttributeType": kind} for name, kind in self.attribute_types]


@cache
def _terraform_tables() -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for tf_file in sorted(MODULE_DIR.glob("*.tf")):
        for entry in _load(tf_file).get("resource", []):
            tables.update(entry.get("aws_dynamodb_table", {}))
    return tables


def table_spec(resource_name: str, table_name: str) -> TableSpec:
    """The spec of ``resource "aws_dynamodb_table" "<resource_name>"`` of the root module, named ``table_name``."""
    body = _terraform_tables()[resource_name]
    ttl = (body.get("ttl") or [{}])[0]
    return TableSpec(
        name=table_name,
        hash_key=body["hash_key"],
        range_key=body.get("range_key"),
        ttl_attribute=ttl.get("attribute_name") if ttl.get("enabled", True) else None,
        attribute_types=tuple((a["name"], a["type"]) for a in body.get("attribute", [])),
        global_indexes=tuple(
            IndexSpec(name=index["name"], hash_key=index["hash_key"], range_key=index.get("range_key"),
                      projection_type=index.get("projection_type", "ALL"),
                      non_key_attributes=tuple(index.get("non_key_attributes") or ()))
            for index in body.get("global_secondary_index", [])
        ),
    )


def variable_default(name: str, path: Path = VARIABLES_TF) -> Any:
    """The default of ``variable "<name>"`` in ``path`` (None when it has none).

    Raises:
        KeyError: ``path`` declares no such variable.
    """
    for entry in _load(path).get("variable", []):
        if name in entry:
            return entry[name].get("default")
    raise KeyError(f"{path} declares no variable {name!r}")
