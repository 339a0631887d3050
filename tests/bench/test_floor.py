"""The floor's in-process runner: the handler runs in this process, timed; its error is the invocation's error."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench.floor import InProcessRunner
from local.runtime.functions import FunctionConfig
from local.runtime.workers import InvocationContext

FUNCTION = FunctionConfig(name="tenant-durable-workflow", handler="workflow.app.handler", per_tenant=True, durable=True)
CONTEXT = InvocationContext(request_id="r-1", tenant_id="tenant-a", function_version="1",
                            invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:x:live")


def test_runs_the_handler_with_a_lambda_context_and_reports_times_and_store_reads() -> None:
    seen: list[Any] = []
    runner = InProcessRunner(lambda event, context: seen.append((event, context)) or {"ok": True},
                             SimpleNamespace(store_reads=3))
    result = runner.invoke(FUNCTION, {"n": 1}, CONTEXT)
    assert result.payload == {"ok": True} and result.function_error is None
    event, context = seen[0]
    assert event == {"n": 1} and context.tenant_id == "tenant-a" and context.aws_request_id == "r-1"
    (described,) = runner.describe()
    assert len(described["handlerMs"]) == 1 and described["storeReads"] == 3


def test_a_handler_error_is_an_unhandled_function_error() -> None:
    def fail(event: Any, context: Any) -> Any:
        raise ValueError("boom")

    result = InProcessRunner(fail, SimpleNamespace(store_reads=0)).invoke(FUNCTION, {}, CONTEXT)
    assert result.function_error == "Unhandled" and result.payload["errorMessage"] == "boom"
