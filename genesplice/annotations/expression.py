"""HPA / GTEx tissue expression: the wide nTPM table (one row per gene, one column per tissue).

File format (``knowledge/expression/hpa_gtex_tissue_nTPM_wide.tsv.gz``): tab-separated, header
``ensembl_id  gene_symbol  <tissue> ...``; every column after the two id columns is a tissue,
whose name is taken from the header as written (never from a hard-coded list). Cells are nTPM
(non-negative numbers). An empty cell means the value is **missing** (not zero): it stays NaN
here and ``mask`` marks the observed cells.

Rows are keyed by gene symbol (the project's canonical gene key). The file has more Ensembl ids
than symbols (20,090 vs 20,082): rows sharing a symbol are collapsed by keeping one row, chosen
deterministically (most observed tissues, then highest mean nTPM, then smallest Ensembl id); the
dropped rows are counted and listed in the report.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genesplice.io.constants import EXPRESSION
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.io.text import open_text

log = logging.getLogger(__name__)

ID_COLUMNS = ("ensembl_id", "gene_symbol")
UNITS = ("log10_ntpm1", "log1p_ntpm", "ntpm")
_MISSING = ["", "NA", "NaN", "nan"]


@dataclass(frozen=True)
class ExpressionReport:
    """What reading the table found; nothing is dropped without being counted here."""

    path: str
    n_rows: int                      # data rows in the file
    n_genes: int                     # rows kept (unique symbols)
    n_tissues: int
    n_duplicate_rows_dropped: int    # rows whose symbol repeated an earlier kept row
    duplicate_symbols: tuple[str, ...]
    dropped_ensembl_ids: tuple[str, ...]
    n_all_missing_rows: int          # kept rows with no observed tissue (kept, all NaN)
    n_missing_cells: int             # NaN cells among kept rows
    n_rows_without_symbol: int       # rows with an empty gene_symbol (dropped)

    def summary(self) -> str:
        return (f"{self.path}: {self.n_rows} rows -> {self.n_genes} genes x {self.n_tissues} "
                f"tissues; {self.n_duplicate_rows_dropped} duplicate-symbol rows collapsed "
                f"({len(self.duplicate_symbols)} symbols); {self.n_rows_without_symbol} rows "
                f"without symbol dropped; {self.n_all_missing_rows} all-missing rows; "
                f"{self.n_missing_cells} missing cells")


@dataclass(frozen=True)
class ExpressionTable:
    """Genes x tissues expression.

    ``values``: float64 DataFrame, index ``gene_id`` (gene symbol), columns named ``tissue`` in
    file order, NaN where missing. ``ensembl_ids``: Series gene symbol -> Ensembl id of the kept
    row. ``unit``: ``log10_ntpm1`` (log10(nTPM + 1)), ``log1p_ntpm`` (ln(nTPM + 1)) or ``ntpm``.
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


def _to_unit(ntpm: pd.DataFrame, unit: str) -> pd.DataFrame:
    if unit == "log10_ntpm1":
        return np.log10(ntpm + 1.0)
    if unit == "log1p_ntpm":
        return np.log1p(ntpm)
    return ntpm


def read_expression_table(path: str | os.PathLike | None = None, *,
                          unit: str = "log10_ntpm1") -> ExpressionTable:
    """Read the wide HPA/GTEx nTPM table (default: the bundled HPA 21.1 file).

    Raises :class:`GeneSpliceInputError` for a missing/empty file, missing id columns or no
    tissue columns (line 1), duplicate tissue names (line 1), non-numeric or negative cells
    (``file:line``), an unknown ``unit``, or a file without data rows.
    """
    if unit not in UNITS:
        raise GeneSpliceInputError(f"unknown expression unit {unit!r} (expected one of {UNITS})")
    path = Path(path) if path is not None else knowledge_path(EXPRESSION)
    raw, tissues = _read_raw(path)
    ntpm = _ntpm_cells(raw, tissues, path)
    symbols = raw["gene_symbol"].fillna("").str.strip()
    ens = raw["ensembl_id"].fillna("").str.strip()
    has_symbol = (symbols != "").to_numpy()
    n_no_symbol = int((~has_symbol).sum())
    kept_rows, dropped = _collapse_duplicates(ntpm, symbols, ens, has_symbol)

    values = _to_unit(ntpm.iloc[kept_rows], unit)
    values.index = pd.Index(symbols.iloc[kept_rows].to_numpy(), name="gene_id", dtype=object)
    values.columns = pd.Index(tissues, name="tissue", dtype=object)
    ensembl_ids = pd.Series(ens.iloc[kept_rows].to_numpy(), index=values.index,
                            name="ensembl_id", dtype=object)

    report = ExpressionReport(
        path=str(path),
        n_rows=len(raw),
        n_genes=values.shape[0],
        n_tissues=len(tissues),
        n_duplicate_rows_dropped=len(dropped),
        duplicate_symbols=tuple(sorted(dropped["symbol"].unique())),
        dropped_ensembl_ids=tuple(dropped["ensembl"]),
        n_all_missing_rows=int(values.isna().all(axis=1).sum()),
        n_missing_cells=int(values.isna().sum().sum()),
        n_rows_without_symbol=n_no_symbol,
    )
    if report.n_duplicate_rows_dropped or n_no_symbol:
        log.info(report.summary())
    return ExpressionTable(values=values, ensembl_ids=ensembl_ids, unit=unit, report=report)


def _read_raw(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The table as strings (NaN where empty) and its tissue columns, header checked."""
    with open_text(path) as fh:
        header = fh.readline().rstrip("\n").rstrip("\r").split("\t")
        missing_cols = [c for c in ID_COLUMNS if c not in header]
        tissues = [c for c in header if c not in ID_COLUMNS]
        if missing_cols or not tissues:
            raise GeneSpliceInputError(
                f"missing columns {missing_cols or ['<at least one tissue column>']} (expected "
                f"tab-separated header: {', '.join(ID_COLUMNS)}, then one column per tissue; "
                f"found {header[:5]}{' ...' if len(header) > 5 else ''})", path=path, line=1)
        dup = sorted({c for c in header if header.count(c) > 1})
        if dup:
            raise GeneSpliceInputError(f"duplicate column names {dup} (expected unique tissue "
                                       "names)", path=path, line=1)
        try:
            raw = pd.read_csv(fh, sep="\t", header=None, names=header, dtype=str,
                              keep_default_na=False, na_values=_MISSING)
        except pd.errors.ParserError as err:
            raise GeneSpliceInputError(f"malformed TSV ({err}); expected {len(header)} "
                                       "tab-separated columns per row", path=path) from err
    if raw.empty:
        raise GeneSpliceInputError("no data rows (expected one row per gene after the header)",
                                   path=path)
    return raw, tissues


def _ntpm_cells(raw: pd.DataFrame, tissues: list[str], path: Path) -> pd.DataFrame:
    """float64 nTPM [rows, tissues]; a non-numeric or negative cell is an error naming its line."""
    ntpm = raw[tissues].apply(pd.to_numeric, errors="coerce").astype("float64")
    bad = ntpm.isna().to_numpy() & raw[tissues].notna().to_numpy()
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise GeneSpliceInputError(
            f"non-numeric value {raw[tissues].iat[r, c]!r} in column {tissues[c]!r} (expected a "
            f"number >= 0, or an empty cell for missing); {int(bad.sum())} such cells",
            path=path, line=int(r) + 2)
    neg = (ntpm < 0).to_numpy()
    if neg.any():
        r, c = np.argwhere(neg)[0]
        raise GeneSpliceInputError(
            f"negative nTPM {ntpm.iat[r, c]} in column {tissues[c]!r} (expected >= 0)",
            path=path, line=int(r) + 2)
    return ntpm


def _collapse_duplicates(ntpm: pd.DataFrame, symbols: pd.Series, ens: pd.Series,
                         has_symbol: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """(kept row numbers ascending, dropped rows with ``symbol``/``ensembl``).

    Deterministic collapse of duplicate symbols: most observed cells, then highest mean
    nTPM, then smallest Ensembl id; original row order is kept for the survivors.
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
