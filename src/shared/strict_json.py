"""JSON text in, JSON values out: no NaN, Infinity or out-of-range numbers (Python's parser accepts them);
what a callback answer may be (the limits of the whole path, in one place); and the one canonical form
answers are compared in.
"""

from __future__ import annotations

import json
import math
from typing import Any

# -- what a callback answer may be -------------------------------------------------------------
#
# An answer accepted with 200 must be one the workflow can checkpoint, decode,
# store and return. Both callback routes refuse anything beyond these limits up
# front (src/api/callbacks.py), naming the limit.
#
# Nesting. The SDK checkpoints the answer as the result of the wait's child
# context with its own serialiser (ExtendedTypeSerDes), which recurses in Python:
# about 4 stack frames a nesting level on python3.11, 3 on python3.13, against
# the interpreter's limit of 1000 frames. Measured in the durable test runner,
# a payload nested 247 levels is the deepest that completes on 3.11 (about 330
# on 3.13); 250 fails the workflow with SerDesError. The limit leaves room for
# a deeper call stack than the runner's where the SDK calls its serialiser
# (another runtime, another SDK version). Every other step of the path nests
# deeper: the C JSON codec (the api's parse, the workflow's decode, the result's
# json.dumps, GET's answer) and the registry, which stores the result as a JSON
# string (DynamoDB's 32-level limit applies to map attributes only).
MAX_PAYLOAD_DEPTH = 100
# Size. The payload as delivered and stored (compact UTF-8 JSON) must fit the
# workflow's registry item (400 KB, with the result's other fields: see
# shared.registry.MAX_RESULT_JSON_BYTES) and the durable service's callback
# result (1 MB). The SDK's checkpoint of the wait (256 KB) switches to replaying
# the wait instead of storing a larger result, and the execution's result
# (6 MB; the SDK writes it with \u escapes, at most 3 times the UTF-8 bytes) fits.
MAX_PAYLOAD_BYTES = 256 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    """``1e400`` parses as infinity, which could never be served back as JSON."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses what is not JSON everywhere.

    Raises:
        ValueError: Not JSON, or a non-finite number (``NaN``, ``Infinity``, ``1e400``).
        RecursionError: Nested too deeply.
    """
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def depth(value: Any) -> int:
    """How many objects and arrays nest in ``value``: ``1`` for ``{"a": 1}``, ``2`` for ``{"a": [1]}``, ``0`` for a scalar.

    Iterative, so it measures any value the parser produced without recursing.
    """
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children)
    return deepest


def canonical(value: Any) -> str:
    """The one text of a JSON value that answers are compared in.

    Keys sorted, no whitespace, characters as themselves (never ``\\u`` escapes),
    and one form per number: a number compares by the value the workflow receives,
    so ``1``, ``1.0``, ``1e0`` and ``10E-1`` are one answer (``1``), as are ``-0``
    and ``0``; integers compare exactly (``9007199254740993`` is not
    ``9007199254740992``), other numbers as 64-bit floats (``0.1`` and
    ``0.10000000000000001`` are one value, the one delivered).

    Raises:
        ValueError: A non-finite number (never in a parsed answer).
        RecursionError: Nested deeper than Python's stack (never within ``MAX_PAYLOAD_DEPTH``).
    """
    return json.dumps(_one_number_form(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _one_number_form(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _one_number_form(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_one_number_form(item) for item in value]
    return value
