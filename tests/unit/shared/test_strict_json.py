"""strict_json refuses what Python's parser accepts but JSON does not."""

from __future__ import annotations

import pytest

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
