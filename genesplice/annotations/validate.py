"""Validated table reading, the shared parse report, and ``genesplice validate FILE``.

Every reader here turns malformed input into one :class:`GeneSpliceInputError` naming the file,
the line and what was expected. Field counts are checked vectorised on the raw bytes (numpy), so
a line with too few *or* too many tab-separated fields is caught with its line number before
pandas parses the same bytes.
"""
from __future__ import annotations

import gc
import gzip
import io
import logging
import os
import re
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genesplice.io.text import check_readable
from genesplice.io.errors import GeneSpliceInputError

logger = logging.getLogger("genesplice.annotations")
FORMATS = ("obo", "gaf", "gmt", "tsv", "bed", "gtf", "fasta")


# ---------------------------------------------------------------------------- helpers
@contextmanager
def paused_gc():
    """Pause Python's cyclic garbage collector (restored afterwards).

    Parsing an ontology or assembling a networkx graph allocates millions of small dicts and
    lists; each allocation burst triggers full collections that find nothing to free and make
    the job 2-3x slower. Reference counting still frees everything as usual.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# ---------------------------------------------------------------------------- reports
@dataclass
class ParseReport:
    """What a parser read, kept and skipped (never silently dropped)."""
    source: str
    rows_read: int = 0
    rows_kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    n_unmapped: int = 0
    unmapped_examples: list[str] = field(default_factory=list)
    notes: dict[str, object] = field(default_factory=dict)

    def skip(self, reason: str, n: int) -> None:
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + int(n)

    def add_unmapped(self, ids: Sequence[str], examples: int = 10) -> None:
        self.n_unmapped += len(ids)
        room = examples - len(self.unmapped_examples)
        if room > 0:
            self.unmapped_examples.extend(list(ids)[:room])

    def log(self) -> "ParseReport":
        """One log line with the counts (soft problems are logged, never printed)."""
        if self.skipped or self.n_unmapped:
            logger.info("%s", self.summary())
        return self

    def summary(self) -> str:
        sk = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.skipped.items())) or "none"
        un = ""
        if self.n_unmapped:
            un = f"; {self.n_unmapped:,} unmapped ids (e.g. {', '.join(self.unmapped_examples[:5])})"
        return (f"{Path(self.source).name}: {self.rows_read:,} rows read, "
                f"{self.rows_kept:,} kept; skipped: {sk}{un}")


# ---------------------------------------------------------------------------- raw bytes
def read_bytes(path: str | os.PathLike) -> bytes:
    """Whole file, decompressed if ``.gz``; missing / empty / unreadable -> input error."""
    path = check_readable(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise GeneSpliceInputError(f"cannot read file ({exc})", path=path) from exc
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
               exact_columns: bool = False) -> pd.DataFrame:
    """Read a TSV (plain or ``.gz``) as strings, validated.

    - ``header=True``: the first line names the columns; every name in ``columns`` must be
      present (else an error at line 1 naming the missing ones).
    - ``header=False``: give ``names``; each line must have exactly ``len(names)`` fields.
    - every line must have the header's field count (``exact_columns``) or at least
      ``min_columns`` / ``len(columns)`` fields; blank lines are an error, not skipped.
    - ``required`` columns may not be empty (error names the line).
    """
    path = Path(path)
    data = read_bytes(path)
    lines = scan_lines(data)
    body = np.ones(lines.n, dtype=bool)
    if header:
        head = line_text(data, lines, 0).split("\t")
        want = list(columns or [])
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
        else:
            need = max([head.index(c) + 1 for c in want] + [min_columns or 0])
            check_field_counts(path, lines, body, minimum=need)
            over = body & (lines.n_fields > n_head)
            if over.any():
                i = int(np.argmax(over))
                raise GeneSpliceInputError(
                    f"expected {n_head} tab-separated fields (as in the header), "
                    f"found {int(lines.n_fields[i])}", path=path, line=i + 1)
    else:
        if names is not None:
            check_field_counts(path, lines, body, expected=len(names))
        else:
            check_field_counts(path, lines, body, minimum=min_columns or 1)
    try:
        df = pd.read_csv(io.BytesIO(data), sep="\t", dtype=str, header=0 if header else None,
                         names=None if header else names, keep_default_na=False,
                         na_values=[""], skip_blank_lines=False, quoting=3,
                         engine="c", on_bad_lines="error")
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise GeneSpliceInputError(f"malformed table ({exc})".replace("\n", " "), path=path,
                                   line=int(m.group(1)) if m else None) from exc
    except pd.errors.EmptyDataError as exc:
        raise GeneSpliceInputError("file is empty (no data)", path=path) from exc
    if not header and names is None:
        df.columns = list(range(df.shape[1]))
    for col in required or ():
        bad = df[col].isna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise GeneSpliceInputError(f"empty value in required column {col!r}",
                                       path=path, line=i + 1 + int(header))
    return df


# ---------------------------------------------------------------------------- validate
def guess_format(path: str | os.PathLike) -> str:
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    table = {"obo": "obo", "gaf": "gaf", "gmt": "gmt", "tsv": "tsv", "txt": "tsv",
             "tab": "tsv", "bed": "bed", "gtf": "gtf", "gff": "gtf", "gff3": "gtf",
             "fa": "fasta", "fasta": "fasta", "fna": "fasta"}
    if ext not in table:
        raise GeneSpliceInputError(
            f"cannot guess the format from the name; pass --format one of {', '.join(FORMATS)}",
            path=path)
    return table[ext]


def _validate_bed(path: Path) -> str:
    data = read_bytes(path)
    lines = scan_lines(data)
    comment = np.isin(lines.first_byte, [ord("#")])
    for i in np.flatnonzero(~comment & (lines.ends == lines.starts)):
        raise GeneSpliceInputError("blank line in BED body", path=path, line=int(i) + 1)
    track = np.zeros(lines.n, dtype=bool)
    for i in np.flatnonzero(np.isin(lines.first_byte, [ord("t"), ord("b")])):
        t = line_text(data, lines, int(i))
        track[i] = t.startswith(("track", "browser"))
    body = ~comment & ~track
    check_field_counts(path, lines, body, minimum=3)
    nf = lines.n_fields[body]
    if len(nf) and (nf != nf[0]).any():
        i = int(np.flatnonzero(body)[np.argmax(nf != nf[0])])
        raise GeneSpliceInputError(f"expected {int(nf[0])} fields as on the first record, "
                                   f"found {int(lines.n_fields[i])}", path=path, line=i + 1)
    rows = np.flatnonzero(body)
    df = pd.read_csv(io.BytesIO(data), sep="\t", header=None, dtype=str,
                     skiprows=list(np.flatnonzero(~body)), quoting=3, usecols=[0, 1, 2])
    start = pd.to_numeric(df[1], errors="coerce")
    end = pd.to_numeric(df[2], errors="coerce")
    bad = start.isna() | end.isna() | (start < 0) | (end < start)
    if bad.any():
        k = int(np.argmax(bad.to_numpy()))
        raise GeneSpliceInputError(
            f"expected integer start <= end in columns 2-3, found {df.iloc[k, 1]!r}, "
            f"{df.iloc[k, 2]!r}", path=path, line=int(rows[k]) + 1)
    return f"{len(df):,} BED records, {df[0].nunique():,} contigs"


def _validate_gtf(path: Path) -> str:
    data = read_bytes(path)
    lines = scan_lines(data)
    body = lines.first_byte != ord("#")
    body &= lines.ends > lines.starts
    check_field_counts(path, lines, body, expected=9)
    rows = np.flatnonzero(body)
    df = pd.read_csv(io.BytesIO(data), sep="\t", header=None, dtype=str, quoting=3,
                     skiprows=list(np.flatnonzero(~body)) or None)
    start = pd.to_numeric(df[3], errors="coerce")
    end = pd.to_numeric(df[4], errors="coerce")
    bad = (start.isna() | end.isna() | (start < 1) | (end < start)).to_numpy()
    if bad.any():
        k = int(np.argmax(bad))
        raise GeneSpliceInputError("expected integer 1-based start <= end in columns 4-5",
                                   path=path, line=int(rows[k]) + 1)
    bad = ~df[6].isin(["+", "-", "."]).to_numpy()
    if bad.any():
        k = int(np.argmax(bad))
        raise GeneSpliceInputError(f"expected strand +, - or . in column 7, found {df.iloc[k, 6]!r}",
                                   path=path, line=int(rows[k]) + 1)
    return f"{len(df):,} GTF records, {df[2].nunique():,} feature types"


_FASTA_OK = re.compile(rb"^[ACGTURYKMSWBDHVNacgturykmswbdhvn\-\.\*]*$")


def _validate_fasta(path: Path) -> str:
    data = read_bytes(path)
    lines = scan_lines(data)
    header = lines.first_byte == ord(">")
    first = int(np.argmax(lines.ends > lines.starts))
    if not header[first]:
        raise GeneSpliceInputError("expected a '>' header line before any sequence",
                                   path=path, line=first + 1)
    names = set()
    for i in np.flatnonzero(header):
        name = line_text(data, lines, int(i))[1:].split()
        if not name:
            raise GeneSpliceInputError("empty FASTA header", path=path, line=int(i) + 1)
        if name[0] in names:
            raise GeneSpliceInputError(f"duplicate sequence name {name[0]!r}", path=path,
                                       line=int(i) + 1)
        names.add(name[0])
    seq = ~header
    # sequence lines: check allowed letters, vectorised on the whole buffer
    arr = np.frombuffer(data, dtype=np.uint8)
    allowed = np.zeros(256, dtype=bool)
    for ch in b"ACGTURYKMSWBDHVNacgturykmswbdhvn-.*\n\r":
        allowed[ch] = True
    line_of_byte_bad = np.flatnonzero(~allowed[arr])
    if len(line_of_byte_bad):
        line_idx = np.searchsorted(lines.starts, line_of_byte_bad, side="right") - 1
        bad_lines = line_idx[seq[line_idx]]
        if len(bad_lines):
            i = int(bad_lines[0])
            pos = int(line_of_byte_bad[seq[line_idx]][0])
            raise GeneSpliceInputError(
                f"unexpected character {chr(arr[pos])!r} in sequence (expected IUPAC nucleotides)",
                path=path, line=i + 1)
    n_bases = int((lines.ends - lines.starts)[seq].sum())
    return f"{len(names):,} sequences, {n_bases:,} bases"


def _validate_tsv(path: Path) -> str:
    data = read_bytes(path)
    lines = scan_lines(data)
    body = np.ones(lines.n, dtype=bool)
    body[0] = False
    n_head = int(lines.n_fields[0])
    if lines.n < 2:
        raise GeneSpliceInputError("no data rows after the header", path=path, line=1)
    check_field_counts(path, lines, body, expected=n_head,
                       what="tab-separated fields (as in the header)")
    return f"{lines.n - 1:,} rows x {n_head} columns"


def validate_file(path: str | os.PathLike, fmt: str | None = None) -> str:
    """Check one input file; return a one-line summary or raise GeneSpliceInputError."""
    path = Path(path)
    fmt = fmt or guess_format(path)
    if fmt not in FORMATS:
        raise GeneSpliceInputError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "obo":
        from genesplice.annotations.go import read_go_obo
        go = read_go_obo(path)
        ns = go.terms["namespace"].value_counts().to_dict()
        what = (f"{len(go.terms):,} terms ({', '.join(f'{k}: {v:,}' for k, v in sorted(ns.items()))}), "
                f"{len(go.edges):,} relations")
    elif fmt == "gaf":
        from genesplice.annotations.go import read_gaf
        ann, rep = read_gaf(path, resolver=False)
        what = f"{rep.rows_read:,} annotations, {ann['gene'].nunique():,} genes, " \
               f"{ann['go_id'].nunique():,} terms"
    elif fmt == "gmt":
        from genesplice.annotations.reactome import read_gmt
        df, rep = read_gmt(path, resolver=False)
        what = f"{df['pathway_id'].nunique():,} gene sets, {len(df):,} memberships"
    elif fmt == "tsv":
        what = _validate_tsv(path)
    elif fmt == "bed":
        what = _validate_bed(path)
    elif fmt == "gtf":
        what = _validate_gtf(path)
    else:
        what = _validate_fasta(path)
    return f"{path}: OK ({fmt}) {what}"
