"""The README's shell blocks, run with bash as a reader would paste them.

The curl flow must end COMPLETED against a running stack, and must stop with a clear
message within its time limits when the stack is down, the key file is missing or the
workflow is REJECTED. The AWS CLI flow runs against a stand-in ``aws`` that treats blob
arguments as AWS CLI v2 does (base64 unless ``fileb://``). The banner of ``make run``
prints the same blocks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local.services.http_base import free_port
from local.banner import CLI_FLOW, CURL_FLOW, README_API, README_LAMBDA
from tests.harness import REPO_ROOT, StackProcess

README = REPO_ROOT / "README.md"
# Each wait in the flow gives up after 60 s; a request after 10 s.
FLOW_LIMIT = 150


def bash_blocks() -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```$", README.read_text(), re.M | re.S)


def readme_block(starting: str) -> str:
    (block,) = [block for block in bash_blocks() if block.startswith(starting)]
    return block


def run_block(script: str, cwd: Path, *, path_prefix: Path | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    started = time.monotonic()
    result = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,  # noqa: S603, S607
                            timeout=FLOW_LIMIT, check=False)
    return result, time.monotonic() - started


def against(block: str, stack: StackProcess) -> str:
    assert block.count(f"API={README_API}\n") == 1
    return block.replace(f"API={README_API}\n", f"API={stack.api_url}\n")


@pytest.fixture(name="workdir")
def workdir_fixture(tmp_path: Path, stack: StackProcess) -> Path:
    """A folder with the stack's keys where the README expects them (.state/api-keys.json)."""
    (tmp_path / ".state").mkdir()
    (tmp_path / ".state" / "api-keys.json").symlink_to(stack.state_dir / "api-keys.json")
    return tmp_path


def test_the_readme_shows_the_flows_the_banner_prints() -> None:
    blocks = bash_blocks()
    assert CURL_FLOW in blocks
    assert CLI_FLOW in blocks


def test_the_readme_curl_flow_ends_completed(stack: StackProcess, workdir: Path) -> None:
    result, _ = run_block(against(readme_block(f"API={README_API}\n"), stack), workdir)

    last = result.stdout.strip().splitlines()[-1]
    assert '"status":"COMPLETED"' in last, result.stdout + result.stderr
    assert '"delivered":"success"' in result.stdout
    assert result.returncode == 0, result.stderr


def test_a_rejected_workflow_ends_the_flow_at_once_with_its_reason(stack: StackProcess, workdir: Path) -> None:
    script = against(readme_block(f"API={README_API}\n"), stack).replace('"amount": 120', '"amount": 9000')
    result, seconds = run_block(script, workdir)

    assert seconds < 30, result.stderr
    assert '"status":"REJECTED"' in result.stdout.strip().splitlines()[-1], result.stdout + result.stderr
    assert "exceeds the tenant limit" in result.stdout
    assert "no callbackUrl to answer" in result.stderr


def test_with_the_stack_down_the_flow_says_so_at_once(tmp_path: Path, workdir: Path) -> None:
    script = readme_block(f"API={README_API}\n").replace(f"API={README_API}\n", f"API=http://127.0.0.1:{free_port()}\n")
    result, seconds = run_block(script, workdir)

    assert seconds < 15, result.stderr
    assert "is make run running?" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "no workflow id: the start failed"
    assert result.returncode != 0


def test_without_the_key_file_the_flow_names_it(stack: StackProcess, tmp_path: Path) -> None:
    result, seconds = run_block(against(readme_block(f"API={README_API}\n"), stack), tmp_path)

    assert seconds < 15, result.stderr
    assert "no tenant-a key in .state/" in result.stderr
    assert re.search(r'not started: \{"message": ?"Unauthorized"\}', result.stderr), result.stderr
    assert result.stderr.strip().splitlines()[-1] == "no workflow id: the start failed"


FAKE_AWS = '''#!{python}
"""A stand-in for the AWS CLI: the two commands of the README, blobs read as CLI v2 reads them."""
import base64, binascii, json, sys
import boto3

args = sys.argv[1:]
def option(name):
    return args[args.index(name) + 1] if name in args else None
def blob(value):
    if value.startswith("fileb://"):
        with open(value[len("fileb://"):], "rb") as source:
            return source.read()
    try:  # AWS CLI v2's default (--cli-binary-format base64)
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        sys.exit("Invalid base64: " + repr(value))
client = boto3.client("lambda", endpoint_url=option("--endpoint-url"))
if args[:2] == ["lambda", "invoke"]:
    answer = client.invoke(FunctionName=option("--function-name"), TenantId=option("--tenant-id"),
                           InvocationType=option("--invocation-type"),
                           DurableExecutionName=option("--durable-execution-name"), Payload=blob(option("--payload")))
    print(json.dumps({{"StatusCode": answer["StatusCode"]}}))
elif args[:2] == ["lambda", "send-durable-execution-callback-success"]:
    client.send_durable_execution_callback_success(CallbackId=option("--callback-id"), Result=blob(option("--result")))
else:
    sys.exit("the stand-in knows only the README's commands: " + " ".join(args))
'''


def test_the_readme_aws_cli_flow_ends_completed(stack: StackProcess, workdir: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS.format(python=sys.executable))
    (bin_dir / "aws").chmod(0o755)
    cli = readme_block(f"LAMBDA={README_LAMBDA}\n").replace(f"LAMBDA={README_LAMBDA}\n", f"LAMBDA={stack.lambda_url}\n")
    # The CLI flow runs in the shell of the curl flow (it uses status_after, C and API).
    result, _ = run_block(against(readme_block(f"API={README_API}\n"), stack) + cli, workdir, path_prefix=bin_dir)

    last = result.stdout.strip().splitlines()[-1]
    assert '"workflowId":"cli-' in last and '"status":"COMPLETED"' in last, result.stdout + result.stderr
    assert '"confirmation":{"approved":true}' in last
    assert '"StatusCode": 202' in result.stdout


def test_the_readme_deployed_flow_is_the_local_one_and_ends_completed(stack: StackProcess, tmp_path: Path) -> None:
    """"Test it with curl": the local steps after two lines that read the Terraform outputs
    (here a stand-in terraform that answers them for the local stack)."""
    block = readme_block("API=$(terraform output -raw api_url)\n")
    assert block.split("\n", 2)[2].startswith(CURL_FLOW.split("\n", 2)[2])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "terraform").write_text(
        "#!/bin/sh\n"
        f'case "$*" in "output -raw api_url") printf %s "{stack.api_url}";;\n'
        f'  "output -json demo_api_keys") cat "{stack.state_dir / "api-keys.json"}";; *) exit 1;; esac\n'
    )
    (bin_dir / "terraform").chmod(0o755)
    result, _ = run_block(block, tmp_path, path_prefix=bin_dir)

    assert '"status":"COMPLETED"' in result.stdout.strip().splitlines()[-1], result.stdout + result.stderr


def test_the_banner_prints_the_same_flows_for_this_stack(stack: StackProcess) -> None:
    banner = stack.log_path.read_text(errors="replace")
    steps = CURL_FLOW.split("\n", 2)[2]
    assert f"API={stack.api_url}\nKEY='{stack.api_keys['tenant-a']}'   # tenant-a's API key" in banner
    assert steps in banner
    assert f"LAMBDA={stack.lambda_url}\n" + CLI_FLOW.split("\n", 1)[1] in banner
