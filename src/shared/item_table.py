"""A DynamoDB table on a low-level boto3 client, answering the resource ``Table`` calls this code makes.

``boto3.resource("dynamodb")`` costs about 80 ms more per cold start than
``boto3.client("dynamodb")``: it imports ``boto3.resources``, scans every service
directory for resource models and builds classes from one (measured by
``make bench``, see ``docs/benchmarks.md``). The registry and the tenant read only
need ``get_item``, ``put_item``, ``update_item`` and ``meta.client``, with Python
values in and out, so this class gives exactly that on a client, converting
values with the same ``TypeSerializer``/``TypeDeserializer`` the resource uses
(numbers come back as ``Decimal``, a ``float`` is refused).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
# Request parameters holding attribute values, and response fields holding an item.
_VALUE_PARAMETERS = ("Item", "Key", "ExpressionAttributeValues")
_ITEM_FIELDS = ("Item", "Attributes")


def _to_wire(parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {key: _SERIALIZER.serialize(value) for key, value in given.items()}
        if name in _VALUE_PARAMETERS else given
        for name, given in parameters.items()
    }


def _from_wire(response: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {key: _DESERIALIZER.deserialize(value) for key, value in given.items()}
        if name in _ITEM_FIELDS else given
        for name, given in response.items()
    }


class ItemTable:
    """``get_item``/``put_item``/``update_item`` of one table, as a boto3 ``Table`` resource offers them.

    Args:
        client: A boto3 DynamoDB client.
        name: The table name.
    """

    def __init__(self, client: Any, name: str) -> None:
        self.name = name
        self.meta = SimpleNamespace(client=client)

    def _call(self, operation: str, parameters: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self.meta.client, operation)
        return _from_wire(method(TableName=self.name, **_to_wire(parameters)))

    def get_item(self, **parameters: Any) -> dict[str, Any]:
        """``GetItem``; the response's ``Item`` holds Python values."""
        return self._call("get_item", parameters)

    def put_item(self, **parameters: Any) -> dict[str, Any]:
        """``PutItem`` of an ``Item`` of Python values."""
        return self._call("put_item", parameters)

    def update_item(self, **parameters: Any) -> dict[str, Any]:
        """``UpdateItem``; ``Key`` and ``ExpressionAttributeValues`` hold Python values."""
        return self._call("update_item", parameters)
