"""Checksums and sizes of artifacts (a file, or a directory with a main weights file)."""

from __future__ import annotations

import hashlib
from pathlib import Path

WEIGHT_FILES = ("adapter_model.safetensors", "model.safetensors", "pytorch_model.bin")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main_file(path: Path) -> Path | None:
    """The file whose checksum identifies an artifact: the file itself, the weights file of a
    directory, else its largest file."""
    path = Path(path)
    if path.is_file():
        return path
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return path / name
    files = [p for p in path.rglob("*") if p.is_file()]
    return max(files, key=lambda p: p.stat().st_size) if files else None


def describe(path: Path) -> tuple[str, int]:
    """(sha256 of the main file, total bytes) of an artifact path."""
    path = Path(path)
    main = main_file(path)
    sha = sha256_file(main) if main is not None else ""
    size = path.stat().st_size if path.is_file() else sum(
        p.stat().st_size for p in path.rglob("*") if p.is_file()
    )
    return sha, size
