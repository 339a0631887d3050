"""A tiny handler for the worker-pool tests: reports where it ran, and misbehaves on request."""

from __future__ import annotations

import os
from decimal import Decimal
import tempfile
import time
from pathlib import Path
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("crash"):
        os._exit(3)
    if event.get("raise"):
        raise ValueError(event["raise"])
    if event.get("chained"):
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise RuntimeError(event["chained"]) from inner
    if event.get("decimal"):
        return {"amount": Decimal(event["decimal"]), "count": Decimal("3")}
    if event.get("unmarshallable"):
        return {"tags": {"a"}}
    if event.get("identity"):
        identity = context.identity
        return {"identityType": type(identity).__name__, "cognitoIdentityId": identity.cognito_identity_id,
                "cognitoIdentityPoolId": identity.cognito_identity_pool_id, "clientContext": context.client_context}
    if event.get("write"):
        Path(tempfile.gettempdir(), event["write"]).write_text(context.tenant_id or "-")
    return {
        "pid": os.getpid(),
        "tmpdir": tempfile.gettempdir(),
        "files": sorted(os.listdir(tempfile.gettempdir())),
        "tenant": context.tenant_id,
        "environmentId": os.environ.get("LOCAL_LAMBDA_ENVIRONMENT_ID"),
        "remainingMs": context.get_remaining_time_in_millis(),
    }
