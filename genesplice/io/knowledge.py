"""Where the bundled real data lives, and checking it against knowledge/MANIFEST.tsv.

The bundled files are a default, never a requirement: every reader takes a path.
"""
from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

from genesplice.io.errors import GeneSpliceInputError

ENV_VAR = "GENESPLICE_KNOWLEDGE"


def knowledge_dir() -> Path:
    """The bundled ``knowledge/`` folder (``$GENESPLICE_KNOWLEDGE`` overrides)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "knowledge"


def knowledge_path(relative: str) -> Path:
    """Path of a bundled file, e.g. ``knowledge_path("annotations/go.obo.gz")``."""
    path = knowledge_dir() / relative
    if not path.exists():
        raise GeneSpliceInputError(
            f"bundled file not found (expected under {knowledge_dir()}; set ${ENV_VAR} "
            "or pass your own path)", path=path)
    return path


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(path: str | os.PathLike | None = None) -> list[dict[str, str]]:
    path = Path(path) if path is not None else knowledge_dir() / "MANIFEST.tsv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    expected = {"file", "source", "version", "licence", "sha256", "rows"}
    if not rows or set(rows[0]) != expected:
        raise GeneSpliceInputError(f"expected columns {sorted(expected)}", path=path, line=1)
    return rows


def verify_manifest(path: str | os.PathLike | None = None) -> list[str]:
    """Return a list of problems (missing files, checksum mismatches); empty when all good."""
    root = Path(path).parent if path is not None else knowledge_dir()
    problems = []
    for row in read_manifest(path):
        f = root / row["file"]
        if not f.exists():
            problems.append(f"{row['file']}: missing")
        elif sha256_file(f) != row["sha256"]:
            problems.append(f"{row['file']}: sha256 mismatch")
    return problems
