"""The suite's order: its longest files first, so that none of them starts last on a worker.

`make test` splits the suite over two pytest-xdist workers a file at a time (`--dist loadfile`),
handing files out in collection order as workers free up. A long file handed out last keeps one
worker busy while the other idles, so the files that take longest (a build, a Terraform apply, a
virtualenv, stacks restarted on purpose) are collected first and the many short unit files fill
in behind them. The list is measured (`pytest --durations`), not exhaustive; a file not in it
keeps its place after these. Order only: no test's outcome depends on it.
"""

from __future__ import annotations

import pytest

LONGEST_FIRST = (
    "tests/packaging/test_build.py",
    "tests/infra/test_apply_moto.py",
    "tests/infra/test_checkov.py",
    "tests/packaging/test_run_set.py",
    "tests/local/test_tenant_lifecycle.py",
    "tests/infra/test_plan_production.py",
    "tests/local/test_stack_lifecycle.py",
    "tests/local/test_demo.py",
    "tests/infra/test_variables.py",
    "tests/local/test_lambda_service.py",
    "tests/local/test_router_e2e.py",
    "tests/local/test_stack_output.py",
    "tests/infra/test_plan.py",
)


def _rank(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the longest files to the front, keeping every file's own order (a stable sort)."""
    items.sort(key=_rank)
