"""The retried-callback benchmark: its fault rules and its report section (no stack needed)."""

from __future__ import annotations

from bench import callback_faults, report

IDS = {"callback-id": "cb-1", "callback-key": "callback#abc"}


def test_no_fault_arms_no_rule() -> None:
    assert callback_faults.fault_rule("none", "durable service call", IDS) is None


def test_every_attempt_fails_as_many_times_as_the_client_tries() -> None:
    durable = callback_faults.fault_rule("fails on every attempt", "durable service call", IDS)
    lease = callback_faults.fault_rule("fails on every attempt", "lease write", IDS)
    assert durable is not None and durable["count"] == 2 and durable["body_contains"] == ["cb-1"]
    assert lease is not None and lease["count"] == 3 and lease["body_contains"] == ["callback#abc", "claimOwner"]


def test_late_answer_outlasts_the_callers_read_timeout() -> None:
    rule = callback_faults.fault_rule("lands, answers late", "lease write", IDS)
    assert rule is not None and rule["after_landing"] and rule["delay_seconds"] > 5


def test_section_lists_every_cell() -> None:
    cell = {"median": 1.0, "min": 0.5, "max": 2.0}
    rows = [{"call": call, "fault": fault, "answeredSeconds": cell, "completedSeconds": cell, "attempts": cell}
            for call in callback_faults.CALLS for fault in callback_faults.FAULTS]
    text = report.part("faults", {"faults": {"repeats": 3, "rows": rows}})
    assert text is not None and text.startswith("## 8. A retried callback")
    assert text.count("1.00 (0.50–2.00)") == 2 * len(rows)
    for fault in callback_faults.FAULTS:
        assert f"| {fault} |" in text
