"""Deployment zips: size of each, what fills it, against Lambda's limits."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path
from typing import Any

from bench.coldstart import REPO_ROOT

BUILD_DIR = REPO_ROOT / "build"
FUNCTIONS = ("workflow", "api", "authorizer")
SOURCES = (REPO_ROOT / "src", REPO_ROOT / "requirements.txt", REPO_ROOT / "Makefile")
# Lambda quotas for .zip deployment packages.
DIRECT_UPLOAD_LIMIT_MB = 50
UNZIPPED_LIMIT_MB = 250
# What the runtime would also provide: boto3 and its own dependencies.
AWS_SDK_PARTS = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")
MB = 1024 * 1024


def newest_source_mtime() -> float:
    """Latest modification time of anything that goes into a zip."""
    newest = 0.0
    for source in SOURCES:
        paths = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()
                                                     and "__pycache__" not in p.parts]
        newest = max([newest, *(p.stat().st_mtime for p in paths)])
    return newest


def zips_are_fresh() -> bool:
    """True when every zip exists and is newer than the sources."""
    zips = [BUILD_DIR / f"{name}.zip" for name in FUNCTIONS]
    return all(z.is_file() for z in zips) and min(z.stat().st_mtime for z in zips) >= newest_source_mtime()


def build() -> None:
    """``make build`` (fetches the python3.13 arm64 wheels from PyPI)."""
    subprocess.run(["make", "--no-print-directory", "build"], cwd=REPO_ROOT, check=True)


def top_level(name: str) -> str:
    """The first path component of a zip entry (a package, module or dist-info directory)."""
    part = name.split("/", 1)[0]
    return part.split("-", 1)[0] + " (metadata)" if part.endswith((".dist-info", ".data")) else part


def describe_zip(path: Path) -> dict[str, Any]:
    """Compressed and unpacked size, file count, the largest top-level entries and the AWS SDK share."""
    with zipfile.ZipFile(path) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
    unpacked = sum(info.file_size for info in infos)
    by_top: dict[str, list[int]] = {}
    for info in infos:
        sizes = by_top.setdefault(top_level(info.filename), [0, 0])
        sizes[0] += info.compress_size
        sizes[1] += info.file_size
    largest = sorted(by_top.items(), key=lambda item: -item[1][1])[:6]
    sdk_compressed = sum(sizes[0] for name, sizes in by_top.items() if name in AWS_SDK_PARTS)
    return {
        "zipMb": path.stat().st_size / MB,
        "unzippedMb": unpacked / MB,
        "files": len(infos),
        "largest": [{"entry": name, "compressedMb": sizes[0] / MB, "unzippedMb": sizes[1] / MB}
                    for name, sizes in largest],
        "awsSdkShareOfZip": sdk_compressed / max(1, sum(i.compress_size for i in infos)),
        "ownCodeKb": sum(sizes[1] for name, sizes in by_top.items() if name in ("workflow", "api", "authorizer",
                                                                             "shared")) / 1024,
    }


def measure(allow_build: bool) -> dict[str, Any]:
    """Sizes of ``build/<function>.zip``, rebuilding them first when stale (and allowed)."""
    rebuilt = False
    if not zips_are_fresh():
        if not allow_build:
            raise RuntimeError("build/*.zip are missing or older than src/: run `make build` or drop --no-build")
        build()
        rebuilt = True
    return {
        "rebuilt": rebuilt,
        "limits": {"directUploadZipMb": DIRECT_UPLOAD_LIMIT_MB, "unzippedMb": UNZIPPED_LIMIT_MB},
        "zips": {name: describe_zip(BUILD_DIR / f"{name}.zip") for name in FUNCTIONS},
    }
