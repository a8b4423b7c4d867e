"""Atomic file writes: nothing a user has is half-overwritten if a run dies mid-write.

Every writer in the package (configs, graphs, checkpoints, reports, predictions) goes through
:func:`atomic_write`: write a temporary file in the destination folder, then ``os.replace``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from genesplice.io.errors import GeneSpliceInputError


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then move it into place.

    The temporary file is removed if ``write`` fails; the final file gets the usual mode
    (``0666 & ~umask``) rather than ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


#: free space an output folder needs before a command starts (checkpoints, reports, caches)
MIN_FREE_MB = 100


def check_writable_dir(path: str | os.PathLike, *, min_free_mb: float = MIN_FREE_MB) -> Path:
    """Make sure the folder ``path`` could be written (its nearest existing ancestor takes a new
    file) and has at least ``min_free_mb`` MiB free — checked before long work, so an
    unwritable or full output folder is one :class:`GeneSpliceInputError` at the start, not a
    crash hours later. Nothing is left behind: a missing folder is not created here."""
    path = Path(path)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise GeneSpliceInputError("expected an output folder, found a file", path=probe)
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".genesplice-write-check.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(b"\0" * 4096)
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise GeneSpliceInputError(f"output folder is not writable ({exc.strerror})",
                                   path=path) from exc
    free_mb = shutil.disk_usage(probe).free / 2**20
    if free_mb < min_free_mb:
        raise GeneSpliceInputError(f"only {free_mb:,.0f} MiB free where the output goes (need at "
                                   f"least {min_free_mb:,.0f} MiB)", path=path)
    return path
