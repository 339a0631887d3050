"""Read the repository's real ``.tf`` files with python-hcl2 (no Terraform needed)."""

from __future__ import annotations

from functools import cache
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

from .tfworkspace import REPO_ROOT

_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed root-module file ``name`` (e.g. ``"main.tf"``), strings unquoted."""
    with (REPO_ROOT / name).open() as handle:
        return hcl2.load(handle, serialization_options=_OPTIONS)


def resource(file_name: str, resource_type: str, name: str) -> dict[str, Any]:
    """The body of ``resource "TYPE" "NAME"`` in ``file_name``."""
    for entry in load(file_name).get("resource", []):
        if resource_type in entry and name in entry[resource_type]:
            return entry[resource_type][name]
    raise KeyError(f'resource "{resource_type}" "{name}" not in {file_name}')


def resources_of_type(file_name: str, resource_type: str) -> dict[str, dict[str, Any]]:
    """Every ``resource "TYPE" ...`` in ``file_name``, by name."""
    found: dict[str, dict[str, Any]] = {}
    for entry in load(file_name).get("resource", []):
        found.update(entry.get(resource_type, {}))
    return found


def local(name: str, file_name: str = "main.tf") -> Any:
    """The value of ``local.NAME`` as written in ``file_name``."""
    for block in load(file_name).get("locals", []):
        if name in block:
            return block[name]
    raise KeyError(f"local.{name} not in {file_name}")


def variables() -> dict[str, dict[str, Any]]:
    """Every variable block of variables.tf, by name."""
    found: dict[str, dict[str, Any]] = {}
    for entry in load("variables.tf").get("variable", []):
        found.update(entry)
    return found


def providers_required() -> dict[str, dict[str, Any]]:
    """``terraform { required_providers { ... } }`` across the root ``.tf`` files."""
    found: dict[str, dict[str, Any]] = {}
    for tf_file in sorted(REPO_ROOT.glob("*.tf")):
        for block in load(tf_file.name).get("terraform", []):
            for required in block.get("required_providers", []):
                found.update(required)
    return found


def blocks(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(type, name, body)`` of every ``resource`` or ``data`` block (``kind``) in the root ``.tf`` files."""
    found = []
    for tf_file in sorted(REPO_ROOT.glob("*.tf")):
        for entry in load(tf_file.name).get(kind, []):
            for block_type, named in entry.items():
                found += [(block_type, name, body) for name, body in named.items()]
    return found


def expression(value: str) -> str:
    """``"${local.functions}"`` -> ``"local.functions"``: the expression a parsed attribute holds."""
    assert value.startswith("${") and value.endswith("}"), value
    return value[2:-1]
