"""`make build` produces complete, reproducible Lambda zips whose handlers import from the zip alone.

With the runtime's Python (CPython 3.13) on this machine, the zips carry its
bytecode for our code and every dependency, and a cold import compiles nothing;
without it, the build is source-only and says what that costs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from scripts.deterministic_zip import zip_directory

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_PY = "3.13"
PYC_TAG = "cpython-313"
NO_BYTECODE_LINE = "make build: no python3.13 found"
RUNTIME_PYTHON = subprocess.run([str(ROOT / "proving-ground" / "scripts" / "runtime_python.sh"), LAMBDA_PY],
                                capture_output=True, text=True, check=False).stdout.strip() or None
needs_runtime_python = pytest.mark.skipif(RUNTIME_PYTHON is None, reason="no python3.13 on PATH or under pyenv")
HANDLERS = {"workflow": "workflow.app", "api": "api.app", "authorizer": "authorizer.app"}
LAMBDA_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
    "TENANTS_TABLE_NAME": "t", "WORKFLOWS_TABLE_NAME": "w",
}


def make_build(target: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        ["make", "--no-print-directory", "build", f"BUILD={target}", *overrides],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    target = tmp_path_factory.mktemp("build") / "out"
    return target, make_build(target).stdout


@pytest.fixture(scope="module")
def build_dir(build: tuple[Path, str]) -> Path:
    return build[0]


def names_in(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as opened:
        return opened.namelist()


def test_each_zip_holds_its_handler_the_shared_code_and_dependencies(build_dir: Path) -> None:
    for function in HANDLERS:
        names = set(names_in(build_dir / f"{function}.zip"))
        assert f"{function}/app.py" in names
        assert "shared/api_contract.json" in names and "shared/demo_tenants.json" in names
        assert "aws_lambda_powertools/__init__.py" in names and "boto3/__init__.py" in names
        # Bytecode of any other interpreter (the development one's) never leaks in.
        assert all(name.endswith(f".{PYC_TAG}.pyc") for name in names if name.endswith(".pyc")), function
    assert "aws_durable_execution_sdk_python/__init__.py" in names_in(build_dir / "workflow.zip")


def test_each_zip_holds_its_own_function_package_and_no_other(build_dir: Path) -> None:
    functions = [path.name for path in (ROOT / "src").iterdir() if (path / "app.py").exists()]
    assert set(HANDLERS) <= set(functions)
    for function in functions:
        packages = {name.split("/")[0] for name in names_in(build_dir / f"{function}.zip") if "/" in name}
        assert packages & set(functions) == {function}, function


@needs_runtime_python
def test_zips_carry_unchecked_hash_runtime_bytecode_for_every_module(build_dir: Path) -> None:
    """Every .py file (ours and every dependency's) has its cpython-313 .pyc, hash-based and unchecked."""
    magic = subprocess.run([str(RUNTIME_PYTHON), "-c", "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"],
                           capture_output=True, text=True, check=True).stdout
    for function in HANDLERS:
        with zipfile.ZipFile(build_dir / f"{function}.zip") as opened:
            names = set(opened.namelist())
            sources = [name for name in names if name.endswith(".py")]
            assert len(sources) > 500, function
            missing = []
            for source in sources:
                folder, _, filename = source.rpartition("/")
                pyc = f"{folder + '/' if folder else ''}__pycache__/{filename[:-3]}.{PYC_TAG}.pyc"
                if pyc not in names:
                    missing.append(source)
            assert not missing, f"{function}: no bytecode for {missing[:10]}"
            for source in (f"{function}/app.py", "shared/registry.py", "boto3/session.py", "botocore/client.py",
                           "aws_lambda_powertools/logging/logger.py"):
                folder, _, filename = source.rpartition("/")
                header = opened.read(f"{folder}/__pycache__/{filename[:-3]}.{PYC_TAG}.pyc")[:16]
                assert header[:4].hex() == magic, source
                # PEP 552 flags: 0b01 = hash-based, source not checked at import.
                assert int.from_bytes(header[4:8], "little") == 0b01, source


@needs_runtime_python
@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_the_runtime_python_imports_the_handler_without_compiling_anything(build_dir: Path, function: str,
                                                                            tmp_path: Path) -> None:
    """Under python3.13, a cold import of the unzipped package loads its bytecode: no module of the zip is compiled."""
    task_root = tmp_path / "task"
    zipfile.ZipFile(build_dir / f"{function}.zip").extractall(task_root)
    code = (
        "import importlib.machinery as m, sys\n"
        "compiled = []\n"
        "original = m.SourceFileLoader.source_to_code\n"
        "def counting(self, data, path, *args, **kwargs):\n"
        "    compiled.append(path)\n"
        "    return original(self, data, path, *args, **kwargs)\n"
        "m.SourceFileLoader.source_to_code = counting\n"
        f"sys.path.insert(0, {str(task_root)!r})\n"
        f"import {HANDLERS[function]} as handler_module\n"
        "assert callable(handler_module.handler)\n"
        f"print(len([p for p in compiled if p.startswith({str(task_root)!r})]), len(sys.modules))\n"
    )
    env = {"PATH": os.environ["PATH"], **LAMBDA_ENV}
    completed = subprocess.run([str(RUNTIME_PYTHON), "-B", "-S", "-I", "-c", code], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    compiled, modules = map(int, completed.stdout.split())
    assert modules > 100
    assert compiled == 0


@pytest.mark.parametrize("module", list(HANDLERS.values()))
def test_handler_imports_from_the_zip_alone(build_dir: Path, module: str, tmp_path: Path) -> None:
    # Lambda extracts the zip to /var/task and puts that first on sys.path; do the same,
    # with the development interpreter (which ignores the 3.13 bytecode and compiles).
    task_root = tmp_path / "task"
    zipfile.ZipFile(build_dir / f"{module.split('.')[0]}.zip").extractall(task_root)
    env = {"PATH": os.environ["PATH"], **LAMBDA_ENV}
    # -S -I: no site-packages and no repo paths, so only the zip can satisfy the imports.
    code = f"import sys; sys.path.insert(0, {str(task_root)!r}); import {module} as m; print(callable(m.handler))"
    completed = subprocess.run([sys.executable, "-B", "-S", "-I", "-c", code], env=env, capture_output=True, text=True,
                               timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "True"


def test_two_builds_are_byte_for_byte_identical(build_dir: Path, tmp_path: Path) -> None:
    """A second build into another directory (so other recorded paths would differ) gives the same zips."""
    again = tmp_path / "elsewhere" / "build"
    make_build(again)
    for function in HANDLERS:
        assert (again / f"{function}.zip").read_bytes() == (build_dir / f"{function}.zip").read_bytes(), function


@needs_runtime_python
def test_the_build_reports_the_bytecode_it_compiles(build: tuple[Path, str]) -> None:
    _, output = build
    assert f"Compiling bytecode with {RUNTIME_PYTHON}" in output
    assert NO_BYTECODE_LINE not in output


@pytest.mark.parametrize("interpreter", ["/nonexistent/python3.13", sys.executable])
def test_without_the_runtime_python_the_build_is_source_only_and_says_what_it_costs(interpreter: str,
                                                                                  tmp_path: Path) -> None:
    """A missing interpreter, or one that is not CPython 3.13, gives a working source-only zip and one clear line."""
    target = tmp_path / "build"
    output = make_build(target, f"RUNTIME_PYTHON={interpreter}", "FUNCTIONS=authorizer").stdout
    notes = [line for line in output.splitlines() if line.startswith(NO_BYTECODE_LINE)]
    assert len(notes) == 1, output
    assert "source only" in notes[0] and "every cold start compiles" in notes[0] and "later" in notes[0]
    names = names_in(target / "authorizer.zip")
    assert "authorizer/app.py" in names and "boto3/__init__.py" in names
    assert not any(name.endswith(".pyc") or "__pycache__" in name for name in names)


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


def test_a_zip_on_a_base_holds_the_base_entries_first_then_the_directory_sorted(tmp_path: Path) -> None:
    layer, package = tmp_path / "layer", tmp_path / "package"
    (layer / "lib").mkdir(parents=True)
    (layer / "lib" / "z.py").write_text("Z = 1\n")
    (package / "fn").mkdir(parents=True)
    (package / "fn" / "b.py").write_text("B = 1\n")
    (package / "fn" / "a.py").write_text("A = 1\n")
    zip_directory(layer, tmp_path / "base.zip")

    assert zip_directory(package, tmp_path / "fn.zip", tmp_path / "base.zip") == 2
    assert names_in(tmp_path / "fn.zip") == ["lib/z.py", "fn/a.py", "fn/b.py"]
    assert zipfile.ZipFile(tmp_path / "fn.zip").read("lib/z.py") == b"Z = 1\n"
    # the base itself is left as it was
    assert names_in(tmp_path / "base.zip") == ["lib/z.py"]


def test_a_file_that_would_shadow_a_base_entry_is_refused(tmp_path: Path) -> None:
    (tmp_path / "layer" / "shared").mkdir(parents=True)
    (tmp_path / "layer" / "shared" / "x.py").write_text("X = 1\n")
    (tmp_path / "package" / "shared").mkdir(parents=True)
    (tmp_path / "package" / "shared" / "x.py").write_text("X = 2\n")
    zip_directory(tmp_path / "layer", tmp_path / "base.zip")
    with pytest.raises(ValueError, match="shared/x.py"):
        zip_directory(tmp_path / "package", tmp_path / "fn.zip", tmp_path / "base.zip")


def test_the_zip_command_refuses_a_base_that_is_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "package").mkdir()
    (tmp_path / "not.zip").write_text("text")
    completed = subprocess.run([sys.executable, "-m", "scripts.deterministic_zip", "--base", str(tmp_path / "not.zip"),
                                str(tmp_path / "package"), str(tmp_path / "out.zip")],
                               cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 2
    assert "is not a zip file" in completed.stderr and "Traceback" not in completed.stderr
