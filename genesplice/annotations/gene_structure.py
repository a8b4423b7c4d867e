"""GENCODE canonical transcripts -> per-gene structure: genomic span, exon count, chromosome.

File format (bundled ``knowledge/coords/spliceai_gencode_v24_canonical_tss_hg38.tsv.gz``: the
GENCODE V24 canonical transcripts of the spliceai package, hg38): tab-separated, header
``gene_symbol chrom tss strand tx_start_0based tx_end n_exons`` (``tss`` is not read here), one
transcript per gene, 0-based half-open coordinates, so the span is ``tx_end - tx_start_0based``.

A malformed row is a :class:`GeneSpliceInputError` naming the file and the line: a missing
column, an empty required value, a coordinate or exon count that is not a non-negative integer,
start > end, no exon, a strand other than ``+`` / ``-``. Symbols go through the one
:class:`~genesplice.annotations.ids.GeneResolver` (taken as written with ``resolver=False``).
Rows without a symbol, with an unmapped symbol or repeating a symbol are skipped and counted in
the :class:`ParseReport`; of repeated symbols the first row is kept, a row whose symbol is
already the official one before a row renamed to it.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from genesplice.annotations.ids import GeneResolver, default_resolver
from genesplice.annotations.report import ParseReport
from genesplice.io.constants import GENCODE_CANONICAL
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.io.tables import read_table

#: columns read (``gene_symbol`` may be empty: such rows are skipped, counted)
COLUMNS = ("gene_symbol", "chrom", "strand", "tx_start_0based", "tx_end", "n_exons")
STRUCTURE_COLUMNS = ("span_bp", "n_exons", "chrom", "strand")
_INTEGER_COLUMNS = ("tx_start_0based", "tx_end", "n_exons")
_FIRST_DATA_LINE = 2  # row 0 of the table is line 2 of the file (after the header)


def read_gene_structure(path: str | os.PathLike | None = None, *,
                        resolver: GeneResolver | None | bool = None
                        ) -> tuple[pd.DataFrame, ParseReport]:
    """Canonical transcripts (default: the bundled GENCODE V24 file) -> one row per gene.

    Returns a DataFrame indexed by ``gene_symbol`` (official symbols; as written with
    ``resolver=False``), in file order, with columns ``span_bp`` (int64, transcript genomic span
    in bp), ``n_exons`` (int64), ``chrom`` and ``strand`` (str), and the :class:`ParseReport`.
    """
    path = Path(path) if path is not None else knowledge_path(GENCODE_CANONICAL)
    report = ParseReport(source=str(path))
    df = read_table(path, columns=COLUMNS, required=COLUMNS[1:])
    report.rows_read = len(df)
    start, end, n_exons = (_non_negative_integers(df[c], c, path) for c in _INTEGER_COLUMNS)
    _raise_first(start > end, path, lambda i: (
        f"expected tx_start_0based <= tx_end, found {start[i]} > {end[i]}"))
    _raise_first(n_exons < 1, path, lambda i: "expected n_exons >= 1, found 0")
    strand = df["strand"].to_numpy(dtype=object)
    _raise_first(~np.isin(strand, ["+", "-"]), path, lambda i: (
        f"expected strand + or - in column 'strand', found {strand[i]!r}"))

    written = df["gene_symbol"]
    report.skip("no gene symbol", int(written.isna().sum()))
    if resolver is False:
        symbol = written
    else:
        symbol = (resolver or default_resolver()).resolve_series(written)
        unmapped = symbol.isna() & written.notna()
        report.skip("gene symbol not mapped", int(unmapped.sum()))
        report.add_unmapped(list(pd.unique(written[unmapped])))
    out = pd.DataFrame({"gene_symbol": symbol, "span_bp": end - start, "n_exons": n_exons,
                        "chrom": df["chrom"], "strand": df["strand"],
                        "renamed": (symbol != written).to_numpy()})
    out = out[symbol.notna().to_numpy()]
    kept = out.sort_values("renamed", kind="stable").drop_duplicates("gene_symbol").sort_index()
    report.skip("duplicate gene symbol (first kept)", len(out) - len(kept))
    report.notes["renamed_to_official_symbol"] = int(kept["renamed"].sum())
    report.rows_kept = len(kept)
    table = kept.set_index("gene_symbol")[list(STRUCTURE_COLUMNS)]
    return table, report.log()


def _non_negative_integers(values: pd.Series, column: str, path: Path) -> np.ndarray:
    """``values`` (strings) as int64 [n]; the first one that is not a non-negative integer is
    an input error naming its line."""
    ok = values.str.fullmatch(r"\d+").to_numpy(dtype=bool)
    _raise_first(~ok, path, lambda i: (
        f"expected a non-negative integer in column {column!r}, found {values.iat[i]!r}"))
    return values.to_numpy(dtype=object).astype(np.int64)


def _raise_first(bad: np.ndarray, path: Path, message: Callable[[int], str]) -> None:
    """Raise for the first row where ``bad`` [n] is true, with ``message(row)`` and its line."""
    if bad.any():
        i = int(np.argmax(bad))
        raise GeneSpliceInputError(message(i), path=path, line=i + _FIRST_DATA_LINE)
