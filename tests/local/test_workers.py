"""Worker pools of the local Lambda service, with a tiny handler (no stack needed)."""

from __future__ import annotations

import concurrent.futures
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.runtime.functions import FunctionConfig
from local.runtime.workers import InvocationContext, Worker, WorkerPools

pytestmark = pytest.mark.slow

HANDLERS = Path(__file__).resolve().parent / "handlers"
ECHO = FunctionConfig(name="echo", handler="echo_handler.handler", per_tenant=True, timeout_seconds=20, code_dir=HANDLERS)
SHARED_ECHO = FunctionConfig(name="echo-shared", handler="echo_handler.handler", code_dir=HANDLERS)


def context(tenant_id: str | None) -> InvocationContext:
    return InvocationContext(str(uuid.uuid4()), tenant_id, "1", "arn:aws:lambda:us-east-1:123456789012:function:echo:live")


@pytest.fixture
def pools(tmp_path: Path) -> Iterator[WorkerPools]:
    pools = WorkerPools(region="us-east-1", tmp_root=tmp_path / "workers", idle_timeout=60, max_workers_per_pool=3)
    yield pools
    pools.shutdown()


def test_each_tenant_gets_its_own_process_and_temporary_directory(pools: WorkerPools) -> None:
    # GIVEN two tenants WHEN each invokes twice
    a1 = pools.invoke(ECHO, {"write": "secret-of-a"}, context("tenant-a")).payload
    b1 = pools.invoke(ECHO, {}, context("tenant-b")).payload
    a2 = pools.invoke(ECHO, {}, context("tenant-a")).payload

    # THEN a tenant's second invocation is warm in its own process, never in the other's
    assert a1["pid"] == a2["pid"] != b1["pid"]
    assert a1["tenant"] == "tenant-a" and b1["tenant"] == "tenant-b"
    assert a1["tmpdir"] != b1["tmpdir"]
    assert "secret-of-a" in a2["files"] and "secret-of-a" not in b1["files"]
    described = {worker["environmentId"]: worker["tenantId"] for worker in pools.describe()}
    assert described == {a1["environmentId"]: "tenant-a", b1["environmentId"]: "tenant-b"}


def test_concurrent_invocations_of_one_tenant_get_more_workers_of_that_tenant(pools: WorkerPools) -> None:
    with concurrent.futures.ThreadPoolExecutor(3) as executor:
        results = list(executor.map(lambda _: pools.invoke(ECHO, {"sleep": 1}, context("tenant-a")).payload, range(3)))

    assert len({result["pid"] for result in results}) > 1
    assert {worker["tenantId"] for worker in pools.describe()} == {"tenant-a"}


def test_plain_function_shares_one_pool_without_tenant(pools: WorkerPools) -> None:
    first = pools.invoke(SHARED_ECHO, {}, context(None)).payload
    second = pools.invoke(SHARED_ECHO, {}, context(None)).payload

    assert first["pid"] == second["pid"] and first["tenant"] is None


def test_dead_worker_fails_its_invocation_and_is_replaced(pools: WorkerPools) -> None:
    before = pools.invoke(ECHO, {}, context("tenant-a")).payload

    crashed = pools.invoke(ECHO, {"crash": True}, context("tenant-a"))
    after = pools.invoke(ECHO, {}, context("tenant-a")).payload

    assert crashed.function_error == "Unhandled"
    assert crashed.payload["errorType"] == "Runtime.ExitError"
    assert after["pid"] != before["pid"]
    assert not Path(before["tmpdir"]).exists()


def test_handler_error_is_an_unhandled_function_error(pools: WorkerPools) -> None:
    result = pools.invoke(ECHO, {"raise": "boom"}, context("tenant-a"))

    assert result.function_error == "Unhandled"
    assert result.payload["errorType"] == "ValueError" and result.payload["errorMessage"] == "boom"


def test_invocation_past_the_function_timeout_is_stopped(tmp_path: Path) -> None:
    pools = WorkerPools(region="us-east-1", tmp_root=tmp_path)
    quick = FunctionConfig(name="echo", handler="echo_handler.handler", per_tenant=True, timeout_seconds=1, code_dir=HANDLERS)
    try:
        result = pools.invoke(quick, {"sleep": 10}, context("tenant-a"))
    finally:
        pools.shutdown()

    assert result.payload["errorType"] == "Sandbox.Timedout"


def test_idle_workers_are_reclaimed_with_their_temporary_directory(tmp_path: Path, wait_until) -> None:
    pools = WorkerPools(region="us-east-1", tmp_root=tmp_path, idle_timeout=0.5)
    try:
        tmpdir = pools.invoke(ECHO, {}, context("tenant-a")).payload["tmpdir"]
        wait_until(lambda: not pools.describe(), 10, "idle worker reclaimed")
    finally:
        pools.shutdown()

    assert not Path(tmpdir).exists()


def test_worker_bound_to_one_tenant_refuses_another(tmp_path: Path) -> None:
    worker = Worker(ECHO, "tenant-a", region="us-east-1", tmp_root=tmp_path)
    worker.wait_ready()
    try:
        refused = worker.invoke({}, context("tenant-b"))
    finally:
        worker.terminate()

    assert refused.payload["errorType"] == "Runtime.TenantMismatch"
    assert not worker.alive


# -- what the caller gets, as the managed Python runtime (awslambdaric) answers ----------------------


def test_handler_error_payload_is_the_runtimes_frames_only_with_the_request_id(pools: WorkerPools) -> None:
    ctx = context("tenant-a")
    result = pools.invoke(ECHO, {"chained": "outer"}, ctx)

    assert result.function_error == "Unhandled"
    assert set(result.payload) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert (result.payload["errorType"], result.payload["errorMessage"]) == ("RuntimeError", "outer")
    assert result.payload["requestId"] == ctx.request_id
    trace = result.payload["stackTrace"]
    # frames of the handler only: no runtime (proving-ground/local/runtime/worker.py) frame, no chained exception, no carets
    assert trace and all(frame.startswith('  File "') for frame in trace), trace
    assert all("echo_handler.py" in frame for frame in trace), trace
    assert not any("During handling" in frame or "direct cause" in frame or "^" in frame for frame in trace), trace


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("missing_import.handler", "Runtime.ImportModuleError",
         "Unable to import module 'missing_import': No module named 'no_such_module_for_the_local_runtime'"),
        ("echo_handler.no_such_handler", "Runtime.HandlerNotFound", "Handler 'no_such_handler' missing on module 'echo_handler'"),
        ("syntax_error.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'syntax_error': "),
        ("raises_at_import.handler", "LookupError", "table name missing from the environment"),
        ("nodots", "Runtime.MalformedHandlerName", "Bad handler 'nodots': "),
    ],
)
def test_init_errors_have_the_runtimes_types(pools: WorkerPools, handler: str, error_type: str, message: str) -> None:
    broken = FunctionConfig(name=f"broken-{error_type}", handler=handler, code_dir=HANDLERS)
    result = pools.invoke(broken, {}, context(None))

    assert result.function_error == "Unhandled"
    assert result.payload["errorType"] == error_type
    assert result.payload["errorMessage"].startswith(message), result.payload
    assert result.payload["requestId"] == ""  # awslambdaric's init error is made before any request


def test_a_decimal_result_is_marshalled_as_the_number_it_holds(pools: WorkerPools) -> None:
    result = pools.invoke(ECHO, {"decimal": "12.50"}, context("tenant-a"))

    assert result.function_error is None
    assert result.body == b'{"amount": 12.50, "count": 3}'


def test_a_result_json_cannot_carry_is_a_marshal_error(pools: WorkerPools) -> None:
    result = pools.invoke(ECHO, {"unmarshallable": True}, context("tenant-a"))

    assert result.function_error == "Unhandled"
    assert result.payload["errorType"] == "Runtime.MarshalError"
    assert result.payload["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"
    assert result.payload["stackTrace"] == []


def test_context_identity_is_a_cognito_identity_with_none_fields(pools: WorkerPools) -> None:
    result = pools.invoke(ECHO, {"identity": True}, context("tenant-a")).payload

    assert result == {"identityType": "CognitoIdentity", "cognitoIdentityId": None,
                      "cognitoIdentityPoolId": None, "clientContext": None}


def test_an_init_error_is_one_clear_line_per_function_and_error(pools: WorkerPools,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a per-tenant function whose module raises at import, and another whose import fails
    raising = FunctionConfig(name="raising", handler="raises_at_import.handler", per_tenant=True, code_dir=HANDLERS)
    missing = FunctionConfig(name="missing", handler="missing_import.handler", code_dir=HANDLERS)

    # WHEN each is invoked again and again (new environments, two tenants)
    with caplog.at_level(logging.INFO, logger="local.runtime.workers"):
        for tenant_id in ("tenant-a", "tenant-a", "tenant-b"):
            assert pools.invoke(raising, {}, context(tenant_id)).function_error == "Unhandled"
        for _ in range(2):
            assert pools.invoke(missing, {}, context(None)).function_error == "Unhandled"

    # THEN the stack's output names each function and its error once, and no environment "started"
    lines = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert lines == [
        "local lambda: function raising failed to initialise: LookupError: table name missing from the environment "
        "(every invocation fails with this error until it is fixed)",
        "local lambda: function missing failed to initialise: Runtime.ImportModuleError: Unable to import module "
        "'missing_import': No module named 'no_such_module_for_the_local_runtime' "
        "(every invocation fails with this error until it is fixed)",
    ]
    assert not [record for record in caplog.records if "started environment" in record.getMessage()]
