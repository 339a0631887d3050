"""Handlers of the conformance suite ``callback`` (requirements 4-1 .. 4-19); ``handler_4_1`` serves ``4-1``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration
from aws_durable_execution_sdk_python.exceptions import CallbackError
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext

TIMEOUT_5S = CallbackConfig(timeout=Duration.from_seconds(5))
TIMEOUT_3S = CallbackConfig(timeout=Duration.from_seconds(3))
HEARTBEAT_5S = CallbackConfig(heartbeat_timeout=Duration.from_seconds(5))
HEARTBEAT_10S = CallbackConfig(heartbeat_timeout=Duration.from_seconds(10))


@durable_execution
def handler_4_1(event: str, context: DurableContext) -> Any:
    return context.create_callback(name=event).result()


@durable_execution
def handler_4_2(event: Any, context: DurableContext) -> Any:
    return context.create_callback(name="approval").result()


@durable_execution
def handler_4_3(event: str, context: DurableContext) -> Any:
    return context.create_callback(name=event, config=TIMEOUT_5S).result()


@durable_execution
def handler_4_4(event: str, context: DurableContext) -> Any:
    return context.create_callback(name=event, config=HEARTBEAT_5S).result()


@durable_execution
def handler_4_5(event: str, context: DurableContext) -> Any:
    return context.create_callback(name=event, config=HEARTBEAT_10S).result()


@durable_execution
def handler_4_6(event: str, context: DurableContext) -> Any:
    return context.create_callback(name=event).result()


@durable_execution
def handler_4_7(event: str, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    context.step(lambda _: "between")
    return callback.result()


@durable_execution
def handler_4_8(event: str, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=TIMEOUT_5S)
    context.step(lambda _: "between")
    return callback.result()


@durable_execution
def handler_4_9(event: str, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    context.wait(Duration.from_seconds(5))
    return callback.result()


@durable_execution
def handler_4_10(event: str, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    context.wait(Duration.from_seconds(5))
    return callback.result()


@durable_execution
def handler_4_11(event: str, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=TIMEOUT_3S)
    context.wait(Duration.from_seconds(6))
    return callback.result()


@durable_execution
def handler_4_12(event: str, context: DurableContext) -> Any:
    result = context.create_callback(name=event).result()
    context.wait(Duration.from_seconds(2))
    return result


@durable_execution
def handler_4_13(event: str, context: DurableContext) -> str:
    try:
        message = str(context.create_callback(name=event).result())
    except CallbackError as error:
        message = f"callback failed: {error}"
    context.wait(Duration.from_seconds(2))
    return message


@durable_execution
def handler_4_14(event: str, context: DurableContext) -> str:
    try:
        message = str(context.create_callback(name=event, config=TIMEOUT_3S).result())
    except CallbackError as error:
        message = f"callback timed out: {error}"
    context.wait(Duration.from_seconds(2))
    return message


class ReceivedSerDes(SerDes[dict[str, Any]]):
    """Reads the JSON payload into an object whose ISO timestamp becomes epoch seconds (4-15)."""

    def serialize(self, value: dict[str, Any], serdes_context: SerDesContext) -> str:
        return json.dumps(value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> dict[str, Any]:
        received = json.loads(data)
        stamp = datetime.fromisoformat(received["timestamp"].replace("Z", "+00:00"))
        return {**received, "timestamp": int(stamp.timestamp())}


class NumberSerDes(SerDes[int]):
    """Reads the payload as a number (4-16)."""

    def serialize(self, value: int, serdes_context: SerDesContext) -> str:
        return json.dumps(value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> int:
        return int(json.loads(data))


@durable_execution
def handler_4_15(event: str, context: DurableContext) -> dict[str, Any]:
    received = context.create_callback(name=event, config=CallbackConfig(serdes=ReceivedSerDes())).result()
    return {"received": received}


@durable_execution
def handler_4_16(event: str, context: DurableContext) -> dict[str, int]:
    count = context.create_callback(name=event, config=CallbackConfig(serdes=NumberSerDes())).result()
    return {"count": count, "doubled": count * 2}


@durable_execution
def handler_4_17(event: list[str], context: DurableContext) -> list[Any]:
    first = context.create_callback(name=event[0]).result()
    second = context.create_callback(name=event[1]).result()
    return [first, second]


@durable_execution
def handler_4_18(event: list[str], context: DurableContext) -> list[Any]:
    first, second = context.create_callback(name=event[0]), context.create_callback(name=event[1])
    return [first.result(), second.result()]


@durable_execution
def handler_4_19(event: list[str], context: DurableContext) -> list[Any]:
    first, second = context.create_callback(name=event[0]), context.create_callback(name=event[1])
    second_result = second.result()
    return [first.result(), second_result]
