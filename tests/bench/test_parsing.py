"""Parsers of what the benchmark reads: /proc, the emulator's stored executions."""

from __future__ import annotations

import pytest

from bench.cost import data_written_bytes, invocation_durations_ms
from bench.stats import parse_cpu_seconds, parse_rss_mb

STATUS = "Name:\tpython\nVmPeak:\t  9000 kB\nVmRSS:\t   51200 kB\nThreads:\t3\n"


def test_vm_rss_is_read_in_mib() -> None:
    assert parse_rss_mb(STATUS) == 50.0
    with pytest.raises(StopIteration):
        parse_rss_mb("Name:\tpython\n")


def test_cpu_seconds_add_user_and_system_ticks_after_the_command_name() -> None:
    # the command name may contain spaces and parentheses; fields 14 and 15 are utime and stime
    stat = "123 (python (x)) S 1 2 3 4 5 6 7 8 9 10 200 100 0 0"
    assert parse_cpu_seconds(stat) == pytest.approx(300 / __import__("os").sysconf("SC_CLK_TCK"))


EXECUTION = {
    "InvocationCompletions": [{"StartTimestamp": 1000, "EndTimestamp": 1180}, {"StartTimestamp": 5000,
                                                                             "EndTimestamp": 5040}],
    "Operations": [
        {"Type": "EXECUTION", "ExecutionDetails": {"InputPayload": "{\"a\": 1}"}},
        {"Type": "STEP", "StepDetails": {"Attempt": 1, "Result": "\"é\""}},
        {"Type": "CALLBACK", "CallbackDetails": {"CallbackId": "not counted", "Result": "ok"}},
        {"Type": "STEP", "StepDetails": {"Attempt": 1, "Result": None}},
    ],
    "Result": "done",
}


def test_stored_execution_gives_invocation_times_operations_and_bytes() -> None:
    assert invocation_durations_ms(EXECUTION) == [180.0, 40.0]
    # 8 (input) + 4 ("é" is two bytes, plus quotes) + 2 (callback result) + 4 (execution result)
    assert data_written_bytes(EXECUTION) == 18


def test_a_retry_after_answer_is_waited_out_counted_and_given_up_after_the_last_attempt(tmp_path: Path) -> None:
    from bench.e2e import RETRIES, RetryAfter, Target

    target = Target(tmp_path)
    answers = iter([RetryAfter(0, "503 once"), "202"])

    def send(_: int) -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert target.retry(send) == "202"
    assert target.take()["retries"] == 1

    def always_busy(_: int) -> str:
        raise RetryAfter(0, "POST /workflow: 503 busy")

    with pytest.raises(RuntimeError, match="503 busy"):
        target.retry(always_busy)
    assert target.take()["retries"] == RETRIES - 1
