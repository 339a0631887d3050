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
class TableSpec:
    """Key schema and TTL attribute of one table, as the Terraform definition declares them."""

    name: str
    hash_key: str
    range_key: str | None = None
    ttl_attribute: str | None = None
    attribute_types: tuple[tuple[str, str], ...] = ()

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
