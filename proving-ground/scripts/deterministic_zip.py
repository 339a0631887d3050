"""Zip a directory reproducibly, so an unchanged build keeps Terraform's source_code_hash."""

from __future__ import annotations

import argparse
import os
import zipfile
from pathlib import Path

# Fixed timestamp (the zip format's minimum) and modes: same inputs, same bytes.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def zip_directory(source: Path, target: Path) -> int:
    """Write every file under ``source`` into ``target`` in sorted order.

    Args:
        source: Directory whose contents become the zip root.
        target: Path of the zip to create (overwritten).

    Returns:
        The number of files written.
    """
    files = sorted(p for p in source.rglob("*") if p.is_file())
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), FIXED_DATE_TIME)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path, help="directory to zip")
    parser.add_argument("target", type=Path, help="zip file to write")
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        parser.error(f"{args.source} is not a directory")
    zip_directory(args.source, args.target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
