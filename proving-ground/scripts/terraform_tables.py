"""What the local stack takes from the Terraform files: the DynamoDB tables' key schemas (whichever
.tf file declares them, dynamodb.tf today) and variable defaults (variables.tf), one definition for
AWS, moto and tests.

The tables' blocks may be ``dynamic`` over a ``local`` (dynamodb.tf's list indexes): they are expanded
here as Terraform expands them. Only literals and plain references (``local.NAME``, the iterator's
``.key`` and ``.value[.FIELD]``) are evaluated; anything else is a ValueError naming the expression,
so a table the reader cannot follow stops the local stack rather than building a different table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

MODULE_DIR = Path(__file__).resolve().parents[2]
VARIABLES_TF = MODULE_DIR / "variables.tf"
_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
# A whole-value reference as python-hcl2 renders it: "${local.name}", "${global_secondary_index.value}".
_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)\}")


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
        projection: dict[str, Any] = {"ProjectionType": self.projection_type}
        if self.non_key_attributes:
            projection["NonKeyAttributes"] = list(self.non_key_attributes)
        return {"IndexName": self.name, "KeySchema": _key_schema(self.hash_key, self.range_key),
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
        return _key_schema(self.hash_key, self.range_key)

    def attribute_definitions(self) -> list[dict[str, str]]:
        """``AttributeDefinitions`` for ``CreateTable``."""
        return [{"AttributeName": name, "AttributeType": kind} for name, kind in self.attribute_types]


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    keys = [(hash_key, "HASH")] + ([(range_key, "RANGE")] if range_key else [])
    return [{"AttributeName": name, "KeyType": kind} for name, kind in keys]


def _root_entries(kind: str) -> Iterator[dict[str, Any]]:
    """The top-level ``kind`` entries (``resource``, ``locals``) of every root .tf file."""
    for tf_file in sorted(MODULE_DIR.glob("*.tf")):
        yield from _load(tf_file).get(kind, [])


@cache
def _terraform_tables() -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for entry in _root_entries("resource"):
        tables.update(entry.get("aws_dynamodb_table", {}))
    return tables


@cache
def _terraform_locals() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for entry in _root_entries("locals"):
        found.update(entry)
    return found


def evaluate(value: Any, scope: Mapping[str, Any]) -> Any:
    """``value`` as parsed from the HCL, with its plain references resolved.

    Args:
        value: A literal, a list or map of them, or a whole-value reference (``"${local.NAME}"``,
            ``"${NAME.key}"``, ``"${NAME.value.FIELD}"``).
        scope: What names other than ``local`` stand for (a dynamic block's iterator: ``{"key", "value"}``).

    Raises:
        ValueError: an expression other than a plain reference, or one naming nothing.
    """
    if isinstance(value, list):
        return [evaluate(item, scope) for item in value]
    if isinstance(value, dict):
        return {key: evaluate(item, scope) for key, item in value.items()}
    if not isinstance(value, str) or "${" not in value:
        return value
    match = _REFERENCE.fullmatch(value)
    if match is None:
        raise ValueError(f"the local stack reads literals and plain references from the tables' HCL, not {value!r}")
    head, *path = match.group(1).split(".")
    roots = {**scope, "local": _terraform_locals()}
    if head not in roots:
        raise ValueError(f"{value!r}: the local stack cannot evaluate {head!r} in a table definition")
    resolved = roots[head]
    for part in path:
        if not isinstance(resolved, Mapping) or part not in resolved:
            raise ValueError(f"{value!r} names nothing in the root module")
        resolved = resolved[part]
    return evaluate(resolved, scope)


def nested_blocks(body: Mapping[str, Any], block_type: str) -> list[dict[str, Any]]:
    """The ``block_type`` blocks of a resource body, evaluated: the plain ones, then each ``dynamic`` one's.

    A dynamic block over a map yields one block per key (``.key`` the key, ``.value`` its value); over a
    list, one per element (``.key`` its index), as Terraform generates them.
    """
    blocks = [evaluate(block, {}) for block in body.get(block_type, [])]
    for entry in body.get("dynamic", []):
        if block_type not in entry:
            continue
        spec = entry[block_type]
        items = evaluate(spec["for_each"], {})
        pairs = list(items.items() if isinstance(items, Mapping) else enumerate(items))
        for content in spec.get("content", []):
            blocks.extend(evaluate(content, {block_type: {"key": key, "value": item}}) for key, item in pairs)
    return blocks


def table_spec(resource_name: str, table_name: str) -> TableSpec:
    """The spec of ``resource "aws_dynamodb_table" "<resource_name>"`` of the root module, named ``table_name``.

    Raises:
        ValueError: the table's definition holds an expression this reader cannot evaluate.
    """
    body = _terraform_tables()[resource_name]
    ttl = (nested_blocks(body, "ttl") or [{}])[0]
    return TableSpec(
        name=table_name,
        hash_key=evaluate(body["hash_key"], {}),
        range_key=evaluate(body.get("range_key"), {}),
        ttl_attribute=ttl.get("attribute_name") if ttl.get("enabled", True) else None,
        attribute_types=tuple((a["name"], a["type"]) for a in nested_blocks(body, "attribute")),
        global_indexes=tuple(
            IndexSpec(name=index["name"], hash_key=index["hash_key"], range_key=index.get("range_key"),
                      projection_type=index.get("projection_type", "ALL"),
                      non_key_attributes=tuple(index.get("non_key_attributes") or ()))
            for index in nested_blocks(body, "global_secondary_index")
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
