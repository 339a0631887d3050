"""The operator's command line for the admin API (``python -m tenantctl``, ``make tenants ARGS="..."``).

Every request is signed with SigV4 for ``execute-api`` (botocore): with the
standard AWS credential chain (environment, profile, SSO, instance role) against
a deployed stage (``--api-url`` or ``TENANTS_API_URL``: ``terraform output -raw
api_url``), or with ``--local``: the local stack's ``.state/admin-credentials.json``
and its API URL. ``create`` and ``delete`` wait for ``ACTIVE`` / ``OFFBOARDED``
with a progress line, at most ``--timeout`` seconds. Answers go to stdout as
JSON (``create`` and ``rotate-key`` show the tenant's key there, that once);
progress and errors go to stderr. Exit status: 0 done, 1 refused or failed,
2 usage, 3 timed out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICE = "execute-api"
DEFAULT_LOCAL_API = "http://127.0.0.1:3000"
EXIT_REFUSED, EXIT_USAGE, EXIT_TIMEOUT = 1, 2, 3
FINAL_ONBOARDING = ("ACTIVE", "FAILED")
FINAL_OFFBOARDING = ("OFFBOARDED", "FAILED")


class CliError(Exception):
    """A refusal or failure to report on stderr, with its exit status."""

    def __init__(self, message: str, status: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Answer:
    """One HTTP answer of the admin API."""

    status: int
    body: Any


class AdminApi:
    """Signed calls to ``<api_url>/tenants...``."""

    def __init__(self, api_url: str, credentials: Any, region: str, timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.credentials = credentials
        self.region = region
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             query: dict[str, str] | None = None) -> Answer:
        from botocore.auth import SigV4Auth  # noqa: PLC0415 - botocore is only needed to sign
        from botocore.awsrequest import AWSRequest  # noqa: PLC0415

        url = f"{self.api_url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else b""
        request = AWSRequest(method=method, url=url, data=data,
                             headers={"content-type": "application/json"} if body is not None else {})
        SigV4Auth(self.credentials, SERVICE, self.region).add_auth(request)
        prepared = urllib.request.Request(url, data=data or None, method=method, headers=dict(request.headers.items()))
        try:
            with urllib.request.urlopen(prepared, timeout=self.timeout) as response:  # noqa: S310 - the API URL
                return Answer(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, _json(error.read()))
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise CliError(f"cannot reach {self.api_url}: {getattr(error, 'reason', error)}") from error


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return {"message": raw.decode(errors="replace")[:500]}


def _expect(answer: Answer, *statuses: int) -> Any:
    if answer.status not in statuses:
        message = answer.body.get("message") if isinstance(answer.body, dict) else answer.body
        raise CliError(f"{answer.status}: {message}")
    return answer.body


def _path(tenant_id: str) -> str:
    return "/tenants/" + urllib.parse.quote(tenant_id, safe="")


def wait_for(api: AdminApi, tenant_id: str, finals: tuple[str, ...], timeout: float, out: Any = sys.stderr) -> dict[str, Any]:
    """Poll the tenant until its status is one of ``finals``, one progress line on stderr; CliError on timeout."""
    started = time.monotonic()
    last: dict[str, Any] = {}
    while True:
        answer = api.call("GET", _path(tenant_id))
        if answer.status == 200 and isinstance(answer.body, dict):
            last = answer.body
        elapsed = time.monotonic() - started
        print(f"\r{tenant_id}: {last.get('status', '?')} after {elapsed:4.1f} s", end="", file=out, flush=True)
        if last.get("status") in finals:
            print(file=out)
            return last
        if elapsed > timeout:
            print(file=out)
            raise CliError(f"{tenant_id} is still {last.get('status', 'unknown')} after {timeout:g} s "
                           f"(it goes on; `get {tenant_id}` shows where)", EXIT_TIMEOUT)
        time.sleep(0.5)


# -- commands --------------------------------------------------------------------------------------


def cmd_create(api: AdminApi, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {
        "tenantId": args.tenant_id, "displayName": args.display_name, "tier": args.tier,
        "allowedCurrencies": [code.strip() for code in args.currencies.split(",") if code.strip()],
        "maxAmount": args.max_amount, "callbackTimeoutSeconds": args.callback_timeout,
    }
    if args.heartbeat_timeout is not None:
        body["heartbeatTimeoutSeconds"] = args.heartbeat_timeout
    created = _expect(api.call("POST", "/tenants", body), 202)
    # The key is shown this once: print it before waiting, so a timeout never loses it.
    print(json.dumps(created), flush=True)
    if not args.no_wait:
        tenant = wait_for(api, args.tenant_id, FINAL_ONBOARDING, args.timeout)
        if tenant["status"] != "ACTIVE":
            raise CliError(f"{args.tenant_id} is {tenant['status']}: {tenant.get('reason', 'no reason given')}")
    return None


def cmd_list(api: AdminApi, args: argparse.Namespace) -> Any:
    query: dict[str, str] = {"limit": str(args.limit)}
    if args.status:
        query["status"] = args.status
    tenants: list[Any] = []
    while True:
        page = _expect(api.call("GET", "/tenants", query=query), 200)
        tenants.extend(page.get("tenants", []))
        if not args.all or not page.get("nextToken"):
            return {"tenants": tenants, **({"nextToken": page["nextToken"]} if page.get("nextToken") and not args.all else {})}
        query["nextToken"] = page["nextToken"]


def cmd_get(api: AdminApi, args: argparse.Namespace) -> Any:
    return _expect(api.call("GET", _path(args.tenant_id)), 200)


def cmd_suspend(api: AdminApi, args: argparse.Namespace) -> Any:
    return _expect(api.call("PATCH", _path(args.tenant_id), {"status": "SUSPENDED"}), 200)


def cmd_activate(api: AdminApi, args: argparse.Namespace) -> Any:
    return _expect(api.call("PATCH", _path(args.tenant_id), {"status": "ACTIVE"}), 200)


def cmd_set_tier(api: AdminApi, args: argparse.Namespace) -> Any:
    return _expect(api.call("PATCH", _path(args.tenant_id), {"tier": args.tier}), 200)


def cmd_rotate_key(api: AdminApi, args: argparse.Namespace) -> Any:
    body = {} if args.overlap is None else {"overlapSeconds": args.overlap}
    return _expect(api.call("POST", _path(args.tenant_id) + "/api-keys", body), 201)


def cmd_delete(api: AdminApi, args: argparse.Namespace) -> Any:
    answer = _expect(api.call("DELETE", _path(args.tenant_id)), 202)
    if args.no_wait:
        return answer
    tenant = wait_for(api, args.tenant_id, FINAL_OFFBOARDING, args.timeout)
    if tenant["status"] != "OFFBOARDED":
        raise CliError(f"{args.tenant_id} is {tenant['status']}: {tenant.get('reason', 'no reason given')}")
    return tenant


def cmd_delete_all(api: AdminApi, args: argparse.Namespace) -> Any:
    """Offboard every tenant that is not OFFBOARDED (``make destroy`` runs this before terraform destroy)."""
    tenants = cmd_list(api, argparse.Namespace(limit=100, status=None, all=True))["tenants"]
    done = []
    for tenant in tenants:
        if tenant["status"] == "PROVISIONING":
            wait_for(api, tenant["tenantId"], FINAL_ONBOARDING, args.timeout)
        done.append(cmd_delete(api, argparse.Namespace(tenant_id=tenant["tenantId"], no_wait=False,
                                                       timeout=args.timeout)))
    return {"offboarded": [tenant["tenantId"] for tenant in done]}


def cmd_create_demo(api: AdminApi, args: argparse.Namespace) -> Any:
    """Onboard the demo tenants of src/shared/demo_tenants.json; their keys to ``--keys-file`` (mode 0600)."""
    from shared.contract import demo_tenants  # noqa: PLC0415

    path = Path(args.keys_file)
    keys = json.loads(path.read_text()) if path.is_file() else {}
    for tenant in demo_tenants():
        tenant_id = tenant["tenantId"]
        existing = api.call("GET", _path(tenant_id))
        if existing.status == 200 and existing.body.get("status") not in ("FAILED",):
            print(f"{tenant_id}: already {existing.body.get('status')}", file=sys.stderr)
            continue
        body = {field: value for field, value in tenant.items() if field != "status"}
        keys[tenant_id] = _expect(api.call("POST", "/tenants", body), 202)["apiKey"]
        _write_private(path, keys)
        wait_for(api, tenant_id, FINAL_ONBOARDING, args.timeout)
        if tenant.get("status") == "SUSPENDED":
            _expect(api.call("PATCH", _path(tenant_id), {"status": "SUSPENDED"}), 200)
    return {"keysFile": str(path), "tenants": sorted(keys)}


def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2)
    os.replace(temporary, path)


COMMANDS = {
    "create": cmd_create, "list": cmd_list, "get": cmd_get, "suspend": cmd_suspend, "activate": cmd_activate,
    "set-tier": cmd_set_tier, "rotate-key": cmd_rotate_key, "delete": cmd_delete,
    "delete-all": cmd_delete_all, "create-demo": cmd_create_demo,
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m tenantctl", description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    root.add_argument("--local", action="store_true",
                      help="the local stack: sign with <state dir>/admin-credentials.json, its API URL")
    root.add_argument("--state-dir", type=Path, default=Path(".state"), help="the local stack's state directory")
    root.add_argument("--api-url", default=os.environ.get("TENANTS_API_URL"),
                      help="the stage's URL (terraform output -raw api_url); env TENANTS_API_URL")
    root.add_argument("--region", default=None, help="signing region (default: the credential chain's)")
    root.add_argument("--profile", default=None, help="AWS profile of the credential chain")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)

    def waits(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--no-wait", action="store_true", help="return once the request is accepted")
        sub.add_argument("--timeout", type=float, default=120.0, help="seconds to wait at most")

    create = command("create", "onboard a tenant; prints its key once, waits for ACTIVE")
    create.add_argument("tenant_id")
    create.add_argument("--display-name", required=True)
    create.add_argument("--tier", required=True, help="a tier of src/shared/tiers.json")
    create.add_argument("--currencies", required=True, help="allowed currencies, comma-separated: EUR,USD")
    create.add_argument("--max-amount", type=float, required=True)
    create.add_argument("--callback-timeout", type=int, required=True, help="seconds a workflow waits for its callback")
    create.add_argument("--heartbeat-timeout", type=int, default=None, help="seconds between heartbeats (0: none)")
    waits(create)
    listing = command("list", "list tenants (OFFBOARDED ones only with --status OFFBOARDED)")
    listing.add_argument("--status", default=None)
    listing.add_argument("--limit", type=int, default=20, help="page size, 1 to 100")
    listing.add_argument("--all", action="store_true", help="follow nextToken to the last page")
    for name, help_text in (("get", "show a tenant"), ("suspend", "refuse the tenant's requests at once"),
                            ("activate", "let a suspended tenant in again")):
        command(name, help_text).add_argument("tenant_id")
    set_tier = command("set-tier", "move a tenant to another tier (its usage plan)")
    set_tier.add_argument("tenant_id")
    set_tier.add_argument("tier")
    rotate = command("rotate-key", "a new key; the previous one works --overlap seconds more")
    rotate.add_argument("tenant_id")
    rotate.add_argument("--overlap", type=int, default=None, help="seconds the previous key keeps working (API default 3600; 0 revokes it)")
    delete = command("delete", "offboard a tenant; waits for OFFBOARDED")
    delete.add_argument("tenant_id")
    waits(delete)
    delete_all = command("delete-all", "offboard every tenant (make destroy runs it first)")
    delete_all.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each tenant at most")
    demo = command("create-demo", "onboard the demo tenants (src/shared/demo_tenants.json); keys to --keys-file")
    demo.add_argument("--keys-file", default=".state/api-keys.json", help="where their keys go (mode 0600)")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each tenant at most")
    return root


def connect(args: argparse.Namespace) -> AdminApi:
    """The API URL and the credentials: the local stack's, or the standard chain's."""
    if args.local:
        from botocore.credentials import Credentials  # noqa: PLC0415

        try:
            data = json.loads((args.state_dir / "admin-credentials.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CliError(f"no admin credentials in {args.state_dir}/ (is make run running here?): {error}",
                           EXIT_USAGE) from error
        url = args.api_url
        if not url:
            try:
                url = json.loads((args.state_dir / "callback-queues.json").read_text())["apiUrl"]
            except (OSError, ValueError, KeyError):
                url = DEFAULT_LOCAL_API
        return AdminApi(url, Credentials(data["accessKeyId"], data["secretAccessKey"]), args.region or data["region"])
    import botocore.session  # noqa: PLC0415

    session = botocore.session.Session(profile=args.profile)
    credentials = session.get_credentials()
    if credentials is None:
        raise CliError("no AWS credentials found (environment, profile, SSO or role); or use --local", EXIT_USAGE)
    region = args.region or session.get_config_variable("region")
    if not region:
        raise CliError("no region: pass --region or set AWS_REGION", EXIT_USAGE)
    if not args.api_url:
        raise CliError("no API URL: pass --api-url or set TENANTS_API_URL (terraform output -raw api_url)", EXIT_USAGE)
    return AdminApi(args.api_url, credentials.get_frozen_credentials(), region)


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status."""
    args = parser().parse_args(argv)
    try:
        result = COMMANDS[args.command](connect(args), args)
    except CliError as error:
        print(f"tenantctl {args.command}: {error}", file=sys.stderr)
        return error.status
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0
