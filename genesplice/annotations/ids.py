"""One gene-identifier resolver used by every parser.

Built from the Bioconductor ``org.Hs.eg.db`` table bundled as
``knowledge/annotations/gene_ids_human_orgHs_2022.tsv.gz`` (one row per Entrez gene: official
symbol, ``|``-separated Ensembl gene ids, UniProt accessions and aliases). Any identifier --
official symbol, alias / previous symbol, Ensembl gene id (version suffix stripped) or UniProt
accession (isoform suffix ``-N`` stripped) -- is resolved to the canonical official symbol.

Resolution order (first hit wins, so it is deterministic):

1. exact official symbol (an official symbol always beats an alias of another gene);
2. Ensembl gene id, 3. UniProt accession (from the table, then an optional extra map);
4. alias / previous symbol, 5. the same lookups on the upper-cased id.

An id that maps to several different symbols at one level (e.g. an alias shared by two genes)
is *ambiguous*: it is left unmapped (``ambiguous="skip"``, the default) or resolved to the
alphabetically first symbol (``ambiguous="first"``); either way it is counted in
:attr:`ResolveReport.ambiguous`.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genesplice.io.constants import GENE_ID_TABLE, UNIPROT_TO_SYMBOL
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.io.tables import read_table

TABLE_COLUMNS = ("symbol", "ensembl_ids", "uniprot_ids", "aliases")

_ISOFORM = re.compile(r"-\d+$")
_ENSEMBL_VERSION = re.compile(r"^(ENS[A-Z]*G\d+)\.\d+$")


def strip_isoform(accession: str) -> str:
    """``P04637-2`` -> ``P04637`` (UniProt isoform suffix removed)."""
    return _ISOFORM.sub("", accession)


def strip_version(ensembl_id: str) -> str:
    """``ENSG00000141510.16`` -> ``ENSG00000141510``."""
    m = _ENSEMBL_VERSION.match(ensembl_id)
    return m.group(1) if m else ensembl_id


@dataclass
class ResolveReport:
    """What one :meth:`GeneResolver.resolve` call could and could not map."""
    n_input: int = 0
    n_mapped: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    ambiguous: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def summary(self, examples: int = 5) -> str:
        ex = ", ".join(self.unmapped[:examples])
        return (f"{self.n_mapped:,}/{self.n_input:,} ids mapped "
                f"({len(self.unmapped):,} unmapped{': ' + ex if ex else ''}; "
                f"{len(self.ambiguous):,} ambiguous)")


def _explode(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """(key, symbol) pairs from a ``|``-separated column."""
    sub = table[["symbol", column]].dropna()
    parts = sub[column].str.split("|")
    lens = parts.str.len().to_numpy()
    keys = [k for p in parts for k in p]
    out = pd.DataFrame({"key": keys, "symbol": np.repeat(sub["symbol"].to_numpy(), lens)})
    return out[out["key"] != ""].drop_duplicates()


def _unique_and_ambiguous(pairs: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    """key -> symbol for keys with one symbol; key -> alphabetically first symbol for
    ambiguous keys (several symbols). Vectorised with factorize/bincount."""
    kc, kuniq = pd.factorize(pairs["key"])
    sc, suniq = pd.factorize(pairs["symbol"])
    code = np.unique(kc.astype(np.int64) * (len(suniq) + 1) + sc)
    kc, sc = code // (len(suniq) + 1), code % (len(suniq) + 1)
    n = np.bincount(kc, minlength=len(kuniq))
    one = n[kc] == 1
    kuniq = np.asarray(kuniq, dtype=object)
    suniq = np.asarray(suniq, dtype=object)
    unique = dict(zip(kuniq[kc[one]].tolist(), suniq[sc[one]].tolist()))
    amb: dict[str, str] = {}
    for k, sym in zip(kuniq[kc[~one]].tolist(), suniq[sc[~one]].tolist()):
        if k not in amb or sym < amb[k]:
            amb[k] = sym
    return unique, amb


class GeneResolver:
    """Map symbols / aliases / Ensembl / UniProt ids to canonical official symbols."""

    def __init__(self, table: pd.DataFrame, *, source: str = "<table>",
                 uniprot_extra: pd.DataFrame | None = None,
                 ambiguous: str = "skip") -> None:
        missing = [c for c in TABLE_COLUMNS if c not in table.columns]
        if missing:
            raise GeneSpliceInputError(
                f"gene-id table lacks column(s) {missing}; expected {list(TABLE_COLUMNS)}",
                path=source, line=1)
        if ambiguous not in ("skip", "first"):
            raise GeneSpliceInputError(f"ambiguous must be 'skip' or 'first', got {ambiguous!r}")
        self.source = source
        self.ambiguous_policy = ambiguous
        table = table.dropna(subset=["symbol"])
        self.symbols: frozenset[str] = frozenset(table["symbol"])
        ens = _explode(table, "ensembl_ids")
        uni = _explode(table, "uniprot_ids")
        uni["key"] = uni["key"].map(strip_isoform)
        if uniprot_extra is not None and len(uniprot_extra):
            # extra accession -> symbol pairs (e.g. derived from a GAF): the symbol itself is
            # first resolved through this table, so the result is still an official symbol.
            extra = uniprot_extra.rename(columns={uniprot_extra.columns[0]: "key",
                                                  uniprot_extra.columns[1]: "symbol"})
            extra = extra.dropna()
            extra["key"] = extra["key"].map(strip_isoform)
            extra = extra[~extra["key"].isin(set(uni["key"]))]
            self._uni_extra_raw = extra
        else:
            self._uni_extra_raw = None
        ali = _explode(table, "aliases")
        self._ensembl, self._ensembl_amb = _unique_and_ambiguous(ens)
        self._uniprot, self._uniprot_amb = _unique_and_ambiguous(uni.drop_duplicates())
        self._alias, self._alias_amb = _unique_and_ambiguous(ali)
        up = pd.DataFrame({"key": table["symbol"].str.upper(), "symbol": table["symbol"]})
        self._upper_symbol, _ = _unique_and_ambiguous(up)
        self._upper_alias, self._upper_alias_amb = _unique_and_ambiguous(
            ali.assign(key=ali["key"].str.upper()))
        if self._uni_extra_raw is not None:
            resolved, _ = self._resolve_no_extra(self._uni_extra_raw["symbol"].unique())
            ex = self._uni_extra_raw.assign(symbol=self._uni_extra_raw["symbol"].map(resolved))
            uniq, amb = _unique_and_ambiguous(ex.dropna().drop_duplicates())
            self._uniprot_extra, self._uniprot_extra_amb = uniq, amb
        else:
            self._uniprot_extra, self._uniprot_extra_amb = {}, {}
        self._cache: dict[str, tuple[str | None, str]] = {}
        # Entrez gene id -> official symbol (only asked for explicitly, see entrez_symbols:
        # all-digit ids never enter the general lookup, so other parsers are unaffected)
        self._entrez: dict[str, str] = (
            {} if "entrez_id" not in table.columns else
            dict(zip(table["entrez_id"].astype(str).str.strip(), table["symbol"])))
        # official symbol -> its first listed Ensembl gene id (for output tables)
        first_ens = table.dropna(subset=["ensembl_ids"])
        self._symbol_ensembl: dict[str, str] = dict(zip(
            first_ens["symbol"], first_ens["ensembl_ids"].str.split("|").str[0]))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_table(cls, path: str | os.PathLike | None = None, *,
                   uniprot_map: str | os.PathLike | None = None,
                   ambiguous: str = "skip") -> "GeneResolver":
        """Resolver from an org.Hs.eg.db-style TSV (default: the bundled 2022 table).

        ``uniprot_map``: optional two-column TSV (accession, symbol) used for accessions the
        table does not know; with the bundled table (``path=None``) it defaults to the bundled
        ``knowledge/annotations/uniprot_to_symbol.tsv.gz``.
        """
        if path is None:
            path = knowledge_path(GENE_ID_TABLE)
            if uniprot_map is None:  # GAF-derived accession -> symbol pairs
                uniprot_map = knowledge_path(UNIPROT_TO_SYMBOL)
        path = Path(path)
        table = read_table(path, columns=TABLE_COLUMNS, required=("symbol",))
        extra = None
        if uniprot_map is not None:
            extra = read_table(uniprot_map, columns=None, min_columns=2).iloc[:, :2]
        return cls(table, source=str(path), uniprot_extra=extra, ambiguous=ambiguous)

    # ------------------------------------------------------------------ resolution
    def _lookup(self, x: str, extra: bool = True) -> tuple[str | None, str]:
        """(symbol or None, how) for one id; see the module docstring for the order."""
        if x in self.symbols:
            return x, "symbol"
        k = strip_version(x)
        if k in self._ensembl:
            return self._ensembl[k], "ensembl"
        if k in self._ensembl_amb:
            return self._ensembl_amb[k], "ambiguous"
        k = strip_isoform(x)
        for uni, amb in ((self._uniprot, self._uniprot_amb),
                         (self._uniprot_extra, self._uniprot_extra_amb) if extra else ({}, {})):
            if k in uni:
                return uni[k], "uniprot"
            if k in amb:
                return amb[k], "ambiguous"
        if x in self._alias:
            return self._alias[x], "alias"
        if x in self._alias_amb:
            return self._alias_amb[x], "ambiguous"
        u = x.upper()
        if u in self._upper_symbol:
            return self._upper_symbol[u], "symbol"
        if u in self._upper_alias:
            return self._upper_alias[u], "alias"
        if u in self._upper_alias_amb:
            return self._upper_alias_amb[u], "ambiguous"
        return None, "unmapped"

    def _resolve_no_extra(self, ids: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        out, miss = {}, []
        for x in ids:
            sym, how = self._lookup(str(x), extra=False)
            if sym is None or how == "ambiguous":
                miss.append(x)
            else:
                out[x] = sym
        return out, miss

    def resolve(self, ids: Iterable[str], report: ResolveReport | None = None
                ) -> tuple[dict[str, str], list[str]]:
        """Resolve ids; returns (``{input: symbol}``, unmapped inputs in first-seen order).

        Each distinct id is looked up once (results are cached on the resolver). Pass a
        :class:`ResolveReport` to collect counts by kind and the ambiguous ids.
        """
        mapping: dict[str, str] = {}
        unmapped: list[str] = []
        seen: set[str] = set()
        if hasattr(ids, "tolist"):
            ids = ids.tolist()  # iterating a pandas/numpy array element-wise is slow
        for x in ids:
            if x in seen or x is None or (isinstance(x, float)):
                continue
            seen.add(x)
            hit = self._cache.get(x)
            if hit is None:
                hit = self._lookup(str(x).strip())
                self._cache[x] = hit
            sym, how = hit
            if report is not None:
                report.n_input += 1
                report.by_kind[how] = report.by_kind.get(how, 0) + 1
                if how == "ambiguous":
                    report.ambiguous.append(x)
            if sym is None or (how == "ambiguous" and self.ambiguous_policy == "skip"):
                unmapped.append(x)
                if report is not None:
                    report.unmapped.append(x)
                continue
            mapping[x] = sym
            if report is not None:
                report.n_mapped += 1
        return mapping, unmapped

    def resolve_series(self, ids: pd.Series, report: ResolveReport | None = None) -> pd.Series:
        """Vectorised: a Series of symbols (NaN where unmapped), resolving each distinct id once."""
        uniq = pd.unique(ids.dropna())
        mapping, _ = self.resolve(uniq, report)
        return ids.map(mapping)

    def entrez_symbols(self, ids: Iterable[str]) -> dict[str, str]:
        """``{entrez id: official symbol}`` for the Entrez gene ids the table knows (ids it
        does not know are absent; ``'7157'`` and ``'7157.0'`` are the same id)."""
        out = {}
        for x in ids:
            key = str(x).strip()
            key = key[:-2] if key.endswith(".0") else key
            if key in self._entrez:
                out[x] = self._entrez[key]
        return out

    def ensembl_ids_of(self, symbols: Iterable[str]) -> list[str]:
        """The first Ensembl gene id the table lists for each official symbol ("" where it
        lists none or the symbol is not official), in input order."""
        return [self._symbol_ensembl.get(s, "") for s in symbols]

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.symbols

    def __repr__(self) -> str:
        return f"GeneResolver({len(self.symbols):,} symbols from {self.source})"


_DEFAULT: dict[tuple, GeneResolver] = {}


def default_resolver(path: str | os.PathLike | None = None,
                     uniprot_map: str | os.PathLike | None = None) -> GeneResolver:
    """Process-wide cached resolver (building one takes ~1 s)."""
    key = (None if path is None else os.fspath(path),
           None if uniprot_map is None else os.fspath(uniprot_map))
    if key not in _DEFAULT:
        _DEFAULT[key] = GeneResolver.from_table(path, uniprot_map=uniprot_map)
    return _DEFAULT[key]
