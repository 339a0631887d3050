"""Handlers of the conformance suite ``wait_for_callback`` (requirements 7-1 .. 7-15); ``handler_7_1`` serves ``7-1``."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, WaitForCallbackConfig
from aws_durable_execution_sdk_python.exceptions import CallbackError
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.serdes import JsonSerDes
from aws_durable_execution_sdk_python.types import WaitForCallbackContext

TIMEOUT_3S = WaitForCallbackConfig(timeout=Duration.from_seconds(3))
HEARTBEAT_5S = WaitForCallbackConfig(heartbeat_timeout=Duration.from_seconds(5))
HEARTBEAT_10S = WaitForCallbackConfig(heartbeat_timeout=Duration.from_seconds(10))
SUBMITTER_TWO_ATTEMPTS_1S_APART = WaitForCallbackConfig(retry_strategy=create_retry_strategy(
    RetryStrategyConfig(max_attempts=2, initial_delay=Duration.from_seconds(1), jitter_strategy=JitterStrategy.NONE)))
JSON_RESULT = WaitForCallbackConfig(serdes=JsonSerDes())


def register(callback_id: str, context: WaitForCallbackContext) -> None:
    """The submitter: hands the callback id on (here: nowhere) and does nothing durable."""


def refuse(callback_id: str, context: WaitForCallbackContext) -> None:
    """A submitter that fails on every attempt (7-7)."""
    raise RuntimeError("the external system cannot be reached")


@durable_execution
def handler_7_1(event: str, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name=event)


@durable_execution
def handler_7_2(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name="approval")


@durable_execution
def handler_7_3(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(lambda callback_id, _: None)


@durable_execution
def handler_7_4(event: str, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name=event)


@durable_execution
def handler_7_5(event: str, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name=event, config=TIMEOUT_3S)


@durable_execution
def handler_7_6(event: str, context: DurableContext) -> Any:
    try:
        return context.wait_for_callback(register, name=event)
    except CallbackError:
        return "recovered"


@durable_execution
def handler_7_7(event: str, context: DurableContext) -> Any:
    return context.wait_for_callback(refuse, name=event, config=SUBMITTER_TWO_ATTEMPTS_1S_APART)


@durable_execution
def handler_7_8(event: str, context: DurableContext) -> Any:
    return context.run_in_child_context(lambda child: child.wait_for_callback(register, name=event), name="wrapper")


@durable_execution
def handler_7_9(event: Any, context: DurableContext) -> Any:
    context.wait_for_callback(register, name="first")
    return context.wait_for_callback(register, name="second")


@durable_execution
def handler_7_10(event: str, context: DurableContext) -> Any:
    context.wait(Duration.from_seconds(1))
    context.step(lambda _: {"prepared": True})
    return context.wait_for_callback(register, name=event)


@durable_execution
def handler_7_11(event: str, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name=event, config=JSON_RESULT)["status"]


@durable_execution
def handler_7_12(event: str, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name=event, config=HEARTBEAT_5S)


@durable_execution
def handler_7_13(event: str, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name=event, config=HEARTBEAT_10S)


@durable_execution
def handler_7_14(event: str, context: DurableContext) -> Any:
    try:
        return context.wait_for_callback(register, name=event, config=TIMEOUT_3S)
    except CallbackError:
        return "timed-out-handled"


@durable_execution
def handler_7_15(event: str, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name=event)
