"""`make build` produces complete Lambda zips whose handlers import from the zip alone."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from scripts.deterministic_zip import zip_directory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("build") / "out"
    completed = subprocess.run(
        ["make", "--no-print-directory", "build", f"BUILD={target}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return target


def test_each_zip_holds_its_handler_the_shared_code_and_dependencies(build_dir: Path) -> None:
    expected = {"workflow": "workflow/app.py", "api": "api/app.py", "authorizer": "authorizer/app.py"}
    for function, handler_file in expected.items():
        names = set(zipfile.ZipFile(build_dir / f"{function}.zip").namelist())
        assert handler_file in names
        assert "shared/api_contract.json" in names and "shared/demo_tenants.json" in names
        assert "aws_lambda_powertools/__init__.py" in names and "boto3/__init__.py" in names
        assert not any("__pycache__" in name for name in names)
    assert "aws_durable_execution_sdk_python/__init__.py" in zipfile.ZipFile(build_dir / "workflow.zip").namelist()


@pytest.mark.parametrize("module", ["workflow.app", "api.app", "authorizer.app"])
def test_handler_imports_from_the_zip_alone(build_dir: Path, module: str, tmp_path: Path) -> None:
    # Lambda extracts the zip to /var/task and puts that first on sys.path; do the same.
    task_root = tmp_path / "task"
    zipfile.ZipFile(build_dir / f"{module.split('.')[0]}.zip").extractall(task_root)
    env = {
        "PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x", "TENANTS_TABLE_NAME": "t", "WORKFLOWS_TABLE_NAME": "w",
    }
    # -S -I: no site-packages and no repo paths, so only the zip can satisfy the imports.
    code = f"import sys; sys.path.insert(0, {str(task_root)!r}); import {module} as m; print(callable(m.handler))"
    completed = subprocess.run([sys.executable, "-S", "-I", "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "True"


def test_zips_are_reproducible(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "a.py").write_text("A = 1\n")
    (source / "b.txt").write_text("b\n")
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"
    assert zip_directory(source, first) == 2
    os.utime(source / "b.txt", (0, 0))
    zip_directory(source, second)
    assert first.read_bytes() == second.read_bytes()
