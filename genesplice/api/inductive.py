"""Genes the graph lacks: a promoter sequence and/or annotations (GO terms, pathways,
regulating TFs) become a new gene node; :meth:`InductiveMixin.without_genes` removes genes.

The model has no per-gene parameters, so a gene removed from the graph and given back its
promoter and annotations is predicted as before. A model with a label read-out reads the
observed profiles of the new gene's most similar training genes, found from its annotations
the same way as for the graph's genes (:class:`~genesplice.graph.similarity.SimilarityIndex`).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genesplice.api.base import ANNOTATION_RELATIONS
from genesplice.api.lookup import LookupMixin, as_list
from genesplice.graph.features import gene_level_rows
from genesplice.graph.similarity import SimilarityIndex
from genesplice.io.errors import GeneSpliceInputError
from genesplice.models.inference import NewGeneEdges, append_genes, drop_genes
from genesplice.sequence.encode import encode_sequence, pad_tokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewGene:
    """A gene to add: its tokens ``[l]`` (or ``None``), usable annotations and the rest."""

    name: str
    tokens: torch.Tensor | None
    annotations: tuple[tuple[str, int, tuple[float, ...] | None], ...]   # (kind, row, attrs)
    unmapped: tuple[str, ...]

    def describe(self) -> str:
        """What the gene was given, e.g. ``new gene node: sequence sequence, 3 GO terms, …``."""
        kinds = [k for k, _, _ in self.annotations]
        return (f"new gene node: {'sequence' if self.tokens is not None else 'no'}"
                f" sequence, {kinds.count('go_term')} GO terms, "
                f"{kinds.count('pathway')} pathways, "
                f"{kinds.count('regulator')} regulators"
                + (f"; not used: {'; '.join(self.unmapped)}" if self.unmapped else ""))


def _records(items) -> list[dict]:
    """Annotations as ``{"neighbour_id", ["relation"], ["attrs"]}`` records: a DataFrame from
    :meth:`GeneSplice.annotations` or bare ids."""
    if isinstance(items, pd.DataFrame):
        return items.to_dict("records")
    return [{"neighbour_id": str(x)} for x in as_list(items)]


class InductiveMixin(LookupMixin):
    """Adding genes to (and removing them from) the graph the model sees."""

    def _default_attrs(self, et) -> tuple[float, ...] | None:
        """The most common attribute row of an edge type (for annotations given as bare ids):
        GO: direct + experimental evidence; pathways: direct + TAS; regulators: sign +1,
        confidence 1."""
        if et not in self._attr_defaults:
            ea = self.data.graph_inputs.edge_attr_dict.get(et)
            value = None
            if ea is not None and ea.numel():
                rows, counts = torch.unique(ea, dim=0, return_counts=True)
                value = tuple(rows[int(counts.argmax())].tolist())
            self._attr_defaults[et] = value
        return self._attr_defaults[et]

    def _parse_one(self, rec: dict, go_index: dict, pw_index: dict):
        """``(kind, row, attrs)`` for a usable annotation, else the reason it is not."""
        x = str(rec["neighbour_id"]).strip()
        kind = rec.get("relation")
        attrs = rec.get("attrs")
        if x in go_index and kind in (None, "GO term"):
            return ("go_term", go_index[x], attrs)
        if x in pw_index and kind in (None, "pathway"):
            if x in self._function_pathways:
                return f"{x} (a top-level pathway: the function head's label, not a graph edge)"
            return ("pathway", pw_index[x], attrs)
        if x.upper().startswith("GO:") or x.upper().startswith("R-"):
            return (f"{x} (not a node of the graph; terms and pathways with few genes are "
                    "pruned when it is built)")
        gid = self._lookup_one(x)
        if gid is None or kind not in (None, "regulator"):
            return f"{x} (neither a GO term, a pathway nor a gene of the graph)"
        return ("regulator", self._row[gid], attrs)

    def _parse_annotations(self, name: str, items) -> tuple[list, list[str]]:
        """(kind, row, attrs or None) per usable annotation, and the unusable ones."""
        go_index = self.graph.node_index("go_term")
        pw_index = self.graph.node_index("pathway")
        records = _records(items)
        out, unmapped = [], []
        for rec in records:
            hit = self._parse_one(rec, go_index, pw_index)
            (unmapped if isinstance(hit, str) else out).append(hit)
        if unmapped:
            log.warning("gene %s: %d of %d annotations not used: %s", name, len(unmapped),
                        len(records), "; ".join(unmapped[:5]))
        return out, unmapped

    def _new_gene(self, name: str, sequence: str | None, annotations) -> NewGene:
        tokens = None
        if sequence is not None:
            tokens = encode_sequence(str(sequence).strip())
            if len(tokens) == 0:
                raise GeneSpliceInputError(f"gene {name!r}: the sequence is empty")
            if self._seq is not None and self._seq.tokens is not None:
                trained = int(self._seq.mask.sum(1).max())
                if len(tokens) != trained:
                    log.warning("gene %s: sequence of %d bp; the model was trained on %d bp "
                                "windows", name, len(tokens), trained)
        parsed, unmapped = ([], []) if annotations is None else \
            self._parse_annotations(name, annotations)
        if tokens is None and not parsed:
            why = f" (unusable annotations: {'; '.join(unmapped[:5])})" if unmapped else ""
            raise GeneSpliceInputError(
                f"gene {name!r} is not in the graph and has neither a sequence nor an "
                f"annotation the graph knows{why}; give its promoter sequence and/or GO term, "
                "pathway or regulator ids")
        return NewGene(name, tokens, tuple(parsed), tuple(unmapped))

    def _gene_edges(self, me: int, gene: NewGene, edges: dict) -> list[int]:
        """Add new gene ``me``'s edges (both directions) to ``edges``; its membership columns."""
        cols = []
        for kind, row, attrs in gene.annotations:
            rel, gene_is_src = ANNOTATION_RELATIONS[kind]
            other = "gene" if kind == "regulator" else kind
            fwd = ("gene", rel, other) if gene_is_src else (other, rel, "gene")
            rev = (fwd[2], f"rev_{rel}", fwd[0])
            src, dst = (me, row) if gene_is_src else (row, me)
            for et, s, d in ((fwd, src, dst), (rev, dst, src)):
                if et not in self._inputs.edge_index_dict:
                    continue
                a = attrs if attrs is not None else self._default_attrs(et)
                edges.setdefault(et, []).append((s, d, a))
            name = (self.graph.node_ids[kind][row] if kind != "regulator"
                    else f"TF:{self._gene_ids[row]}")
            if name in self._feature_col:
                cols.append(self._feature_col[name])
        return cols

    def _append(self, new: list[NewGene]):
        """Graph and sequence inputs with the new genes appended; rows of the new genes."""
        n_old = self._inputs.num_nodes["gene"]
        edges: dict = {}
        member_rows = [torch.tensor(sorted(set(self._gene_edges(n_old + i, g, edges))),
                                    dtype=torch.long) for i, g in enumerate(new)]
        ei = {et: torch.tensor([[s for s, _, _ in v], [d for _, d, _ in v]], dtype=torch.long)
              for et, v in edges.items()}
        ea = {et: torch.tensor([a for _, _, a in v], dtype=torch.float32)
              for et, v in edges.items() if v[0][2] is not None}
        has = torch.tensor([g.tokens is not None for g in new])
        tokens = mask = None
        if bool(has.any()):
            tokens, mask = pad_tokens([g.tokens for g in new if g.tokens is not None])
        label_ei, label_ea = self._label_edges(n_old, member_rows)
        return append_genes(self._inputs, self._seq, n_new=len(new),
                            edges=NewGeneEdges(ei, ea, label_ei, label_ea),
                            membership_rows=member_rows, tokens=tokens, mask=mask,
                            has_sequence=has,
                            node_inputs={"gene_features": self._gene_level(new)})

    def _gene_level(self, new: list[NewGene]) -> torch.Tensor | None:
        """New genes' gene-level features, standardised as in training: annotation counts
        from what they were given (targets: 0), transcript structure from the gene-structure
        table when it knows the name."""
        fitted = self.data.gene_level
        if fitted is None or self._inputs.gene_features is None:
            return None
        count = lambda kind: np.array([sum(k == kind for k, _, _ in g.annotations)
                                       for g in new], dtype=np.float64)
        degrees = {"n_targets": np.zeros(len(new)), "n_go_terms": count("go_term"),
                   "n_pathways": count("pathway"), "n_regulators": count("regulator")}
        raw = gene_level_rows([g.name for g in new], degrees, self.data.gene_structure)
        return torch.from_numpy(raw.standardized(mean=fitted.mean, std=fitted.std).matrix)

    def _label_edges(self, n_old: int, member_rows: list[torch.Tensor]
                     ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Label edges into new genes ``n_old + i`` from their most similar labelled genes
        (``model.similar_genes`` of them), by their membership columns; ``None`` when the
        model reads no labels."""
        inputs = self._inputs
        if inputs.label_edge_index is None or inputs.membership is None:
            return None, None
        m = inputs.membership.to("cpu")
        matrix = sp.csr_matrix((np.ones(len(m.col_indices())), m.col_indices().numpy(),
                                m.crow_indices().numpy()), shape=tuple(m.shape))
        index = SimilarityIndex.fit(matrix, np.flatnonzero(inputs.labelled.cpu().numpy()),
                                    idf=self.data.label_idf)
        new = sp.csr_matrix((len(member_rows), m.shape[1]))
        if any(len(r) for r in member_rows):
            new = sp.csr_matrix((np.ones(sum(len(r) for r in member_rows)),
                                 (np.repeat(np.arange(len(member_rows)),
                                            [len(r) for r in member_rows]),
                                  torch.cat(list(member_rows)).numpy())), shape=new.shape)
        k = self.config.model.similar_genes if self.config is not None else 50
        dst, src, cos = index.neighbours(new, k)
        return (torch.from_numpy(np.stack([src, n_old + dst])),
                torch.from_numpy(cos[:, None]))

    def _resolve_for_prediction(self, genes, sequences, annotations):
        """``(names, graph ids or None for new genes, new genes)``."""
        sequences, annotations = dict(sequences or {}), dict(annotations or {})
        genes = as_list(genes)
        known, new, missing = [], [], []
        for g in genes:
            given = g in sequences or g in annotations
            gid = self._lookup_one(g)
            if given and gid is not None:
                raise GeneSpliceInputError(
                    f"gene {g!r} is already in the graph; give a sequence or annotations "
                    "only for genes it lacks (use a new name for a modified copy)")
            if given:
                new.append(self._new_gene(g, sequences.get(g), annotations.get(g)))
                known.append(None)
            elif gid is None:
                missing.append(g)
            else:
                known.append(gid)
        if missing:
            raise self._unknown(missing)
        return genes, known, new

    def without_genes(self, genes: Iterable[str] | str):
        """A copy whose graph lacks these genes (nodes, edges, sequences, membership rows) —
        e.g. to check that a gene is predicted from its sequence and annotations alone
        (pass them to :meth:`predict` under its name). The model is shared."""
        ids = self._ids_of(genes)
        graph, seq, new_index = drop_genes(self._inputs, self._seq,
                                           torch.tensor([self._row[i] for i in ids]))
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other._inputs, other._seq = graph, seq
        other._model = self._model.with_base(seq)
        keep = new_index >= 0
        other._gene_ids = [g for g, k in zip(self._gene_ids, keep.tolist()) if k]
        other._row = {g: i for i, g in enumerate(other._gene_ids)}
        gone = set(ids)
        other._display = {g: s for g, s in self._display.items() if g not in gone}
        other._from_display = {s: g for s, g in self._from_display.items() if g not in gone}
        other._upper = {u: g for u, g in self._upper.items() if g not in gone}
        other._located = {}
        return other
