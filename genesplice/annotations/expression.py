"""Expression tables: genes × tissues (or samples, cell types), in the forms people have.

Formats (by file name; an unknown suffix is sniffed from the header line):

- **TSV / CSV** (plain or ``.gz``): a header line, one row per gene, one gene-id column and one
  column per tissue. The bundled HPA layout
  (``knowledge/expression/hpa_gtex_tissue_nTPM_wide.tsv.gz``: ``ensembl_id  gene_symbol
  <tissue> ...``) is one case of it.
- **parquet**: the same layout as a parquet file (a non-default index is read as a column).
- **AnnData ``.h5ad``** (scverse convention): ``obs`` = tissues / samples / cell types, ``var`` =
  genes; the values are ``X`` or ``layers[layer]``; gene ids are ``var_names`` or a ``var`` column.

Gene ids. A table with both ``ensembl_id`` and ``gene_symbol`` columns (the HPA layout) is keyed
by its symbols as written, exactly as it always was. Otherwise it has **one** gene-id column
(``id_column``, else a column named like one — ``gene_symbol``, ``symbol``, ``gene``,
``ensembl_id``, ``entrez_id`` … — else the first column when it holds text): its kind —
official symbol / alias, Ensembl gene id (versioned or not) or Entrez gene id — is detected from
the values and every id is resolved through the bundled gene-id table
(:mod:`genesplice.annotations.ids`) to the official symbol; ids it cannot resolve are dropped,
counted and listed (examples) in the report.

Units (``input_unit``, what the *file* holds; ``unit`` is what the values are converted to):
``ntpm`` / ``tpm`` (non-negative), ``counts`` (non-negative; each column is library-size
normalised to counts per million first) or ``log`` (already on the log scale of ``unit``:
used as they are). A negative value in a non-log unit is an error naming file, line and
column; integer-only values called TPM and values above 30 called log are warned about (logged
and kept in :attr:`ExpressionReport.warnings`). Every value cell must be a number or empty: an
empty cell means the value is **missing** (not zero), stays NaN and ``mask`` marks the
observed cells; any other text is an error naming ``file:line`` and the column.

Replicates: ``replicates`` (a ``{column: tissue}`` dict, or a two-column TSV ``column<TAB>tissue``
with an optional header line ``column<TAB>tissue``) averages the columns of one tissue (mean of
the observed replicates, on the linear scale before the log); columns it does not name stay as
they are.

Rows sharing a gene (the bundled file has 20,090 Ensembl ids for 20,082 symbols) are collapsed
by keeping one row, chosen deterministically (most observed tissues, then highest mean value,
then smallest id); the dropped rows are counted and listed in the report.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

from genesplice.annotations.ids import GeneResolver, default_resolver, strip_version
from genesplice.io.constants import EXPRESSION
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.io.tables import read_table
from genesplice.io.text import check_readable, open_text

log = logging.getLogger(__name__)

ID_COLUMNS = ("ensembl_id", "gene_symbol")
#: what the values are converted to (``data.unit``)
UNITS = ("log10_ntpm1", "log1p_ntpm", "ntpm")
#: what the file holds (``data.expression_unit``)
INPUT_UNITS = ("ntpm", "tpm", "counts", "log")
#: how a single gene-id column's values are read
ID_KINDS = ("symbol", "ensembl", "entrez")
#: file formats by suffix (``.gz`` ignored for the text formats)
FORMATS = {".tsv": "tsv", ".txt": "tsv", ".tab": "tsv", ".csv": "csv", ".parquet": "parquet",
           ".pq": "parquet", ".h5ad": "h5ad"}
#: column names taken as the gene-id column when ``id_column`` is not given (lower-cased)
ID_COLUMN_NAMES = ("gene_symbol", "symbol", "gene", "genes", "gene_name", "gene_id",
                   "ensembl_id", "ensembl_gene_id", "ensembl", "entrez_id", "entrez",
                   "entrezgene", "entrezgene_id", "geneid")
#: values above this called ``log`` are implausible (log10 / ln of any TPM is below it)
LOG_PLAUSIBLE_MAX = 30.0
_MISSING = ["", "NA", "NaN", "nan"]
_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")
_ENTREZ = re.compile(r"^\d+(\.0)?$")


@dataclass(frozen=True)
class ExpressionReport:
    """What reading the table found; nothing is dropped without being counted here."""

    path: str
    n_rows: int                      # data rows in the file
    n_genes: int                     # rows kept (unique symbols)
    n_tissues: int
    n_duplicate_rows_dropped: int    # rows whose symbol repeated an earlier kept row
    duplicate_symbols: tuple[str, ...]
    dropped_ensembl_ids: tuple[str, ...]   # the dropped rows' ids (Ensembl id in HPA layout)
    n_all_missing_rows: int          # kept rows with no observed tissue (kept, all NaN)
    n_missing_cells: int             # NaN cells among kept rows
    n_rows_without_symbol: int       # rows with an empty gene id (dropped)
    format: str = "tsv"
    id_column: str = "gene_symbol"
    id_kind: str = "symbol"          # symbol / ensembl / entrez (detected from the values)
    input_unit: str = "ntpm"
    n_unresolved_ids: int = 0        # ids the gene-id table could not resolve (dropped)
    unresolved_examples: tuple[str, ...] = ()
    n_replicate_columns_merged: int = 0   # columns averaged into another tissue's column
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        text = (f"{self.path}: {self.n_rows} rows -> {self.n_genes} genes x {self.n_tissues} "
                f"tissues; {self.n_duplicate_rows_dropped} duplicate-symbol rows collapsed "
                f"({len(self.duplicate_symbols)} symbols); {self.n_rows_without_symbol} rows "
                f"without symbol dropped; {self.n_all_missing_rows} all-missing rows; "
                f"{self.n_missing_cells} missing cells")
        if self.n_unresolved_ids:
            text += (f"; {self.n_unresolved_ids} {self.id_kind} ids of column "
                     f"{self.id_column!r} not in the gene-id table, dropped (e.g. "
                     f"{', '.join(self.unresolved_examples[:5])})")
        if self.n_replicate_columns_merged:
            text += f"; {self.n_replicate_columns_merged} replicate columns averaged"
        return text + "".join(f"; warning: {w}" for w in self.warnings)


@dataclass(frozen=True)
class ExpressionTable:
    """Genes x tissues expression.

    ``values``: float64 DataFrame, index ``gene_id`` (gene symbol), columns named ``tissue`` in
    file order, NaN where missing. ``ensembl_ids``: Series gene symbol -> Ensembl id of the kept
    row ("" where the table has none). ``unit``: ``log10_ntpm1`` (log10(nTPM + 1)),
    ``log1p_ntpm`` (ln(nTPM + 1)) or ``ntpm``.
    """

    values: pd.DataFrame
    ensembl_ids: pd.Series
    unit: str
    report: ExpressionReport

    @property
    def mask(self) -> pd.DataFrame:
        """True where a value was observed."""
        return self.values.notna()

    @property
    def tissues(self) -> list[str]:
        return list(self.values.columns)

    @property
    def gene_ids(self) -> list[str]:
        return list(self.values.index)

    @property
    def n_genes(self) -> int:
        return self.values.shape[0]

    @property
    def n_tissues(self) -> int:
        return self.values.shape[1]


@dataclass
class _Source:
    """A table as read, before any id or unit logic: id columns as strings, value cells (text
    or numbers) and how to name a data row in an error."""

    ids: pd.DataFrame                 # one column per id column, str (NaN where empty)
    cells: pd.DataFrame               # value columns, file order
    fmt: str
    path: Path
    line_of: Callable[[int], int | None]   # data row -> file line (None: not a text file)


def _to_unit(ntpm: pd.DataFrame, unit: str) -> pd.DataFrame:
    if unit == "log10_ntpm1":
        return np.log10(ntpm + 1.0)
    if unit == "log1p_ntpm":
        return np.log1p(ntpm)
    return ntpm


def read_expression_table(path: str | os.PathLike | None = None, *,
                          unit: str = "log10_ntpm1", input_unit: str = "ntpm",
                          id_column: str | None = None, layer: str | None = None,
                          replicates: Mapping[str, str] | str | os.PathLike | None = None,
                          resolver: GeneResolver | None = None) -> ExpressionTable:
    """Read an expression table (default: the bundled HPA 21.1 nTPM file); see the module
    docstring for formats, gene ids, units and replicates.

    ``unit``: the unit of the returned values; ``input_unit``: what the file holds;
    ``id_column``: the gene-id column (a ``var`` column for ``.h5ad``; default: detected);
    ``layer``: an AnnData layer instead of ``X``; ``replicates``: column → tissue mapping;
    ``resolver``: the gene-id resolver (default: the bundled id table).

    Raises :class:`GeneSpliceInputError` for a missing/empty file, no gene-id or no value
    columns, duplicate column names (line 1), non-numeric or (non-log units) negative cells
    (``file:line``, column named), an unknown ``unit`` / ``input_unit`` / ``layer``, a
    replicate mapping naming a column the table lacks, or a file without data rows.
    """
    if unit not in UNITS:
        raise GeneSpliceInputError(f"unknown expression unit {unit!r} (expected one of {UNITS})")
    if input_unit not in INPUT_UNITS:
        raise GeneSpliceInputError(f"unknown input unit {input_unit!r} for the expression "
                                   f"table (expected one of {INPUT_UNITS})")
    path = Path(path) if path is not None else knowledge_path(EXPRESSION)
    src = _read_source(path, id_column, layer)
    tissues = list(src.cells.columns)
    values = _numeric_cells(src, input_unit)
    notes = _plausibility(values, input_unit)
    if input_unit == "counts":
        values = _library_size_normalised(values, src)
    values, n_merged = _merge_replicates(values, replicates, path)
    tissues = list(values.columns)

    hpa = list(src.ids.columns) == list(ID_COLUMNS)
    if hpa:
        keys = src.ids["gene_symbol"].fillna("").str.strip()
        ens = src.ids["ensembl_id"].fillna("").str.strip()
        tiebreak, id_col, kind, unresolved = ens, "gene_symbol", "symbol", []
    else:
        id_col = src.ids.columns[0]
        raw_ids = src.ids[id_col].fillna("").str.strip()
        kind = detect_id_kind(raw_ids[raw_ids != ""])
        keys, unresolved = _resolve_ids(raw_ids, kind, resolver or default_resolver())
        ens = (raw_ids.map(strip_version) if kind == "ensembl"
               else pd.Series("", index=raw_ids.index, dtype=object))
        ens = ens.where(keys != "", "")
        tiebreak = raw_ids
    has_key = (keys != "").to_numpy()
    n_no_id = int((src.ids.iloc[:, -1 if hpa else 0].fillna("").str.strip() == "").sum())
    kept_rows, dropped = _collapse_duplicates(values, keys, tiebreak, has_key)

    out = values.iloc[kept_rows] if input_unit == "log" else _to_unit(values.iloc[kept_rows],
                                                                       unit)
    out.index = pd.Index(keys.iloc[kept_rows].to_numpy(), name="gene_id", dtype=object)
    out.columns = pd.Index(tissues, name="tissue", dtype=object)
    ensembl_ids = pd.Series(ens.iloc[kept_rows].to_numpy(), index=out.index,
                            name="ensembl_id", dtype=object)
    for note in notes:
        log.warning("%s: %s", path, note)
    report = ExpressionReport(
        path=str(path),
        n_rows=len(values),
        n_genes=out.shape[0],
        n_tissues=len(tissues),
        n_duplicate_rows_dropped=len(dropped),
        duplicate_symbols=tuple(sorted(dropped["symbol"].unique())),
        dropped_ensembl_ids=tuple(dropped["ensembl"]),
        n_all_missing_rows=int(out.isna().all(axis=1).sum()),
        n_missing_cells=int(out.isna().sum().sum()),
        n_rows_without_symbol=n_no_id,
        format=src.fmt, id_column=str(id_col), id_kind=kind, input_unit=input_unit,
        n_unresolved_ids=len(unresolved), unresolved_examples=tuple(unresolved[:20]),
        n_replicate_columns_merged=n_merged, warnings=tuple(notes),
    )
    if unresolved:          # a user's ids the id table lacks: said where a CLI user sees it
        log.warning(report.summary())
    elif report.n_duplicate_rows_dropped or n_no_id or n_merged:
        log.info(report.summary())
    return ExpressionTable(values=out, ensembl_ids=ensembl_ids, unit=unit, report=report)


# ---------------------------------------------------------------------------- formats
def table_format(path: str | os.PathLike) -> str:
    """``tsv`` / ``csv`` / ``parquet`` / ``h5ad`` from the file name (``.gz`` ignored); an
    unknown suffix is sniffed from the header line (tabs: ``tsv``, else commas: ``csv``)."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    with open_text(path) as fh:
        header = fh.readline()
    return "tsv" if "\t" in header or "," not in header else "csv"


def _read_source(path: Path, id_column: str | None, layer: str | None) -> _Source:
    check_readable(path)
    fmt = table_format(path)
    if layer and fmt != "h5ad":
        raise GeneSpliceInputError(f"layer {layer!r} given, but a {fmt} table has no layers "
                                   "(layers exist only in AnnData .h5ad files)", path=path)
    if fmt == "h5ad":
        return _read_h5ad(path, id_column, layer)
    if fmt == "parquet":
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as err:
            raise GeneSpliceInputError(f"not a readable parquet file ({err})",
                                       path=path) from err
        if not isinstance(frame.index, pd.RangeIndex):
            frame = frame.reset_index()
        frame.columns = [str(c) for c in frame.columns]
        line_of = lambda r: None  # noqa: E731 - parquet has no lines
    else:
        frame = _read_text(path, "\t" if fmt == "tsv" else ",")
        line_of = lambda r: r + 2  # noqa: E731 - header is line 1
    header = list(frame.columns)
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise GeneSpliceInputError(f"duplicate column names {dup} (expected unique tissue "
                                   "names)", path=path, line=1 if fmt != "parquet" else None)
    id_cols = _id_columns(frame, id_column, path, fmt)
    cells = frame[[c for c in header if c not in id_cols]]
    if cells.shape[1] == 0:
        raise GeneSpliceInputError(
            f"no tissue columns (expected a gene-id column, then one column per tissue; "
            f"found {header[:5]}{' ...' if len(header) > 5 else ''})", path=path,
            line=1 if fmt != "parquet" else None)
    if frame.empty:
        raise GeneSpliceInputError("no data rows (expected one row per gene after the header)",
                                   path=path)
    ids = frame[id_cols].astype(object).where(frame[id_cols].notna(), None)
    ids = ids.apply(lambda col: col.map(lambda v: None if v is None else str(v)))
    return _Source(ids=ids, cells=cells, fmt=fmt, path=path, line_of=line_of)


def _read_text(path: Path, sep: str) -> pd.DataFrame:
    """A TSV / CSV as strings (NaN where empty); blank lines kept so line numbers hold."""
    with open_text(path) as fh:
        try:
            frame = pd.read_csv(fh, sep=sep, dtype=str, keep_default_na=False,
                                na_values=_MISSING, skip_blank_lines=False)
        except pd.errors.EmptyDataError as err:
            raise GeneSpliceInputError("file is empty (expected a header line)",
                                       path=path) from err
        except pd.errors.ParserError as err:
            what = "tab" if sep == "\t" else "comma"
            detail = " ".join(str(err).split())
            found = re.search(r"line (\d+)", detail)
            raise GeneSpliceInputError(f"malformed table ({detail}); expected the header's "
                                       f"number of {what}-separated columns on every row",
                                       path=path,
                                       line=int(found.group(1)) if found else None) from err
    return frame


def _id_columns(frame: pd.DataFrame, id_column: str | None, path: Path, fmt: str) -> list[str]:
    """The gene-id column(s): both HPA columns, or ``id_column``, or one detected column."""
    header = list(frame.columns)
    line = None if fmt == "parquet" else 1
    if id_column:
        if id_column not in header:
            raise GeneSpliceInputError(f"id column {id_column!r} not in the header (found "
                                       f"{header[:8]})", path=path, line=line)
        return [id_column]
    if all(c in header for c in ID_COLUMNS):
        return list(ID_COLUMNS)
    named = [c for c in header if c.strip().lower() in ID_COLUMN_NAMES]
    if len(named) == 1:
        return named
    if len(named) > 1:
        raise GeneSpliceInputError(
            f"several gene-id columns {named} (expected one; name it with id_column / "
            "data.expression_id_column)", path=path, line=line)
    first = frame[header[0]].dropna().astype(str).str.strip()
    if len(first) and pd.to_numeric(first, errors="coerce").isna().mean() > 0.5:
        return [header[0]]
    if len(first) and first.str.fullmatch(r"\d+").mean() > 0.9 and frame.shape[1] > 1 \
            and header[0].strip().lower() in ("", "unnamed: 0", "id"):
        return [header[0]]
    raise GeneSpliceInputError(
        f"no gene-id column (expected one column of gene symbols, Ensembl or Entrez ids — "
        f"e.g. named gene_symbol, ensembl_id or entrez_id — then one column per tissue; found "
        f"{header[:5]}{' ...' if len(header) > 5 else ''})", path=path, line=line)


def _read_h5ad(path: Path, id_column: str | None, layer: str | None) -> _Source:
    """AnnData: obs = tissues / samples, var = genes -> genes x tissues cells."""
    try:
        adata = anndata.read_h5ad(path)
    except (OSError, KeyError, ValueError) as err:
        raise GeneSpliceInputError(f"not a readable AnnData .h5ad file ({err})",
                                   path=path) from err
    if layer:
        if layer not in adata.layers:
            raise GeneSpliceInputError(f"no layer {layer!r} (layers: {list(adata.layers)})",
                                       path=path)
        x = adata.layers[layer]
    else:
        x = adata.X
    if x is None:
        raise GeneSpliceInputError("AnnData has no X (give a layer)", path=path)
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    if id_column:
        if id_column not in adata.var.columns:
            raise GeneSpliceInputError(f"id column {id_column!r} not in var (columns: "
                                       f"{list(adata.var.columns)[:8]})", path=path)
        gene_ids = adata.var[id_column].astype(object)
        name = id_column
    else:
        gene_ids, name = pd.Series(adata.var_names, dtype=object), "var_names"
    tissues = [str(t) for t in adata.obs_names]
    dup = sorted({t for t in tissues if tissues.count(t) > 1})
    if dup:
        raise GeneSpliceInputError(f"duplicate obs names {dup[:5]} (expected one obs per "
                                   "tissue / sample; average replicates with a mapping)",
                                   path=path)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise GeneSpliceInputError(f"empty AnnData ({x.shape[0]} obs x {x.shape[1]} var)",
                                   path=path)
    cells = pd.DataFrame(x.T, columns=tissues)
    ids = pd.DataFrame({name: [None if (v is None or (isinstance(v, float) and v != v))
                               else str(v) for v in gene_ids]}, dtype=object)
    return _Source(ids=ids, cells=cells, fmt="h5ad", path=path, line_of=lambda r: None)


# ---------------------------------------------------------------------------- values
def _where(src: _Source, r: int, column: str) -> tuple[str, int | None]:
    """``(text naming the cell, file line or None)`` for an error message."""
    gene = src.ids.iat[r, src.ids.shape[1] - 1]
    line = src.line_of(r)
    if line is not None:
        return f"column {column!r}", line
    return f"column {column!r}, row {r + 1} (gene {gene!r})", None


def _numeric_cells(src: _Source, input_unit: str) -> pd.DataFrame:
    """float64 values [rows, tissues]; a non-numeric cell, or a negative one in a non-log
    unit, is an error naming its line (text) or row and gene (parquet, h5ad) and column."""
    raw = src.cells
    tissues = list(raw.columns)
    values = raw.apply(pd.to_numeric, errors="coerce").astype("float64")
    bad = values.isna().to_numpy() & raw.notna().to_numpy()
    if bad.any():
        r, c = np.argwhere(bad)[0]
        where, line = _where(src, int(r), tissues[c])
        raise GeneSpliceInputError(
            f"non-numeric value {raw.iat[r, c]!r} in {where} (expected a number"
            f"{' >= 0' if input_unit != 'log' else ''}, or an empty cell for missing); "
            f"{int(bad.sum())} such cells", path=src.path, line=line)
    inf = np.isinf(values.to_numpy())
    if inf.any():
        r, c = np.argwhere(inf)[0]
        where, line = _where(src, int(r), tissues[c])
        raise GeneSpliceInputError(f"infinite value in {where} (expected a finite number)",
                                   path=src.path, line=line)
    if input_unit != "log":
        neg = (values < 0).to_numpy()
        if neg.any():
            r, c = np.argwhere(neg)[0]
            where, line = _where(src, int(r), tissues[c])
            name = "nTPM" if input_unit == "ntpm" else input_unit
            raise GeneSpliceInputError(
                f"negative {name} {values.iat[r, c]} in {where} (expected >= 0; values "
                "already on a log scale need input unit 'log')", path=src.path, line=line)
    return values


def _plausibility(values: pd.DataFrame, input_unit: str) -> list[str]:
    """Warnings about values that do not look like ``input_unit``."""
    x = values.to_numpy()
    x = x[~np.isnan(x)]
    if not len(x):
        return []
    notes = []
    if input_unit in ("tpm", "ntpm") and np.all(x == np.round(x)) and x.max() > 1:
        notes.append(f"every value is an integer, unusual for {input_unit.upper()}: if these "
                     "are read counts, use input unit 'counts' (library-size normalised)")
    if input_unit == "log" and x.max() > LOG_PLAUSIBLE_MAX:
        notes.append(f"values up to {x.max():g} called 'log' (a log of any TPM stays below "
                     f"{LOG_PLAUSIBLE_MAX:g}): linear values need input unit 'tpm' or 'ntpm'")
    return notes


def _library_size_normalised(counts: pd.DataFrame, src: _Source) -> pd.DataFrame:
    """Counts per million of each column (sample); a column without counts is an error."""
    totals = counts.sum(axis=0, skipna=True)
    empty = [c for c, t in totals.items() if not t > 0]
    if empty:
        raise GeneSpliceInputError(f"columns {empty[:5]} have no counts (library size 0; "
                                   "expected positive counts to normalise)", path=src.path)
    return counts / totals * 1e6


def read_replicate_map(path: str | os.PathLike) -> dict[str, str]:
    """``{column: tissue}`` from a two-column TSV (optional header ``column<TAB>tissue``)."""
    table = read_table(path, header=False, names=("column", "tissue"))
    for col in ("column", "tissue"):
        empty = table[col].isna().to_numpy()
        if empty.any():
            raise GeneSpliceInputError(f"empty {col} (expected column<TAB>tissue)", path=path,
                                       line=int(np.argmax(empty)) + 1)
    start = 1 if tuple(table.iloc[0]) == ("column", "tissue") else 0
    mapping: dict[str, str] = {}
    for i, (col, tissue) in enumerate(table.iloc[start:].itertuples(index=False), start + 1):
        if col in mapping and mapping[col] != tissue:
            raise GeneSpliceInputError(f"column {col!r} mapped twice ({mapping[col]!r}, "
                                       f"{tissue!r}; expected one tissue per column)",
                                       path=path, line=i)
        mapping[col.strip()] = tissue.strip()
    return mapping


def _merge_replicates(values: pd.DataFrame, replicates, path: Path
                      ) -> tuple[pd.DataFrame, int]:
    """Columns of one tissue averaged (mean of the observed replicates); ``(values, number of
    columns merged into another)``."""
    if replicates is None or (isinstance(replicates, (str, os.PathLike)) and not str(replicates)):
        return values, 0
    source = path
    if isinstance(replicates, (str, os.PathLike)):
        source = Path(replicates)
        replicates = read_replicate_map(source)
    unknown = [c for c in replicates if c not in values.columns]
    if unknown:
        raise GeneSpliceInputError(
            f"replicate mapping names columns the table {path} lacks: {unknown[:5]} (its "
            f"columns: {list(values.columns)[:6]} ...)", path=source)
    target = [replicates.get(c, c) for c in values.columns]
    merged = values.T.groupby(pd.Index(target), sort=False).mean().T
    merged = merged[list(dict.fromkeys(target))]
    return merged, values.shape[1] - merged.shape[1]


# ---------------------------------------------------------------------------- gene ids
def detect_id_kind(ids: pd.Series) -> str:
    """``ensembl`` / ``entrez`` / ``symbol``: what most of the (non-empty) ids look like."""
    ids = ids.astype(str)
    if not len(ids):
        return "symbol"
    if ids.str.match(_ENSEMBL).mean() >= 0.5:
        return "ensembl"
    if ids.str.match(_ENTREZ).mean() >= 0.5:
        return "entrez"
    return "symbol"


def _resolve_ids(raw_ids: pd.Series, kind: str, resolver: GeneResolver
                 ) -> tuple[pd.Series, list[str]]:
    """Official symbol per row ("" where empty or unresolvable) and the unresolvable ids."""
    present = raw_ids[raw_ids != ""]
    uniq = list(pd.unique(present))
    if kind == "entrez":
        mapping = resolver.entrez_symbols(uniq)
        unresolved = [x for x in uniq if x not in mapping]
    else:
        mapping, unresolved = resolver.resolve(uniq)
    keys = raw_ids.map(mapping).fillna("").astype(object)
    return keys, unresolved


def _collapse_duplicates(ntpm: pd.DataFrame, symbols: pd.Series, ens: pd.Series,
                         has_symbol: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """(kept row numbers ascending, dropped rows with ``symbol``/``ensembl``).

    Deterministic collapse of duplicate symbols: most observed cells, then highest mean
    value, then smallest id (``ens``); original row order is kept for the survivors.
    """
    order = pd.DataFrame({
        "row": np.arange(len(ntpm)),
        "symbol": symbols.to_numpy(),
        "ensembl": ens.to_numpy(),
        "n_obs": ntpm.notna().sum(axis=1).to_numpy(),
        "mean": ntpm.mean(axis=1).fillna(-1.0).to_numpy(),
    })[has_symbol]
    ranked = order.sort_values(["symbol", "n_obs", "mean", "ensembl"],
                               ascending=[True, False, False, True], kind="mergesort")
    is_dup = ranked["symbol"].duplicated(keep="first")
    return np.sort(ranked.loc[~is_dup, "row"].to_numpy()), ranked[is_dup]
