"""TSS tables: TSV, BED windows or GTF ``gene`` records → one DataFrame layout.

Every reader returns a DataFrame with these columns, one row per gene, coordinates 0-based:

=============  ========  ===================================================================
column         dtype     meaning
=============  ========  ===================================================================
gene_id        str       the key this table uses for the gene (symbol, or Ensembl id)
gene_symbol    str/NA    official symbol where the file gives one
ensembl_id     str/NA    Ensembl gene id without version where the file gives one
chrom          str       chromosome name exactly as in the file (aliasing happens in fasta.py)
tss            int64     0-based position of the transcription start site
strand         str       ``+`` or ``-``
=============  ========  ===================================================================

Rows whose gene id repeats are dropped after the first (counted in ``df.attrs["n_duplicates"]``
and logged); malformed rows raise :class:`GeneSpliceInputError` naming file and line.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.tables import read_table

log = logging.getLogger(__name__)

TSS_COLUMNS = ["gene_id", "gene_symbol", "ensembl_id", "chrom", "tss", "strand"]


#: a 0-based position: a non-negative integer of at most 18 digits (fits int64)
_POSITION = r"\d{1,18}"
#: GTF attributes: ``key "value";`` pairs (bare integers allowed, as GENCODE's ``level 2;``)
_GTF_ATTRIBUTES = r'\s*(?:[A-Za-z_][\w.\-]*\s+(?:"[^"\t]*"|\d+)\s*;\s*)+'
GTF_COLUMNS = ["chrom", "source", "feature", "start", "end", "score", "strand", "frame", "attrs"]


def _raise_first(bad: pd.Series | np.ndarray, lines: np.ndarray, path: Path, message) -> None:
    """Raise for the first row where ``bad`` is true: ``message(row)`` at its file line."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        i = int(bad.argmax())
        raise GeneSpliceInputError(message(i), path=path, line=int(lines[i]))


def _integers(values: pd.Series, lines: np.ndarray, path: Path, what: str) -> pd.Series:
    """String column -> int64; the first value that is not a non-negative integer is an error."""
    ok = values.astype(str).str.fullmatch(_POSITION).to_numpy(dtype=bool)
    _raise_first(~ok, lines, path, lambda i: (
        f"{what} must be a non-negative integer (found {values.iloc[i]!r})"))
    return values.astype("int64")


def _check_and_finish(df: pd.DataFrame, path: Path, first_line: int) -> pd.DataFrame:
    """Validate strand/tss, drop repeated gene ids (counted), fix dtypes and column order.

    ``first_line``: file line of row 0 (the index is added: a RangeIndex gives consecutive
    lines; an index of file line numbers takes ``first_line=0``).
    """
    lines = df.index.to_numpy() + first_line
    _raise_first(~df["strand"].isin(["+", "-"]), lines, path, lambda i: (
        f"strand must be '+' or '-' (found {df['strand'].iloc[i]!r})"))
    if df["tss"].dtype == object:
        tss = _integers(df["tss"], lines, path, "TSS position")
    else:
        tss = df["tss"]
        _raise_first(tss < 0, lines, path, lambda i: (
            f"TSS position must be a non-negative integer (found {tss.iloc[i]!r})"))
    _raise_first(df["chrom"].isna() | (df["chrom"].astype(str).str.len() == 0), lines, path,
                 lambda i: "chromosome is empty")
    missing_id = df["gene_id"].isna() | (df["gene_id"].astype(str).str.len() == 0)
    _raise_first(missing_id, lines, path, lambda i: "gene id is empty")
    df = df.assign(tss=tss.astype("int64"), chrom=df["chrom"].astype(str),
                   gene_id=df["gene_id"].astype(str))
    dup = df["gene_id"].duplicated(keep="first")
    n_dup = int(dup.sum())
    if n_dup:
        log.warning("%s: %d rows repeat an earlier gene id and were dropped (e.g. %s)",
                    path, n_dup, ", ".join(df.loc[dup, "gene_id"].head(5)))
    df = df.loc[~dup, TSS_COLUMNS].reset_index(drop=True)
    df.attrs["n_duplicates"] = n_dup
    df.attrs["path"] = str(path)
    return df


def read_tss_tsv(path: str | os.PathLike, id_column: str = "gene_symbol") -> pd.DataFrame:
    """A tab-separated table with a header: ``chrom``, ``tss`` (0-based), ``strand`` and ids.

    ``id_column`` names the column used as ``gene_id`` (default the official symbol; rows with
    an empty id there fall back to ``ensembl_id``). The bundled ``coords/tss_hg38.tsv.gz`` has
    ``gene_symbol, ensembl_id, chrom, tss, strand, source``. Field counts, strands (``+``/``-``)
    and positions (non-negative integers) are checked per line.
    """
    path = Path(path)
    df = read_table(path, columns=("chrom", "tss", "strand", id_column),
                    required=("chrom", "tss", "strand"))
    for col in ("gene_symbol", "ensembl_id"):
        if col not in df.columns:
            df[col] = pd.NA
    gene_id = df[id_column]
    if id_column != "ensembl_id":
        gene_id = gene_id.fillna(df["ensembl_id"])
    df = df.assign(gene_id=gene_id, ensembl_id=df["ensembl_id"].str.split(".").str[0])
    return _check_and_finish(df, path, first_line=2)


def read_tss_bed(path: str | os.PathLike, tss_at: str = "center") -> pd.DataFrame:
    """BED6 (``chrom start end name score strand``) of windows or genes; name → ``gene_id``.

    ``tss_at="center"``: TSS = ``start + (end - start) // 2`` (the Xpresso ±10 kb windows,
    where TSS = start + 10000). ``tss_at="five_prime"``: ``start`` on ``+``, ``end - 1`` on ``-``
    (a BED of gene or transcript bodies). ``#``, ``track`` and ``browser`` lines are skipped;
    every other line needs the same number (≥ 6) of fields, integer ``0 <= start < end`` and
    strand ``+``/``-`` (errors name the line).
    """
    if tss_at not in ("center", "five_prime"):
        raise ValueError(f"tss_at must be 'center' or 'five_prime', got {tss_at!r}")
    path = Path(path)
    df = read_table(path, header=False, min_columns=6, required=(0, 1, 2, 3, 5),
                    comment_prefixes=("#", "track", "browser"))
    df = df.iloc[:, :6]
    df.columns = ["chrom", "start", "end", "name", "score", "strand"]
    lines = df.index.to_numpy()
    start = _integers(df["start"], lines, path, "BED start (column 2)")
    end = _integers(df["end"], lines, path, "BED end (column 3)")
    _raise_first(end <= start, lines, path, lambda i: (
        f"expected start < end, found {start.iloc[i]} >= {end.iloc[i]}"))
    if tss_at == "center":
        tss = start + (end - start) // 2
    else:
        tss = start.where(df["strand"] != "-", end - 1)
    is_ens = df["name"].str.startswith("ENS")
    out = pd.DataFrame({
        "gene_id": df["name"],
        "gene_symbol": df["name"].where(~is_ens, pd.NA),
        "ensembl_id": df["name"].str.split(".").str[0].where(is_ens, pd.NA),
        "chrom": df["chrom"], "tss": tss, "strand": df["strand"]})
    return _check_and_finish(out, path, first_line=0)


def read_gtf(path: str | os.PathLike) -> pd.DataFrame:
    """Every GTF record (``#`` lines skipped), checked, as strings indexed by file line.

    Each line: 9 tab-separated fields; ``start``/``end`` 1-based integers with
    ``start <= end``; strand ``+``, ``-`` or ``.``; attributes ``key "value";`` pairs.
    """
    path = Path(path)
    df = read_table(path, header=False, names=GTF_COLUMNS, comment_prefixes=("#",),
                    required=("chrom", "feature", "start", "end", "strand", "attrs"))
    lines = df.index.to_numpy()
    start = _integers(df["start"], lines, path, "GTF start (column 4)")
    end = _integers(df["end"], lines, path, "GTF end (column 5)")
    _raise_first(start < 1, lines, path, lambda i: "GTF start (column 4) must be >= 1 (1-based)")
    _raise_first(start > end, lines, path, lambda i: (
        f"expected start <= end, found {start.iloc[i]} > {end.iloc[i]}"))
    _raise_first(~df["strand"].isin(["+", "-", "."]), lines, path, lambda i: (
        f"expected strand +, - or . in column 7, found {df['strand'].iloc[i]!r}"))
    ok = df["attrs"].str.fullmatch(_GTF_ATTRIBUTES).to_numpy(dtype=bool)
    _raise_first(~ok, lines, path, lambda i: (
        f"expected attributes as 'key \"value\";' pairs in column 9, found "
        f"{df['attrs'].iloc[i][:60]!r}"))
    return df.assign(start=start, end=end)


def read_tss_gtf(path: str | os.PathLike, feature: str = "gene",
                 id_attribute: str = "gene_name") -> pd.DataFrame:
    """GTF records of one feature type (default ``gene``); TSS = 5' end, converted to 0-based.

    ``id_attribute`` is the attribute used as ``gene_id`` (``gene_name`` by default, falling
    back to the GTF ``gene_id`` when a record has no name). Every record is checked
    (:func:`read_gtf`), and the chosen ones need strand ``+`` or ``-``.
    """
    path = Path(path)
    df = read_gtf(path)
    df = df[df["feature"] == feature]
    if df.empty:
        raise GeneSpliceInputError(f"no {feature!r} records (column 3)", path=path)
    attrs = df["attrs"]
    ens = attrs.str.extract(r'gene_id "([^"]+)"', expand=False)
    name = attrs.str.extract(r'gene_name "([^"]+)"', expand=False)
    chosen = attrs.str.extract(rf'{re.escape(id_attribute)} "([^"]+)"', expand=False)
    out = pd.DataFrame({
        "gene_id": chosen.fillna(ens),
        "gene_symbol": name,
        "ensembl_id": ens.str.split(".").str[0],
        "chrom": df["chrom"],
        "tss": (df["start"] - 1).where(df["strand"] != "-", df["end"] - 1),
        "strand": df["strand"]})
    out.index = df.index  # file line numbers for error messages
    return _check_and_finish(out, path, first_line=0)


def read_tss(path: str | os.PathLike) -> pd.DataFrame:
    """Dispatch on the file name: ``.bed[.gz]``, ``.gtf[.gz]``, otherwise a TSV with header."""
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith(".bed"):
        return read_tss_bed(path)
    if name.endswith((".gtf", ".gff2")):
        return read_tss_gtf(path)
    return read_tss_tsv(path)
