"""Zip a directory reproducibly, so an unchanged build keeps Terraform's source_code_hash."""

from __future__ import annotations

import argparse
import os
import shutil
import zipfile
from pathlib import Path

# Fixed timestamp (the zip format's minimum) and modes: same inputs, same bytes.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def zip_directory(source: Path, target: Path, base: Path | None = None) -> int:
    """Write every file under ``source`` into ``target`` in sorted order, after ``base``'s entries.

    Args:
        source: Directory whose contents become the zip root.
        target: Path of the zip to create (overwritten).
        base: A zip (made by this function) whose entries come first, copied as they are:
            the layer every function's zip shares is compressed once, not once per zip.

    Returns:
        The number of files written from ``source``.

    Raises:
        ValueError: A file of ``source`` has the path of one of ``base``'s entries.
    """
    files = sorted(p for p in source.rglob("*") if p.is_file())
    if base is None:
        mode = "w"
    else:
        shutil.copyfile(base, target)
        mode = "a"
    with zipfile.ZipFile(target, mode, compression=zipfile.ZIP_DEFLATED) as archive:
        clashes = set(archive.namelist()) & {path.relative_to(source).as_posix() for path in files}
        if clashes:
            raise ValueError(f"{source} and {base} both hold {sorted(clashes)[:5]}")
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
    parser.add_argument("--base", type=Path, help="a zip whose entries come first (the layer every function shares)")
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        parser.error(f"{args.source} is not a directory")
    if args.base is not None and not zipfile.is_zipfile(args.base):
        parser.error(f"{args.base} is not a zip file")
    try:
        zip_directory(args.source, args.target, args.base)
    except ValueError as clash:
        parser.error(str(clash))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
