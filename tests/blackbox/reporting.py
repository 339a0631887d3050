"""What a black-box run prints at its end: the target, the observations, the checks not run."""

from __future__ import annotations

from collections.abc import Callable

from tests.blackbox.target import ApiTarget


def report_observations(write: Callable[[str], None], target: ApiTarget, not_run: list[str]) -> None:
    write("")
    write(f"black-box checks against {target.base_url} (tenants: {', '.join(sorted(target.keys))})")
    write("observed where AWS documents no answer:")
    for point, seen in sorted(set(target.observations)):
        write(f"  {point}: {seen}")
    if not target.observations:
        write("  (nothing: no check that records one ran)")
    for line in not_run:
        write(f"not run: {line}")
