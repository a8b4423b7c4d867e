"""Opening input files: plain or gzip (bgzip too), decided in one place."""
from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import IO

from genesplice.io.errors import GeneSpliceInputError


def check_readable(path: str | os.PathLike) -> Path:
    """``path`` as a Path if it is an existing, non-empty file; else an input error naming it."""
    path = Path(path)
    if not path.exists():
        raise GeneSpliceInputError("file not found", path=path)
    if path.is_dir():
        raise GeneSpliceInputError("expected a file, found a directory", path=path)
    if path.stat().st_size == 0:
        raise GeneSpliceInputError("file is empty", path=path)
    return path


def open_text(path: str | os.PathLike) -> IO[str]:
    """Open a text file for reading; ``.gz`` (gzip or bgzip) is decompressed transparently.

    A missing file or an empty one is a :class:`GeneSpliceInputError` naming the file.
    """
    path = check_readable(path)
    if path.suffix == ".gz":
        try:
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
        except OSError as exc:  # pragma: no cover - gzip.open is lazy
            raise GeneSpliceInputError(f"not a readable gzip file ({exc})", path=path) from exc
    return open(path, encoding="utf-8")
