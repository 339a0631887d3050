"""``make run``'s command line (``python -m local``): parse the flags, start the stack, print the banner, stop on a signal."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from dataclasses import fields
from pathlib import Path

from local.banner import banner
from local.runtime.functions import (
    DEFAULT_EXECUTION_TIMEOUT_SECONDS,
    DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    DEFAULT_NAME_PREFIX,
    DEFAULT_REGION,
)
from local.services.http_base import DEFAULT_HOST
from local.stack import (
    DEFAULT_API_PORT,
    DEFAULT_APIGATEWAY_PORT,
    DEFAULT_DYNAMODB_PORT,
    DEFAULT_EMULATOR_PORT,
    DEFAULT_LAMBDA_PORT,
    DEFAULT_STATE_DIR,
    LoopbackStack,
    StackConfig,
)

logger = logging.getLogger("local.stack")


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, not {value!r}")
    return value == "on"


def parse_args(argv: list[str] | None = None) -> StackConfig:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description="Run the tenant-isolated durable workflow locally on loopback (make run).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface the REST gateway binds (the other services always stay on 127.0.0.1)")
    parser.add_argument("--api-port", type=int, default=DEFAULT_API_PORT, help="REST gateway port (0: any free)")
    parser.add_argument("--lambda-port", type=int, default=DEFAULT_LAMBDA_PORT, help="Lambda service port")
    parser.add_argument("--emulator-port", type=int, default=DEFAULT_EMULATOR_PORT, help="durable emulator port")
    parser.add_argument("--dynamodb-port", type=int, default=DEFAULT_DYNAMODB_PORT, help="DynamoDB (moto) port")
    parser.add_argument("--apigateway-port", type=int, default=DEFAULT_APIGATEWAY_PORT,
                        help="API Gateway keys and usage plans (the provisioner's metering keys) port (0: any free)")
    parser.add_argument("--state-dir", type=Path, default=Path(DEFAULT_STATE_DIR),
                        help="executions (sqlite) and table snapshots; reuse it to resume")
    parser.add_argument("--region", default=DEFAULT_REGION, help="region the handlers see")
    parser.add_argument("--name-prefix", default=DEFAULT_NAME_PREFIX, help="prefix of function and table names")
    parser.add_argument("--idle-timeout", type=float, default=300.0, help="seconds an idle worker is kept warm")
    parser.add_argument("--max-workers-per-tenant", type=int, default=4,
                        help="concurrent environments of one tenant (and of the api function)")
    parser.add_argument("--tenant-cache-ttl", type=int, default=300,
                        help="TENANT_CACHE_TTL_SECONDS of the workflow function")
    parser.add_argument("--function-timeout", type=int, default=DEFAULT_FUNCTION_TIMEOUT_SECONDS,
                        help="timeout of one handler invocation, seconds")
    parser.add_argument("--execution-timeout", type=int, default=DEFAULT_EXECUTION_TIMEOUT_SECONDS,
                        help="durable execution timeout, seconds")
    parser.add_argument("--snapshot-interval", type=float, default=1.0,
                        help="seconds between DynamoDB snapshot checks (0: only at shutdown)")
    parser.add_argument("--fault-injection", action="store_true",
                        help="route the functions' DynamoDB calls through a fault-injecting proxy (tests)")
    parser.add_argument("--fault-port", type=int, default=0, help="port of the fault proxy (0: any free)")
    parser.add_argument("--throttle", type=_on_off, default="on", metavar="{on,off}",
                        help="enforce each demo tenant's usage plan (rate, burst, daily quota from "
                             "src/shared/demo_tenants.json) with 429s, as API Gateway does")
    parser.add_argument("--callback-throttling-rate-limit", type=float, default=None, metavar="RPS",
                        help="requests per second of POST /callbacks/{callbackToken} (main.tf's variable of that "
                             "name); default: the stage's throttling_rate_limit default in variables.tf")
    parser.add_argument("--callback-throttling-burst-limit", type=int, default=None, metavar="N",
                        help="burst of POST /callbacks/{callbackToken}; default: the stage's throttling_burst_limit")
    parser.add_argument("--log-level", dest="function_log_level", metavar="LEVEL", default=None,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level of the stack and of the functions (POWERTOOLS_LOG_LEVEL). Without it: INFO "
                             "for the stack (one line per request) and WARNING for the functions' JSON logs")
    args = parser.parse_args(argv)
    configure_logging(args.function_log_level or "INFO")
    args.function_log_level = args.function_log_level or "WARNING"
    # Every flag's dest is a StackConfig field: the parser is the one list of options.
    return StackConfig(**{field.name: getattr(args, field.name) for field in fields(StackConfig)})


def configure_logging(level: str) -> None:
    """The stack's own log on stderr: one line a record, one line a request, refusals not warnings."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        for noisy in ("aws_durable_execution_sdk_python_testing", "botocore", "werkzeug", "moto"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(known, ServerErrorSummary) for known in werkzeug.filters):  # once, however often called
        werkzeug.addFilter(ServerErrorSummary(logger))


# moto's server runs on werkzeug, which logs a request that raised as "Error on request:"
# and the rendered traceback (text, not exc_info), at every such request; the caller gets
# a 500. The service is the moto package the traceback passes through last.
SERVER_ERROR_MARK = "Error on request:"
_MOTO_SERVICE = re.compile(r"[/\\]moto[/\\](?!core[/\\]|moto_server[/\\]|utilities[/\\])(\w+)[/\\]")
MOTO_SERVICE_NAMES = {"events": "EventBridge", "sqs": "SQS", "dynamodb": "DynamoDB",
                      "secretsmanager": "Secrets Manager"}
MISSING_PACKAGE_HINT = " (a package missing from the virtualenv: is proving-ground/requirements-run.txt installed?)"


def describe_server_error(text: str) -> tuple[str, str]:
    """(service, "ErrorType: message") of one of werkzeug's "Error on request:" log messages."""
    services = _MOTO_SERVICE.findall(text)
    service = MOTO_SERVICE_NAMES.get(services[-1], services[-1]) if services else "moto"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return service, lines[-1] if lines else "unknown error"


class ServerErrorSummary(logging.Filter):
    """On werkzeug's logger: one clear line per distinct error moto's server raised.

    The first time an error appears, ``report`` gets one line naming the service and the
    error, and werkzeug's traceback follows it; the same error again (every retry of the
    request meets it) prints nothing more.
    """

    def __init__(self, report: logging.Logger) -> None:
        super().__init__()
        self._report = report
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if SERVER_ERROR_MARK not in text:
            return True
        service, error = summary = describe_server_error(text)
        with self._lock:
            first = summary not in self._seen
            self._seen.add(summary)
        if first:
            hint = MISSING_PACKAGE_HINT if error.startswith(("ModuleNotFoundError", "ImportError")) else ""
            self._report.error("local moto server: %s failed a request (HTTP 500): %s%s; its traceback follows, "
                               "repeats of this error are not shown", service, error, hint)
        return first


class OutputGuard:
    """Stand between a file descriptor (stdout, stderr) and whatever it points at.

    The stack and every worker process it starts (they inherit the descriptor) write into
    a pipe; a thread copies it to the real destination and, once that is gone (``make run
    | tee out`` and the reader exits, or Ctrl-C kills tee first), drops the rest. So a
    closed terminal or pipe never fails a print, a log line or a function's metrics.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._real = os.dup(fd)
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        self._thread = threading.Thread(target=self._forward, args=(read_end,), name=f"output-{fd}", daemon=True)
        self._thread.start()

    def _forward(self, read_end: int) -> None:
        broken = False
        while chunk := os.read(read_end, 65536):
            while chunk and not broken:
                try:
                    chunk = chunk[os.write(self._real, chunk):]
                except OSError:  # EPIPE and friends: the reader is gone, drop the rest
                    broken = True
        os.close(read_end)

    def restore(self, timeout: float = 2.0) -> None:
        """Point the descriptor back at its destination; wait for what is still in the pipe."""
        os.dup2(self._real, self.fd)  # closes this process's write end of the pipe
        os.close(self._real)
        self._thread.join(timeout)  # ends at EOF: no worker holds the pipe any more


def say(text: str) -> None:
    """Print a line; a stdout that is gone (a closed pipe) is not an error worth a traceback."""
    try:
        print(text, flush=True)
    except (BrokenPipeError, ValueError):  # ValueError: sys.stdout already closed
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail either
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    # Every AWS call this process makes goes to loopback; sign them with dummy keys
    # (the emulator's own boto3 client needs some) and never with the user's.
    os.environ.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local")
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    stop = threading.Event()
    interruptible = threading.Event()  # set while a hanging start may be cut short

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()
        if interruptible.is_set():  # e.g. a service that never comes up
            interruptible.clear()
            raise KeyboardInterrupt

    # Ctrl-C (to the whole process group, workers included: they ignore it), kill, and a
    # closed terminal all stop the stack the same way; stopping is never interrupted.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    sys.stdout.flush()
    guards = [OutputGuard(sys.stdout.fileno()), OutputGuard(sys.stderr.fileno())]
    stack: LoopbackStack | None = None
    code = 1
    try:
        stack = LoopbackStack(config)
        interruptible.set()
        if not stop.is_set():
            try:
                stack.start()
            except OSError as error:
                stop.set()
                logger.error("could not start the local stack: %s (is another `make run` using the ports?)", error)
            else:
                interruptible.clear()
                say(banner(stack))
                # Polled, not one wait: a signal the kernel hands to another thread only flags
                # the main thread, and a main thread asleep in a lock wait never sees the flag.
                while not stop.wait(timeout=1.0):
                    pass
                say("Stopping the local stack ...")
                code = 0
    except KeyboardInterrupt:
        pass
    finally:
        interruptible.clear()
        if stack is not None:
            stack.stop()
        sys.stdout.flush()
        sys.stderr.flush()
        for guard in guards:
            guard.restore()
    if code == 0:
        say(f"Stopped. State kept in {config.state_dir}/")
    return code
