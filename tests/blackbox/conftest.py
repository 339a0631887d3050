"""``make test-aws``: the black-box checks against the stage ``API_URL``/``API_KEYS`` or ``terraform output`` name.

At the end of the run it prints where it ran, what it observed for the points AWS
does not document, and which checks it could not run (the ``410`` check needs
``BRIEF_TENANT``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.blackbox.reporting import report_observations
from tests.blackbox.target import ApiTarget, TargetUnavailable, target_from_environment

NEEDS_BRIEF_TENANT = "test_answer_after_the_callback_timed_out_is_410"
_TARGET: list[ApiTarget] = []
_NOT_RUN: list[str] = []


def _target() -> ApiTarget:
    if not _TARGET:
        try:
            _TARGET.append(target_from_environment())
        except TargetUnavailable as exc:
            raise pytest.UsageError(
                f"make test-aws needs a deployed stage: {exc}\n"
                "Set API_URL and API_KEYS (a JSON file of tenant to key), or run it where `terraform output` works."
            ) from exc
    return _TARGET[0]


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect, so a check left out is always reported
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.path.name == "checks.py" and item.path.parent.name == "blackbox" for item in items):
        return
    target = _target()
    if target.admin_credentials is None:
        kept = [item for item in items if not item.name.startswith("test_admin_")]
        if len(kept) != len(items):
            _NOT_RUN.append("test_admin_*: set ADMIN_CREDENTIALS (chain, or an admin credentials file) to check "
                            "the admin API (onboard, suspend, re-key, offboard)")
            config.hook.pytest_deselected(items=[item for item in items if item not in kept])
            items[:] = kept
    if target.brief_tenant is None:
        kept = [item for item in items if item.name != NEEDS_BRIEF_TENANT]
        if len(kept) != len(items):
            _NOT_RUN.append(f"{NEEDS_BRIEF_TENANT}: set BRIEF_TENANT to a tenant (in API_KEYS) whose callbacks "
                            "time out within a minute")
            config.hook.pytest_deselected(items=[item for item in items if item not in kept])
            items[:] = kept


@pytest.fixture(scope="session")
def api() -> Iterator[ApiTarget]:
    yield _target()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _TARGET:
        report_observations(terminalreporter.write_line, _TARGET[0], _NOT_RUN)
