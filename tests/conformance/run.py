"""AWS's durable execution conformance requirements, run through the local Lambda endpoint.

``make test-conformance`` (``python -m tests.conformance.run``). The requirements and
the validator are the ``aws-durable-execution-conformance-tests`` package's own
(``tests/conformance/requirements.txt``, pinned): for each requirement of the
selected suites, the package's ``validate_description`` invokes its function,
polls the execution's history, answers its callbacks, and matches the history
and result against the requirement's. Only the endpoints are local:

* the functions are this directory's ``handlers/`` (one per requirement, written
  from its ``handler:`` and ``invocations:`` text), hosted by the local Lambda
  service (``local.services.lambda_service``) in front of the durable emulator
  (``local.backends.durable``) and its adapter, as ``make run`` hosts the pattern's workflow:
  durable, ``PER_TENANT``, every Invoke carrying a tenant id;
* the package resolves a requirement's function through CloudFormation and reads
  its logs through CloudWatch Logs: :class:`LocalStackResources` answers the first
  (the function of requirement ``1-1`` is ``conformance-1-1``), ``local.services.logs`` the second.

It prints one line per requirement, the known differences (``KNOWN_DIFFERENCES``:
requirements the emulator fails for a reason the adapter should not reach
into; see docs/emulator-differences.md) on a line of their own, then
``N passed, M failed``. It exits 0 when every failure is a known difference, 1
otherwise (a known difference that passes is a failure too: the list is stale).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

HERE = Path(__file__).resolve().parent
HANDLERS_DIR = HERE / "handlers"
PACKAGE = "aws-durable-execution-conformance-tests"
SUITES = ("step", "wait", "callback", "wait_for_callback")
TENANT_ID = "conformance-tenant"
REGION = "us-east-1"
STACK_NAME = "local"
FUNCTION_PREFIX = "conformance-"
# Requirements the local stack fails, each with the reason it is left failing (the
# emulator would have to change, not the adapter); reported, never counted as passes.
CRASH_REASON = (
    "a crashed invocation (the process exits: Runtime.ExitError) records no InvocationCompleted, so every later "
    "event id is one lower than AWS's; the emulator's invocation-failure path records none and its "
    "InvocationCompletedDetails has no Error field: fixing it changes the executor, its model and its store format, "
    "further than the adapter reaches"
)
KNOWN_DIFFERENCES: dict[str, str] = {"1-17": CRASH_REASON, "1-18": CRASH_REASON}


class Outcome(Enum):
    """What one requirement's run means for the suite."""

    PASSED = "PASS"
    FAILED = "FAIL"
    KNOWN = "KNOWN"  # failed, and listed in KNOWN_DIFFERENCES
    STALE = "STALE"  # passed, but listed in KNOWN_DIFFERENCES: the list must lose it


def outcome(passed: bool, known: bool) -> Outcome:
    """A requirement's outcome from whether it passed and whether it is a listed known difference."""
    if passed:
        return Outcome.STALE if known else Outcome.PASSED
    return Outcome.KNOWN if known else Outcome.FAILED


def exit_code(outcomes: list[Outcome]) -> int:
    """0 when every requirement passed or is a known difference that still fails; 1 otherwise."""
    return 0 if all(o in (Outcome.PASSED, Outcome.KNOWN) for o in outcomes) else 1


@dataclass(frozen=True)
class Requirement:
    """One requirement file of the package."""

    id: str
    suite: str
    path: Path

    @property
    def function_name(self) -> str:
        return f"{FUNCTION_PREFIX}{self.id}"

    @property
    def handler(self) -> str:
        return f"conformance_{self.suite}.handler_{self.id.replace('-', '_')}"


def requirements(suites: tuple[str, ...], only: set[str] | None = None) -> list[Requirement]:
    """The package's requirements of ``suites`` (or only the ids in ``only``), in id order."""
    from aws_durable_execution_conformance_tests.config import TESTS_DIR

    found = [Requirement(path.stem, suite, path)
             for suite in suites for path in (Path(TESTS_DIR) / suite).glob("*.yaml")
             if only is None or path.stem in only]
    return sorted(found, key=lambda r: tuple(int(part) for part in r.id.split("-")))


class LocalStackResources:
    """What the package asks CloudFormation: the physical name of a requirement's function.

    Its requirement ids are the functions' logical ids; locally each function is
    ``conformance-<id>``.
    """

    def __init__(self, requirement_ids: list[str]) -> None:
        self._ids = list(requirement_ids)

    def describe_stack_resource(self, *, StackName: str, LogicalResourceId: str) -> dict[str, Any]:  # noqa: N803
        return {"StackResourceDetail": {"PhysicalResourceId": f"{FUNCTION_PREFIX}{LogicalResourceId}"}}

    def get_paginator(self, operation: str) -> Any:
        if operation != "list_stack_resources":
            raise NotImplementedError(operation)
        return self

    def paginate(self, *, StackName: str) -> Iterator[dict[str, Any]]:  # noqa: N803
        yield {"StackResourceSummaries": [
            {"LogicalResourceId": requirement_id, "PhysicalResourceId": f"{FUNCTION_PREFIX}{requirement_id}",
             "ResourceType": "AWS::Lambda::Function"} for requirement_id in self._ids]}


@contextlib.contextmanager
def local_lambda(reqs: list[Requirement], state_dir: Path) -> Iterator[tuple[str, str]]:
    """The durable emulator, worker pools and local Lambda service hosting ``reqs``' functions.

    Yields:
        The Lambda endpoint's URL and the local logs endpoint's URL.
    """
    from local.backends.durable import DurableBackendClient, DurableEmulator
    from local.runtime.functions import FunctionConfig
    from local.services.http_base import free_port
    from local.services.lambda_service import LocalLambdaService
    from local.services.logs import LocalLogs
    from local.runtime.workers import WorkerPools

    lambda_port = free_port()
    logs = LocalLogs(state_dir / "logs")
    logs.start()
    functions = [
        FunctionConfig(name=r.function_name, handler=r.handler, per_tenant=True, durable=True,
                       timeout_seconds=60, code_dir=HANDLERS_DIR,
                       environment=MappingProxyType({"AWS_ENDPOINT_URL_LAMBDA": f"http://127.0.0.1:{lambda_port}",
                                                     "POWERTOOLS_LOG_LEVEL": "INFO", **logs.function_environment()}))
        for r in reqs
    ]
    emulator = DurableEmulator(host="127.0.0.1", port=free_port(), lambda_endpoint=f"http://127.0.0.1:{lambda_port}",
                               state_dir=state_dir, region=REGION, invocation_timeout_seconds=60)
    workers = WorkerPools(region=REGION, tmp_root=state_dir / "workers", idle_timeout=20, max_workers_per_pool=2)
    service = LocalLambdaService(functions=functions, runner=workers, durable=DurableBackendClient(emulator.url),
                                 region=REGION, port=lambda_port)
    service.start()
    emulator.start()
    try:
        yield service.url, logs.url
    finally:
        for stop in (emulator.stop, service.stop, workers.shutdown, logs.stop):
            with contextlib.suppress(Exception):
                stop()


def clients(lambda_url: str, logs_url: str, requirement_ids: list[str]) -> Any:
    """The package's AWS clients, on the local endpoints; every Invoke carries ``TENANT_ID``."""
    import boto3
    from aws_durable_execution_conformance_tests.clients import AWS_CLIENT_CONFIG, AwsClients

    session = boto3.Session(region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local")
    lambda_client = session.client("lambda", endpoint_url=lambda_url, config=AWS_CLIENT_CONFIG)
    # The functions are PER_TENANT: an Invoke without a tenant id is refused, as on AWS.
    lambda_client.meta.events.register("provide-client-params.lambda.Invoke", _with_tenant_id)
    logs_client = session.client("logs", endpoint_url=logs_url, config=AWS_CLIENT_CONFIG)
    return AwsClients(MappingProxyType({"lambda": lambda_client, "cloudformation": LocalStackResources(requirement_ids),
                                        "logs": logs_client}))


def _with_tenant_id(params: dict[str, Any], **_: Any) -> None:
    """botocore hook: the Invoke's parameters get ``TENANT_ID`` (it returns None: params are changed in place)."""
    params.setdefault("TenantId", TENANT_ID)


class _ThreadOutput(io.TextIOBase):
    """stdout for the validator's worker threads: each thread's prints go to its own buffer."""

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback
        self._local = threading.local()

    def capture(self) -> io.StringIO:
        self._local.buffer = io.StringIO()
        return self._local.buffer

    def write(self, text: str) -> int:
        buffer = getattr(self._local, "buffer", None)
        return (buffer or self._fallback).write(text)

    def flush(self) -> None:
        self._fallback.flush()


@dataclass(frozen=True)
class Result:
    requirement: Requirement
    passed: bool
    errors: tuple[str, ...]
    seconds: float
    transcript: str


def run_one(requirement: Requirement, aws_clients: Any, output_dir: Path, out: _ThreadOutput) -> Result:
    """Validate one requirement with the package's own validator."""
    from aws_durable_execution_conformance_tests.sam import Invoker
    from aws_durable_execution_conformance_tests.validate import validate_description

    buffer = out.capture()
    invoker = Invoker(stack_name=STACK_NAME, region=REGION, lambda_client=aws_clients["lambda"],
                      cfn_client=aws_clients["cloudformation"])
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = validate_description(function_name=requirement.id, description_id=requirement.id,
                                          test_file=str(requirement.path), invoker=invoker, tmp_dir=tmp,
                                          region=REGION, aws_clients=aws_clients, output_dir=str(output_dir))
        passed, errors = result.passed, tuple(result.errors)
    except Exception as error:  # noqa: BLE001 - one requirement's crash is its failure, not the run's
        passed, errors = False, (f"{type(error).__name__}: {error}",)
    return Result(requirement, passed, errors, time.monotonic() - started, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", nargs="+", default=list(SUITES), choices=SUITES, help="suites to run")
    parser.add_argument("--only", nargs="+", metavar="ID", help="only these requirement ids (e.g. 1-1 4-3)")
    # Six at once keeps each handler invocation quick on 2 cores: requirements 4-9 and 4-10 need a
    # callback's replay to end before a 5-second wait does, as it does on AWS.
    parser.add_argument("--workers", type=int, default=6, help="requirements validated at once")
    parser.add_argument("--output", type=Path, default=Path(".state/conformance"),
                        help="where each requirement's history and the validator's transcript are written")
    args = parser.parse_args(argv)

    from importlib.metadata import version

    # The emulator invokes the handlers through boto3 in this process: fake credentials, as make run's.
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "local")

    reqs = requirements(tuple(args.suite), set(args.only) if args.only else None)
    args.output.mkdir(parents=True, exist_ok=True)
    # The emulator's and the Lambda service's own log lines go to a file, not between the results.
    logging.basicConfig(filename=args.output / "local-lambda.log", level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    print(f"{PACKAGE} {version(PACKAGE)}: {len(reqs)} requirements ({', '.join(args.suite)}) "
          f"through the local Lambda endpoint, tenant {TENANT_ID}", flush=True)
    started = time.monotonic()
    # The workers inherit this process's stdout and stderr: their lines (also in the logs
    # surface) go to a file, the results to the terminal.
    sys.stdout.flush()
    real_stdout = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    with (args.output / "functions.log").open("ab") as functions_log:
        for fd in (sys.stdout.fileno(), sys.stderr.fileno()):
            os.dup2(functions_log.fileno(), fd)
    out = _ThreadOutput(real_stdout)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="conformance-") as state, local_lambda(reqs, Path(state)) as urls:
        aws_clients = clients(*urls, [r.id for r in reqs])
        sys.stdout = out  # the validator prints its progress; each requirement's goes to its transcript
        try:
            with ThreadPoolExecutor(max_workers=args.workers) as pool:
                futures = [pool.submit(run_one, r, aws_clients, args.output, out) for r in reqs]
                for future in futures:
                    result = future.result()
                    results.append(result)
                    (args.output / f"{result.requirement.id}.log").write_text(result.transcript)
                    print(_line(result), file=real_stdout, flush=True)
        finally:
            sys.stdout = real_stdout

    outcomes = [outcome(r.passed, r.requirement.id in KNOWN_DIFFERENCES) for r in results]
    known = [r.requirement.id for r, o in zip(results, outcomes) if o is Outcome.KNOWN]
    print(f"known differences ({len(known)}, docs/emulator-differences.md): {', '.join(known) or 'none'}",
          file=real_stdout)
    print(f"{sum(r.passed for r in results)} passed, {sum(not r.passed for r in results)} failed", file=real_stdout)
    print(f"({time.monotonic() - started:.0f} s; histories, transcripts and logs in {args.output})", file=real_stdout,
          flush=True)
    return exit_code(outcomes)


def _line(result: Result) -> str:
    requirement = result.requirement
    verdict = outcome(result.passed, requirement.id in KNOWN_DIFFERENCES)
    line = f"{verdict.value:<5} {requirement.id:<5} {requirement.suite:<17} {result.seconds:5.1f}s"
    if verdict is Outcome.KNOWN:
        return f"{line}  known difference: {KNOWN_DIFFERENCES[requirement.id]}"
    if verdict is Outcome.STALE:
        return f"{line}  passes, but is listed in KNOWN_DIFFERENCES: drop it from the list"
    if verdict is Outcome.FAILED:
        return f"{line}  {'; '.join(result.errors)[:600]}"
    return line


if __name__ == "__main__":
    sys.exit(main())
