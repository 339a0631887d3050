"""The fault matrix's fixtures and parametrize hook (tests/local/callback_fault_matrix/machinery.py), for this folder's tests only."""

from tests.local.callback_fault_matrix.machinery import (  # noqa: F401 - pytest finds them by name
    census_found,
    fault_stack,
    matrix,
    pytest_generate_tests,
    registration,
    route,
)
