"""AWS_IAM authorization of the local gateway: SigV4 checked as API Gateway checks it, and the admin credentials.

The admin routes (``"authorization": "AWS_IAM"`` in src/shared/api_contract.json)
are signed with SigV4 for the service ``execute-api``. API Gateway recomputes the
signature over the canonical request with the caller's secret key and compares;
this does the same with botocore's own SigV4 code (no "accept anything"):

* no ``Authorization`` header: ``MISSING_AUTHENTICATION_TOKEN`` (this API's
  ``404 {"message": "Not Found"}``), as for an unknown route;
* an access key that is not the stack's admin key: 403 "The security token
  included in the request is invalid.";
* a signed date more than 5 minutes from now (API Gateway's skew):
  403 "Signature expired: ...";
* a credential scope for another service or region, or a signature that does not
  match (another secret, a changed body, path, query or signed header):
  403 "The request signature we calculated does not match the signature you provided. ...".

The one principal is the admin credentials the stack generates once into
``<state dir>/admin-credentials.json`` (mode 0600): locally it stands for the
IAM principals a deployment allows ``execute-api:Invoke`` on the admin routes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ADMIN_CREDENTIALS_FILE = "admin-credentials.json"
SERVICE = "execute-api"
# API Gateway refuses a signature whose date is more than 5 minutes off.
MAX_SKEW = timedelta(minutes=5)
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"

MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.")
INVALID_TOKEN = "The security token included in the request is invalid."
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$")


@dataclass(frozen=True)
class AdminCredentials:
    """The stack's one admin principal."""

    access_key_id: str
    secret_access_key: str
    region: str

    def as_json(self) -> dict[str, str]:
        return {"accessKeyId": self.access_key_id, "secretAccessKey": self.secret_access_key, "region": self.region}


def ensure_admin_credentials(state_dir: Path, region: str) -> AdminCredentials:
    """The admin credentials kept in ``state_dir`` (owner-only), generated on first use."""
    path = Path(state_dir) / ADMIN_CREDENTIALS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        credentials = AdminCredentials(str(data["accessKeyId"]), str(data["secretAccessKey"]), str(data["region"]))
        os.chmod(path, 0o600)
        return credentials
    except (OSError, ValueError, KeyError, TypeError):
        pass
    alphabet = string.ascii_uppercase + string.digits
    credentials = AdminCredentials("AKIALOCAL" + "".join(secrets.choice(alphabet) for _ in range(11)),
                                   secrets.token_urlsafe(30), region)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(credentials.as_json(), file, indent=2)
        file.write("\n")
    os.replace(temporary, path)
    return credentials


def read_admin_credentials(state_dir: Path) -> AdminCredentials:
    """The admin credentials a running stack wrote (``FileNotFoundError`` when it has not)."""
    data = json.loads((Path(state_dir) / ADMIN_CREDENTIALS_FILE).read_text(encoding="utf-8"))
    return AdminCredentials(str(data["accessKeyId"]), str(data["secretAccessKey"]), str(data["region"]))


@dataclass(frozen=True)
class IamRefusal:
    """Why API Gateway refuses a request to an AWS_IAM route: its gateway response type and message."""

    response_type: str
    message: str


MISSING = IamRefusal("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")


class _Verifier(SigV4Auth):
    """botocore's SigV4, over exactly the headers the caller signed and the body as received."""

    def __init__(self, credentials: Credentials, region: str, signed: list[str]) -> None:
        super().__init__(credentials, SERVICE, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest):  # type: ignore[no-untyped-def]
        from botocore.awsrequest import HTTPHeaders  # noqa: PLC0415

        header_map = HTTPHeaders()
        for name in self._signed:
            header_map[name] = request.headers.get(name, "")
        return header_map

    def payload(self, request: AWSRequest) -> str:
        # The body as received, whatever an X-Amz-Content-SHA256 header claims
        # (unless the caller signed an unsigned payload, which execute-api accepts).
        if request.headers.get("X-Amz-Content-SHA256") == "UNSIGNED-PAYLOAD":
            return "UNSIGNED-PAYLOAD"
        return hashlib.sha256(request.body or b"").hexdigest()

    def canonical_request(self, request: AWSRequest) -> str:
        headers_to_sign = self.headers_to_sign(request)
        return "\n".join([
            request.method.upper(),
            self._normalize_url_path(urlsplit(request.url).path),
            self.canonical_query_string(request),
            self.canonical_headers(headers_to_sign) + "\n",
            self.signed_headers(headers_to_sign),
            self.payload(request),
        ])


def verify(credentials: AdminCredentials, *, method: str, path: str, raw_query: str,
           headers: list[tuple[str, str]], body: bytes, now: datetime | None = None) -> IamRefusal | None:
    """None when the request is signed by ``credentials`` for ``execute-api`` within the skew; else the refusal."""
    lowered: dict[str, str] = {}
    for name, value in headers:
        # Repeated headers are joined as HTTP joins them (and SigV4's canonical form expects).
        lowered[name.lower()] = f"{lowered[name.lower()]},{value}" if name.lower() in lowered else value
    authorization = lowered.get("authorization")
    if not authorization:
        return MISSING
    match = _AUTHORIZATION.match(authorization.strip())
    if not match:
        return IamRefusal("INVALID_SIGNATURE", "Authorization header requires 'Credential', 'SignedHeaders' and "
                                               "'Signature' parameters.")
    scope = match.group("credential").split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return IamRefusal("INVALID_SIGNATURE", "Credential should be scoped to a valid region.")
    access_key, day, region, service, _terminator = scope
    if not hmac.compare_digest(access_key.encode(), credentials.access_key_id.encode()):
        return IamRefusal("INVALID_SIGNATURE", INVALID_TOKEN)
    if service != SERVICE:
        return IamRefusal("INVALID_SIGNATURE", f"Credential should be scoped to correct service: '{SERVICE}'.")
    if region != credentials.region:
        return IamRefusal("INVALID_SIGNATURE", f"Credential should be scoped to a valid region, not '{region}'.")
    signed = match.group("signed").split(";")
    if "host" not in signed:
        return IamRefusal("INVALID_SIGNATURE", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    amz_date = lowered.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        return IamRefusal("INVALID_SIGNATURE", "Authorization header requires existence of either a 'X-Amz-Date' or "
                                               "a 'Date' header.")
    if day != amz_date[:8]:
        return IamRefusal("INVALID_SIGNATURE", f"Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                                               f"version of date from HTTP: '{day}' != '{amz_date[:8]}'")
    current = now or datetime.now(UTC)
    if signed_at < current - MAX_SKEW:
        return IamRefusal("INVALID_SIGNATURE", f"Signature expired: {amz_date} is now earlier than "
                                               f"{(current - MAX_SKEW).strftime(SIGV4_TIMESTAMP)} "
                                               f"({current.strftime(SIGV4_TIMESTAMP)} - 5 min.)")
    if signed_at > current + MAX_SKEW:
        return IamRefusal("INVALID_SIGNATURE", f"Signature not yet current: {amz_date} is still later than "
                                               f"{(current + MAX_SKEW).strftime(SIGV4_TIMESTAMP)} "
                                               f"({current.strftime(SIGV4_TIMESTAMP)} + 5 min.)")
    host = lowered.get("host", "")
    request = AWSRequest(method=method, url=f"http://{host}{path}" + (f"?{raw_query}" if raw_query else ""),
                         headers={name: value for name, value in lowered.items() if name in signed}, data=body)
    request.context["timestamp"] = amz_date
    verifier = _Verifier(Credentials(credentials.access_key_id, credentials.secret_access_key), credentials.region,
                         signed)
    expected = verifier.signature(verifier.string_to_sign(request, verifier.canonical_request(request)), request)
    if not hmac.compare_digest(expected.encode(), match.group("signature").encode()):
        return IamRefusal("INVALID_SIGNATURE", MISMATCH)
    return None


def sign(credentials: AdminCredentials, method: str, url: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> dict[str, str]:
    """The headers of a request signed with ``credentials`` (botocore's SigV4, as tenantctl signs)."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(credentials.access_key_id, credentials.secret_access_key), SERVICE,
              credentials.region).add_auth(request)
    return dict(request.headers.items())
