"""Gene and tissue lookup: symbols, aliases, Ensembl / UniProt ids, close matches.

An unknown gene or tissue is bad input: :class:`GeneSpliceInputError` listing the close
matches, on one line.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from genesplice.annotations.ids import default_resolver
from genesplice.api.base import RELATION_LABELS, GeneSpliceBase
from genesplice.io.errors import GeneSpliceInputError


def as_list(items: Iterable[str] | str) -> list[str]:
    """One name or several, as a list."""
    return [items] if isinstance(items, str) else list(items)


class LookupMixin(GeneSpliceBase):
    """How a query names a gene or a tissue."""

    def _lookup_one(self, query: str) -> str | None:
        q = str(query).strip()
        if q in self._row:
            return q
        if q in self._from_display:
            return self._from_display[q]
        if q.upper() in self._upper:
            return self._upper[q.upper()]
        hit = default_resolver().resolve([q])[0].get(q)
        if hit is not None:
            if hit in self._row:
                return hit
            if hit in self._from_display:
                return self._from_display[hit]
        return None

    def _close_matches(self, query: str, n: int = 5) -> list[str]:
        hits = difflib.get_close_matches(str(query).upper(), list(self._upper), n=n, cutoff=0.6)
        return list(dict.fromkeys(self._symbol(self._upper[h]) for h in hits))

    def _unknown(self, queries: Sequence[str]) -> GeneSpliceInputError:
        parts = []
        for q in queries:
            close = self._close_matches(q)
            parts.append(f"{q!r} (close matches: {', '.join(close)})" if close
                         else f"{q!r} (no close match)")
        return GeneSpliceInputError(
            f"unknown gene{'s' if len(queries) > 1 else ''}: {'; '.join(parts)}. Genes are "
            "looked up as symbols of the graph or expression table, aliases, Ensembl or UniProt "
            "ids; to predict a gene the graph lacks, pass its sequence and/or annotations "
            "(predict(..., sequences={name: 'ACGT…'}, annotations={name: ['GO:…', "
            "'R-HSA-…', 'TF symbol']}))")

    def lookup(self, genes: Iterable[str]) -> pd.DataFrame:
        """How each query resolves: ``query, gene_id`` (graph id), ``gene_symbol`` (as in the
        expression table), ``has_sequence``, ``n_go_terms``, ``n_pathways``, ``n_regulators``,
        ``has_expression``. Unknown genes raise an error listing close matches."""
        genes = as_list(genes)
        ids = [self._lookup_one(g) for g in genes]
        missing = [g for g, i in zip(genes, ids) if i is None]
        if missing:
            raise self._unknown(missing)
        rows = torch.tensor([self._row[i] for i in ids], dtype=torch.long)
        counts = {kind: self._in_degree(et, rows) for et, kind in RELATION_LABELS.items()}
        has_seq = self._has_sequence(rows)
        obs = self.data.observed[[self._data_row[i] for i in ids]].any(1).numpy()
        return pd.DataFrame({"query": genes, "gene_id": ids,
                             "gene_symbol": [self._symbol(i) for i in ids],
                             "has_sequence": has_seq, "n_go_terms": counts["GO term"],
                             "n_pathways": counts["pathway"],
                             "n_regulators": counts["regulator"], "has_expression": obs})

    def _in_degree(self, et, rows: torch.Tensor) -> np.ndarray:
        ei = self._inputs.edge_index_dict.get(et)
        if ei is None:
            return np.zeros(len(rows), dtype=np.int64)
        deg = torch.bincount(ei[1], minlength=self._inputs.num_nodes["gene"])
        return deg[rows].numpy()

    def _has_sequence(self, rows: torch.Tensor) -> np.ndarray:
        if self._seq is None:
            return np.zeros(len(rows), dtype=bool)
        has = torch.zeros(self._inputs.num_nodes["gene"], dtype=torch.bool)
        has[self._seq.gene_rows] = True
        return has[rows].numpy()

    def _row_of(self, gene: str) -> tuple[str, int]:
        gid = self._lookup_one(gene)
        if gid is None:
            raise self._unknown([gene])
        return gid, self._row[gid]

    def _ids_of(self, genes: Iterable[str] | str) -> list[str]:
        """Graph gene ids of known genes (unknown ones: an error with close matches)."""
        return [self._row_of(g)[0] for g in as_list(genes)]

    def _expressed_ids(self) -> list[str]:
        """Every gene with expression data, in graph order."""
        return [g for g in self._gene_ids if bool(self.data.observed[self._data_row[g]].any())]

    def _tissue_columns(self, tissues: Iterable[str] | str | None) -> list[str]:
        if tissues is None:
            return self.tissues
        known = {t.lower(): t for t in self.tissues}
        out, bad = [], []
        for t in as_list(tissues):
            hit = t if t in self.tissues else known.get(str(t).lower())
            (out.append(hit) if hit else bad.append(t))
        if bad:
            hints = {b: difflib.get_close_matches(str(b), self.tissues, n=3, cutoff=0.5)
                     for b in bad}
            raise GeneSpliceInputError(
                "unknown tissue(s): " + "; ".join(f"{b!r} (close: {', '.join(h) or 'none'})"
                                                  for b, h in hints.items())
                + f". Tissues of this model: {', '.join(self.tissues)}")
        return out
