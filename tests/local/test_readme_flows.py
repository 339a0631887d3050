"""The documented shell blocks, run with bash as a reader would paste them.

The curl flow is written once, in the README's "Try it", after two lines that point the
shell at a stack (deployed or local); the AWS CLI flow once, in docs/local.md. The curl
flow must end COMPLETED against a running stack, after either setup, and must stop with a
clear message within its time limits when the stack is down, the key file is missing or
the workflow is REJECTED. The AWS CLI flow runs against a stand-in ``aws`` that treats
blob arguments as AWS CLI v2 does (base64 unless ``fileb://``). The banner of ``make run``
prints exactly these blocks, with the stack's URLs and tenant-a's key filled in. Every
other command block of the README and docs/ names only make targets, Terraform outputs
and Python modules that exist.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local.banner import FlowNotFound, flow_or_note, marked_block
from local.services.http_base import free_port
from tests.harness import REPO_ROOT, StackProcess

README = REPO_ROOT / "README.md"
LOCAL_DOC = REPO_ROOT / "docs" / "local.md"
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
# Each wait in the flow gives up after 60 s; a request after 10 s.
FLOW_LIMIT = 150
LOCAL_API = "http://127.0.0.1:3000"
LOCAL_LAMBDA = "http://127.0.0.1:3001"


def marked_blocks(path: Path) -> dict[str, str]:
    """``marker -> block`` for every ```bash block right after an HTML comment ``<!-- marker: ... -->``."""
    found = re.findall(r"^<!-- ([a-z-]+):[^\n]*-->\n```bash\n(.*?)^```$", path.read_text(), re.M | re.S)
    assert len({marker for marker, _ in found}) == len(found), f"{path.name}: a marker names two blocks"
    return dict(found)


def bash_blocks(path: Path) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```$", path.read_text(), re.M | re.S)


README_BLOCKS = marked_blocks(README)
LOCAL_SETUP = README_BLOCKS["try-it-local"]
DEPLOYED_SETUP = README_BLOCKS["try-it-deployed"]
CURL_FLOW = README_BLOCKS["curl-flow"]
CLI_FLOW = marked_blocks(LOCAL_DOC)["aws-cli-flow"]


def run_block(script: str, cwd: Path, *, path_prefix: Path | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    started = time.monotonic()
    result = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,  # noqa: S603, S607
                            timeout=FLOW_LIMIT, check=False)
    return result, time.monotonic() - started


def local_flow(api_url: str) -> str:
    """The README's local setup, pointed at ``api_url``, then its curl flow."""
    assert LOCAL_SETUP.count(f"API={LOCAL_API}\n") == 1
    return LOCAL_SETUP.replace(f"API={LOCAL_API}\n", f"API={api_url}\n") + CURL_FLOW


def stand_in(bin_dir: Path, name: str, text: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text(text)
    (bin_dir / name).chmod(0o755)


@pytest.fixture(name="workdir")
def workdir_fixture(tmp_path: Path, stack: StackProcess) -> Path:
    """A folder with the stack's keys where the README expects them (.state/api-keys.json)."""
    (tmp_path / ".state").mkdir()
    (tmp_path / ".state" / "api-keys.json").symlink_to(stack.state_dir / "api-keys.json")
    return tmp_path


# -- where the flows are written ----------------------------------------------------------------


def test_the_readme_holds_the_curl_flow_once_after_its_two_setups() -> None:
    blocks = bash_blocks(README)
    assert blocks.count(CURL_FLOW) == 1
    assert [line.split("=", 1)[0] for line in LOCAL_SETUP.splitlines()] == ["API", "KEY"]
    assert [line.split("=", 1)[0] for line in DEPLOYED_SETUP.splitlines()] == ["API", "KEY"]
    # The flow sets neither: it runs after whichever setup the reader chose.
    assert not re.search(r"^(API|KEY)=", CURL_FLOW, re.M)
    for doc in DOCS:
        assert "status_after() {" not in doc.read_text(), f"{doc.name} repeats the curl flow"


def test_the_aws_cli_flow_is_written_once_in_docs_local() -> None:
    assert CLI_FLOW.startswith(f"LAMBDA={LOCAL_LAMBDA}\n")
    assert "send-durable-execution-callback-success" not in README.read_text()
    others = [doc.name for doc in DOCS if doc != LOCAL_DOC and CLI_FLOW in doc.read_text()]
    assert not others


def test_a_missing_or_repeated_marker_is_named(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no flows here\n```bash\necho hi\n```\n")
    with pytest.raises(FlowNotFound, match=r"README\.md: expected one ```bash block after <!-- curl-flow \.\.\. -->, found 0"):
        marked_block(readme, "curl-flow")
    readme.write_text("<!-- curl-flow: a -->\n```bash\necho 1\n```\n<!-- curl-flow: b -->\n```bash\necho 2\n```\n")
    with pytest.raises(FlowNotFound, match="found 2"):
        marked_block(readme, "curl-flow")


def test_a_flow_the_banner_cannot_read_becomes_one_line_saying_where_it_is(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("nothing marked\n")

    note = flow_or_note(lambda: marked_block(readme, "curl-flow"), "README.md, Try it")
    missing = flow_or_note(lambda: marked_block(tmp_path / "gone.md", "curl-flow"), "docs/local.md")

    assert note == "# (not printed: README.md: expected one ```bash block after <!-- curl-flow ... -->, found 0; " \
                   "the flow is in README.md, Try it)\n"
    assert missing.startswith("# (not printed: ") and "gone.md" in missing and missing.endswith("docs/local.md)\n")


def _makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-zA-Z][a-zA-Z0-9_-]*):", (REPO_ROOT / "Makefile").read_text(), re.M))


def _terraform_outputs() -> set[str]:
    return set(re.findall(r'^output "([a-z0-9_]+)"', (REPO_ROOT / "outputs.tf").read_text(), re.M))


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda path: path.name)
def test_every_command_block_names_targets_outputs_and_modules_that_exist(doc: Path) -> None:
    targets, outputs = _makefile_targets(), _terraform_outputs()
    for block in bash_blocks(doc):
        for target in re.findall(r"(?:^|[;&|(]\s*)make ([a-z][a-z0-9-]*)", block, re.M):
            assert target in targets, f"{doc.name}: `make {target}` is no target of the Makefile"
        for output in re.findall(r"terraform output (?:-raw |-json )?([a-z0-9_]+)", block):
            assert output in outputs, f"{doc.name}: `terraform output {output}` is no output of outputs.tf"
        for module in re.findall(r"python -m ([a-zA-Z_][\w.]*)", block):
            assert importlib.util.find_spec(module) is not None, f"{doc.name}: `python -m {module}` imports nothing"


def test_the_command_check_catches_a_target_that_does_not_exist(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("```bash\nmake deploy-everything\n```\n")
    with pytest.raises(AssertionError, match="`make deploy-everything` is no target"):
        test_every_command_block_names_targets_outputs_and_modules_that_exist(doc)


def _heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors of the headings of ``path``: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"^```.*?^```$", "", path.read_text(), flags=re.M | re.S)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in re.findall(r"^#+ (.*)$", text, re.M)}


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda path: path.name)
def test_every_relative_link_and_repository_path_exists(doc: Path) -> None:
    text = doc.read_text()
    for target, anchor in re.findall(r"\]\((?!https?:)([^)#\s]*)(?:#([^)\s]+))?\)", text):
        linked = (doc.parent / target).resolve() if target else doc
        assert linked.exists(), f"{doc.name} links to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in _heading_anchors(linked), f"{doc.name} links to {target}#{anchor}: no such heading"
    for path in re.findall(r"`((?:src|tests|proving-ground|docs|events)/[\w./-]*)`", text):
        assert (REPO_ROOT / path).exists(), f"{doc.name} names {path}, which does not exist"


def test_the_link_check_catches_a_heading_that_moved(tmp_path: Path) -> None:
    (tmp_path / "api.md").write_text("# The API\n\n## Routes and statuses\n")
    (tmp_path / "doc.md").write_text("[the routes](api.md#routes-and-statuses), [tokens](api.md#callback-tokens)\n")
    with pytest.raises(AssertionError, match="api.md#callback-tokens: no such heading"):
        test_every_relative_link_and_repository_path_exists(tmp_path / "doc.md")


# -- the flows, run -----------------------------------------------------------------------------


def test_the_readme_curl_flow_ends_completed(stack: StackProcess, workdir: Path) -> None:
    result, _ = run_block(local_flow(stack.api_url), workdir)

    last = result.stdout.strip().splitlines()[-1]
    assert '"status":"COMPLETED"' in last, result.stdout + result.stderr
    assert '"delivered":"success"' in result.stdout
    assert result.returncode == 0, result.stderr


def test_a_rejected_workflow_ends_the_flow_at_once_with_its_reason(stack: StackProcess, workdir: Path) -> None:
    script = local_flow(stack.api_url)
    assert script.count('"amount": 120') == 1
    result, seconds = run_block(script.replace('"amount": 120', '"amount": 9000'), workdir)

    assert seconds < 30, result.stderr
    assert '"status":"REJECTED"' in result.stdout.strip().splitlines()[-1], result.stdout + result.stderr
    assert "exceeds the tenant limit" in result.stdout
    assert "no callbackUrl to answer" in result.stderr


def test_with_the_stack_down_the_flow_says_so_at_once(tmp_path: Path, workdir: Path) -> None:
    result, seconds = run_block(local_flow(f"http://127.0.0.1:{free_port()}"), workdir)

    assert seconds < 15, result.stderr
    assert "is make run running?" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "no workflow id: the start failed"
    assert result.returncode != 0


def test_without_the_key_file_the_flow_names_it(stack: StackProcess, tmp_path: Path) -> None:
    result, seconds = run_block(local_flow(stack.api_url), tmp_path)

    assert seconds < 15, result.stderr
    assert "no tenant-a key in .state/" in result.stderr
    assert re.search(r'not started: \{"message": ?"Unauthorized"\}', result.stderr), result.stderr
    assert result.stderr.strip().splitlines()[-1] == "no workflow id: the start failed"


FAKE_AWS = '''#!{python}
"""A stand-in for the AWS CLI: the two commands of the documented flow, blobs read as CLI v2 reads them."""
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
    sys.exit("the stand-in knows only the documented commands: " + " ".join(args))
'''


def test_the_documented_aws_cli_flow_ends_completed(stack: StackProcess, workdir: Path, tmp_path: Path) -> None:
    stand_in(tmp_path / "bin", "aws", FAKE_AWS.format(python=sys.executable))
    cli = CLI_FLOW.replace(f"LAMBDA={LOCAL_LAMBDA}\n", f"LAMBDA={stack.lambda_url}\n")
    # The CLI flow runs in the shell of the curl flow (it uses status_after, C and API).
    result, _ = run_block(local_flow(stack.api_url) + cli, workdir, path_prefix=tmp_path / "bin")

    last = result.stdout.strip().splitlines()[-1]
    assert '"workflowId":"cli-' in last and '"status":"COMPLETED"' in last, result.stdout + result.stderr
    assert '"confirmation":{"approved":true}' in last
    assert '"StatusCode": 202' in result.stdout


def test_the_readme_deployed_setup_then_the_flow_ends_completed(stack: StackProcess, tmp_path: Path) -> None:
    """The deployed setup reads the API URL from Terraform (here a stand-in terraform that answers it for the local
    stack) and tenant-a's key from .state/api-keys.json, where the deploy's create-demo step writes it."""
    stand_in(tmp_path / "bin", "terraform",
             "#!/bin/sh\n"
             f'case "$*" in "output -raw api_url") printf %s "{stack.api_url}";; *) exit 1;; esac\n')
    (tmp_path / ".state").mkdir()
    (tmp_path / ".state" / "api-keys.json").write_text((stack.state_dir / "api-keys.json").read_text())
    result, _ = run_block(DEPLOYED_SETUP + CURL_FLOW, tmp_path, path_prefix=tmp_path / "bin")

    assert '"status":"COMPLETED"' in result.stdout.strip().splitlines()[-1], result.stdout + result.stderr


def test_the_readme_deployed_setup_names_what_is_missing_outside_a_terraform_folder(tmp_path: Path) -> None:
    stand_in(tmp_path / "bin", "terraform", "#!/bin/sh\necho 'No outputs found' >&2\nexit 1\n")
    result, seconds = run_block(DEPLOYED_SETUP + CURL_FLOW, tmp_path, path_prefix=tmp_path / "bin")

    assert seconds < 15, result.stderr
    assert "no api_url output: run this where you ran terraform apply" in result.stderr
    assert "no tenant-a key in .state/: the deploy's create-demo step writes it" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "no workflow id: the start failed"


def test_the_banner_prints_the_documented_flows_for_this_stack(stack: StackProcess) -> None:
    banner = stack.log_path.read_text(errors="replace")
    keys_file = stack.state_dir / "api-keys.json"
    setup = (LOCAL_SETUP.replace(f"API={LOCAL_API}\n", f"API={stack.api_url}\n")
             .replace(LOCAL_SETUP.splitlines()[1], f"KEY='{stack.api_keys['tenant-a']}'   # tenant-a's API key (also in {keys_file})"))
    assert setup != LOCAL_SETUP and setup.startswith(f"API={stack.api_url}\nKEY='")
    assert setup + CURL_FLOW in banner
    # The harness's stack has the default region and function names: only the endpoint differs.
    assert CLI_FLOW.replace(f"LAMBDA={LOCAL_LAMBDA}\n", f"LAMBDA={stack.lambda_url}\n") in banner
