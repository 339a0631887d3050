"""The conformance runner's verdicts: which outcomes fail the run (make test-conformance)."""

from __future__ import annotations

import pytest

from tests.conformance.run import KNOWN_DIFFERENCES, SUITES, Outcome, Requirement, exit_code, outcome


@pytest.mark.parametrize(("passed", "known", "expected"), [
    (True, False, Outcome.PASSED),
    (False, False, Outcome.FAILED),
    (False, True, Outcome.KNOWN),
    (True, True, Outcome.STALE),  # a listed difference that passes: the list must lose it
])
def test_outcome_of_a_requirement(passed: bool, known: bool, expected: Outcome) -> None:
    assert outcome(passed, known) is expected


@pytest.mark.parametrize(("outcomes", "code"), [
    ([Outcome.PASSED, Outcome.PASSED], 0),
    ([Outcome.PASSED, Outcome.KNOWN], 0),
    ([Outcome.PASSED, Outcome.FAILED], 1),
    ([Outcome.KNOWN, Outcome.STALE], 1),
    ([], 0),
])
def test_only_unlisted_failures_and_stale_listings_fail_the_run(outcomes: list[Outcome], code: int) -> None:
    assert exit_code(outcomes) == code


def test_a_requirement_runs_its_own_function_and_handler() -> None:
    requirement = Requirement("7-12", "wait_for_callback", path=None)  # type: ignore[arg-type]
    assert requirement.function_name == "conformance-7-12"
    assert requirement.handler == "conformance_wait_for_callback.handler_7_12"


def test_every_known_difference_names_a_requirement_of_the_run_suites_and_a_reason() -> None:
    prefixes = {"step": "1", "wait": "2", "callback": "4", "wait_for_callback": "7"}
    assert set(prefixes) == set(SUITES)
    for requirement_id, reason in KNOWN_DIFFERENCES.items():
        assert requirement_id.split("-")[0] in prefixes.values()
        assert len(reason) > 40
