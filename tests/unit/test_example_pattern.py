"""example-pattern.json passes the serverless-patterns schema and its CI rule."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

ROOT = Path(__file__).resolve().parents[2]
# A copy of serverless-patterns' proving-ground/scripts/pattern-schema.json, so a lone clone can run this test.
SCHEMA_FILE = Path(__file__).resolve().parent / "conformance" / "serverless-pattern-schema.json"
# The workspace's reference copy, when the project is checked out beside it.
REFERENCE_SCHEMA_FILE = ROOT.parent / "shared" / "conformance" / "serverless-pattern-schema.json"
PATTERN = json.loads((ROOT / "example-pattern.json").read_text())


def test_vendored_schema_matches_the_reference_copy_when_present() -> None:
    if REFERENCE_SCHEMA_FILE.exists():
        assert json.loads(SCHEMA_FILE.read_text()) == json.loads(REFERENCE_SCHEMA_FILE.read_text())


def test_pattern_is_valid_against_the_serverless_patterns_schema() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(PATTERN), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_template_file_does_not_repeat_the_project_folder() -> None:
    template = PATTERN["gitHub"]["template"]
    assert template["projectFolder"] not in template["templateFile"]
    assert (ROOT / template["templateFile"]).is_file()
