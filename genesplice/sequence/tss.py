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
from pathlib import Path

import pandas as pd

from genesplice.io.text import open_text
from genesplice.io.errors import GeneSpliceInputError

log = logging.getLogger(__name__)

TSS_COLUMNS = ["gene_id", "gene_symbol", "ensembl_id", "chrom", "tss", "strand"]


def _check_and_finish(df: pd.DataFrame, path: Path, first_line: int) -> pd.DataFrame:
    """Validate strand/tss, drop repeated gene ids (counted), fix dtypes and column order."""
    lines = df.index.to_numpy() + first_line
    bad_strand = ~df["strand"].isin(["+", "-"])
    if bad_strand.any():
        i = int(bad_strand.to_numpy().argmax())
        raise GeneSpliceInputError(
            f"strand must be '+' or '-' (found {df['strand'].iloc[i]!r})", path=path,
            line=int(lines[i]))
    tss = pd.to_numeric(df["tss"], errors="coerce")
    bad_tss = tss.isna() | (tss < 0)
    if bad_tss.any():
        i = int(bad_tss.to_numpy().argmax())
        raise GeneSpliceInputError(
            f"TSS position must be a non-negative integer (found {df['tss'].iloc[i]!r})",
            path=path, line=int(lines[i]))
    missing_id = df["gene_id"].isna() | (df["gene_id"].astype(str).str.len() == 0)
    if missing_id.any():
        i = int(missing_id.to_numpy().argmax())
        raise GeneSpliceInputError("gene id is empty", path=path, line=int(lines[i]))
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
    ``gene_symbol, ensembl_id, chrom, tss, strand, source``.
    """
    path = Path(path)
    with open_text(path) as fh:
        df = pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
    required = {"chrom", "tss", "strand", id_column}
    missing = required - set(df.columns)
    if missing:
        raise GeneSpliceInputError(
            f"missing columns {sorted(missing)} (found {list(df.columns)}, expected at least "
            f"{sorted(required)})", path=path, line=1)
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
    (a BED of gene or transcript bodies).
    """
    if tss_at not in ("center", "five_prime"):
        raise ValueError(f"tss_at must be 'center' or 'five_prime', got {tss_at!r}")
    path = Path(path)
    with open_text(path) as fh:
        df = pd.read_csv(fh, sep="\t", header=None, dtype=str, comment="#",
                         keep_default_na=False, na_values=[""])
    if df.shape[1] < 6:
        raise GeneSpliceInputError(
            f"expected 6 tab-separated BED columns (chrom start end name score strand), "
            f"found {df.shape[1]}", path=path, line=1)
    df = df.iloc[:, :6]
    df.columns = ["chrom", "start", "end", "name", "score", "strand"]
    start = pd.to_numeric(df["start"], errors="coerce")
    end = pd.to_numeric(df["end"], errors="coerce")
    bad = start.isna() | end.isna() | (end <= start)
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise GeneSpliceInputError(
            f"start/end must be integers with end > start (found {df['start'].iloc[i]!r}, "
            f"{df['end'].iloc[i]!r})", path=path, line=i + 1)
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
    return _check_and_finish(out, path, first_line=1)


def read_tss_gtf(path: str | os.PathLike, feature: str = "gene",
                 id_attribute: str = "gene_name") -> pd.DataFrame:
    """GTF records of one feature type (default ``gene``); TSS = 5' end, converted to 0-based.

    ``id_attribute`` is the attribute used as ``gene_id`` (``gene_name`` by default, falling
    back to the GTF ``gene_id`` when a record has no name).
    """
    path = Path(path)
    names = ["chrom", "source", "feature", "start", "end", "score", "strand", "frame", "attrs"]
    with open_text(path) as fh:
        df = pd.read_csv(fh, sep="\t", header=None, names=names, comment="#", dtype=str,
                         keep_default_na=False, na_values=[""])
    if df.empty:
        raise GeneSpliceInputError("no GTF records", path=path)
    if df["attrs"].isna().any():
        i = int(df["attrs"].isna().to_numpy().argmax())
        raise GeneSpliceInputError("expected 9 tab-separated GTF columns", path=path, line=i + 1)
    df = df[df["feature"] == feature]
    if df.empty:
        raise GeneSpliceInputError(f"no {feature!r} records (column 3)", path=path)
    start1 = pd.to_numeric(df["start"], errors="coerce")
    end1 = pd.to_numeric(df["end"], errors="coerce")
    bad = start1.isna() | end1.isna() | (start1 < 1)
    if bad.any():
        i = df.index[int(bad.to_numpy().argmax())]
        raise GeneSpliceInputError("start/end must be 1-based integers", path=path,
                                   line=int(i) + 1)
    attrs = df["attrs"]
    ens = attrs.str.extract(r'gene_id "([^"]+)"', expand=False)
    name = attrs.str.extract(r'gene_name "([^"]+)"', expand=False)
    chosen = attrs.str.extract(rf'{id_attribute} "([^"]+)"', expand=False)
    out = pd.DataFrame({
        "gene_id": chosen.fillna(ens),
        "gene_symbol": name,
        "ensembl_id": ens.str.split(".").str[0],
        "chrom": df["chrom"],
        "tss": (start1 - 1).where(df["strand"] != "-", end1 - 1),
        "strand": df["strand"]})
    out.index = df.index  # keep file row numbers for error messages
    return _check_and_finish(out, path, first_line=1)


def read_tss(path: str | os.PathLike) -> pd.DataFrame:
    """Dispatch on the file name: ``.bed[.gz]``, ``.gtf[.gz]``, otherwise a TSV with header."""
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith(".bed"):
        return read_tss_bed(path)
    if name.endswith((".gtf", ".gff2")):
        return read_tss_gtf(path)
    return read_tss_tsv(path)
