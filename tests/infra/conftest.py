"""Shared fixtures of the infrastructure tests: Terraform, the offline copies, checkov.

One ``terraform init`` + ``plan`` is shared by the whole session; the moto apply
has its own copy (``test_apply_moto.py``). Nothing here is skipped when a tool
is missing: the tests fail with instructions, so a gap is never silent.
"""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from .tfworkspace import (
    DURABLE_PROVIDER_MIN,
    NEW_PROVIDER_BLOCKS,
    PLAN_ENDPOINT_SERVICES,
    REPO_ROOT,
    TerraformUnavailable,
    Workspace,
    copy_module,
    install_help,
    mirror_path,
    mirrored_aws_versions,
    parse_version,
    provider_override,
    terraform_env,
    terraform_version,
)

# The module's required_version (main.tf): write-only attributes arrived in 1.11.
MIN_TERRAFORM = (1, 11, 0)

CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = REPO_ROOT / ".venv-checkov"
CHECKOV_BIN = CHECKOV_VENV / "bin" / "checkov"
CHECKOV_INSTALL_TIMEOUT_SECONDS = 600
# The Makefile's pinned uv (every make target that runs tests installs it first).
UV = REPO_ROOT / ".venv-uv" / "bin" / "uv"


@dataclass(frozen=True)
class TerraformSetup:
    """What this machine offers: the CLI and the newest mirrored hashicorp/aws."""

    binary: str
    version: str
    mirror: Path
    provider_version: str

    @property
    def provider_knows_durable_blocks(self) -> bool:
        """True when the mirrored provider parses durable_config / tenancy_config."""
        return parse_version(self.provider_version) >= DURABLE_PROVIDER_MIN


@pytest.fixture(scope="session")
def terraform_setup() -> TerraformSetup:
    """Terraform and the provider mirror, or a loud failure saying how to install them."""
    binary = shutil.which("terraform")
    if binary is None:
        pytest.fail(f"terraform is not on PATH.\n\n{install_help()}", pytrace=False)
    version = terraform_version(binary)
    if parse_version(version) < MIN_TERRAFORM:
        pytest.fail(f"terraform {version} is too old (need >= 1.11).\n\n{install_help()}", pytrace=False)
    try:
        mirror = mirror_path()
    except TerraformUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    versions = mirrored_aws_versions(mirror)
    if not versions:
        pytest.fail(
            f"No hashicorp/aws provider in the filesystem mirror {mirror}.\n\n{install_help()}",
            pytrace=False,
        )
    return TerraformSetup(binary=binary, version=version, mirror=mirror, provider_version=versions[-1])


@pytest.fixture(scope="session")
def tf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for Terraform: offline CLI config, fake credentials, a shared plugin cache."""
    return terraform_env(tmp_path_factory.mktemp("tf-plugin-cache"))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def plan_endpoint() -> Iterator[str]:
    """A moto server on 127.0.0.1 for the one service a plan calls (PLAN_ENDPOINT_SERVICES)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def plan_override(provider_version: str, endpoint: str) -> str:
    """The provider override of the copies that plan: no credentials check, Secrets Manager on moto."""
    return provider_override(provider_version, endpoint=endpoint, endpoint_services=PLAN_ENDPOINT_SERVICES)


@pytest.fixture(scope="session")
def plan_workspace(
    terraform_setup: TerraformSetup,
    tf_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    checkov_installer: Path,
    plan_endpoint: str,
) -> Workspace:
    """An initialised copy for validate and plan; its provider calls no AWS
    endpoint, only moto's Secrets Manager (see ``plan_endpoint``).

    The first Terraform fixture also starts checkov's install (seconds with uv,
    once per machine) so it overlaps the Terraform runs.
    """
    _start_checkov_install(checkov_installer)
    strip = () if terraform_setup.provider_knows_durable_blocks else NEW_PROVIDER_BLOCKS
    workspace = copy_module(
        tmp_path_factory.mktemp("plan") / "module",
        binary=terraform_setup.binary,
        env=tf_env,
        strip=strip,
        override=plan_override(terraform_setup.provider_version, plan_endpoint),
    )
    assert all(count == 1 for count in workspace.stripped.values()), (
        f"expected exactly one of each block to strip from the .tf files, removed {workspace.stripped}"
    )
    workspace.run("init", "-input=false", "-no-color")
    return workspace


@pytest.fixture(scope="session")
def plan_json(plan_workspace: Workspace) -> dict[str, Any]:
    """``terraform plan -out`` with the default variables, as ``terraform show -json``."""
    plan_workspace.run("plan", "-input=false", "-no-color", "-lock=false", "-out=default.tfplan")
    return plan_workspace.show_json("default.tfplan")


# --- checkov: its own virtualenv (heavy pinned dependencies), installed once ---

_checkov_install: subprocess.Popen[bytes] | None = None
_checkov_install_log: Path | None = None


def _checkov_ready() -> bool:
    """True when .venv-checkov holds exactly the pinned checkov (cheap: no import)."""
    return CHECKOV_BIN.exists() and any(
        CHECKOV_VENV.glob(f"lib/python*/site-packages/checkov-{CHECKOV_VERSION}.dist-info/RECORD")
    )


def _start_checkov_install(log_dir: Path) -> None:
    """Create .venv-checkov with the pinned checkov in the background, once, only when missing."""
    global _checkov_install, _checkov_install_log
    if _checkov_install is not None or _checkov_ready():
        return
    _checkov_install_log = log_dir / "checkov-install.log"
    venv, uv = shlex.quote(str(CHECKOV_VENV)), shlex.quote(str(UV))
    install = (
        f"test -x {uv} || {{ echo '{UV} is missing: make test installs it' >&2; exit 1; }}; "
        f"{{ test -x {venv}/bin/python || {uv} venv --quiet --python {shlex.quote(sys.executable)} {venv}; }} && "
        f"{uv} pip install --quiet --python {venv}/bin/python checkov=={CHECKOV_VERSION}"
    )
    # Under `make test` two pytest-xdist workers may both reach this: an exclusive lock
    # (fcntl, as flock(1) is not on every machine) makes the second wait for the first's
    # install, after which its own install finds checkov there already.
    locked = ("import fcntl, subprocess, sys; lock = open(sys.argv[1], 'w'); fcntl.flock(lock, fcntl.LOCK_EX); "
              "sys.exit(subprocess.call(['bash', '-c', sys.argv[2]]))")
    with _checkov_install_log.open("wb") as log:
        _checkov_install = subprocess.Popen(
            [sys.executable, "-c", locked, f"{CHECKOV_VENV}.lock", install], stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session")
def checkov_installer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the background install logs; stops an unfinished install at the end of the session."""
    log_dir = tmp_path_factory.mktemp("checkov-install")
    yield log_dir
    if _checkov_install is not None and _checkov_install.poll() is None:
        _checkov_install.terminate()
        _checkov_install.wait(timeout=30)


@pytest.fixture(scope="session")
def checkov_bin(checkov_installer: Path) -> Path:
    """The pinned checkov in .venv-checkov; installs it when missing and waits for the install."""
    _start_checkov_install(checkov_installer)
    if _checkov_install is not None:
        started = time.monotonic()
        try:
            code = _checkov_install.wait(timeout=CHECKOV_INSTALL_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"installing checkov=={CHECKOV_VERSION} took over {CHECKOV_INSTALL_TIMEOUT_SECONDS}s", pytrace=False)
        if code != 0:
            log = _checkov_install_log.read_text(errors="replace") if _checkov_install_log else ""
            pytest.fail(
                f"installing checkov=={CHECKOV_VERSION} into {CHECKOV_VENV} failed (exit {code}, "
                f"{time.monotonic() - started:.0f}s):\n{log}",
                pytrace=False,
            )
    if not _checkov_ready():
        pytest.fail(f"{CHECKOV_BIN} is not checkov {CHECKOV_VERSION}; delete {CHECKOV_VENV} and rerun", pytrace=False)
    return CHECKOV_BIN
