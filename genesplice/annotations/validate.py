"""``genesplice validate FILE``: check one input file and summarise it in one line.

OBO, GAF and GMT files are read with their own parsers (so validation and reading cannot
disagree); TSV, BED, GTF and FASTA are checked on the raw bytes with the vectorised line scan
of :mod:`genesplice.io.tables`. Every problem is one :class:`GeneSpliceInputError` naming the
file, the line and what was expected.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from genesplice.annotations.go import read_gaf, read_go_obo
from genesplice.annotations.reactome import read_gmt
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.tables import check_field_counts, line_text, read_bytes, scan_lines

FORMATS = ("obo", "gaf", "gmt", "tsv", "bed", "gtf", "fasta")


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


def _validate_obo(path: Path) -> str:
    go = read_go_obo(path)
    ns = go.terms["namespace"].value_counts().to_dict()
    return (f"{len(go.terms):,} terms ({', '.join(f'{k}: {v:,}' for k, v in sorted(ns.items()))}), "
            f"{len(go.edges):,} relations")


def _validate_gaf(path: Path) -> str:
    ann, rep = read_gaf(path, resolver=False)
    return (f"{rep.rows_read:,} annotations, {ann['gene'].nunique():,} genes, "
            f"{ann['go_id'].nunique():,} terms")


def _validate_gmt(path: Path) -> str:
    df, _ = read_gmt(path, resolver=False)
    return f"{df['pathway_id'].nunique():,} gene sets, {len(df):,} memberships"


#: format -> validator returning the summary after ``OK (<format>)``
VALIDATORS = {"obo": _validate_obo, "gaf": _validate_gaf, "gmt": _validate_gmt,
              "tsv": _validate_tsv, "bed": _validate_bed, "gtf": _validate_gtf,
              "fasta": _validate_fasta}


def validate_file(path: str | os.PathLike, fmt: str | None = None) -> str:
    """Check one input file; return a one-line summary or raise GeneSpliceInputError."""
    path = Path(path)
    fmt = fmt or guess_format(path)
    if fmt not in FORMATS:
        raise GeneSpliceInputError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return f"{path}: OK ({fmt}) {VALIDATORS[fmt](path)}"
