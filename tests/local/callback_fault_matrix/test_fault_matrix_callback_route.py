"""``POST /callback`` under every single fault on its path (the machinery: machinery.py beside it).

The token route's matrix and the concurrent answers run in
test_fault_matrix_token_route.py, on a stack of their own, so the two xdist
workers share the matrix.
"""

from __future__ import annotations

import pytest

from tests.local.callback_fault_matrix.machinery import (
    CALLBACK_ROUTE,
    TOKEN_ROUTE,
    MatrixTests,
    documented_statuses,
)

pytestmark = pytest.mark.slow
ROUTE = CALLBACK_ROUTE


class TestCallbackRouteFaultMatrix(MatrixTests):
    """Census, cells and doc table of ``POST /callback``."""


def test_readme_table_parser_reads_both_callback_routes_and_fails_loudly_on_a_changed_shape() -> None:
    callback, token = documented_statuses(CALLBACK_ROUTE), documented_statuses(TOKEN_ROUTE)
    assert {200, 400, 401, 403, 404, 409, 410, 413, 429, 502, 503} <= callback
    assert {200, 404, 409, 410, 429, 502, 503} <= token
    header = "| route | success | errors |\n|---|---|---|\n"
    with pytest.raises(AssertionError, match="changed shape"):
        documented_statuses(CALLBACK_ROUTE, header + "| `POST /callback` | `200` |\n")
    with pytest.raises(AssertionError, match="no `POST /callback` row"):
        documented_statuses(CALLBACK_ROUTE, header + "| `GET /workflow/{id}` | `200 {}` | `404` x |\n")
    with pytest.raises(AssertionError, match="expected one API table"):
        documented_statuses(CALLBACK_ROUTE, "no table here")
    with pytest.raises(AssertionError, match="names no status"):
        documented_statuses(TOKEN_ROUTE, header + "| `POST /callbacks/{callbackToken}` | ok | `404` x |\n")
