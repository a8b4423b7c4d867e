"""Why the model predicts what it does: GAT attention over a gene's neighbours and per-base
attributions (gradient × input, in-silico mutagenesis) over its sequence window.

The maths lives in :mod:`genesplice.models.attribution` and
:class:`genesplice.models.inference.TwoStateModel`; this module builds the DataFrames, and
:mod:`genesplice.api.plots` draws them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from genesplice.api.base import RELATION_LABELS
from genesplice.api.plots import plot_explanation
from genesplice.api.predictions import PredictionMixin
from genesplice.io.constants import PROMOTER_TSS_INDEX
from genesplice.io.errors import GeneSpliceInputError
from genesplice.models.attribution import (
    gradient_x_input,
    ism_table,
    single_base_mutants,
)
from genesplice.sequence.encode import decode_tokens

ATTENTION_COLUMNS = ["gene", "relation", "edge_type", "neighbour_id", "neighbour_name",
                     "weight", "rank"]
LABEL_NEIGHBOUR_COLUMNS = ["gene", "tissue", "neighbour", "similarity", "attention",
                           "neighbour_profile", "contribution", "shared_annotations", "rank"]


@dataclass(frozen=True)
class Explanation:
    """What :meth:`GeneSplice.explain` returns: the prediction, the neighbours the GAT attended
    to (long format, :meth:`GeneSplice.attention`) and per-base attributions over the gene's
    sequence window (:meth:`GeneSplice.attributions`; ``None`` for a gene without sequence)."""

    gene: str
    tissue: str
    prediction: float
    unit: str
    neighbours: pd.DataFrame
    attributions: pd.DataFrame | None
    labelled_neighbours: pd.DataFrame | None = None

    def plot(self, top: int = 8):
        """Labelled-neighbour contributions, neighbour-attention bars, gradient × input logo
        track and ISM heat map."""
        return plot_explanation(self, top=top)


def _ism_positions(offsets: np.ndarray, ism_window: tuple[int, int] | None) -> torch.Tensor:
    """Window positions ``[p]`` whose offset to the TSS lies in ``ism_window`` (end exclusive;
    default: every position)."""
    lo, hi = (offsets[0], offsets[-1] + 1) if ism_window is None else ism_window
    positions = torch.tensor([p for p in range(len(offsets)) if lo <= offsets[p] < hi])
    if not len(positions):
        raise GeneSpliceInputError(f"ism_window {ism_window} lies outside the window "
                                   f"({offsets[0]}..{offsets[-1]} relative to the TSS)")
    return positions


class ExplanationMixin(PredictionMixin):
    """Attention, attributions and the two together (:meth:`explain`)."""

    def attention(self, gene: str, top: int | None = None, weights: str = "profile"
                  ) -> pd.DataFrame:
        """GO terms, pathways, regulators (TFs of the gene) and targets (if it is a TF) ranked
        by the GAT's attention on their edges into the gene: one row per neighbour with
        ``weight`` (mean over heads and layers) and ``weight_layer_<i>``; weights of one
        relation sum to 1 per layer. From the profile-best weights (``weights="level"`` for the
        level-best ones). ``top`` keeps the highest per relation."""
        if not self._model.config.uses_gat:
            raise GeneSpliceInputError(f"a {self.variant!r} model without a GAT has no graph "
                                       "attention")
        if weights not in ("profile", "level"):
            raise GeneSpliceInputError(f"weights must be 'profile' or 'level', got {weights!r}")
        gid, row = self._row_of(gene)
        records = []
        for et, (src, w) in self._model.attention_into(self._inputs, self._seq, row,
                                                       weights=weights).items():
            label = RELATION_LABELS.get(et, f"{et[0]} {et[1]}")
            for s, wl in zip(src.tolist(), w.tolist()):
                nid, nname = self._neighbour(et[0], s)
                rec = {"gene": self._symbol(gid), "relation": label, "edge_type": "/".join(et),
                       "neighbour_id": nid, "neighbour_name": nname,
                       "weight": float(np.mean(wl))}
                rec.update({f"weight_layer_{i + 1}": v for i, v in enumerate(wl)})
                records.append(rec)
        df = pd.DataFrame(records)
        if df.empty:
            return pd.DataFrame(columns=ATTENTION_COLUMNS)
        df = df.sort_values(["relation", "weight"], ascending=[True, False], kind="stable")
        df["rank"] = df.groupby("relation").cumcount() + 1
        if top is not None:
            df = df[df["rank"] <= top]
        return df.reset_index(drop=True)

    def labelled_neighbours(self, gene: str, tissue: str, top: int | None = 10
                            ) -> pd.DataFrame:
        """The training genes whose observed profiles the label attention read for ``gene`` in
        ``tissue``, by how much each moved the tissue's profile prediction: one row per
        neighbour with its annotation ``similarity`` (TF-IDF cosine), ``attention`` in this
        tissue (sums to 1 over the neighbours), ``neighbour_profile`` (its observed centred
        value in the tissue), ``contribution`` (``gate × attention × neighbour_profile``: how
        far it pulls the prediction, in the unit) and ``shared_annotations`` (the rarest GO
        terms / pathways / regulators the two genes share — the path the similarity came
        through). Sorted by ``|contribution|``; ``top`` keeps the strongest."""
        if not self._model.config.label_attention:
            raise GeneSpliceInputError(f"this {self.variant!r} model reads no labels")
        gid, row = self._row_of(gene)
        (col,) = self._tissue_columns(tissue)
        c = 1 + self.tissues.index(col)
        read = self._model.label_readout(self._inputs, self._seq, row)
        rows = read.rows.cpu().numpy()
        contribution = (read.gate[c] * read.alpha[:, c] * read.labels[:, c]).cpu().numpy()
        df = pd.DataFrame({"gene": self._symbol(gid), "tissue": col,
                           "neighbour": [self._symbol(self._gene_ids[r]) for r in rows],
                           "similarity": read.similarity.cpu().numpy().astype(np.float64),
                           "attention": read.alpha[:, c].cpu().numpy().astype(np.float64),
                           "neighbour_profile": read.labels[:, c].cpu().numpy().astype(
                               np.float64),
                           "contribution": contribution.astype(np.float64),
                           "shared_annotations": [self._shared(row, r) for r in rows]})
        if df.empty:
            return pd.DataFrame(columns=LABEL_NEIGHBOUR_COLUMNS)
        df = df.reindex(df["contribution"].abs().sort_values(ascending=False).index)
        df["rank"] = np.arange(1, len(df) + 1)
        df.attrs.update({"unit": self.unit, "gate": float(read.gate[c])})
        return (df if top is None else df.head(top)).reset_index(drop=True)

    def _shared(self, a: int, b: int, n: int = 3) -> str:
        """The ``n`` rarest membership features genes ``a`` and ``b`` share, by name."""
        m = self.data.membership_csr
        if getattr(self, "_genes_per_feature", None) is None:
            self._genes_per_feature = np.diff(m.tocsc().indptr)
            self._names = {nt: self.graph.node_index(nt) for nt in ("go_term", "pathway")}
        shared = np.intersect1d(m.indices[m.indptr[a]:m.indptr[a + 1]],
                                m.indices[m.indptr[b]:m.indptr[b + 1]])
        rarest = shared[np.argsort(self._genes_per_feature[shared], kind="stable")][:n]
        return "; ".join(self._feature_name(self.data.feature_names[j]) for j in rarest)

    def _feature_name(self, fid: str) -> str:
        """A membership feature's readable name: GO term / pathway name, or the regulator."""
        if fid.startswith("TF:"):
            return f"regulated by {self._symbol(fid[3:])}"
        for nt, index in self._names.items():
            if fid in index:
                return self.graph.name(nt, fid)
        return fid

    def _sequence_of(self, gene: str) -> tuple[str, int, torch.Tensor]:
        """``(gene id, row, tokens [l])`` of a gene with a sequence input, for a model that
        reads sequence."""
        gid, row = self._row_of(gene)
        j = self._sequence_index(row)
        if j is None:
            raise GeneSpliceInputError(f"gene {gene!r} has no sequence input (no promoter); "
                                       "per-base attributions need one")
        if not self._model.config.uses_sequence:
            raise GeneSpliceInputError(f"a {self.variant!r} model does not read sequence")
        return gid, row, self._tokens(j)

    def attributions(self, gene: str, tissue: str,
                     ism_window: tuple[int, int] | None = None) -> pd.DataFrame:
        """Per-base attributions of the prediction for ``gene`` in ``tissue`` over its sequence
        window, one row per base: ``position`` (0-based in the window), ``offset_to_tss``,
        ``base``, ``grad_x_input`` (gradient at the reference base), ``grad_x_input_centred``
        (gradient minus its mean over A/C/G/T: comparable with ISM), ``ism_A … ism_T``
        (Δ prediction when the base is changed to that letter; 0 for the reference, NaN outside
        ``ism_window``) and ``ism`` (prediction minus the mean over the three alternatives:
        positive where the reference base raises the prediction). ``ism_window``:
        ``(start, end)`` offsets to the TSS, end exclusive (default: the whole window)."""
        (col,) = self._tissue_columns(tissue)
        t = self.tissues.index(col)
        gid, row, tokens = self._sequence_of(gene)
        length = len(tokens)
        offsets = np.arange(length) - PROMOTER_TSS_INDEX
        grad = self._model.input_gradient(self._inputs, self._seq, row, tokens, t).cpu()
        plain, centred = gradient_x_input(grad, tokens)
        positions = _ism_positions(offsets, ism_window)
        mutants, pos, bases = single_base_mutants(tokens, positions)
        delta = self._model.mutagenesis(self._inputs, self._seq, row, tokens, mutants)[:, t]
        table = ism_table(delta.cpu(), pos, bases, length).numpy().astype(np.float64)
        in_window = np.zeros(length, dtype=bool)
        in_window[positions.numpy()] = True
        table[:, ~in_window] = np.nan
        df = pd.DataFrame({"gene": self._symbol(gid), "tissue": col,
                           "position": np.arange(length), "offset_to_tss": offsets,
                           "base": list(decode_tokens(tokens)),
                           "grad_x_input": plain.numpy().astype(np.float64),
                           "grad_x_input_centred": centred.numpy().astype(np.float64)})
        for b, name in enumerate("ACGT"):
            df[f"ism_{name}"] = table[b]
        alts = np.where(np.arange(4)[:, None] == tokens.numpy()[None, :], np.nan, table)
        ism = np.full(length, np.nan)
        ism[in_window] = -np.nanmean(alts[:, in_window], axis=0)
        df["ism"] = ism
        df.attrs["unit"] = f"Δ {self.unit}"
        return df

    def explain(self, gene: str, tissue: str, *, top: int | None = 10,
                ism_window: tuple[int, int] | None = None) -> Explanation:
        """Why the model predicts what it does for ``gene`` in ``tissue``: the prediction, the
        ``top`` neighbours per relation by GAT attention (:meth:`attention`) and per-base
        attributions over the gene's sequence (:meth:`attributions`; ``None`` when it has no
        sequence). ``Explanation.plot()`` draws them."""
        gid, _ = self._row_of(gene)
        (col,) = self._tissue_columns(tissue)
        pred = float(self.predict([gid], [col], progress=False).iloc[0, 0])
        neighbours = (self.attention(gid, top=top) if self._model.config.uses_gat
                      else pd.DataFrame())
        labelled = (self.labelled_neighbours(gid, col, top=top)
                    if self._model.config.label_attention else None)
        attributions = None
        if self.promoter(gid) is not None and self._model.config.uses_sequence:
            attributions = self.attributions(gid, col, ism_window=ism_window)
        return Explanation(self._symbol(gid), col, pred, self.unit, neighbours, attributions,
                           labelled)
