"""Walk the whole flow for two tenants against a running API: ``make demo``.

Works against the local stack (default ``http://127.0.0.1:3000``) and against a
deployed stage (``make demo API_URL=https://.../v1``). For tenant-a and tenant-b it
starts a workflow and reads the completed result; then a second tenant-a workflow
shows the warm environment answering from its in-memory tenant cache, and tenant-b
asking for tenant-a's workflow gets ``404``.

Who answers the callback:

* with each tenant's callback queue known (the local stack writes them to
  ``callback-queues.json`` next to ``api-keys.json``; for a deployed stage pass
  ``--queue-url tenant-a=URL --queue-url tenant-b=URL``), an external confirmer
  per tenant (``python -m local.tools.confirmer``, a subprocess) receives the
  'Workflow Waiting For Callback' event and answers at its ``callbackUrl`` with no
  API key; the demo never polls for the callback, only for the final status;
* otherwise (or with ``--no-confirmer``) the demo reads the callbackId from the
  status and answers ``POST /callback`` with the tenant's API key.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from local import REPO_ROOT
from local.runtime.processes import terminate
from local.services.notifications import QUEUES_FILE, read_queues_file
from shared.contract import TENANT_HEADER
from shared.identity import API_KEY_HEADER
from shared.registry import FINAL_STATUSES as FINAL

DEFAULT_API_URL = "http://127.0.0.1:3000"
DEFAULT_KEYS_FILE = Path(".state") / "api-keys.json"


class DemoError(RuntimeError):
    """A step did not go as the pattern promises."""


@dataclass(frozen=True)
class Order:
    tenant_id: str
    body: dict[str, Any]
    confirmation: dict[str, Any]


ORDERS = (
    Order("tenant-a", {"amount": 120, "currency": "EUR", "description": "demo order A-1"},
          {"approved": True, "reference": "PAY-A-1"}),
    Order("tenant-b", {"amount": 40, "currency": "GBP", "description": "demo order B-1"},
          {"approved": True, "reference": "PAY-B-1"}),
    Order("tenant-a", {"amount": 75.5, "currency": "USD", "description": "demo order A-2"},
          {"approved": True, "reference": "PAY-A-2"}),
)


class Api:
    """The three routes of the pattern, over HTTP."""

    def __init__(self, base_url: str, timeout: float, poll_interval: float, api_keys: dict[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_keys = dict(api_keys or {})
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.session = requests.Session()

    def _call(self, method: str, path: str, tenant_id: str, body: dict[str, Any] | None = None) -> requests.Response:
        headers = {TENANT_HEADER: tenant_id}
        if tenant_id in self.api_keys:
            headers[API_KEY_HEADER] = self.api_keys[tenant_id]
        return self.session.request(method, f"{self.base_url}{path}", headers=headers, json=body, timeout=30)

    def start(self, order: Order) -> str:
        response = self._call("POST", "/workflow", order.tenant_id, order.body)
        if response.status_code != 202:
            raise DemoError(f"POST /workflow answered {response.status_code}: {response.text}")
        return response.json()["workflowId"]

    def wait_for(self, tenant_id: str, workflow_id: str, wanted: set[str]) -> dict[str, Any]:
        """Poll GET /workflow/{id} (404 until the workflow registered itself) until a wanted status."""
        deadline = time.monotonic() + self.timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            response = self._call("GET", f"/workflow/{workflow_id}", tenant_id)
            if response.status_code == 200:
                status = response.json()
                if status["status"] in wanted:
                    return status
                if status["status"] in FINAL:
                    raise DemoError(f"workflow ended {status['status']}: {json.dumps(status)}")
                last = status["status"]
            elif response.status_code != 404:
                raise DemoError(f"GET /workflow answered {response.status_code}: {response.text}")
            time.sleep(self.poll_interval)
        raise DemoError(f"workflow {workflow_id} not {'/'.join(sorted(wanted))} after {self.timeout:.0f}s ({last})")

    def callback(self, tenant_id: str, callback_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = self._call("POST", "/callback", tenant_id, {"callbackId": callback_id, "payload": payload})
        if response.status_code != 200:
            raise DemoError(f"POST /callback answered {response.status_code}: {response.text}")
        return response.json()


def _short(value: str, width: int = 24) -> str:
    return value if len(value) <= width else f"{value[:width - 3]}..."


def confirmer_answer(tenant_id: str) -> dict[str, Any]:
    """What a tenant's external confirmer answers (the same for each of its workflows)."""
    return {"approved": True, "confirmedBy": f"{tenant_id}-confirmer"}


@dataclass(frozen=True)
class CallbackQueues:
    """Each tenant's callback queue, and the SQS endpoint (``None``: AWS)."""

    queues: dict[str, str]
    endpoint_url: str | None = None


class Confirmers:
    """One ``python -m local.tools.confirmer`` subprocess per tenant; their lines go to ``out``."""

    def __init__(self, queues: CallbackQueues, tenant_ids: list[str], out: Any, api_url: str) -> None:
        self._out = out
        self._processes: list[subprocess.Popen[str]] = []
        self._threads: list[threading.Thread] = []
        missing = [tenant for tenant in tenant_ids if tenant not in queues.queues]
        if missing:
            raise DemoError(f"no callback queue for {', '.join(missing)} (pass --queue-url TENANT=URL)")
        for tenant_id in tenant_ids:
            command = [sys.executable, "-m", "local.tools.confirmer", "--queue-url", queues.queues[tenant_id],
                       "--answer", json.dumps(confirmer_answer(tenant_id)), "--api-url", api_url]
            if queues.endpoint_url:
                command += ["--endpoint-url", queues.endpoint_url]
            process = subprocess.Popen(  # noqa: S603 - our own module
                command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
            thread = threading.Thread(target=self._forward, args=(process,), daemon=True)
            thread.start()
            self._processes.append(process)
            self._threads.append(thread)

    def _forward(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            print(f"      {line.rstrip()}", file=self._out, flush=True)

    def check_alive(self) -> None:
        for process in self._processes:
            if process.poll() is not None:
                raise DemoError(f"a confirmer exited with {process.returncode} (see its lines above)")

    def stop(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                terminate(process, 10)  # type: ignore[arg-type]
        for thread in self._threads:
            thread.join(timeout=5)


def report_result(tag: str, workflow_id: str, done: dict[str, Any], out: Any) -> None:
    result = done.get("result") or {}
    environments = result.get("environments", {})
    cache = result.get("tenantDataFromCache", {})
    print(f"{tag}  GET  /workflow/{workflow_id}  -> {done['status']}", file=out)
    print(f"{tag}       confirmation {json.dumps(result.get('confirmation'))}", file=out)
    print(f"{tag}       validated in environment {environments.get('validatedIn')} "
          f"(tenant data from cache: {cache.get('validate')})", file=out)
    print(f"{tag}       finalized in environment {environments.get('finalizedIn')} "
          f"(tenant data from cache: {cache.get('finalize')})", file=out)
    if done["status"] != "COMPLETED":
        raise DemoError(f"expected COMPLETED, got {json.dumps(done)}")


def run_order(api: Api, number: int, order: Order, out: Any) -> dict[str, Any]:
    """One workflow from start to COMPLETED, the demo answering with the callbackId and the API key."""
    tag = f"[{number}] {order.tenant_id}"
    workflow_id = api.start(order)
    print(f"{tag}  POST /workflow {json.dumps(order.body)}  -> 202 workflowId={workflow_id}", file=out)
    waiting = api.wait_for(order.tenant_id, workflow_id, {"WAITING_FOR_CALLBACK"})
    callback_id = waiting["callbackId"]
    print(f"{tag}  GET  /workflow/{workflow_id}  -> WAITING_FOR_CALLBACK callbackId={_short(callback_id)}", file=out)
    api.callback(order.tenant_id, callback_id, order.confirmation)
    print(f"{tag}  POST /callback {json.dumps(order.confirmation)}  -> 200", file=out)
    done = api.wait_for(order.tenant_id, workflow_id, FINAL)
    report_result(tag, workflow_id, done, out)
    return done


def run_order_with_confirmer(api: Api, number: int, order: Order, confirmers: Confirmers, out: Any) -> dict[str, Any]:
    """One workflow from start to COMPLETED, answered by the tenant's confirmer from its queue."""
    tag = f"[{number}] {order.tenant_id}"
    workflow_id = api.start(order)
    print(f"{tag}  POST /workflow {json.dumps(order.body)}  -> 202 workflowId={workflow_id}", file=out)
    print(f"{tag}       waits; 'Workflow Waiting For Callback' goes to {order.tenant_id}'s queue only, "
          f"and {order.tenant_id}'s confirmer answers at its callbackUrl (no API key):", file=out)
    confirmers.check_alive()
    done = api.wait_for(order.tenant_id, workflow_id, FINAL)
    report_result(tag, workflow_id, done, out)
    expected = confirmer_answer(order.tenant_id)
    if (done.get("result") or {}).get("confirmation") != expected:
        raise DemoError(f"expected the confirmer's answer {json.dumps(expected)}, got {json.dumps(done)}")
    return done


def show_cross_tenant_read(api: Api, owner: str, workflow_id: str, reader: str, out: Any) -> int:
    """Another tenant asking for ``owner``'s workflow gets 404, as for a workflow that does not exist."""
    response = api._call("GET", f"/workflow/{workflow_id}", reader)  # noqa: SLF001
    print(f"[x] {reader}  GET  /workflow/{workflow_id} ({owner}'s, with {reader}'s own key)  -> "
          f"{response.status_code} {response.text.strip()}", file=out)
    if response.status_code != 404:
        raise DemoError(f"{reader} read {owner}'s workflow: {response.status_code} {response.text}")
    print(f"[x] {reader}       refused: to {reader}, {owner}'s workflow does not exist", file=out)
    return response.status_code


def run_demo(
    api_url: str,
    *,
    api_keys: dict[str, str] | None = None,
    queues: CallbackQueues | None = None,
    timeout: float = 60.0,
    poll_interval: float = 0.5,
    out: Any = sys.stdout,
) -> list[dict[str, Any]]:
    """Run the demo; returns the final status of each workflow.

    Args:
        api_url: Base URL of the REST API.
        api_keys: Each tenant's API key, sent as ``x-api-key`` when the API has an authorizer.
        queues: Each tenant's callback queue: a confirmer per tenant answers from it.
            ``None``: the demo answers ``POST /callback`` itself.
        timeout: Seconds to wait for each status.
        poll_interval: Seconds between status reads.
        out: Where the steps are printed.

    Raises:
        DemoError: A step failed.
        requests.ConnectionError: The API is unreachable.
    """
    api = Api(api_url, timeout, poll_interval, api_keys)
    print(f"Demo against {api.base_url}\n", file=out)
    api.session.get(f"{api.base_url}/", timeout=10)  # unreachable: ConnectionError before any confirmer starts
    tenants = list(dict.fromkeys(order.tenant_id for order in ORDERS))
    confirmers = Confirmers(queues, tenants, out, api_url) if queues is not None else None
    try:
        if confirmers is not None:
            print(f"Started an external confirmer per tenant ({', '.join(tenants)}): "
                  "python -m local.tools.confirmer --queue-url <the tenant's queue>\n", file=out)
            results = [run_order_with_confirmer(api, number, order, confirmers, out)
                       for number, order in enumerate(ORDERS, start=1)]
        else:
            results = [run_order(api, number, order, out) for number, order in enumerate(ORDERS, start=1)]
        print("", file=out)
        owner, reader = ORDERS[0].tenant_id, ORDERS[1].tenant_id
        cross_tenant_status = show_cross_tenant_read(api, owner, results[0]["workflowId"], reader, out)
    finally:
        if confirmers is not None:
            confirmers.stop()

    by_tenant: dict[str, set[str]] = {}
    for order, done in zip(ORDERS, results, strict=True):
        environments = done["result"].get("environments", {})
        by_tenant.setdefault(order.tenant_id, set()).update(v for v in environments.values() if v)
    print("\nSummary", file=out)
    for tenant_id, environments in by_tenant.items():
        print(f"  {tenant_id} ran in environment(s): {', '.join(sorted(environments))}", file=out)
    shared = set.intersection(*by_tenant.values()) if len(by_tenant) > 1 else set()
    print(f"  environments shared between tenants: {', '.join(sorted(shared)) or 'none'}", file=out)
    print(f"  {reader} reading {owner}'s workflow: {cross_tenant_status}, refused as an unknown id", file=out)
    second = results[2]["result"].get("tenantDataFromCache", {})
    print(f"  second tenant-a workflow read tenant data from the warm cache: {second.get('validate')}", file=out)
    answered_by = ("each tenant's confirmer, from its own queue, with the token alone" if confirmers
                   else "the demo, POST /callback with the callbackId and the API key")
    print(f"  callbacks answered by: {answered_by}", file=out)
    if shared:
        raise DemoError(f"an environment served two tenants: {shared}")
    return results


def _pairs(parser: argparse.ArgumentParser, flag: str, values: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for pair in values:
        tenant_id, separator, value = pair.partition("=")
        if not separator:
            parser.error(f"{flag} expects TENANT=VALUE, got {pair!r}")
        pairs[tenant_id] = value
    return pairs


def callback_queues(args: argparse.Namespace, queue_urls: dict[str, str]) -> CallbackQueues | None:
    """The queues the confirmers read: ``--queue-url`` flags, else the local stack's file for this API."""
    if args.no_confirmer:
        return None
    if queue_urls:
        return CallbackQueues(queue_urls, args.sqs_endpoint_url)
    queues_file = args.queues_file or args.api_keys_file.parent / QUEUES_FILE
    written = read_queues_file(queues_file)
    # Only for the stack that wrote it: a stale file must not point a deployed stage's demo at loopback.
    if written is None or str(written.get("apiUrl", "")).rstrip("/") != args.api_url.rstrip("/"):
        return None
    return CallbackQueues({str(k): str(v) for k, v in written["queues"].items()},
                          args.sqs_endpoint_url or written.get("endpointUrl"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.tools.demo",
        description="Walk the start → callback → completed flow for tenant-a and tenant-b (make demo); "
                    "with the tenants' callback queues, a confirmer per tenant answers.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--api-url", default=DEFAULT_API_URL,
                        help="base URL of the REST API: the local stack or a deployed stage URL")
    parser.add_argument("--api-keys-file", type=Path, default=DEFAULT_KEYS_FILE,
                        help="JSON {tenantId: apiKey}; the local stack writes it to its state directory")
    parser.add_argument("--api-key", action="append", default=[], metavar="TENANT=KEY",
                        help="a tenant's API key (repeatable); overrides the keys file")
    parser.add_argument("--queues-file", type=Path, default=None,
                        help=f"the local stack's {QUEUES_FILE} (default: next to --api-keys-file); "
                             "used only when it was written for --api-url")
    parser.add_argument("--queue-url", action="append", default=[], metavar="TENANT=URL",
                        help="a tenant's callback queue (repeatable; a deployed stage: terraform output "
                             "callback_queue_urls); overrides the queues file")
    parser.add_argument("--sqs-endpoint-url", default=None,
                        help="SQS endpoint of the queues (default: the queues file's, or AWS)")
    parser.add_argument("--no-confirmer", action="store_true",
                        help="answer POST /callback with the callbackId and API key instead of running confirmers")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each status")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between status reads")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    api_keys = json.loads(args.api_keys_file.read_text()) if args.api_keys_file.is_file() else {}
    api_keys.update(_pairs(parser, "--api-key", args.api_key))
    queues = callback_queues(args, _pairs(parser, "--queue-url", args.queue_url))
    try:
        run_demo(args.api_url, api_keys=api_keys, queues=queues, timeout=args.timeout,
                 poll_interval=args.poll_interval)
    except requests.ConnectionError:
        print(f"error: cannot reach the API at {args.api_url}.\n"
              "Start the local stack in another terminal with `make run`, "
              "or point the demo at a deployed stage: make demo API_URL=https://<api-id>.execute-api.<region>.amazonaws.com/v1",
              file=sys.stderr)
        return 2
    except DemoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
