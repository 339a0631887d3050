"""An external confirmer: reads a tenant's callback queue and answers each waiting workflow.

``python -m local.tools.confirmer --queue-url URL [--endpoint-url URL] [--answer JSON]``

It plays the external system of the pattern, as a separate process: it long-polls
the tenant's SQS queue, and for each ``Workflow Waiting For Callback`` event POSTs
``{"payload": <answer>}`` to the event's ``detail.callbackUrl`` — with no API key
and no tenant header: the single-use token in the URL is the only credential. As
the README asks of a callback client it retries ``429``, ``500``, ``502``, ``503``, ``504``
and connection errors with back-off (honouring ``Retry-After``) until the event's
``expiresAt``; ``200``, ``409`` (answered already) and ``410`` (expired) are final,
as is ``404`` (unknown token). A message is deleted once its answer is final; one
whose retries ran out is left for SQS to deliver again. Events may come twice
(a retried submitter emits again, with the same URL): a repeat gets ``409``, or
``200`` for the same answer, and nothing is delivered twice.

It prints one line per answer, naming the tenant and workflow, never the URL:
the token in it is a credential.

Against the local stack, ``--endpoint-url`` is moto's server (the banner of
``make run`` prints it with each tenant's queue URL) and requests are signed with
dummy keys; against AWS, leave it out and the usual credentials are used.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, TextIO

import boto3
import requests
from botocore.config import Config

from shared.callback_tokens import CALLBACKS_PATH
from shared.contract import callback_waiting_event

# 500 is API Gateway's answer when Lambda refuses to invoke the api function (not throttling):
# transient, and a callback is safe to repeat (a repeat of the winning answer is 200).
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
FINAL_STATUSES_MEANING = {200: "answered", 409: "already answered", 410: "expired", 404: "unknown token"}
MAX_BACKOFF_SECONDS = 8.0
LONG_POLL_SECONDS = 20
_QUEUE_REGION = re.compile(r"^https://sqs[.-]([a-z0-9-]+)\.amazonaws\.com")


@dataclass(frozen=True)
class Outcome:
    """What became of one waiting event."""

    tenant_id: str
    workflow_id: str
    status: int | str  # the final HTTP status, or "gave-up" / "ignored"
    attempts: int
    final: bool  # delete the message

    @property
    def answered(self) -> bool:
        return self.status == 200


def region_of(queue_url: str, default: str) -> str:
    """The region in an AWS queue URL (``https://sqs.us-east-2.amazonaws.com/...``), else ``default``."""
    found = _QUEUE_REGION.match(queue_url)
    return found.group(1) if found else default


def sqs_client(queue_url: str, endpoint_url: str | None, region: str | None) -> Any:
    kwargs: dict[str, Any] = {
        "region_name": region or region_of(queue_url, "us-east-1"),
        "config": Config(retries={"mode": "standard", "total_max_attempts": 5},
                         read_timeout=LONG_POLL_SECONDS + 10, connect_timeout=5),
    }
    if endpoint_url:
        # A local endpoint (moto): sign with dummy keys, never with the user's.
        kwargs.update(endpoint_url=endpoint_url, aws_access_key_id="local", aws_secret_access_key="local")
    return boto3.client("sqs", **kwargs)


def post_until_final(
    session: requests.Session,
    url: str,
    body: Any,
    *,
    deadline: float,
    headers: dict[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> list[int | str]:
    """POST ``body`` as the README tells a callback client to, until a final answer or ``deadline``.

    Retries 429/500/502/503/504 and connection errors (``"connection-error"``) with
    doubling back-off, honouring ``Retry-After``. Returns every answer seen.
    """
    seen: list[int | str] = []
    delay = 0.5
    while True:
        retry_after: float | None = None
        try:
            response = session.post(url, json=body, headers=headers, timeout=30)
            seen.append(response.status_code)
            if response.status_code not in RETRYABLE_STATUSES:
                return seen
            try:
                retry_after = float(response.headers.get("Retry-After") or 0) or None
            except ValueError:
                retry_after = None
        except requests.RequestException:
            seen.append("connection-error")
        pause = min(retry_after if retry_after is not None else delay, 30.0)
        if clock() + pause > deadline:
            return seen
        sleep(pause)
        delay = min(delay * 2, MAX_BACKOFF_SECONDS)


def post_answer(
    session: requests.Session,
    url: str,
    body: dict[str, Any],
    *,
    deadline: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> tuple[int | str, int]:
    """POST ``body`` until a final answer or ``deadline`` (epoch seconds); return (last status, attempts)."""
    seen = post_until_final(session, url, body, deadline=deadline, sleep=sleep, clock=clock)
    return seen[-1], len(seen)


def handle_message(session: requests.Session, body_text: str, answer: Any, *, max_retry_seconds: float,
                   api_url: str | None = None) -> Outcome:
    """Answer the waiting event in one SQS message body (an EventBridge event).

    With ``api_url``, a callback URL anywhere else is not answered: whoever can put
    events on the bus could otherwise point the confirmer at a host of its choice.
    """
    shape = callback_waiting_event()
    try:
        event = json.loads(body_text)
        detail = event["detail"]
        is_waiting_event = event.get("source") == shape["source"] and event.get("detail-type") == shape["detailType"]
        tenant_id, workflow_id, url = str(detail["tenantId"]), str(detail["workflowId"]), str(detail["callbackUrl"])
        expires_at = float(detail.get("expiresAt") or 0)
    except (ValueError, KeyError, TypeError):
        return Outcome("?", "?", "ignored", 0, final=True)
    if not is_waiting_event:
        return Outcome(tenant_id, workflow_id, "ignored", 0, final=True)
    if api_url is not None and not url.startswith(api_url.rstrip("/") + CALLBACKS_PATH):
        return Outcome(tenant_id, workflow_id, "ignored (not this API)", 0, final=True)
    now = time.time()
    deadline = min(expires_at, now + max_retry_seconds) if expires_at else now + max_retry_seconds
    status, attempts = post_answer(session, url, {"payload": answer}, deadline=deadline)
    final = isinstance(status, int) and status not in RETRYABLE_STATUSES
    return Outcome(tenant_id, workflow_id, status if final else "gave-up", attempts, final)


def describe(outcome: Outcome, answer: Any) -> str:
    """The line printed for one answer (no URL: the token is a credential)."""
    meaning = FINAL_STATUSES_MEANING.get(outcome.status, "refused") if isinstance(outcome.status, int) else outcome.status
    tries = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else ""
    payload = f" {json.dumps(answer, separators=(',', ':'))}" if outcome.answered else ""
    return (f"confirmer: {outcome.tenant_id} workflow {outcome.workflow_id} -> "
            f"{outcome.status} {meaning}{payload}{tries}")


def run(
    queue_url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    answer: Any = None,
    count: int | None = None,
    timeout: float | None = None,
    max_retry_seconds: float = 120.0,
    api_url: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Answer waiting events from ``queue_url`` until ``count`` answers (200) or ``timeout`` seconds.

    Returns:
        0 when ``count`` answers were given (or, without ``count``, when ``timeout``
        passed); 1 when ``timeout`` passed before ``count`` answers.
    """
    answer = {"approved": True} if answer is None else answer
    sqs = sqs_client(queue_url, endpoint_url, region)
    session = requests.Session()
    answered = 0
    stop_at = time.monotonic() + timeout if timeout else None
    while count is None or answered < count:
        remaining = None if stop_at is None else stop_at - time.monotonic()
        if remaining is not None and remaining <= 0:
            return 0 if count is None else 1
        wait = LONG_POLL_SECONDS if remaining is None else max(0, min(LONG_POLL_SECONDS, int(remaining)))
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait).get("Messages", [])
        for message in messages:
            outcome = handle_message(session, message["Body"], answer, max_retry_seconds=max_retry_seconds,
                                     api_url=api_url)
            if outcome.final:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            print(describe(outcome, answer), file=out, flush=True)
            answered += outcome.answered
            if count is not None and answered >= count:
                break  # the rest stay in the queue (visible again after the visibility timeout)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.tools.confirmer",
        description="The external system: long-poll a tenant's callback queue and answer each waiting workflow "
                    "at its callbackUrl (no API key: the token is the credential).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--queue-url", required=True, help="the tenant's callback queue (make run's banner prints it)")
    parser.add_argument("--endpoint-url", default=None,
                        help="SQS endpoint: the local stack's moto server; leave out for AWS")
    parser.add_argument("--region", default=None, help="SQS region (default: from the queue URL, else us-east-1)")
    parser.add_argument("--answer", default='{"approved": true}', metavar="JSON",
                        help="the payload each waiting workflow is confirmed with")
    parser.add_argument("--count", type=int, default=None, metavar="N",
                        help="exit after N accepted answers (default: run until --timeout or Ctrl-C)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="exit after S seconds (exit code 1 if --count answers were not given by then)")
    parser.add_argument("--api-url", default=None,
                        help="answer only callback URLs on this API (e.g. http://127.0.0.1:3000 or the stage URL); "
                             "events pointing elsewhere are dropped")
    parser.add_argument("--max-retry-seconds", type=float, default=120.0,
                        help="give up retrying one answer after this long (or at the event's expiresAt); "
                             "the message is then left for SQS to deliver again")
    args = parser.parse_args(argv)
    try:
        answer = json.loads(args.answer)
    except ValueError as error:
        parser.error(f"--answer is not JSON: {error}")
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    try:
        return run(args.queue_url, endpoint_url=args.endpoint_url, region=args.region, answer=answer,
                   count=args.count, timeout=args.timeout, max_retry_seconds=args.max_retry_seconds,
                   api_url=args.api_url)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
