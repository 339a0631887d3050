"""Handlers of the conformance suite ``step`` (requirements 1-1 .. 1-20), written from each requirement's
``handler:`` and ``invocations:`` text. ``handler_1_1`` serves requirement ``1-1``, and so on.

The local Lambda service loads them as it loads any function (``code_dir`` = this directory).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig, StepSemantics
from aws_durable_execution_sdk_python.retries import (
    RetryDecision,
    RetryPresets,
    RetryStrategyConfig,
    create_retry_strategy,
)
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext
from aws_durable_execution_sdk_python.types import StepContext

from aws_lambda_powertools import Logger

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())
RETRY_ONCE_AFTER_1S = create_retry_strategy(
    RetryStrategyConfig(max_attempts=2, initial_delay=Duration.from_seconds(1), jitter_strategy=JitterStrategy.NONE))
FOUR_ATTEMPTS_1S_APART = create_retry_strategy(
    RetryStrategyConfig(max_attempts=4, initial_delay=Duration.from_seconds(1), backoff_rate=1,
                        jitter_strategy=JitterStrategy.NONE))
FIVE_ATTEMPTS_2S_TIMES_3 = create_retry_strategy(
    RetryStrategyConfig(max_attempts=5, initial_delay=Duration.from_seconds(2), backoff_rate=3,
                        jitter_strategy=JitterStrategy.NONE))
# Lambda's JSON log lines: the context logger's executionArn (and operation fields) become keys.
LOGGER = Logger(service="conformance")


class TransientError(Exception):
    """The error 1-15 and 1-16 retry (or not) by type."""


def greeting(name: Any) -> str:
    return f"Hello, {name}!"


@durable_execution
def handler_1_1(event: Any, context: DurableContext) -> str:
    return context.step(lambda _: greeting(event))


@durable_execution
def handler_1_2(event: Any, context: DurableContext) -> str:
    return context.step(lambda _: greeting(event), name="custom_step_name")


@durable_execution
def handler_1_3(event: Any, context: DurableContext) -> str:
    first = context.step(lambda _: "first")
    return context.step(lambda _: f"{first}_second")


@durable_execution
def handler_1_4(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    return context.step(lambda _: {"user": {"name": event["name"], "tags": list(event["tags"])},
                                   "count": len(event["tags"])})


@durable_execution
def handler_1_5(event: Any, context: DurableContext) -> None:
    return context.step(lambda _: None)


class UppercaseSerDes(SerDes[Any]):
    """Serializes every string value upper-cased (1-6)."""

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        return json.dumps(value.upper() if isinstance(value, str) else value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        return json.loads(data)


@durable_execution
def handler_1_6(event: str, context: DurableContext) -> str:
    return context.step(lambda _: event, config=StepConfig(serdes=UppercaseSerDes()))


@durable_execution
def handler_1_7(event: str, context: DurableContext) -> str:
    context.set_logger(LOGGER)

    def greet(step: StepContext) -> str:
        step.logger.info(f"Greeting step started for: {event}")
        result = greeting(event)
        step.logger.info(f"Greeting step completed with: {result}")
        return result

    return context.step(greet)


@durable_execution
def handler_1_8(event: Any, context: DurableContext) -> str:
    result = context.step(lambda _: "computed")
    context.wait(Duration.from_seconds(2))
    return result


@durable_execution
def handler_1_9(event: Any, context: DurableContext) -> str:
    def run(_: StepContext) -> str:
        print("step executed", flush=True)
        return "cached_value"

    result = context.step(run)
    context.wait(Duration.from_seconds(1))
    return result


@durable_execution
def handler_1_10(event: Any, context: DurableContext) -> str:
    def fail(_: StepContext) -> str:
        print("step executed", flush=True)
        raise RuntimeError("permanent failure")

    try:
        context.step(fail, config=NO_RETRY)
    except Exception:  # noqa: BLE001 - the requirement catches whatever the step raises
        pass
    context.wait(Duration.from_seconds(1))
    return "caught"


def fails_until_attempt(succeeding_attempt: int, result: str = "Operation succeeded"):
    """A step function that raises before ``succeeding_attempt`` and returns ``result`` on it."""

    def run(step: StepContext) -> str:
        if step.attempt < succeeding_attempt:
            raise RuntimeError(f"attempt {step.attempt} fails")
        return result

    return run


@durable_execution
def handler_1_11(event: Any, context: DurableContext) -> str:
    return context.step(fails_until_attempt(2), config=StepConfig(retry_strategy=RETRY_ONCE_AFTER_1S))


@durable_execution
def handler_1_12(event: Any, context: DurableContext) -> str:
    return context.step(fails_until_attempt(99), config=StepConfig(retry_strategy=FOUR_ATTEMPTS_1S_APART))


@durable_execution
def handler_1_13(event: Any, context: DurableContext) -> str:
    return context.step(fails_until_attempt(3))


@durable_execution
def handler_1_14(event: Any, context: DurableContext) -> str:
    return context.step(fails_until_attempt(3), config=StepConfig(retry_strategy=FIVE_ATTEMPTS_2S_TIMES_3))


def retry_on_transient(error: Exception, attempt: int) -> RetryDecision:
    if isinstance(error, TransientError) and attempt < 3:
        return RetryDecision.retry(Duration.from_seconds(1))
    return RetryDecision.no_retry()


def no_retry_on_transient(error: Exception, attempt: int) -> RetryDecision:
    if isinstance(error, TransientError):
        return RetryDecision.no_retry()
    return RetryDecision.retry(Duration.from_seconds(1))


def transient_until_attempt(succeeding_attempt: int):
    def run(step: StepContext) -> str:
        if step.attempt < succeeding_attempt:
            raise TransientError(f"attempt {step.attempt}: transient")
        return "recovered"

    return run


@durable_execution
def handler_1_15(event: Any, context: DurableContext) -> str:
    return context.step(transient_until_attempt(2), config=StepConfig(retry_strategy=retry_on_transient))


@durable_execution
def handler_1_16(event: Any, context: DurableContext) -> str:
    return context.step(transient_until_attempt(99), config=StepConfig(retry_strategy=no_retry_on_transient))


def crash_on_first_attempt(event: str, always: bool):
    """Logs the input, then ends the process (Runtime.ExitError) on attempt 1 (or on every attempt)."""

    def run(step: StepContext) -> str:
        step.logger.info(f"at-most-once step runs for {event}")
        if always or step.attempt == 1:
            sys.exit(1)
        return "succeeded on second attempt"

    return run


@durable_execution
def handler_1_17(event: str, context: DurableContext) -> str:
    context.set_logger(LOGGER)
    config = StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry_strategy=RetryPresets.none())
    return context.step(crash_on_first_attempt(event, always=True), name="at_most_once_flaky_step", config=config)


@durable_execution
def handler_1_18(event: str, context: DurableContext) -> str:
    context.set_logger(LOGGER)
    config = StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry_strategy=RETRY_ONCE_AFTER_1S)
    return context.step(crash_on_first_attempt(event, always=False), config=config)


@durable_execution
def handler_1_19(event: Any, context: DurableContext) -> str:
    return context.step(fails_until_attempt(99), config=NO_RETRY)


@durable_execution
def handler_1_20(event: Any, context: DurableContext) -> str:
    try:
        value = context.step(fails_until_attempt(99), config=NO_RETRY)
    except Exception:  # noqa: BLE001 - the requirement catches the step's error and goes on
        value = "fallback_result"
    return context.step(lambda _: value)


