"""Item 13's pure part: the queue entry's rounds summarised, each comparison paired within its round."""

from __future__ import annotations

from typing import Any

import pytest

from bench.queue import summarize


def round_(http_ms: list[float], queue_ms: list[float], http_waiting: float, queue_waiting: float,
           burst: int = 40) -> dict[str, Any]:
    def figures(waiting: float) -> dict[str, float]:
        return {"startedSeconds": waiting / 2, "waitingSeconds": waiting, "startsPerSecond": burst / waiting}

    return {"latencyMs": {"http": http_ms, "queue": queue_ms},
            "burst": {"http": figures(http_waiting), "queue": figures(queue_waiting)}}


def test_each_entry_gets_its_rounds_p50_and_p95_summarised_over_rounds() -> None:
    figures = summarize([round_([200, 100, 300], [1200, 1100, 1300], 10.0, 8.0),
                         round_([400, 400, 400], [1500, 1500, 1500], 20.0, 10.0)])
    assert figures["http"]["p50Ms"] == {"median": 300, "min": 200, "max": 400, "n": 2}
    assert figures["queue"]["p50Ms"]["min"] == 1200 and figures["queue"]["p50Ms"]["max"] == 1500
    assert figures["http"]["p95Ms"]["min"] == pytest.approx(290)  # 100, 200, 300: interpolated like numpy
    assert figures["queue"]["startsPerSecond"] == {"median": 4.5, "min": 4.0, "max": 5.0, "n": 2}
    assert figures["http"]["startedSeconds"]["max"] == 10.0


def test_the_queue_is_compared_with_http_of_the_same_round() -> None:
    # Round 1: the queue 1,000 ms slower, 6x; round 2 (a busier machine): 1,100 ms slower, 3.75x.
    figures = summarize([round_([200], [1200], 10.0, 5.0), round_([400], [1500], 8.0, 8.0)])
    assert figures["addedP50Ms"] == {"median": 1050, "min": 1000, "max": 1100, "n": 2}
    assert figures["queueOverHttp"]["p50Ms"]["min"] == 3.75 and figures["queueOverHttp"]["p50Ms"]["max"] == 6.0
    # twice the rate in round 1, the same in round 2: not a ratio of the medians (which would be 1.4x)
    assert figures["queueOverHttp"]["startsPerSecond"] == {"median": 1.5, "min": 1.0, "max": 2.0, "n": 2}


def test_a_round_missing_an_entry_is_an_error_not_a_silent_gap() -> None:
    broken = round_([200], [1200], 10.0, 5.0)
    del broken["latencyMs"]["queue"]
    with pytest.raises(KeyError):
        summarize([broken])
