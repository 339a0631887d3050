"""LocalDynamoDB in this process: snapshots only when a request may have written, never a scan while idle."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.services.dynamodb import SNAPSHOT_FILE, LocalDynamoDB, for_dynamodb, may_change, pattern_tables
from local.runtime.functions import Names
from local.services.notifications import LocalNotifications
from tests.harness import free_port, wait_until

def registry_item(workflow_id: str) -> dict[str, Any]:
    return {"tenantId": {"S": "tenant-a"}, "recordId": {"S": f"workflow#{workflow_id}"}, "status": {"S": "STARTED"}}


@pytest.fixture(autouse=True)
def names(monkeypatch: pytest.MonkeyPatch) -> Names:
    """Table names of their own per test: moto's tables live as long as this process, whatever server serves them."""
    unique = Names(f"test-{uuid.uuid4().hex[:8]}")
    monkeypatch.setitem(globals(), "NAMES", unique)
    return unique


NAMES = Names()


def start_dynamodb(state_dir: Path, interval: float) -> LocalDynamoDB:
    dynamodb = LocalDynamoDB(host="127.0.0.1", port=free_port(), state_dir=state_dir,
                             tables=pattern_tables(NAMES), region="us-east-1", snapshot_interval=interval)
    dynamodb.start()
    return dynamodb


@pytest.fixture(name="dynamodb")
def dynamodb_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalDynamoDB, list[int]]]:
    """Started with no periodic thread (the test calls ``snapshot()``), with its table scans counted."""
    dynamodb = start_dynamodb(tmp_path, interval=0)
    scans: list[int] = []
    scan_all = dynamodb._scan_all  # noqa: SLF001 - counting what the snapshot reads

    def counted() -> dict[str, list[dict[str, Any]]]:
        scans.append(1)
        return scan_all()

    monkeypatch.setattr(dynamodb, "_scan_all", counted)
    yield dynamodb, scans
    dynamodb.stop()


def snapshot_items(state_dir: Path) -> list[str]:
    tables = json.loads((state_dir / SNAPSHOT_FILE).read_text())["tables"]
    return sorted(item["recordId"]["S"] for item in tables[NAMES.workflows_table])


def test_no_scan_and_no_snapshot_while_nothing_changed_then_one_after_a_write(
        dynamodb: tuple[LocalDynamoDB, list[int]], tmp_path: Path) -> None:
    db, scans = dynamodb
    assert db.snapshot() is True  # the tables were created and seeded: the first check writes
    assert len(scans) == 1
    written = (tmp_path / SNAPSHOT_FILE).stat().st_mtime_ns

    # WHEN nothing but reads reach DynamoDB
    client = db._client  # noqa: SLF001
    client.get_item(TableName=NAMES.tenants_table, Key={"tenantId": {"S": "tenant-a"}})
    client.scan(TableName=NAMES.workflows_table)
    client.list_tables()
    checks = [db.snapshot() for _ in range(20)]

    # THEN no check scanned and none wrote
    assert checks == [False] * 20
    assert len(scans) == 1
    assert (tmp_path / SNAPSHOT_FILE).stat().st_mtime_ns == written

    # WHEN an item is written THEN the next check scans once and writes it, the one after does nothing
    client.put_item(TableName=NAMES.workflows_table, Item=registry_item("wf-1"))
    assert db.snapshot() is True
    assert (len(scans), snapshot_items(tmp_path)) == (2, ["workflow#wf-1"])
    assert db.snapshot() is False
    assert len(scans) == 2

    # WHEN a write changes nothing (the same item again) THEN the check scans but does not write
    client.put_item(TableName=NAMES.workflows_table, Item=registry_item("wf-1"))
    assert db.snapshot() is False
    assert len(scans) == 3


def test_periodic_snapshots_stop_scanning_while_idle_and_follow_a_write(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[float] = []
    original = LocalDynamoDB._scan_all  # noqa: SLF001

    def counted(self: LocalDynamoDB) -> dict[str, list[dict[str, Any]]]:
        scans.append(time.monotonic())
        return original(self)

    monkeypatch.setattr(LocalDynamoDB, "_scan_all", counted)
    db = start_dynamodb(tmp_path, interval=0.05)
    try:
        wait_until(lambda: (tmp_path / SNAPSHOT_FILE).exists(), 5, "first snapshot")
        time.sleep(0.2)
        idle_from = len(scans)
        time.sleep(0.6)  # a dozen checks
        assert len(scans) == idle_from

        db._client.put_item(TableName=NAMES.workflows_table, Item=registry_item("wf-2"))  # noqa: SLF001
        wait_until(lambda: snapshot_items(tmp_path) == ["workflow#wf-2"], 5, "snapshot of the write")
    finally:
        db.stop()


def test_stop_writes_a_last_snapshot(tmp_path: Path) -> None:
    # (restoring it at start is covered end to end by tests/local/test_local_stack.py, which restarts the stack)
    db = start_dynamodb(tmp_path, interval=0)
    db._client.put_item(TableName=NAMES.workflows_table, Item=registry_item("wf-3"))  # noqa: SLF001
    db.stop()
    assert snapshot_items(tmp_path) == ["workflow#wf-3"]


def test_moto_keeps_no_copy_of_the_items_a_read_returned(dynamodb: tuple[LocalDynamoDB, list[int]]) -> None:
    from moto.dynamodb.models.dynamo_type import Item

    db, _ = dynamodb
    client = db._client  # noqa: SLF001
    for index in range(20):
        client.put_item(TableName=NAMES.workflows_table, Item=registry_item(f"wf-{index}"))
    for _ in range(10):
        client.scan(TableName=NAMES.workflows_table)

    # moto's BaseModel would have kept every item each scan deep-copied (200 here), for good
    assert len(Item.instances_tracked) == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(("target", "changes"), [
    ("DynamoDB_20120810.PutItem", True),
    ("DynamoDB_20120810.UpdateItem", True),
    ("DynamoDB_20120810.DeleteItem", True),
    ("DynamoDB_20120810.BatchWriteItem", True),
    ("DynamoDB_20120810.TransactWriteItems", True),
    ("DynamoDB_20120810.ExecuteStatement", True),
    ("DynamoDB_20120810.CreateTable", True),
    (None, True),
    ("DynamoDB_20120810.GetItem", False),
    ("DynamoDB_20120810.Query", False),
    ("DynamoDB_20120810.Scan", False),
    ("DynamoDB_20120810.ListTables", False),
])
def test_which_requests_may_change_a_table(target: str | None, changes: bool) -> None:
    assert may_change(target) is changes


@pytest.mark.parametrize(("authorization", "dynamodb"), [
    ("AWS4-HMAC-SHA256 Credential=local/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x", True),
    ("AWS4-HMAC-SHA256 Credential=local/20261201/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x", False),
    ("AWS4-HMAC-SHA256 Credential=local/20261201/us-east-1/events/aws4_request, SignedHeaders=host, Signature=x", False),
    ("AWS4-HMAC-SHA256 Credential=local/20261201/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=x",
     False),
    (None, True),  # unsigned: counted, at worst one scan too many
])
def test_only_dynamodb_requests_are_serialized_and_counted(authorization: str | None, dynamodb: bool) -> None:
    environ = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    assert for_dynamodb(environ) is dynamodb


def test_an_sqs_long_poll_on_the_same_server_neither_blocks_dynamodb_nor_counts_as_a_change(
    dynamodb: tuple[LocalDynamoDB, list[int]], tmp_path: Path
) -> None:
    # GIVEN a callback queue on DynamoDB's moto server, as the provisioner creates them
    db, _ = dynamodb
    notifications = LocalNotifications(endpoint_url=db.url, region="us-east-1", prefix=NAMES.prefix,
                                       state_dir=tmp_path, api_url="http://127.0.0.1:9")
    notifications.start()
    queue_url = notifications.client("sqs").create_queue(QueueName=f"{NAMES.prefix}-callbacks-tenant-a")["QueueUrl"]
    changes = db._server.changes.count  # noqa: SLF001
    sqs = notifications.client("sqs")
    # WHEN a confirmer long-polls an empty queue
    poll = threading.Thread(target=lambda: sqs.receive_message(
        QueueUrl=queue_url, WaitTimeSeconds=3))
    poll.start()
    time.sleep(0.3)
    # THEN a DynamoDB call meanwhile answers at once (it is not queued behind the poll)
    started = time.monotonic()
    db._client.get_item(TableName=NAMES.workflows_table,  # noqa: SLF001
                        Key={"tenantId": {"S": "tenant-a"}, "recordId": {"S": "workflow#none"}})
    assert time.monotonic() - started < 1.5
    poll.join()
    # and nothing the queues or the bus did counts as a table change
    assert db._server.changes.count == changes  # noqa: SLF001
