"""The state every part of :class:`genesplice.api.GeneSplice` shares, and the relation names.

:class:`GeneSpliceBase` holds the trained two-state model, the training data it was trained
on, the knowledge graph and the gene-id ↔ symbol maps; the mixins of the other api modules
(lookup, inductive genes, predictions, explanation, variant effects, loading) add the
queries on top of it. Nothing here reads files.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

from genesplice.graph.features import top_level_pathways
from genesplice.io.constants import unit_label

#: how the api names the edge types into a gene: GO terms, pathways, the TFs regulating it
#: and (for a TF) its targets. The one home of these labels: lookup counts, annotations,
#: attention tables and the plots' colours use them.
RELATION_LABELS = {("go_term", "rev_annotated_with", "gene"): "GO term",
                   ("pathway", "rev_member_of", "gene"): "pathway",
                   ("gene", "regulates", "gene"): "regulator",
                   ("gene", "rev_regulates", "gene"): "target"}

#: how a new gene's annotations enter the graph: node type → (relation, whether the gene is
#: the source of the forward edge). Both the forward edge and its ``rev_`` edge are added
#: where the model passes messages along them.
ANNOTATION_RELATIONS = {"go_term": ("annotated_with", True), "pathway": ("member_of", True),
                        "regulator": ("regulates", False)}


class GeneSpliceBase:
    """A trained model with the graph, sequences and expression it was trained on.

    ``model``: a :class:`genesplice.models.inference.TwoStateModel`; ``data``: the
    :class:`genesplice.training.data.TrainingData` (every promoter); ``graph``: the
    :class:`genesplice.graph.hetero.KnowledgeGraph` the data were built from.
    """

    def __init__(self, model, data, graph, *, config=None, checkpoint: str | None = None,
                 genome: Sequence[str | os.PathLike] | None = None,
                 tss: str | os.PathLike | None = None) -> None:
        self._model = model
        self.data = data
        self.graph = graph
        self.config = config
        self.checkpoint = checkpoint
        self.genome_paths = genome
        self.tss_path = tss
        self._inputs = data.graph_inputs
        self._seq = data.sequences
        self._gene_ids = list(data.gene_ids)
        self._row = {g: i for i, g in enumerate(self._gene_ids)}
        self._display = dict(data.display_symbols)
        self._from_display = {}
        for g, s in self._display.items():
            self._from_display.setdefault(s, g)
        self._upper = {}
        for name in list(self._gene_ids) + list(self._from_display):
            self._upper.setdefault(name.upper(), self._from_display.get(name, name))
        self._data_row = {g: i for i, g in enumerate(data.gene_ids)}
        self._function_pathways = {graph.node_ids["pathway"][j] for j in top_level_pathways(graph)}
        self._feature_col = {f: j for j, f in enumerate(data.feature_names)}
        self._located: dict[tuple, tuple] = {}
        self._attr_defaults: dict = {}

    # ------------------------------------------------------------------ basic facts
    @property
    def tissues(self) -> list[str]:
        return list(self.data.tissues)

    @property
    def unit(self) -> str:
        """The prediction unit, e.g. ``log10(nTPM + 1)``."""
        unit = self.config.data.unit if self.config is not None else "log10_ntpm1"
        return unit_label(unit)

    @property
    def variant(self) -> str:
        return self._model.config.variant

    @property
    def device(self):
        """Where the model runs (``torch.device``); query results come back on the CPU."""
        return self._model.device

    @property
    def genes(self) -> list[str]:
        """Every gene of the graph (expression-table symbol where it has one)."""
        return [self._symbol(g) for g in self._gene_ids]

    def __repr__(self) -> str:
        n_seq = 0 if self._seq is None else len(self._seq)
        return (f"GeneSplice({self.variant} model, {len(self._gene_ids):,} genes "
                f"({n_seq:,} with a promoter sequence), {len(self.tissues)} tissues, unit "
                f"{self.unit}, checkpoint={self.checkpoint!r})")

    def _symbol(self, gene_id: str) -> str:
        return self._display.get(gene_id, gene_id)

    def _neighbour(self, node_type: str, row: int) -> tuple[str, str]:
        """``(id, display name)`` of node ``row`` of ``node_type``."""
        if node_type == "gene":
            gid = self._gene_ids[row]
            return gid, self._symbol(gid)
        nid = self.graph.node_ids[node_type][row]
        return nid, self.graph.name(node_type, nid)

    def _sequence_index(self, row: int) -> int | None:
        """Index into the sequence inputs of gene ``row``; ``None`` without a sequence."""
        if self._seq is None or self._seq.tokens is None:
            return None
        hit = (self._seq.gene_rows == row).nonzero()
        return int(hit[0, 0]) if len(hit) else None

    def _tokens(self, j: int):
        """The unpadded tokens ``[l]`` of sequence input ``j``."""
        return self._seq.tokens[j][self._seq.mask[j]]
