"""Callback tokens and 'Workflow Waiting For Callback' notifications on loopback.

One place for the names and the event pattern the Terraform uses too:

* the Secrets Manager secret holding the tokens' HMAC key: ``<prefix>-callback-signing-key``;
* the EventBridge bus the callback submitter puts its event on: ``<prefix>-workflow-events``;
* per tenant, a rule on that bus matching the contract's source and detail-type
  and ``detail.tenantId = [tenant]``, whose target is that tenant's SQS queue: a
  tenant's external system reads its own queue and never sees another tenant's
  events. These are created at runtime by the provisioner (src/provisioner, with
  its own boto3 calls against this moto server), named by
  ``shared.tenants.tenant_resource_names``, exactly as on AWS.

:class:`LocalNotifications` creates the secret and the bus on the moto server of
``proving-ground/local/services/dynamodb.py`` (moto's server answers every AWS service on one port).
moto keeps Secrets Manager, EventBridge and SQS in memory: they are recreated at
every start, and the stack reconciles every ACTIVE and SUSPENDED tenant, which
creates its rule and queue again. The signing key itself is generated once and kept in the state
directory (mode 0600), so tokens handed out before a restart stay valid after
it; messages still in a queue at shutdown are lost (the GET of a waiting
workflow still returns its ``callbackUrl``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from shared.tenants import tenant_resource_names

logger = logging.getLogger(__name__)

SIGNING_KEY_FILE = "callback-signing-key"
# What the stack tells ``make demo`` (and anyone else) about the queues it created.
QUEUES_FILE = "callback-queues.json"


def signing_secret_name(prefix: str) -> str:
    """The Secrets Manager secret whose value is the callback tokens' HMAC key."""
    return f"{prefix}-callback-signing-key"


def event_bus_name(prefix: str) -> str:
    """The EventBridge bus 'Workflow Waiting For Callback' events go to."""
    return f"{prefix}-workflow-events"


def callback_queue_name(prefix: str, tenant_id: str) -> str:
    """The SQS queue that receives ``tenant_id``'s waiting events (and no other tenant's)."""
    return tenant_resource_names(prefix, tenant_id).callback_queue


def callback_rule_name(prefix: str, tenant_id: str) -> str:
    """The rule on the bus that routes ``tenant_id``'s waiting events to its queue."""
    return tenant_resource_names(prefix, tenant_id).callback_rule


def ensure_signing_key(state_dir: Path) -> str:
    """The signing key kept in ``state_dir`` (owner-only), generated on first use."""
    path = Path(state_dir) / SIGNING_KEY_FILE
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            os.chmod(path, 0o600)
            return value
    value = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as key_file:
        key_file.write(value + "\n")
    os.chmod(path, 0o600)  # also when the file existed empty with other permissions
    return value


def read_queues_file(path: Path) -> dict[str, Any] | None:
    """``{"apiUrl", "endpointUrl", "region", "queues": {tenant: url}}`` as the stack wrote it, or ``None``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("queues"), dict) else None


class LocalNotifications:
    """The secret and the bus on the local moto server (the provisioner adds each tenant's rule and queue).

    Args:
        endpoint_url: moto's server (the one ``proving-ground/local/services/dynamodb.py`` starts).
        region: Region of the resources.
        prefix: The name prefix (Terraform's ``name_prefix``).
        state_dir: Where the signing key and the queues file live.
        api_url: The REST API the callback URLs point at (recorded in the queues file).
    """

    def __init__(self, *, endpoint_url: str, region: str, prefix: str, state_dir: Path, api_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.prefix = prefix
        self.state_dir = Path(state_dir)
        self.api_url = api_url
        self.secret_name = signing_secret_name(prefix)
        self.bus_name = event_bus_name(prefix)
        self.queue_urls: dict[str, str] = {}

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 2}),
        )

    def start(self) -> None:
        """Create the secret (with the kept key) and the bus."""
        self.client("secretsmanager").create_secret(Name=self.secret_name,
                                                    SecretString=ensure_signing_key(self.state_dir))
        self.client("events").create_event_bus(Name=self.bus_name)
        logger.info("callback notifications ready: bus %s", self.bus_name)

    def write_queues_file(self, queue_urls: dict[str, str]) -> None:
        """Record the tenants' queues (from their items' ``callbackQueueUrl``) for ``make demo`` and the banner."""
        self.queue_urls = dict(queue_urls)
        path = self.state_dir / QUEUES_FILE
        path.write_text(json.dumps({"apiUrl": self.api_url, "endpointUrl": self.endpoint_url, "region": self.region,
                                    "queues": self.queue_urls}, indent=2) + "\n", encoding="utf-8")

    def function_environment(self, callback_base_url: str) -> dict[str, str]:
        """What the functions need to mint tokens, emit events and create queues against this moto server."""
        return {
            "CALLBACK_SIGNING_SECRET_NAME": self.secret_name,
            "CALLBACK_BASE_URL": callback_base_url,
            "EVENT_BUS_NAME": self.bus_name,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.endpoint_url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": self.endpoint_url,
            "AWS_ENDPOINT_URL_SQS": self.endpoint_url,
        }
