"""Single-use callback tokens: the external party's credential for one answer to one waiting callback.

A token is ``HMAC-SHA256(signing key, tenant id + callback id)``, base64url without
padding (43 characters, 256 bits). It is never stored: the registry keeps its
SHA-256 only, and whoever holds the signing key (the workflow and api functions,
through Secrets Manager) can compute it again to hand it out. Without the key a
token is not derivable from the callback id. A retried callback submitter
computes the same token, so one wait never has two valid tokens.

Rotating the key revokes every outstanding token: the token route recomputes
the token with the key it holds and refuses any other. Each function keeps the
key in memory for ``SIGNING_KEY_MAX_AGE_SECONDS``, so a rotation takes effect
everywhere within that time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

TOKEN_LENGTH = 43
TOKEN_PATTERN = re.compile(rf"^[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}$")
CALLBACKS_PATH = "/callbacks/"
_DOMAIN = b"callback-token/v1\n"
# How long a function serves the signing key from memory (Powertools' parameter
# cache) before reading Secrets Manager again: the delay of a key rotation.
SIGNING_KEY_MAX_AGE_SECONDS = 300


def mint_token(signing_key: bytes, tenant_id: str, callback_id: str) -> str:
    """The token for ``callback_id`` of ``tenant_id``."""
    message = _DOMAIN + tenant_id.encode("utf-8") + b"\n" + callback_id.encode("utf-8")
    digest = hmac.new(signing_key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_hash(token: str) -> str:
    """What the registry stores and looks tokens up by."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def is_well_formed(token: object) -> bool:
    """A string that could be a token (anything else is refused without a lookup)."""
    return isinstance(token, str) and TOKEN_PATTERN.match(token) is not None


def callback_url(base_url: str, token: str) -> str:
    """The absolute URL of ``POST /callbacks/{callbackToken}`` on the API at ``base_url``."""
    return base_url.rstrip("/") + CALLBACKS_PATH + token


def matches(presented: str, expected: str) -> bool:
    """Whether a presented token is the expected one, in time that does not depend on where they differ."""
    return hmac.compare_digest(presented.encode("ascii"), expected.encode("ascii"))


def signing_key(secret_name: str) -> bytes:
    """The current signing key from Secrets Manager, cached for ``SIGNING_KEY_MAX_AGE_SECONDS``.

    The import is local: only the functions that mint or hand out tokens pay for it.

    Raises:
        GetParameterError: Secrets Manager could not be read (Powertools wraps the cause).
    """
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    value = parameters.get_secret(secret_name, max_age=SIGNING_KEY_MAX_AGE_SECONDS)
    if not value:  # as unreadable: callers answer 503 / leave the URL out, never 500
        raise GetParameterError(f"the callback signing secret {secret_name} is empty")
    return str(value).encode("utf-8")
