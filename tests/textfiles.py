"""Writing small test input files, plain or gzip (one helper for every test folder)."""
import gzip
from pathlib import Path


def write_text(path: Path, text: str, gz: bool = False) -> Path:
    """Write ``text`` to ``path`` (gzip-compressed when ``gz``); returns ``path``."""
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path
