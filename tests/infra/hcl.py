"""Read the repository's real ``.tf`` files with python-hcl2 (no Terraform needed).

The root module is split by concern (main.tf, api.tf, iam.tf ...): every
reader here looks through all of its ``.tf`` files, so a block can move from
one file to another without a test noticing.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

from .tfworkspace import FUNCTIONS_FILE, REPO_ROOT, root_tf_files

_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed root-module file ``name`` (e.g. ``"main.tf"``), strings unquoted."""
    with (REPO_ROOT / name).open() as handle:
        return hcl2.load(handle, serialization_options=_OPTIONS)


def _entries(kind: str) -> list[dict[str, Any]]:
    """The top-level ``kind`` entries (``resource``, ``locals`` ...) of every root ``.tf`` file."""
    return [entry for tf_file in root_tf_files() for entry in load(tf_file.name).get(kind, [])]


def module_text() -> str:
    """The text of every root ``.tf`` file, one after the other."""
    return "\n".join(tf_file.read_text() for tf_file in root_tf_files())


def resource(resource_type: str, name: str) -> dict[str, Any]:
    """The body of ``resource "TYPE" "NAME"``, in whichever ``.tf`` file it is."""
    for entry in _entries("resource"):
        if resource_type in entry and name in entry[resource_type]:
            return entry[resource_type][name]
    raise KeyError(f'resource "{resource_type}" "{name}" not in the root module')


def resources_of_type(resource_type: str) -> dict[str, dict[str, Any]]:
    """Every ``resource "TYPE" ...`` of the root module, by name."""
    found: dict[str, dict[str, Any]] = {}
    for entry in _entries("resource"):
        found.update(entry.get(resource_type, {}))
    return found


def local(name: str) -> Any:
    """The value of ``local.NAME`` as written, in whichever ``.tf`` file declares it."""
    for block in _entries("locals"):
        if name in block:
            return block[name]
    raise KeyError(f"local.{name} not in the root module")


def variables() -> dict[str, dict[str, Any]]:
    """Every variable block of the root module, by name."""
    found: dict[str, dict[str, Any]] = {}
    for entry in _entries("variable"):
        found.update(entry)
    return found


def providers_required() -> dict[str, dict[str, Any]]:
    """``terraform { required_providers { ... } }`` across the root ``.tf`` files."""
    found: dict[str, dict[str, Any]] = {}
    for block in _entries("terraform"):
        for required in block.get("required_providers", []):
            found.update(required)
    return found


def blocks(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(type, name, body)`` of every ``resource``, ``data`` or ``ephemeral`` block (``kind``) in the root ``.tf`` files."""
    return [(block_type, name, body) for entry in _entries(kind) for block_type, named in entry.items()
            for name, body in named.items()]


def expression(value: str) -> str:
    """``"${local.functions}"`` -> ``"local.functions"``: the expression a parsed attribute holds."""
    assert value.startswith("${") and value.endswith("}"), value
    return value[2:-1]


@cache
def function_definitions() -> dict[str, Any]:
    """src/functions.json, the definition main.tf decodes and the local stack reads."""
    return json.loads(FUNCTIONS_FILE.read_text())
