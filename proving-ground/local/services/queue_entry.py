"""The queue entry's shared resource on loopback: the router's dead-letter queue (router.tf's
``aws_sqs_queue.router_dead_letter``), on the moto server.

Each tenant's start queue and its event source mapping are runtime resources:
the provisioner creates them (src/provisioner), as on AWS. moto keeps queues in
memory only, so this queue is created at every start, empty.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from local.runtime.functions import ACCOUNT_ID
from provisioner.start_queues import router_dead_letter_queue_name

# router.tf: encrypted with SQS's own key, 14 days' retention (tests/local/test_router_e2e.py compares).
ROUTER_DEAD_LETTER_QUEUE_ATTRIBUTES = {"SqsManagedSseEnabled": "true", "MessageRetentionPeriod": "1209600"}


def router_dead_letter_queue_url(endpoint_url: str, prefix: str) -> str:
    """The queue's URL on the moto server (moto's form: ``<endpoint>/<account>/<name>``), known before it exists."""
    return f"{endpoint_url}/{ACCOUNT_ID}/{router_dead_letter_queue_name(prefix)}"


def create_router_dead_letter_queue(endpoint_url: str, region: str, prefix: str) -> str:
    """Create the router's dead-letter queue; its URL (the one :func:`router_dead_letter_queue_url` foretold)."""
    sqs: Any = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region, aws_access_key_id="local",
                            aws_secret_access_key="local",  # noqa: S106 - moto's fake credentials
                            config=Config(retries={"max_attempts": 2}))
    url = str(sqs.create_queue(QueueName=router_dead_letter_queue_name(prefix),
                               Attributes=ROUTER_DEAD_LETTER_QUEUE_ATTRIBUTES)["QueueUrl"])
    if url != router_dead_letter_queue_url(endpoint_url, prefix):
        raise RuntimeError(f"moto named the router's dead-letter queue {url}, not the URL the router was given")
    return url
