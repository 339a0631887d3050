"""The callback client's retry rule (local.tools.confirmer.post_until_final), with a scripted session."""

from collections.abc import Iterable
from typing import Any

import pytest
import requests

from local.tools.confirmer import post_until_final


class ScriptedSession:
    """Answers each POST with the next status of a script (or raises for ``"connection-error"``)."""

    def __init__(self, answers: Iterable[int | str], retry_after: str | None = None) -> None:
        self.answers = list(answers)
        self.retry_after = retry_after
        self.posts = 0

    def post(self, url: str, **_: Any) -> requests.Response:
        self.posts += 1
        answer = self.answers.pop(0)
        if answer == "connection-error":
            raise requests.ConnectionError("refused")
        response = requests.Response()
        response.status_code = int(answer)
        if self.retry_after is not None:
            response.headers["Retry-After"] = self.retry_after
        return response


@pytest.mark.parametrize("transient", [429, 500, 502, 503, 504, "connection-error"])
def test_a_transient_answer_is_retried_until_a_final_one(transient: int | str) -> None:
    session = ScriptedSession([transient, transient, 200])
    pauses: list[float] = []

    seen = post_until_final(session, "http://127.0.0.1:1/callbacks/t", {}, deadline=1e12,  # type: ignore[arg-type]
                            sleep=pauses.append, clock=lambda: 0.0)

    assert seen == [transient, transient, 200]
    assert pauses == [0.5, 1.0]


@pytest.mark.parametrize("final", [200, 400, 404, 409, 410, 413])
def test_a_final_answer_is_not_retried(final: int) -> None:
    session = ScriptedSession([final, 200])
    seen = post_until_final(session, "http://127.0.0.1:1/callbacks/t", {}, deadline=1e12,  # type: ignore[arg-type]
                            sleep=lambda _: None, clock=lambda: 0.0)
    assert seen == [final]
    assert session.posts == 1


def test_retry_after_is_honoured_and_the_deadline_stops_the_retries() -> None:
    session = ScriptedSession([503] * 10, retry_after="7")
    now = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    seen = post_until_final(session, "http://127.0.0.1:1/callbacks/t", {}, deadline=20.0,  # type: ignore[arg-type]
                            sleep=sleep, clock=lambda: now[0])

    assert pauses == [7.0, 7.0]
    assert seen == [503, 503, 503]
