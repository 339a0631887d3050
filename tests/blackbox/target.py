"""The API under test, seen from outside: a base URL and the tenants' API keys, nothing else.

The black-box checks (``tests/blackbox/checks.py``) talk to a deployed stage
(``make test-aws``) or to the local stack (``tests/local/test_blackbox_local.py``,
part of ``make test``) through an :class:`ApiTarget`, so both run the same code.

Where the target comes from (:func:`target_from_environment`):

* ``API_URL``: the stage's base URL; default ``terraform output -raw api_url``.
* ``API_KEYS``: a JSON file ``{"tenant-id": "api key", ...}``; default
  ``.state/api-keys.json`` (``make run`` writes it, and ``make deploy`` when it
  onboards the demo tenants with tenantctl; no key is ever a Terraform output).
* ``ADMIN_CREDENTIALS``: optional; the admin checks (``test_admin_*``: onboard,
  suspend, re-key and offboard a tenant through ``/tenants``) run only with it:
  ``chain`` signs with the standard AWS credential chain (``AWS_REGION``), a path
  names a JSON file ``{"accessKeyId", "secretAccessKey", "region"}`` (``make
  run``'s ``.state/admin-credentials.json``).
* ``BRIEF_TENANT``: optional, a tenant in ``API_KEYS`` whose callbacks time out
  within a minute; the ``410`` check runs only with one (the demo tenants wait
  an hour or a day).
* ``TF``: the terraform command (default ``terraform``).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from local.tools.confirmer import RETRYABLE_STATUSES

TENANT_HEADER = "x-tenant-id"
API_KEY_HEADER = "x-api-key"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# The demo tenants (src/shared/demo_tenants.json); tenant-b is throttled to a few requests a second.
TENANT_A = "tenant-a"
TENANT_B = "tenant-b"
WORKFLOW_TIMEOUT_SECONDS = 90.0
REQUEST_TIMEOUT_SECONDS = 35.0  # API Gateway answers within 29 s
MAX_THROTTLE_RETRIES = 8
# What a callback client retries besides 429 (README, "The API"; request() handles 429 itself):
# Lambda refusing the invoke, a delivery in progress, a failed dependency.
RETRIED = RETRYABLE_STATUSES - {429}


class TargetUnavailable(RuntimeError):
    """Neither the environment nor ``terraform output`` names the API to test."""


@dataclass
class ApiTarget:
    """A REST API of the pattern at ``base_url``, with the API key of each tenant.

    Every request retries ``429`` (honouring ``Retry-After``): a throttled tenant is
    slowed down, never reported as a failure of the check that was running.
    """

    base_url: str
    keys: dict[str, str]
    brief_tenant: str | None = None
    # botocore credentials and the region the admin API's requests are signed for; None: no admin checks.
    admin_credentials: Any = None
    admin_region: str | None = None
    poll_seconds: float = 1.0  # status reads while waiting: tenant-b may make a few a second
    session: requests.Session = field(default_factory=requests.Session)
    observations: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    # -- raw requests ----------------------------------------------------------------------

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        for attempt in range(MAX_THROTTLE_RETRIES + 1):
            response = self.session.request(method, self.url(path), headers=headers or {},
                                            timeout=REQUEST_TIMEOUT_SECONDS, **kwargs)
            if response.status_code != 429 or attempt == MAX_THROTTLE_RETRIES:
                return response
            try:
                pause = float(response.headers.get("Retry-After") or 0) or 1.0
            except ValueError:
                pause = 1.0
            time.sleep(min(pause, 10.0) * (1 + attempt / 2))
        raise AssertionError("unreachable")

    def headers(self, tenant_id: str | None, *, key_of: str | None = None) -> dict[str, str]:
        """Identity headers of ``tenant_id``, with the key of ``key_of`` (default: its own)."""
        headers: dict[str, str] = {}
        if tenant_id is not None:
            headers[TENANT_HEADER] = tenant_id
        key = self.keys.get(key_of or tenant_id or "")
        if key is not None:
            headers[API_KEY_HEADER] = key
        return headers

    # -- the routes ------------------------------------------------------------------------

    def start(self, tenant_id: str, body: Any, *, idempotency_key: str | None = None,
              headers: dict[str, str] | None = None) -> requests.Response:
        extra = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else {}
        return self.request("POST", "/workflow", json=body, headers={**self.headers(tenant_id), **extra, **(headers or {})})

    def start_workflow(self, tenant_id: str, body: dict[str, Any] | None = None) -> str:
        response = self.start(tenant_id, body or {"amount": 25, "currency": "USD", "description": "black-box"})
        assert response.status_code == 202, (response.status_code, response.text)
        assert response.json()["status"] == "STARTED"
        return str(response.json()["workflowId"])

    def status(self, tenant_id: str, workflow_id: str, *, headers: dict[str, str] | None = None) -> requests.Response:
        return self.request("GET", f"/workflow/{workflow_id}", headers=headers if headers is not None else self.headers(tenant_id))

    def wait_for_status(self, tenant_id: str, workflow_id: str, status: str,
                        timeout: float = WORKFLOW_TIMEOUT_SECONDS) -> dict[str, Any]:
        """Poll every ``poll_seconds`` until the workflow reaches ``status``."""
        deadline = time.monotonic() + timeout
        seen: Any = None
        while time.monotonic() < deadline:
            response = self.status(tenant_id, workflow_id)
            seen = (response.status_code, response.text[:300])
            if response.status_code == 200 and response.json().get("status") == status:
                return response.json()
            time.sleep(self.poll_seconds)
        raise AssertionError(f"workflow {workflow_id} of {tenant_id} never reached {status} in {timeout:.0f}s; last: {seen}")

    def waiting_workflow(self, tenant_id: str = TENANT_A, body: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start a workflow and wait until it waits for its callback; ``(workflowId, status body)``."""
        workflow_id = self.start_workflow(tenant_id, body)
        return workflow_id, self.wait_for_status(tenant_id, workflow_id, "WAITING_FOR_CALLBACK")

    def callback(self, tenant_id: str, body: dict[str, Any], *, headers: dict[str, str] | None = None) -> requests.Response:
        return self.request("POST", "/callback", json=body, headers=headers if headers is not None else self.headers(tenant_id))

    def until_final(self, send: Callable[[], requests.Response], timeout: float = 60.0) -> requests.Response:
        """Send as the README tells a callback client to: retry ``500``/``502``/``503``/``504`` (``Retry-After``)."""
        deadline = time.monotonic() + timeout
        while True:
            response = send()
            if response.status_code not in RETRIED or time.monotonic() > deadline:
                return response
            try:
                pause = float(response.headers.get("Retry-After") or 0) or 1.0
            except ValueError:
                pause = 1.0
            time.sleep(min(pause, 5.0))

    def answer(self, callback_url: str, body: dict[str, Any]) -> requests.Response:
        """``POST /callbacks/{callbackToken}`` as the external system does: the URL alone, no identity."""
        return self.request("POST", callback_url, json=body)

    def admin(self, method: str, path: str, body: Any = None, *, signed: bool = True) -> requests.Response:
        """A request to the admin API, SigV4-signed for ``execute-api`` with the admin credentials."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        data = b"" if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if data else {}
        if signed:
            request = AWSRequest(method=method, url=self.url(path), data=data, headers=headers)
            SigV4Auth(self.admin_credentials, "execute-api", str(self.admin_region)).add_auth(request)
            headers = dict(request.headers.items())
        return self.request(method, path, data=data or None, headers=headers)

    def wait_for_tenant(self, tenant_id: str, statuses: tuple[str, ...], timeout: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen: Any = None
        while time.monotonic() < deadline:
            response = self.admin("GET", f"/tenants/{tenant_id}")
            seen = (response.status_code, response.text[:300])
            if response.status_code == 200 and response.json().get("status") in statuses:
                return response.json()
            time.sleep(self.poll_seconds)
        raise AssertionError(f"tenant {tenant_id} never reached {statuses} in {timeout:.0f}s; last: {seen}")

    # -- what AWS does not document --------------------------------------------------------

    def observe(self, point: str, response: requests.Response) -> None:
        """Record what the target answered for a point AWS does not document (printed at the end)."""
        self.observations.append((point, f"{response.status_code} {response.text.strip()[:200]}"))


# -- where the target comes from -------------------------------------------------------------------


def _terraform_output(terraform: str, args: list[str]) -> str:
    command = [terraform, "output", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    except OSError as exc:
        raise TargetUnavailable(f"{' '.join(command)}: {exc}") from exc
    if done.returncode != 0:
        raise TargetUnavailable(f"{' '.join(command)} failed: {done.stderr.strip()[:500]}")
    return done.stdout.strip()


def target_from_environment(environ: dict[str, str] | None = None) -> ApiTarget:
    """The API to test: ``API_URL``/``API_KEYS`` when set, otherwise ``terraform output``.

    Raises:
        TargetUnavailable: Neither says where the API is (with the reason).
    """
    env = dict(os.environ if environ is None else environ)
    terraform = env.get("TF") or "terraform"
    base_url = env.get("API_URL") or _terraform_output(terraform, ["-raw", "api_url"])
    keys_file = env.get("API_KEYS") or ".state/api-keys.json"
    path = Path(keys_file)
    if not path.is_file():
        raise TargetUnavailable(f"API_KEYS={keys_file}: no such file (make run and make deploy write .state/api-keys.json)")
    keys = json.loads(path.read_text())
    if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
        raise TargetUnavailable("the API keys must be a JSON object of tenant id to key")
    missing = [tenant for tenant in (TENANT_A, TENANT_B) if tenant not in keys]
    if missing:
        raise TargetUnavailable(f"no API key for {', '.join(missing)}: the checks use the demo tenants")
    brief = env.get("BRIEF_TENANT") or None
    if brief is not None and brief not in keys:
        raise TargetUnavailable(f"BRIEF_TENANT={brief} has no key in the API keys")
    credentials, region = admin_credentials(env.get("ADMIN_CREDENTIALS"), env)
    return ApiTarget(base_url, keys, brief_tenant=brief, admin_credentials=credentials, admin_region=region)


def admin_credentials(source: str | None, env: dict[str, str]) -> tuple[Any, str | None]:
    """``(credentials, region)`` for the admin checks from ``ADMIN_CREDENTIALS``; ``(None, None)`` without it."""
    if not source:
        return None, None
    if source == "chain":
        import botocore.session

        session = botocore.session.Session()
        credentials = session.get_credentials()
        region = env.get("AWS_REGION") or session.get_config_variable("region")
        if credentials is None or not region:
            raise TargetUnavailable("ADMIN_CREDENTIALS=chain: no AWS credentials or no region (AWS_REGION)")
        return credentials.get_frozen_credentials(), region
    from botocore.credentials import Credentials

    try:
        data = json.loads(Path(source).read_text())
        return Credentials(data["accessKeyId"], data["secretAccessKey"]), str(data["region"])
    except (OSError, ValueError, KeyError) as exc:
        raise TargetUnavailable(f"ADMIN_CREDENTIALS={source}: not a readable admin credentials file ({exc})") from exc
