"""DynamoDB on loopback: moto's server, the pattern's two tables, seed data and persistence.

moto keeps tables in memory only, so the tables are snapshotted to
``<state dir>/dynamodb.json`` (periodically when they changed, and at shutdown) and
restored at start: a waiting workflow's registry item survives a restart.

"When they changed" is known without reading the tables: a WSGI middleware in front
of moto (:class:`ChangeCounter`) counts the requests that may write, and a periodic
check only scans when that count moved. An idle stack never scans: each scan costs
CPU, and (see :func:`stop_tracking_dynamodb_instances`) leaked memory in moto.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config
from scripts.terraform_tables import TableSpec, table_spec

from local.runtime.functions import Names
from shared.contract import demo_tenants as shared_demo_tenants
from shared.tenants import tenant_item

logger = logging.getLogger(__name__)

SNAPSHOT_FILE = "dynamodb.json"

# DynamoDB operations that never change an item. Any other request reaching moto
# (PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems, PartiQL,
# table operations, anything unknown) counts as a possible change: at worst one scan
# too many, never a change left out of the snapshot.
READ_ONLY_OPERATIONS = frozenset({
    "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable", "ListTables",
    "DescribeTimeToLive", "DescribeContinuousBackups", "DescribeEndpoints", "DescribeLimits", "ListTagsOfResource",
})


def may_change(amz_target: str | None) -> bool:
    """Whether a request with this ``X-Amz-Target`` (``DynamoDB_20120810.PutItem``) may change a table."""
    return (amz_target or "").rpartition(".")[2] not in READ_ONLY_OPERATIONS


_SIGNED_SERVICE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def signed_service(authorization: str | None) -> str | None:
    """The service a SigV4 ``Authorization`` header was signed for (``dynamodb``, ``sqs`` ...), or ``None``."""
    found = _SIGNED_SERVICE.search(authorization or "")
    return found.group(1) if found else None


def for_dynamodb(environ: dict[str, Any]) -> bool:
    """Whether a request to moto's server is (or may be) a DynamoDB request.

    moto's server answers every service on one port and routes by the signed
    service, as this does; an unsigned request counts as DynamoDB (at worst one
    snapshot scan too many).
    """
    service = signed_service(environ.get("HTTP_AUTHORIZATION"))
    return service is None or service == "dynamodb"


class ChangeCounter:
    """WSGI middleware: moto's app, one DynamoDB request at a time, counting the requests that may have changed a table.

    A request is counted once moto has handled it, so a snapshot that reads
    :attr:`count` before it scans never records a count whose change it missed.
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._serial = threading.Lock()
        self._count = 0

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not for_dynamodb(environ):
            # Secrets Manager, EventBridge, SQS (proving-ground/local/services/notifications.py): neither
            # serialized (an SQS long poll would hold every DynamoDB call for 20 s)
            # nor counted (they change no table).
            return self._app(environ, start_response)
        try:
            # One request at a time: moto applies an UpdateItem's SET actions one by
            # one to the stored item, so a concurrent GetItem could read a torn item
            # (a new status without its result). DynamoDB's item writes are atomic.
            with self._serial:
                return self._app(environ, start_response)
        finally:
            if may_change(environ.get("HTTP_X_AMZ_TARGET")):
                with self._lock:
                    self._count += 1


class _NotTracked(list):  # type: ignore[type-arg]
    """A list that stays empty: stands in for moto's per-class instance registry."""

    def append(self, _instance: Any) -> None:
        return None


def stop_tracking_dynamodb_instances() -> None:
    """Make moto's DynamoDB models stop keeping every instance they ever created.

    moto's ``BaseModel.__new__`` appends every instance to its class's
    ``instances_tracked`` list, for moto's dashboard, and never lets go of them;
    Scan, Query and GetItem deep-copy each item they return into a new ``Item``, so
    every read kept a copy of what it read: the 1-second snapshot scan grew the
    stack by about 0.5 MB/s once the registry held a few hundred workflows. Only
    moto's dashboard reads these lists for DynamoDB; this process never serves it.
    The same holds for SQS: every message delivered to a tenant's callback queue
    (proving-ground/local/services/notifications.py) would be kept for good.
    """
    import moto.dynamodb.models  # noqa: F401 - defines (and registers) the model classes
    import moto.sqs.models  # noqa: F401
    from moto.core.model_instances import model_data

    for service in ("dynamodb", "sqs"):
        for model in model_data.get(service, {}).values():
            model.instances_tracked = _NotTracked()  # type: ignore[attr-defined]


class _MotoServer:
    """moto's server (what ``moto.server.ThreadedMotoServer`` runs) with its app behind a :class:`ChangeCounter`."""

    def __init__(self, host: str, port: int) -> None:
        from moto.server import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        self.changes = ChangeCounter(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(host, port, self.changes, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="dynamodb", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def demo_tenants() -> list[dict[str, Any]]:
    """The demo tenants Terraform seeds too, as table items (numbers as ``Decimal``)."""
    return [tenant_item(tenant) for tenant in shared_demo_tenants()]


def pattern_tables(names: Names) -> list[TableSpec]:
    """The tenants table and the workflow registry, with the key schemas main.tf declares."""
    return [table_spec("tenants", names.tenants_table), table_spec("workflows", names.workflows_table)]


class LocalDynamoDB:
    """moto's server in this process, with the pattern's tables.

    Args:
        host: Interface to bind.
        port: Port to bind.
        state_dir: Where the snapshot lives.
        tables: Tables to create.
        region: Region of the tables.
        snapshot_interval: Seconds between change checks; 0 disables periodic snapshots.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        state_dir: Path,
        tables: list[TableSpec],
        region: str,
        snapshot_interval: float = 1.0,
    ) -> None:
        self.url = f"http://{host}:{port}"
        self._host, self._port = host, port
        self._snapshot_path = Path(state_dir) / SNAPSHOT_FILE
        self._tables = tables
        self._region = region
        self._interval = snapshot_interval
        self._server: _MotoServer | None = None
        self._client: Any = None
        self._last_snapshot: str | None = None
        self._snapshot_changes = -1  # ChangeCounter.count when the tables were last read
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, tenants: list[dict[str, Any]] | None = None) -> None:
        """Start moto, create the tables, restore the snapshot and seed ``tenants``.

        Args:
            tenants: Tenant items (numbers as ``Decimal``); default: the demo tenants.
        """
        stop_tracking_dynamodb_instances()
        self._server = _MotoServer(self._host, self._port)  # moto is imported late: a dev dependency
        self._server.start()
        self._client = boto3.client(
            "dynamodb",
            endpoint_url=self.url,
            region_name=self._region,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 2}),
        )
        for table in self._tables:
            self._create(table)
        restored = self._restore()
        self.seed(self._tables[0].name, demo_tenants() if tenants is None else tenants)
        logger.info("dynamodb ready at %s (%d items restored)", self.url, restored)
        if self._interval > 0:
            self._thread = threading.Thread(target=self._snapshot_forever, name="dynamodb-snapshot", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Write a last snapshot and stop moto."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._client is not None:
            self.snapshot(force=True)
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _create(self, table: TableSpec) -> None:
        self._client.create_table(BillingMode="PAY_PER_REQUEST", **table.create_table_arguments())
        if table.ttl_attribute:
            self._client.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )

    def seed(self, table: str, items: list[dict[str, Any]]) -> None:
        """Put plain-JSON items (numbers as ``Decimal``) into ``table``."""
        serializer = TypeSerializer()
        for item in items:
            self._client.put_item(TableName=table, Item={k: serializer.serialize(v) for k, v in item.items()})

    def _scan_all(self) -> dict[str, list[dict[str, Any]]]:
        dump: dict[str, list[dict[str, Any]]] = {}
        for table in self._tables:
            items: list[dict[str, Any]] = []
            for page in self._client.get_paginator("scan").paginate(TableName=table.name):
                items.extend(page["Items"])
            dump[table.name] = items
        return dump

    def snapshot(self, force: bool = False) -> bool:
        """Write the tables to the snapshot file if they changed; returns whether it wrote.

        Args:
            force: Read the tables even if no request that may write came since the last read.
        """
        with self._lock:
            changes = self._server.changes.count if self._server is not None else None
            if not force and changes is not None and changes == self._snapshot_changes:
                return False  # nothing may have changed: no scan
            text = json.dumps({"tables": self._scan_all()}, sort_keys=True)
            if changes is not None:
                self._snapshot_changes = changes
            if text == self._last_snapshot:
                return False
            temporary = self._snapshot_path.with_suffix(".tmp")
            temporary.write_text(text)
            os.replace(temporary, self._snapshot_path)
            self._last_snapshot = text
            return True

    def _restore(self) -> int:
        if not self._snapshot_path.exists():
            return 0
        data = json.loads(self._snapshot_path.read_text())
        known = {table.name for table in self._tables}
        count = 0
        for name, items in data.get("tables", {}).items():
            if name not in known:
                continue
            for item in items:
                self._client.put_item(TableName=name, Item=item)
                count += 1
        return count

    def _snapshot_forever(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.snapshot()
            except Exception:  # noqa: BLE001 - keep snapshotting; the next pass may succeed
                logger.exception("dynamodb snapshot failed")

    def healthy(self) -> bool:
        try:
            self._client.list_tables()
        except Exception:  # noqa: BLE001
            return False
        return True
