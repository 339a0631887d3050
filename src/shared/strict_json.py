"""JSON text in, JSON values out: no NaN, Infinity or out-of-range numbers (Python's parser accepts them)."""

from __future__ import annotations

import json
import math
from typing import Any


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
