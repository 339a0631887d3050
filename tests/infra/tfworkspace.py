"""Temporary Terraform working copies of the repository's root module.

The tests never run Terraform in the repository itself. They copy the root
``*.tf`` files and the ``src/shared`` data files into a temporary directory,
add dummy deployment packages and an override file for the offline provider,
and run Terraform there with the repository's ``proving-ground/terraform-offline.tfrc``.

A plan opens the ephemeral ``aws_secretsmanager_random_password`` of the
callback signing key, i.e. calls Secrets Manager's GetRandomPassword; the
copies for plans send that one service to a moto server on loopback
(``PLAN_ENDPOINT_SERVICES``), and nothing else leaves the machine.

Why copies: the only provider on this machine is ``hashicorp/aws`` from the
filesystem mirror, which may be older than the ``>= 6.25`` the module needs.
An older provider rejects ``tenancy_config`` / ``durable_config``, so the copy
drops exactly those blocks (and pins the mirrored version); the blocks are
checked by parsing the real files instead (``test_static.py``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
TFRC = REPO_ROOT / "proving-ground/terraform-offline.tfrc"
SHARED_DIR = REPO_ROOT / "src" / "shared"
# The function definitions main.tf decodes (and the local stack reads).
FUNCTIONS_FILE = REPO_ROOT / "src" / "functions.json"
PROVIDER_ADDRESS = "registry.terraform.io/hashicorp/aws"
# tenancy_config arrived in hashicorp/aws 6.23, durable_config in 6.25.
DURABLE_PROVIDER_MIN = (6, 25, 0)
# The blocks an older provider cannot parse. Each appears exactly once in the
# module (a dynamic block on the one function resource, in main.tf).
NEW_PROVIDER_BLOCKS = ("durable_config", "tenancy_config")
# What a plan calls AWS for: GetRandomPassword, when it opens the ephemeral
# resource of the callback signing key (every plan does). Sent to moto.
PLAN_ENDPOINT_SERVICES = ("secretsmanager",)
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
COMMAND_TIMEOUT_SECONDS = 600

INSTALL_HELP = """\
The infrastructure tests need Terraform >= 1.11 and the hashicorp/aws provider
in a local filesystem mirror, because they run without registry access.

  * Terraform: https://developer.hashicorp.com/terraform/install
    (Debian/Ubuntu: add HashiCorp's apt repository, then `apt-get install terraform`;
    or unzip the release binary into a directory on PATH).
  * Provider mirror: on a machine with internet access run, in any directory
    holding a `terraform {{ required_providers {{ aws = {{ source = "hashicorp/aws" }} }} }}`
    block, `terraform providers mirror -platform={platform} {mirror}`
    (the path is the one in proving-ground/terraform-offline.tfrc).
"""


class TerraformUnavailable(RuntimeError):
    """Terraform or the offline provider mirror is missing on this machine."""


def terraform_platform() -> str:
    """Return Terraform's name for this machine's platform, e.g. ``linux_amd64``."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{platform.system().lower()}_{arch}"


def install_help() -> str:
    """The install instructions, filled in for this machine."""
    return INSTALL_HELP.format(platform=terraform_platform(), mirror=mirror_path())


def mirror_path() -> Path:
    """The filesystem mirror named in ``proving-ground/terraform-offline.tfrc`` (one source of truth)."""
    match = re.search(r'filesystem_mirror\s*\{[^}]*?path\s*=\s*"([^"]+)"', TFRC.read_text(), re.S)
    if not match:
        raise TerraformUnavailable(f"{TFRC} names no filesystem_mirror path")
    return Path(match.group(1))


def parse_version(text: str) -> tuple[int, ...]:
    """``"5.100.0"`` -> ``(5, 100, 0)``; pre-release suffixes are ignored."""
    return tuple(int(part) for part in re.findall(r"\d+", text.split("-")[0])[:3])


def mirrored_aws_versions(mirror: Path) -> list[str]:
    """Versions of hashicorp/aws in the mirror for this platform, oldest first.

    Both mirror layouts are understood: unpacked (``VERSION/PLATFORM/``) and
    packed (``terraform-provider-aws_VERSION_PLATFORM.zip``).
    """
    provider_dir = mirror / PROVIDER_ADDRESS
    if not provider_dir.is_dir():
        return []
    plat = terraform_platform()
    versions = {entry.name for entry in provider_dir.iterdir() if (entry / plat).is_dir()}
    for archive in provider_dir.glob(f"terraform-provider-aws_*_{plat}.zip"):
        versions.add(archive.name.removeprefix("terraform-provider-aws_").removesuffix(f"_{plat}.zip"))
    return sorted(versions, key=parse_version)


def terraform_version(binary: str) -> str:
    """The ``terraform_version`` reported by ``terraform version -json``."""
    result = subprocess.run(
        [binary, "version", "-json"], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(result.stdout)["terraform_version"]


def strip_block(text: str, block_name: str) -> tuple[str, int]:
    """Remove every nested ``block_name { ... }`` block from HCL text, and every
    ``dynamic "block_name" { ... }`` block that generates it.

    Braces inside strings and comments are skipped, so templates such as
    ``"{\\"message\\":...}"`` do not confuse the matcher.

    Returns:
        The new text and how many blocks were removed.
    """
    pattern = re.compile(rf'^[ \t]*(?:{re.escape(block_name)}|dynamic[ \t]+"{re.escape(block_name)}")[ \t]*\{{', re.M)
    removed = 0
    while match := pattern.search(text):
        end = _matching_brace(text, match.end() - 1)
        line_end = text.find("\n", end)
        text = text[: match.start()] + text[(len(text) if line_end == -1 else line_end + 1) :]
        removed += 1
    return text, removed


def _matching_brace(text: str, open_index: int) -> int:
    depth = 0
    index = open_index
    in_string = False
    while index < len(text):
        char = text[index]
        if in_string:
            if char == "\\":
                index += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "#" or text.startswith("//", index):
            index = text.find("\n", index)
            if index == -1:
                break
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError(f"unbalanced braces after offset {open_index}")


def write_dummy_zip(path: Path, package: str) -> None:
    """A minimal deployment package: ``<package>/app.py`` with a handler."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{package}/__init__.py", "")
        archive.writestr(f"{package}/app.py", "def handler(event, context):\n    return {}\n")


def provider_override(
    version: str,
    *,
    endpoint: str | None = None,
    endpoint_services: tuple[str, ...] = (),
) -> str:
    """An ``*_override.tf`` that pins the provider and configures it for tests.

    Every listed service is sent to ``endpoint`` (moto). Unless STS is one of
    them, the provider also skips validating the credentials and asking for the
    account id; so with ``endpoint_services=("secretsmanager",)`` a plan's one
    AWS call (the ephemeral GetRandomPassword of the callback signing key) goes
    to moto and nothing goes anywhere else. With STS at the endpoint, the
    account id comes from moto's STS.
    """
    lines = [
        "# Written by tests/infra: pins the mirrored provider and points it at no real AWS.",
        "terraform {",
        "  required_providers {",
        "    aws = {",
        '      source  = "hashicorp/aws"',
        f'      version = "{version}"',
        "    }",
        "  }",
        "}",
        "",
        'provider "aws" {',
        '  access_key                  = "testing"',
        '  secret_key                  = "testing"',
        "  skip_metadata_api_check     = true",
    ]
    if "sts" not in endpoint_services:
        lines += [
            "  skip_credentials_validation = true",
            "  skip_requesting_account_id  = true",
            "  skip_region_validation      = true",
        ]
    if endpoint_services:
        assert endpoint, "endpoint_services need an endpoint"
        lines.append("  endpoints {")
        lines += [f'    {service} = "{endpoint}"' for service in endpoint_services]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


@dataclass
class Workspace:
    """A temporary copy of the root module and the environment to run Terraform in it."""

    path: Path
    binary: str
    env: dict[str, str]
    stripped: dict[str, int] = field(default_factory=dict)

    def run(self, *args: str, check: bool = True, timeout: int = COMMAND_TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
        """Run ``terraform ARGS`` here; on failure (with ``check``) raise with the full output."""
        result = subprocess.run(
            [self.binary, *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"terraform {' '.join(args)} exited {result.returncode}\n"
                f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
            )
        return result

    def show_json(self, plan_file: str) -> dict[str, Any]:
        """``terraform show -json PLAN`` as a dict."""
        return json.loads(self.run("show", "-json", plan_file).stdout)

    def evaluate(self, expression: str) -> Any:
        """The value of a Terraform expression (locals, variables' defaults,
        functions) in this copy, via ``terraform console``; no state needed."""
        result = subprocess.run(
            [self.binary, "console", "-no-color"],
            input=f"jsonencode({expression})\n",
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
        if result.returncode != 0:
            raise AssertionError(f"terraform console could not evaluate {expression}:\n{result.stdout}\n{result.stderr}")
        # The console prints the JSON text as an HCL string literal.
        literal = result.stdout.strip()
        return json.loads(json.loads(literal.replace("$${", "${").replace("%%{", "%{")))


def terraform_env(plugin_cache: Path) -> dict[str, str]:
    """The environment every Terraform run gets: offline CLI config, fake credentials.

    The caller's AWS_* and TF_* variables are dropped so a developer's real
    profile can never be used by a test.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "TF_"))}
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(TFRC),
            "TF_PLUGIN_CACHE_DIR": str(plugin_cache),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return env


def root_tf_files() -> list[Path]:
    """Every ``.tf`` file of the root module, by name."""
    return sorted(REPO_ROOT.glob("*.tf"))


def copy_module_files(dest: Path) -> None:
    """Copy the root module's ``.tf`` files and the data files they read into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for tf_file in root_tf_files():
        shutil.copy2(tf_file, dest / tf_file.name)
    shutil.copytree(SHARED_DIR, dest / "src" / "shared", ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
    shutil.copy2(FUNCTIONS_FILE, dest / "src" / FUNCTIONS_FILE.name)


def copy_module(
    dest: Path,
    *,
    binary: str,
    env: dict[str, str],
    strip: tuple[str, ...],
    override: str,
) -> Workspace:
    """Copy the root module to ``dest``, strip ``strip`` blocks, add zips and the override.

    ``stripped`` counts the blocks removed across all the ``.tf`` files; the
    callers check the counts (the stripping must remove exactly what the older
    provider, or moto, cannot take).
    """
    dest.mkdir(parents=True)
    copy_module_files(dest)
    for key in json.loads(FUNCTIONS_FILE.read_text(encoding="utf-8"))["functions"]:
        write_dummy_zip(dest / "build" / f"{key}.zip", key)

    stripped = dict.fromkeys(strip, 0)
    for tf_file in sorted(dest.glob("*.tf")):
        text = tf_file.read_text()
        for block in strip:
            text, removed = strip_block(text, block)
            stripped[block] += removed
        tf_file.write_text(text)
    (dest / "offline_override.tf").write_text(override)
    return Workspace(path=dest, binary=binary, env=env, stripped=stripped)
