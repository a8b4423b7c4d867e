"""Validated tab-separated text: whole-file bytes, a vectorised line scan, field-count checks
and :func:`read_table` (a TSV as strings, every malformed line an input error naming it).

Field counts are checked vectorised on the raw bytes (numpy), so a line with too few *or* too
many tab-separated fields is caught with its line number before pandas parses the same bytes.
"""
from __future__ import annotations

import gzip
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.text import (GZIP_ERRORS, check_gzip_magic, check_readable, is_gzip_name,
                                undecodable_line)

_GZIP_MAGIC = b"\x1f\x8b"


# ---------------------------------------------------------------------------- raw bytes
def read_bytes(path: str | os.PathLike) -> bytes:
    """Whole file, decompressed if ``.gz``, checked to be UTF-8 text.

    Missing / empty / unreadable / broken gzip / not UTF-8 -> one input error naming the file
    (and the line, where there is one).
    """
    path = check_readable(path)
    try:
        if is_gzip_name(path):
            check_gzip_magic(path)
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        else:
            data = path.read_bytes()
    except GZIP_ERRORS as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GeneSpliceInputError(f"not a readable gzip file ({detail}); expected gzip or "
                                   "bgzip data, complete", path=path) from exc
    if not is_gzip_name(path) and data[:2] == _GZIP_MAGIC:
        raise GeneSpliceInputError("file is gzip-compressed but its name does not end in "
                                   "'.gz'; rename it to end in .gz", path=path)
    bad = undecodable_line(data)
    if bad is not None:
        raise GeneSpliceInputError(bad[1], path=path, line=bad[0])
    if b"\r" in data:  # Windows line ends are fine; a carriage return inside a line is not
        data = data.replace(b"\r\n", b"\n")
        at = data.find(b"\r")
        if at >= 0:
            raise GeneSpliceInputError("carriage return (\\r) inside a line; expected lines "
                                       "ending in \\n or \\r\\n", path=path,
                                       line=data.count(b"\n", 0, at) + 1)
    if not data.strip():
        raise GeneSpliceInputError("file is empty (no data)", path=path)
    return data


@dataclass
class Lines:
    """Per-line view of a byte buffer: start offsets, lengths and tab-field counts."""
    starts: np.ndarray
    ends: np.ndarray
    n_fields: np.ndarray
    first_byte: np.ndarray

    @property
    def n(self) -> int:
        return len(self.starts)


def scan_lines(data: bytes) -> Lines:
    """Vectorised line scan (no Python loop): where lines start/end and how many tab fields."""
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    ends = nl if (len(arr) and arr[-1] == 10) else np.append(nl, len(arr))
    starts = np.concatenate([[0], nl + 1])[: len(ends)]
    tabs = np.flatnonzero(arr == 9)
    n_tabs = np.searchsorted(tabs, ends) - np.searchsorted(tabs, starts)
    # strip a CR before LF from the length
    lengths = ends - starts
    cr = np.zeros(len(ends), dtype=bool)
    has = lengths > 0
    cr[has] = arr[ends[has] - 1] == 13
    ends = ends - cr
    first = np.full(len(starts), 10, dtype=np.uint8)
    nonempty = ends > starts
    first[nonempty] = arr[starts[nonempty]]
    return Lines(starts=starts, ends=ends, n_fields=n_tabs + 1, first_byte=first)


def line_text(data: bytes, lines: Lines, i: int) -> str:
    return data[lines.starts[i]:lines.ends[i]].decode("utf-8", "replace")


def check_field_counts(path: str | os.PathLike, lines: Lines, mask: np.ndarray, *,
                       expected: int | None = None, minimum: int | None = None,
                       what: str = "tab-separated fields") -> None:
    """Raise for the first line in ``mask`` whose field count is wrong."""
    nf = lines.n_fields
    bad = np.zeros(len(nf), dtype=bool)
    if expected is not None:
        bad |= nf != expected
    if minimum is not None:
        bad |= nf < minimum
    bad &= mask
    if bad.any():
        i = int(np.argmax(bad))
        want = f"{expected}" if expected is not None else f"at least {minimum}"
        raise GeneSpliceInputError(f"expected {want} {what}, found {int(nf[i])}",
                                   path=path, line=i + 1)


# ---------------------------------------------------------------------------- tables
def read_table(path: str | os.PathLike, columns: Sequence[str] | None = None, *,
               header: bool = True, names: Sequence[str] | None = None,
               required: Sequence[str] | None = None, min_columns: int | None = None,
               exact_columns: bool = False,
               comment_prefixes: Sequence[str] = ()) -> pd.DataFrame:
    """Read a TSV (plain or ``.gz``) as strings, validated.

    - ``header=True``: the first line names the columns; every name in ``columns`` must be
      present (else an error at line 1 naming the missing ones).
    - ``header=False``: give ``names``; each line must have exactly ``len(names)`` fields.
    - every line must have the header's field count (``exact_columns``) or at least
      ``min_columns`` / ``len(columns)`` fields; blank lines are an error, not skipped.
    - ``required`` columns may not be empty (error names the line).
    - ``comment_prefixes`` (only with ``header=False``): lines starting with one of these are
      not data (e.g. ``#``, ``track``); the result is then indexed by the 1-based file line.
      Without ``names``, every data line must have the first data line's field count.
    """
    path = Path(path)
    data = read_bytes(path)
    lines = scan_lines(data)
    body = np.ones(lines.n, dtype=bool)
    if comment_prefixes:
        if header:
            raise ValueError("comment_prefixes needs header=False")
        body = ~prefix_mask(data, lines, comment_prefixes)
        if not body.any():
            raise GeneSpliceInputError("no data lines (only comment lines)", path=path)
    if header:
        _check_header_layout(path, data, lines, body, list(columns or []), exact_columns,
                             min_columns)
    else:
        if names is not None:
            check_field_counts(path, lines, body, expected=len(names))
        else:
            check_field_counts(path, lines, body, minimum=min_columns or 1)
            first = int(np.argmax(body))
            check_field_counts(path, lines, body, expected=int(lines.n_fields[first]),
                               what="tab-separated fields (as on the first data line)")
    skip = np.flatnonzero(~body)
    try:
        df = pd.read_csv(io.BytesIO(data), sep="\t", dtype=str, header=0 if header else None,
                         names=None if header else names, keep_default_na=False,
                         na_values=[""], skip_blank_lines=False, quoting=3,
                         engine="c", on_bad_lines="error",
                         skiprows=skip.tolist() if comment_prefixes and len(skip) else None)
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise GeneSpliceInputError(f"malformed table ({exc})".replace("\n", " "), path=path,
                                   line=int(m.group(1)) if m else None) from exc
    except pd.errors.EmptyDataError as exc:
        raise GeneSpliceInputError("file is empty (no data)", path=path) from exc
    if not header and names is None:
        df.columns = list(range(df.shape[1]))
    if comment_prefixes:
        df.index = pd.Index(np.flatnonzero(body) + 1, name="line")
    for col in required or ():
        bad = df[col].isna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            line = int(df.index[i]) if comment_prefixes else i + 1 + int(header)
            raise GeneSpliceInputError(f"empty value in required column {col!r}",
                                       path=path, line=line)
    return df


def _check_header_layout(path: Path, data: bytes, lines: Lines, body: np.ndarray,
                         want: list[str], exact_columns: bool, min_columns: int | None) -> None:
    """:func:`read_table`'s checks of a table with a header line: the ``want`` columns are
    named, there are data rows, and every row's field count fits the header's (``body[0]``,
    the header, is set to False)."""
    head = line_text(data, lines, 0).split("\t")
    missing = [c for c in want if c not in head]
    if missing:
        raise GeneSpliceInputError(
            f"missing column(s) {missing}; expected a header with {want}, found {head}",
            path=path, line=1)
    body[0] = False
    if lines.n < 2:
        raise GeneSpliceInputError("no data rows after the header", path=path, line=1)
    n_head = len(head)
    if exact_columns:
        check_field_counts(path, lines, body, expected=n_head)
        return
    need = max([head.index(c) + 1 for c in want] + [min_columns or 0])
    check_field_counts(path, lines, body, minimum=need)
    over = body & (lines.n_fields > n_head)
    if over.any():
        i = int(np.argmax(over))
        raise GeneSpliceInputError(
            f"expected {n_head} tab-separated fields (as in the header), "
            f"found {int(lines.n_fields[i])}", path=path, line=i + 1)


def prefix_mask(data: bytes, lines: Lines, prefixes: Sequence[str]) -> np.ndarray:
    """Bool [n lines]: the line starts with one of ``prefixes`` (vectorised on first bytes)."""
    out = np.zeros(lines.n, dtype=bool)
    for prefix in prefixes:
        raw = prefix.encode()
        cand = np.flatnonzero((lines.first_byte == raw[0]) &
                              (lines.ends - lines.starts >= len(raw)))
        if len(raw) == 1:
            out[cand] = True
            continue
        for i in cand.tolist():
            if data.startswith(raw, int(lines.starts[i])):
                out[i] = True
    return out
