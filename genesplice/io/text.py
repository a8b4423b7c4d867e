"""Opening input files: plain or gzip (bgzip too), decided in one place.

Whatever a file holds, reading it through :func:`open_text` either gives text or raises one
:class:`GeneSpliceInputError` naming the file (and the line where it can be told): bytes that are
not UTF-8, a ``.gz`` that is not gzip, a truncated or corrupt gzip stream, or a gzip file named
without ``.gz``. Nothing is read twice on the good path: the checks happen as the text streams.
"""
from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from genesplice.io.errors import GeneSpliceInputError

T = TypeVar("T")

_GZIP_MAGIC = b"\x1f\x8b"
#: what a broken gzip stream raises (BadGzipFile is an OSError; a truncated one EOFError)
GZIP_ERRORS = (OSError, EOFError, zlib.error)


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


def is_gzip_name(path: str | os.PathLike) -> bool:
    return Path(path).suffix == ".gz"


def check_gzip_magic(path: Path) -> None:
    """A file named ``.gz`` must start with the gzip magic bytes (else one input error)."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head != _GZIP_MAGIC:
        raise GeneSpliceInputError("not a gzip file (name ends in .gz but the data is not "
                                   "gzip-compressed)", path=path, line=1)


def undecodable_line(data: bytes) -> tuple[int, str] | None:
    """(1-based line, problem) of the first bytes of ``data`` that are not UTF-8; None if all are."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return line, (f"not UTF-8 text (byte 0x{data[exc.start]:02x}); expected a plain-text "
                      "or gzip-compressed (.gz) file")
    return None


def text_error(path: Path, exc: BaseException, line: int | None) -> GeneSpliceInputError:
    """The one input error for bytes that cannot be read as text (decode or gzip failure)."""
    if isinstance(exc, UnicodeDecodeError):
        with open(path, "rb") as fh:
            head = fh.read(2)
        if head == _GZIP_MAGIC and not is_gzip_name(path):
            return GeneSpliceInputError("file is gzip-compressed but its name does not end in "
                                        "'.gz'; rename it to end in .gz", path=path)
        found = _first_undecodable(path)
        if found is not None:
            return GeneSpliceInputError(found[1], path=path, line=found[0])
        return GeneSpliceInputError(f"not UTF-8 text ({exc.reason})", path=path, line=line)
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return GeneSpliceInputError(f"not a readable gzip file ({detail}); expected gzip or bgzip "
                                "data, complete", path=path, line=line)


def _first_undecodable(path: Path) -> tuple[int, str] | None:
    """Stream the (decompressed) bytes line by line to find the first non-UTF-8 line."""
    opener: Callable[..., IO[bytes]] = gzip.open if is_gzip_name(path) else open
    try:
        with opener(path, "rb") as fh:
            for n, raw in enumerate(fh, 1):
                found = undecodable_line(raw)
                if found is not None:
                    return n, found[1]
    except GZIP_ERRORS:
        return None
    return None


class CheckedText(io.TextIOBase):
    """A text stream over ``raw`` whose decode / gzip failures become input errors.

    Counts the lines handed out so a failure can name the line it happened on (exact for line
    reads; for bulk ``read(size)`` a decode error is located exactly by a second scan).
    """

    def __init__(self, raw: IO[str], path: Path) -> None:
        super().__init__()
        self._raw = raw
        self.path = path
        self.lines_read = 0

    def _guard(self, fn: Callable[[], str]) -> str:
        try:
            text = fn()
        except (UnicodeDecodeError, *GZIP_ERRORS) as exc:
            raise text_error(self.path, exc, self.lines_read + 1) from exc
        self.lines_read += text.count("\n")
        return text

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        return self._guard(lambda: self._raw.read(-1 if size is None else size))

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        return self._guard(lambda: self._raw.readline(-1 if size is None else size))

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def __iter__(self) -> "CheckedText":
        return self

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def open_text(path: str | os.PathLike) -> IO[str]:
    """Open a text file for reading; ``.gz`` (gzip or bgzip) is decompressed transparently.

    A missing file or an empty one is a :class:`GeneSpliceInputError` naming the file, and so
    is, when read, text that is not UTF-8 or a gzip stream that is broken (file and line).
    """
    path = check_readable(path)
    if is_gzip_name(path):
        check_gzip_magic(path)
        raw: IO[str] = io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    else:
        raw = open(path, encoding="utf-8")
    return CheckedText(raw, path)  # type: ignore[return-value]
