"""The one exception type users see for bad input."""
from __future__ import annotations

import os
import pickle
import struct
import zipfile


class GeneSpliceInputError(ValueError):
    """Bad input: names the file (or gene/variant id), the line, and what was expected.

    ``str(err)`` is one line, ``"<file>:<line>: <problem>"`` (line omitted when unknown),
    which is what the CLI prints before exiting non-zero.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None,
                 line: int | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.problem = message
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
            where += ": "
        super().__init__(f"{where}{message}")


#: what reading a damaged serialized file (a truncated / tampered / foreign ``torch.load``
#: zip or pickle) can raise; loaders turn these into one :class:`GeneSpliceInputError`
#: (``UnicodeDecodeError`` is a ``ValueError``).
DAMAGED_FILE_ERRORS: tuple[type[BaseException], ...] = (
    RuntimeError, EOFError, ValueError, IndexError, KeyError, TypeError, AttributeError,
    OverflowError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, struct.error)
