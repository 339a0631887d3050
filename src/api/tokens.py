"""Callback tokens on the api function: which record a presented token answers, and GET's ``callbackUrl``.

A token is good only while all of these hold, and every refusal is the same 404
"callback not found" (nothing tells a guesser which check failed):

- it is well formed and its hash has an item in the registry;
- it is the token of the *current* signing key for that item's tenant and
  callback (a key rotation revokes every earlier token);
- its tenant exists and is ACTIVE (suspending a tenant stops its tokens too).

After a rotation, a read of a waiting workflow hands out the new key's token
and writes its item first, so the new ``callbackUrl`` works and the old one is 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError

from api.callbacks import NotFound
from shared import registry as reg
from shared.callback_tokens import callback_url, is_well_formed, matches, mint_token, signing_key, token_hash
from shared.registry import WorkflowRecord, WorkflowRegistry
from shared.tenants import ACTIVE

logger = Logger(child=True)
CALLBACK_NOT_FOUND = "callback not found"


@dataclass
class CallbackTokens:
    """Resolves presented tokens and hands out the current one.

    Args:
        registry: The workflow registry (token items live there).
        tenant_status: Reads a tenant's status (None when unknown).
        secret_name: The signing key's secret; None when tokens are not configured.
        base_url: The API's URL the ``callbackUrl`` starts with; None when not configured.
    """

    registry: WorkflowRegistry
    tenant_status: Callable[[str], str | None]
    secret_name: str | None
    base_url: str | None

    def resolve(self, token: str) -> WorkflowRecord:
        """The workflow ``token`` may answer.

        Raises:
            NotFound: Malformed, unknown, revoked (another signing key) or of a tenant that is not ACTIVE.
            GetParameterError: The signing key cannot be read (503).
            ClientError, BotoCoreError: The registry or the tenants table failed (429 or 503).
        """
        if not is_well_formed(token) or not self.secret_name:
            raise NotFound(CALLBACK_NOT_FOUND)
        record = self.registry.find_by_token(token_hash(token))
        if record is None or not record.callback_id:
            raise NotFound(CALLBACK_NOT_FOUND)
        current = mint_token(signing_key(self.secret_name), record.tenant_id, record.callback_id)
        if not matches(token, current):
            logger.info("token of an earlier signing key refused",
                        extra={"tenant_id": record.tenant_id, "workflow_id": record.workflow_id})
            raise NotFound(CALLBACK_NOT_FOUND)
        if self.tenant_status(record.tenant_id) != ACTIVE:
            logger.info("token of a tenant that is not active refused",
                        extra={"tenant_id": record.tenant_id, "workflow_id": record.workflow_id})
            raise NotFound(CALLBACK_NOT_FOUND)
        return record

    def url_for(self, record: WorkflowRecord) -> str | None:
        """The ``callbackUrl`` of a waiting workflow (computed again, never stored), else None.

        If the current key's token has no item yet (the key was rotated since
        the workflow started waiting), its item is written first. Best effort:
        when the key or the registry cannot be reached, the status is served
        without the URL and the next read tries again.
        """
        if record.status != reg.WAITING_FOR_CALLBACK or not record.callback_id:
            return None
        if not (self.secret_name and self.base_url):
            return None
        try:
            token = mint_token(signing_key(self.secret_name), record.tenant_id, record.callback_id)
            digest = token_hash(token)
            if record.callback_token_hash != digest:
                if not self.registry.reissue_token(record, digest):
                    return None  # the workflow stopped waiting meanwhile
                logger.info("callback token issued for the current signing key")
        except (GetParameterError, ClientError, BotoCoreError) as error:
            logger.warning("callbackUrl left out: the signing key or the registry is unavailable",
                           extra={"error": type(error).__name__})
            return None
        return callback_url(self.base_url, token)
