"""strict_json refuses what Python's parser accepts but JSON does not."""

from __future__ import annotations

import pytest

from shared import registry as reg
from shared import strict_json
from workflow.checkpoints import decode_confirmation


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"x": -Infinity}', "1e400", "[-1E999]"])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        strict_json.loads(text)


def test_ordinary_json_passes() -> None:
    assert strict_json.loads('{"a": [1, 2.5, 1e300, "é"]}') == {"a": [1, 2.5, 1e300, "é"]}


def test_callback_result_with_a_non_finite_number_is_kept_as_text() -> None:
    assert decode_confirmation(b'{"x": 1e400}') == '{"x": 1e400}'
    assert decode_confirmation('{"x": 1}') == {"x": 1}


# -- the limits of a callback answer, and the canonical form answers are compared in ----------------


@pytest.mark.parametrize(
    ("value", "levels"),
    [(1, 0), ("x", 0), ({}, 1), ([], 1), ({"a": 1}, 1), ({"a": [1]}, 2), ([[], [[{}]]], 4), ({"a": {"b": {}}, "c": 1}, 3)],
)
def test_depth_counts_the_objects_and_arrays_that_nest(value: object, levels: int) -> None:
    assert strict_json.depth(value) == levels


def test_depth_measures_what_python_could_not_recurse_into() -> None:
    value: object = 1
    for _ in range(50_000):
        value = [value]
    assert strict_json.depth(value) == 50_000


def test_the_payload_size_limit_leaves_room_in_the_registry_item() -> None:
    assert strict_json.MAX_PAYLOAD_BYTES + 8 * 1024 <= reg.MAX_RESULT_JSON_BYTES


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ('{"approved": true, "n": 1}', '{"n": 1, "approved": true}'),  # key order
        ('{"a":[1,2],"b":{"c":"d"}}', ' { "b" : { "c" : "d" } ,\n "a" : [ 1 , 2 ] } '),  # whitespace
        ('{"n": 1}', '{"n": 1.0}'),  # number forms: one value
        ('{"n": 1}', '{"n": 1e0}'),
        ('{"n": 100000}', '{"n": 1E5}'),
        ('{"n": 1.5}', '{"n": 15e-1}'),
        ('{"n": 0}', '{"n": -0.0}'),
        ('{"n": 0.1}', '{"n": 0.10000000000000001}'),  # the same 64-bit float: delivered as 0.1 both times
        ('{"s": "é"}', '{"s": "\\u00e9"}'),  # unicode escapes
        ('{"s": "😀"}', '{"s": "\\ud83d\\ude00"}'),
        ('{"é": 1, "e": 2}', '{"e": 2, "\\u00e9": 1}'),
    ],
)
def test_one_answer_serialized_two_ways_has_one_canonical_form(first: str, second: str) -> None:
    assert strict_json.canonical(strict_json.loads(first)) == strict_json.canonical(strict_json.loads(second))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ('{"n": 1}', '{"n": "1"}'),
        ('{"n": 1}', '{"n": 1.5}'),
        ('{"n": 9007199254740993}', '{"n": 9007199254740992}'),  # integers compare exactly
        ('{"a": [1, 2]}', '{"a": [2, 1]}'),  # array order matters
        ('{"b": true}', '{"b": 1}'),
        ('{"s": "é"}', '{"s": "e\\u0301"}'),  # no Unicode normalisation: other characters
        ('{"a": null}', "{}"),
    ],
)
def test_different_answers_have_different_canonical_forms(first: str, second: str) -> None:
    assert strict_json.canonical(strict_json.loads(first)) != strict_json.canonical(strict_json.loads(second))


def test_the_canonical_form_is_compact_sorted_utf8_text() -> None:
    assert strict_json.canonical({"b": [1.0, 2.5], "a": "é"}) == '{"a":"é","b":[1,2.5]}'
