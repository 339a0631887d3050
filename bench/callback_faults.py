"""How long a retried callback takes to complete its workflow after each kind of fault.

On a local stack started with ``--fault-injection``, for each fault kind aimed at
the durable service call of ``POST /callback`` (the call whose failure used to lose
confirmations) and at the lease write, a client retries as the README says; the
figure is the wall time from its first POST to its final 200, and to the workflow
reading ``COMPLETED``.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import requests

from bench.stats import summary
from tests.harness import StackProcess, post_with_retries

FAULTS: dict[str, dict[str, Any]] = {
    "none": {},
    "fails once": {"count": 1, "fail": True},
    "fails on every attempt": {"count": None, "fail": True},
    "lands, answers late": {"count": 1, "fail": False, "after_landing": True},
    "killed right after": {"count": 1, "fail": False, "kill_caller": True},
}
# Where each fault is aimed: (target, operation, which id the call carries, attempts per request, late seconds).
CALLS = {
    "durable service call": ("durable", "SendDurableExecutionCallbackSuccess", "callback-id", 2, 5.0),
    "lease write": ("dynamodb", "UpdateItem", "callback-key", 3, 6.0),
}


def fault_rule(fault: str, call: str, ids: dict[str, str]) -> dict[str, Any] | None:
    """The fault-plan rule for one fault kind aimed at one call of one workflow (None: no fault)."""
    spec = FAULTS[fault]
    if not spec:
        return None
    target, operation, marker, attempts, late = CALLS[call]
    contains = [ids[marker]] + (["claimOwner"] if call == "lease write" else [])
    rule = {"target": target, "operation": operation, "body_contains": contains, **spec}
    if rule["count"] is None:
        rule["count"] = attempts
    if spec.get("after_landing"):
        rule["delay_seconds"] = late
    return rule


def measure_one(stack: StackProcess, faults_url: str, fault: str, call: str) -> dict[str, float]:
    """One workflow: wait for its callback, arm the fault, answer with retries; time it."""
    workflow_id = stack.start_workflow("tenant-a")
    callback_id = stack.wait_for_status("tenant-a", workflow_id, "WAITING_FOR_CALLBACK")["callbackId"]
    ids = {"callback-id": callback_id, "callback-key": "callback#" + hashlib.sha256(callback_id.encode()).hexdigest()}
    rule = fault_rule(fault, call, ids)
    if rule is not None:
        requests.post(f"{faults_url}/_faults", json=rule, timeout=10).raise_for_status()
    started = time.monotonic()
    seen = post_with_retries(requests.Session(), f"{stack.api_url}/callback",
                             {"callbackId": callback_id, "payload": {"bench": fault}}, stack.headers("tenant-a"))
    answered = time.monotonic() - started
    if seen[-1] != 200:
        raise RuntimeError(f"{call} / {fault}: the callback ended with {seen}")
    stack.wait_for_status("tenant-a", workflow_id, "COMPLETED", timeout=120)
    return {"answeredSeconds": answered, "completedSeconds": time.monotonic() - started, "attempts": len(seen)}


def run(workdir: Path, repeats: int, progress: Any = print) -> dict[str, Any]:
    """Every (call, fault) ``repeats`` times on one fault-injection stack; medians, min and max."""
    workdir.mkdir(parents=True, exist_ok=True)
    stack = StackProcess(workdir / "state", workdir / "stack.log", extra_args=["--fault-injection"])
    stack.start()
    try:
        line = next(line for line in stack.log_path.read_text().splitlines() if "Fault injection" in line)
        faults_url = line.split()[-1].removesuffix("/_faults")
        rows = []
        for call in CALLS:
            for fault in FAULTS:
                samples = [measure_one(stack, faults_url, fault, call) for _ in range(repeats)]
                row = {"call": call, "fault": fault, **{
                    key: summary([s[key] for s in samples]) for key in ("answeredSeconds", "completedSeconds", "attempts")}}
                progress(f"  retried callback, {call} / {fault}: answered in {row['answeredSeconds']['median']:.2f} s, "
                         f"workflow COMPLETED in {row['completedSeconds']['median']:.2f} s (median of {repeats})")
                rows.append(row)
        return {"repeats": repeats, "rows": rows}
    finally:
        stack.stop()

