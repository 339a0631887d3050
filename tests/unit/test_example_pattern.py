"""example-pattern.json passes the serverless-patterns schema and its CI rule, and tells the pattern as it is.

The card's text names routes and the waiting event: each must be one the API contract
defines, and the flow it tells is the token URL flow (the external system answers at
``POST /callbacks/{callbackToken}``, told by the event). Its deploy steps are the README's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema

ROOT = Path(__file__).resolve().parents[2]
# A copy of serverless-patterns' scripts/pattern-schema.json, so a lone clone can run this test.
SCHEMA_FILE = Path(__file__).resolve().parent / "conformance" / "serverless-pattern-schema.json"
# The workspace's reference copy, when the project is checked out beside it.
REFERENCE_SCHEMA_FILE = ROOT.parent / "shared" / "conformance" / "serverless-pattern-schema.json"
PATTERN = json.loads((ROOT / "example-pattern.json").read_text())
CONTRACT = json.loads((ROOT / "src" / "shared" / "api_contract.json").read_text())
CARD_TEXT = " ".join([PATTERN["description"], *PATTERN["introBox"]["text"]])


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


def test_every_route_the_card_names_is_one_the_contract_defines() -> None:
    named = set(re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/[\w/{}-]*)", CARD_TEXT))
    defined = {(route["method"], route["path"]) for route in CONTRACT["routes"].values()}
    assert named, "the card names no route"
    assert named <= defined, f"routes the API contract does not define: {sorted(named - defined)}"


def test_the_card_tells_the_token_url_flow() -> None:
    token_route = CONTRACT["routes"]["sendCallbackWithToken"]
    answer = next(text for text in PATTERN["introBox"]["text"] if "SendDurableExecutionCallbackSuccess" in text)
    assert f"{token_route['method']} {token_route['path']}" in CARD_TEXT
    assert CONTRACT["callbackWaitingEvent"]["detailType"] in CARD_TEXT
    # The external system answers at the URL it was sent; the key-authenticated route is the tenant's own alternative.
    assert answer.startswith("The external system answers at that URL")


def test_the_cards_deploy_steps_are_the_readmes() -> None:
    blocks = re.findall(r"^```bash\n(.*?)^```$", (ROOT / "README.md").read_text(), re.M | re.S)
    (deploy,) = [block for block in blocks if block.startswith("make build")]
    commands = [line.split("#", 1)[0].strip() for line in deploy.splitlines()]
    assert PATTERN["deploy"]["text"] == commands
