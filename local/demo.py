"""Walk the whole flow for two tenants against a running API: ``make demo``.

Works against the local stack (default ``http://127.0.0.1:3000``) and against a
deployed stage (``make demo API_URL=https://.../v1``). For tenant-a and tenant-b it
starts a workflow, reads its status until the callbackId appears, sends the
callback, and reads the completed result; then a second tenant-a workflow shows the
warm environment answering from its in-memory tenant cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

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


def run_order(api: Api, number: int, order: Order, out: Any) -> dict[str, Any]:
    """One workflow from start to COMPLETED, printing each step."""
    tag = f"[{number}] {order.tenant_id}"
    workflow_id = api.start(order)
    print(f"{tag}  POST /workflow {json.dumps(order.body)}  -> 202 workflowId={workflow_id}", file=out)
    waiting = api.wait_for(order.tenant_id, workflow_id, {"WAITING_FOR_CALLBACK"})
    callback_id = waiting["callbackId"]
    print(f"{tag}  GET  /workflow/{workflow_id}  -> WAITING_FOR_CALLBACK callbackId={_short(callback_id)}", file=out)
    api.callback(order.tenant_id, callback_id, order.confirmation)
    print(f"{tag}  POST /callback {json.dumps(order.confirmation)}  -> 200", file=out)
    done = api.wait_for(order.tenant_id, workflow_id, FINAL)
    result = done.get("result") or {}
    environments = result.get("environments", {})
    cache = result.get("tenantDataFromCache", {})
    print(f"{tag}  GET  /workflow/{workflow_id}  -> {done['status']}", file=out)
    print(f"{tag}       validated in environment {environments.get('validatedIn')} "
          f"(tenant data from cache: {cache.get('validate')})", file=out)
    print(f"{tag}       finalized in environment {environments.get('finalizedIn')} "
          f"(tenant data from cache: {cache.get('finalize')})", file=out)
    if done["status"] != "COMPLETED":
        raise DemoError(f"expected COMPLETED, got {json.dumps(done)}")
    return done


def run_demo(
    api_url: str,
    *,
    api_keys: dict[str, str] | None = None,
    timeout: float = 60.0,
    poll_interval: float = 0.5,
    out: Any = sys.stdout,
) -> list[dict[str, Any]]:
    """Run the demo; returns the final status of each workflow.

    Args:
        api_url: Base URL of the REST API.
        api_keys: Each tenant's API key, sent as ``x-api-key`` when the API has an authorizer.
        timeout: Seconds to wait for each status.
        poll_interval: Seconds between status reads.
        out: Where the steps are printed.

    Raises:
        DemoError: A step failed.
        requests.ConnectionError: The API is unreachable.
    """
    api = Api(api_url, timeout, poll_interval, api_keys)
    print(f"Demo against {api.base_url}\n", file=out)
    results = [run_order(api, number, order, out) for number, order in enumerate(ORDERS, start=1)]

    by_tenant: dict[str, set[str]] = {}
    for order, done in zip(ORDERS, results, strict=True):
        environments = done["result"].get("environments", {})
        by_tenant.setdefault(order.tenant_id, set()).update(v for v in environments.values() if v)
    print("\nSummary", file=out)
    for tenant_id, environments in by_tenant.items():
        print(f"  {tenant_id} ran in environment(s): {', '.join(sorted(environments))}", file=out)
    shared = set.intersection(*by_tenant.values()) if len(by_tenant) > 1 else set()
    print(f"  environments shared between tenants: {', '.join(sorted(shared)) or 'none'}", file=out)
    second = results[2]["result"].get("tenantDataFromCache", {})
    print(f"  second tenant-a workflow read tenant data from the warm cache: {second.get('validate')}", file=out)
    if shared:
        raise DemoError(f"an environment served two tenants: {shared}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.demo",
        description="Walk the start → status → callback → completed flow for tenant-a and tenant-b (make demo).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--api-url", default=DEFAULT_API_URL,
                        help="base URL of the REST API: the local stack or a deployed stage URL")
    parser.add_argument("--api-keys-file", type=Path, default=DEFAULT_KEYS_FILE,
                        help="JSON {tenantId: apiKey}; the local stack writes it to its state directory")
    parser.add_argument("--api-key", action="append", default=[], metavar="TENANT=KEY",
                        help="a tenant's API key (repeatable); overrides the keys file")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each status")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between status reads")
    args = parser.parse_args(argv)
    api_keys = json.loads(args.api_keys_file.read_text()) if args.api_keys_file.is_file() else {}
    for pair in args.api_key:
        tenant_id, separator, key = pair.partition("=")
        if not separator:
            parser.error(f"--api-key expects TENANT=KEY, got {pair!r}")
        api_keys[tenant_id] = key
    try:
        run_demo(args.api_url, api_keys=api_keys, timeout=args.timeout, poll_interval=args.poll_interval)
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
