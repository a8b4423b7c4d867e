"""Inference on a trained :class:`GeneSpliceModel`: receptive fields, adding / copying / dropping
gene nodes, and predictions the way training reports them (pure torch; never opens files).

Letters: g genes, t tissues, l bases, d width, e edges, s sequences, k new genes.

* :func:`receptive_field` — which nodes' *input* features reach some target genes through the
  GAT's ``n_layers`` message-passing layers. A prediction for the targets only needs the
  sequence embeddings of the genes in that field, so a query for a few genes encodes a few
  hundred promoters instead of every one (:func:`restrict_sequences`); the result equals a
  full-graph pass (the graph encoder restricts its edges the same way,
  :func:`~genesplice.models.graph_encoder.restrict_to_targets`).
* :func:`append_genes` — new gene nodes with given incoming / outgoing edges, membership
  features and (optional) sequence: inductive prediction for a gene the graph does not hold.
  :func:`copy_genes` appends copies of existing genes (their incoming edges and membership)
  with other sequences: in-silico mutagenesis and variant effects, many at once.
  :func:`drop_genes` removes gene nodes (and every edge touching them).
* :class:`TwoStateModel` — the level from the level-best weights plus the profile from the
  profile-best weights: the one two-state predictor (training's
  :func:`genesplice.training.loop.predict_rows` is a thin wrapper over it).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor
from tqdm.auto import tqdm

from genesplice.models.attribution import attention_into, onehot_gradient
from genesplice.models.device import module_device
from genesplice.models.graph_encoder import drop_nodes, edges_into, restrict_to_targets
from genesplice.models.graph_encoder import receptive_field as _receptive_field
from genesplice.models.model import GeneSpliceModel, GraphInputs, SequenceInputs
from genesplice.sequence.encode import PAD_INDEX

EdgeType = tuple[str, str, str]


# ----------------------------------------------------------------------------- receptive field

def receptive_field(graph: GraphInputs, gene_rows: Tensor, n_layers: int) -> dict[str, Tensor]:
    """Boolean masks per node type of the nodes whose input features reach ``gene_rows``
    after ``n_layers`` layers of message passing along ``graph``'s edges
    (:func:`genesplice.models.graph_encoder.receptive_field`)."""
    return _receptive_field(graph.edge_index_dict, {"gene": gene_rows}, graph.num_nodes,
                            n_layers)


def restrict_sequences(seq: SequenceInputs | None, gene_mask: Tensor) -> SequenceInputs | None:
    """The sequences of the genes where ``gene_mask [n_genes]`` is True (others are left out;
    a gene outside a target's receptive field does not change the target's prediction)."""
    if seq is None:
        return None
    keep = gene_mask[seq.gene_rows]
    if bool(keep.all()):
        return seq
    if seq.embeddings is not None:
        return SequenceInputs(gene_rows=seq.gene_rows[keep], embeddings=seq.embeddings[keep])
    return SequenceInputs(gene_rows=seq.gene_rows[keep], tokens=seq.tokens[keep],
                          mask=seq.mask[keep])


# ----------------------------------------------------------------------------- graph surgery

def _csr_rows(m: Tensor) -> list[Tensor]:
    crow, col = m.crow_indices(), m.col_indices()
    return [col[crow[i]:crow[i + 1]] for i in range(m.shape[0])]


def _csr_from_parts(crow: Tensor, col: Tensor, n_cols: int) -> Tensor:
    values = torch.ones(len(col), dtype=torch.float32, device=col.device)
    return torch.sparse_csr_tensor(crow, col, values, size=(len(crow) - 1, n_cols),
                                   check_invariants=False)


def _append_csr_rows(m: Tensor, new_rows: Sequence[Tensor]) -> Tensor:
    """``m`` (0/1 sparse CSR ``[g, f]``) with ``len(new_rows)`` rows appended (column lists)."""
    crow, col = m.crow_indices(), m.col_indices()
    counts = torch.tensor([len(r) for r in new_rows], dtype=crow.dtype, device=crow.device)
    crow_new = torch.cat([crow, crow[-1] + torch.cumsum(counts, 0)])
    col_new = torch.cat([col, *[r.to(col.device, col.dtype) for r in new_rows]]) if new_rows \
        else col
    return _csr_from_parts(crow_new, col_new, m.shape[1])


def _pad_cat(a: Tensor, b: Tensor, value) -> Tensor:
    """Concatenate ``[s, l1]`` and ``[k, l2]`` along rows, right-padding to the longer length."""
    length = max(a.shape[1], b.shape[1])
    pad = lambda x: torch.nn.functional.pad(x, (0, length - x.shape[1]), value=value)
    return torch.cat([pad(a), pad(b)])


@dataclass(frozen=True)
class NewGeneEdges:
    """Edges touching new gene nodes, in the numbering of the *extended* graph (new gene ``i``
    is row ``n_genes + i``): ``edge_index[et] [2, e]`` and ``edge_attr[et] [e, edge_dim]``;
    ``label_edge_index [2, e']`` / ``label_edge_attr [e', k]``: similar labelled genes → new
    genes, for a model with a label read-out."""

    edge_index: dict[EdgeType, Tensor]
    edge_attr: dict[EdgeType, Tensor]
    label_edge_index: Tensor | None = None
    label_edge_attr: Tensor | None = None


def append_genes(graph: GraphInputs, seq: SequenceInputs | None, *, n_new: int,
                 edges: NewGeneEdges, membership_rows: Sequence[Tensor] | None = None,
                 tokens: Tensor | None = None, mask: Tensor | None = None,
                 has_sequence: Tensor | None = None,
                 node_inputs: dict[str, Tensor] | None = None
                 ) -> tuple[GraphInputs, SequenceInputs | None, Tensor]:
    """Append ``n_new`` gene nodes; returns ``(graph, sequences, new_rows [k])`` (copies; the
    inputs are not changed).

    ``edges``: every new edge (types must exist in ``graph``; types that carry attributes need
    them). ``membership_rows``: one LongTensor of feature columns per new gene.
    ``tokens``/``mask`` ``[k', l]``: sequences of the new genes where ``has_sequence [k]`` is
    True (``k' = has_sequence.sum()``; all new genes when ``has_sequence`` is None).
    ``node_inputs``: their rows of per-gene inputs (:data:`PER_GENE`, e.g.
    ``gene_features [k, f]``); those left out are 0 / False.
    """
    n_old = graph.num_nodes["gene"]
    num_nodes = {**graph.num_nodes, "gene": n_old + n_new}
    ei_dict, ea_dict = dict(graph.edge_index_dict), dict(graph.edge_attr_dict)
    for et, ei in edges.edge_index.items():
        if et not in ei_dict:
            raise ValueError(f"edge type {et} is not in the graph ({list(ei_dict)})")
        ei_dict[et] = torch.cat([ei_dict[et], ei.to(ei_dict[et].device, ei_dict[et].dtype)],
                                dim=1)
        if et in ea_dict:
            if et not in edges.edge_attr:
                raise ValueError(f"edge type {et} carries attributes; give them for new edges")
            ea_dict[et] = torch.cat([ea_dict[et], edges.edge_attr[et].to(ea_dict[et].device,
                                                                          ea_dict[et].dtype)])
    membership = graph.membership
    if membership is not None:
        rows = list(membership_rows) if membership_rows is not None else []
        rows += [torch.zeros(0, dtype=torch.long, device=membership.device)] * \
            (n_new - len(rows))
        membership = _append_csr_rows(membership, rows)
    new_rows = torch.arange(n_old, n_old + n_new, device=_graph_device(graph))
    per_gene = _append_node_inputs(graph, n_new, edges, node_inputs)
    out_seq = seq
    if tokens is not None:
        with_seq = new_rows if has_sequence is None else new_rows[has_sequence]
        if len(with_seq) != len(tokens):
            raise ValueError(f"{len(tokens)} sequences for {len(with_seq)} new genes with one")
        if seq is None:
            out_seq = SequenceInputs(gene_rows=with_seq, tokens=tokens, mask=mask)
        elif seq.tokens is None:
            raise ValueError("these sequence inputs are precomputed embeddings; new genes need "
                             "embeddings too")
        else:
            out_seq = SequenceInputs(gene_rows=torch.cat([seq.gene_rows, with_seq]),
                                     tokens=_pad_cat(seq.tokens, tokens, PAD_INDEX),
                                     mask=_pad_cat(seq.mask, mask, False))
    return GraphInputs(num_nodes, ei_dict, ea_dict, membership, **per_gene), out_seq, new_rows


#: per-gene dense inputs of :class:`GraphInputs` that graph surgery carries row by row, and
#: the ones a copy of a gene keeps from its original (labels are not: a copy is unlabelled)
PER_GENE = ("gene_features", "window_features", "has_window", "labels", "labelled")
COPIED = ("gene_features", "window_features", "has_window")


def _append_node_inputs(graph: GraphInputs, n_new: int, edges: NewGeneEdges,
                   node_inputs: dict[str, Tensor] | None) -> dict[str, Tensor]:
    """The per-gene inputs (:data:`PER_GENE`) with ``n_new`` genes appended — given in
    ``node_inputs``, else 0 / False (for standardised gene-level features: the average
    gene; for labels: unlabelled) — and the label edges into them, if given."""
    given = node_inputs or {}
    out = {}
    for name in PER_GENE:
        t = getattr(graph, name)
        if t is None:
            continue
        new = given.get(name)
        new = t.new_zeros((n_new, *t.shape[1:])) if new is None else new.to(t.device, t.dtype)
        out[name] = torch.cat([t, new])
    ei, ea = graph.label_edge_index, graph.label_edge_attr
    if ei is not None and edges.label_edge_index is not None:
        ei = torch.cat([ei, edges.label_edge_index.to(ei.device, ei.dtype)], dim=1)
        ea = torch.cat([ea, edges.label_edge_attr.to(ea.device, ea.dtype)])
    if ei is not None:
        out.update(label_edge_index=ei, label_edge_attr=ea)
    return out


def copy_genes(graph: GraphInputs, seq: SequenceInputs | None, rows: Tensor, *,
               tokens: Tensor | None, mask: Tensor | None, has_sequence: Tensor | None = None,
               node_inputs: dict[str, Tensor] | None = None
               ) -> tuple[GraphInputs, SequenceInputs, Tensor]:
    """Append one copy of gene ``rows[i]`` per row, with sequence ``tokens[i]``; returns
    ``(graph, sequences, copy_rows)``.

    ``has_sequence [k]``: which copies get a sequence (``tokens`` then holds only theirs; all
    when None). ``node_inputs``: per-gene inputs (:data:`COPIED`, e.g. ``window_features
    [k, d]``) the copies get instead of their original's — a variant's window embedding.

    A copy receives the same incoming messages as its original (every edge type into genes,
    with the same attributes) and has the same membership row, but sends none: the rest of the
    graph is unchanged, so a copy with the original's sequence predicts what the original
    does, and a copy with another sequence shows the effect of that sequence on the gene itself.
    """
    n_old = graph.num_nodes["gene"]
    rows = torch.as_tensor(rows, dtype=torch.long, device=_graph_device(graph))
    k = len(rows)
    edge_index, edge_attr = {}, {}
    for et, ei in graph.edge_index_dict.items():
        if et[2] != "gene":
            continue
        pick, copy_of = edges_into(ei, rows)
        if len(pick) == 0:
            continue
        edge_index[et] = torch.stack([ei[0, pick], n_old + copy_of])
        if et in graph.edge_attr_dict:
            edge_attr[et] = graph.edge_attr_dict[et][pick]
    label_ei = label_ea = None
    if graph.label_edge_index is not None:
        pick, copy_of = edges_into(graph.label_edge_index, rows)
        label_ei = torch.stack([graph.label_edge_index[0, pick], n_old + copy_of])
        label_ea = graph.label_edge_attr[pick]
    membership_rows = None
    if graph.membership is not None:
        crow, col = graph.membership.crow_indices(), graph.membership.col_indices()
        membership_rows = [col[crow[r]:crow[r + 1]] for r in rows.tolist()]
    kept = {name: getattr(graph, name)[rows] for name in COPIED
            if getattr(graph, name) is not None}
    unknown = set(node_inputs or {}) - set(kept)
    if unknown:
        raise ValueError(f"node_inputs {sorted(unknown)} are not copied inputs of this graph "
                         f"({sorted(kept)})")
    kept.update(node_inputs or {})
    return append_genes(graph, seq, n_new=k,
                        edges=NewGeneEdges(edge_index, edge_attr, label_ei, label_ea),
                        membership_rows=membership_rows, tokens=tokens, mask=mask,
                        has_sequence=has_sequence, node_inputs=kept)


def drop_genes(graph: GraphInputs, seq: SequenceInputs | None, rows: Tensor
               ) -> tuple[GraphInputs, SequenceInputs | None, Tensor]:
    """Remove gene nodes ``rows`` and every edge touching them; returns ``(graph, sequences,
    new_index)`` where ``new_index [n_genes]`` maps each old row to its new row (-1: dropped)
    (:func:`~genesplice.models.graph_encoder.drop_nodes`, renumbered)."""
    n = graph.num_nodes["gene"]
    ei_dict, ea_dict, new_index = drop_nodes(graph.edge_index_dict, graph.edge_attr_dict,
                                             "gene", rows, n, renumber=True)
    kept = new_index >= 0
    membership = graph.membership
    if membership is not None:
        membership = _keep_csr_rows(membership, kept)
    out_seq = remap_sequences(seq, new_index)
    num_nodes = {**graph.num_nodes, "gene": int(kept.sum())}
    per_gene = {name: getattr(graph, name)[kept] for name in PER_GENE
                if getattr(graph, name) is not None}
    if graph.label_edge_index is not None:
        ei = graph.label_edge_index
        keep = kept[ei[0]] & kept[ei[1]]
        per_gene.update(label_edge_index=new_index[ei[:, keep]],
                        label_edge_attr=graph.label_edge_attr[keep])
    return (GraphInputs(num_nodes, ei_dict, ea_dict, membership, **per_gene), out_seq,
            new_index)


def _keep_csr_rows(m: Tensor, keep: Tensor) -> Tensor:
    """The rows of 0/1 sparse CSR ``m [g, f]`` where ``keep [g]`` is True."""
    crow, col = m.crow_indices(), m.col_indices()
    counts = (crow[1:] - crow[:-1])[keep]
    starts = crow[torch.nonzero(keep).squeeze(1)]
    offsets = torch.cumsum(counts, 0) - counts
    within = torch.arange(int(counts.sum()), device=col.device) - \
        torch.repeat_interleave(offsets, counts)
    cols = col[torch.repeat_interleave(starts, counts) + within]
    return _csr_from_parts(torch.cat([crow.new_zeros(1), torch.cumsum(counts, 0)]), cols,
                           m.shape[1])


def _graph_device(graph: GraphInputs) -> torch.device:
    """The device of ``graph``'s edge tensors (CPU for a graph without edges)."""
    for ei in graph.edge_index_dict.values():
        return ei.device
    return torch.device("cpu")


def remap_sequences(seq: SequenceInputs | None, new_index: Tensor) -> SequenceInputs | None:
    """Sequence inputs renumbered by ``new_index [n_genes]`` (old row → new row, -1: gone)."""
    if seq is None:
        return None
    keep = new_index[seq.gene_rows] >= 0
    rows = new_index[seq.gene_rows[keep]]
    if seq.embeddings is not None:
        return SequenceInputs(gene_rows=rows, embeddings=seq.embeddings[keep])
    return SequenceInputs(gene_rows=rows, tokens=seq.tokens[keep], mask=seq.mask[keep])


def restrict_graph(graph: GraphInputs, gene_rows: Tensor, n_layers: int) -> GraphInputs:
    """The edges that carry messages towards ``gene_rows`` (the first layer's edge set of
    :func:`~genesplice.models.graph_encoder.restrict_to_targets`, a superset of every later
    layer's): a full pass over them gives the targets exactly their full-graph embeddings
    and attention coefficients."""
    layers = restrict_to_targets(graph.edge_index_dict, graph.edge_attr_dict,
                                 {"gene": gene_rows}, graph.num_nodes, n_layers)
    ei, ea = layers[0]
    return replace(graph, edge_index_dict=ei, edge_attr_dict=ea)


# ----------------------------------------------------------------------------- predictions

@dataclass(frozen=True)
class Embeddings:
    """Gene embeddings ``[g, d]`` of each view (``None`` where the model has no such view)."""

    sequence: Tensor | None
    graph: Tensor | None
    fused: Tensor
    has_sequence: Tensor          # [g] bool


class TwoStateModel:
    """Predictions as training reports them: ``level`` from the level-best weights plus the
    centred ``profile`` from the profile-best weights (two copies of one architecture; one
    model when both are the same object). The one two-state predictor: training's validation
    and final predictions (:func:`genesplice.training.loop.predict_rows`) and the api use it.

    ``base``: the sequence inputs of the graph's genes. Their encoder embeddings are computed
    lazily, once per model, and reused; every call passes the model only the embeddings of
    the genes in the requested genes' receptive field (exact: see the module docstring), so
    a query for a few genes costs a few hundred encoder calls at most, once. Sequence inputs
    that extend ``base`` (:func:`append_genes`, :func:`copy_genes`) reuse its embeddings for
    their leading rows and encode only the new ones.

    ``training_view=True`` gives the models the sequence inputs as they are instead: each
    model encodes the query genes' sequences now and takes every other gene's embedding from
    its own cache (:meth:`GeneSpliceModel.refresh_sequence_cache`), which is what training
    sees in the middle of an epoch (validation scores early stopping on exactly that).
    ``device``: where the models run (they are moved there; inputs follow per call; results
    stay there). Default: where the profile model's parameters are.
    """

    def __init__(self, level_model: GeneSpliceModel, profile_model: GeneSpliceModel,
                 base: SequenceInputs | None = None, batch_size: int = 4096,
                 compact_below: float = 0.5, *, training_view: bool = False,
                 device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else \
            module_device(profile_model)
        self.level_model = level_model.to(self.device).eval()
        self.profile_model = profile_model.to(self.device).eval()
        self.base = None if base is None else base.to(self.device)
        self.batch_size = batch_size
        self.compact_below = compact_below
        self.training_view = training_view
        self._emb: dict[int, tuple[Tensor, Tensor]] = {}   # model id -> (embeddings, done)

    def with_base(self, base: SequenceInputs | None) -> TwoStateModel:
        """The same two models over other base sequences (fresh embedding cache)."""
        return TwoStateModel(self.level_model, self.profile_model, base, self.batch_size,
                             self.compact_below, training_view=self.training_view,
                             device=self.device)

    @property
    def config(self):
        return self.profile_model.config

    @property
    def n_layers(self) -> int:
        return self.config.graph.n_layers if self.config.uses_gat else 0

    def models(self) -> list[tuple[str, GeneSpliceModel]]:
        """``[("level", m), ("profile", m)]``, or ``[("both", m)]`` when one model does both."""
        if self.level_model is self.profile_model:
            return [("both", self.profile_model)]
        return [("level", self.level_model), ("profile", self.profile_model)]

    # -- sequence embeddings ---------------------------------------------------------------
    def _encode(self, model: GeneSpliceModel, tokens: Tensor, mask: Tensor) -> Tensor:
        """Encoder embeddings ``[s, d_seq]`` (eval mode, batched; padding columns trimmed)."""
        parts = []
        for i in range(0, len(tokens), self.batch_size):
            t, m = tokens[i:i + self.batch_size], mask[i:i + self.batch_size]
            keep = m.any(0)
            parts.append(model.sequence_encoder(t[:, keep], m[:, keep]))
        return torch.cat(parts)

    def _shared_prefix(self, seq: SequenceInputs) -> int:
        """How many leading rows of ``seq`` are ``base``'s rows, unchanged."""
        base = self.base
        if base is None or base.tokens is None or seq.tokens is None:
            return 0
        if seq is base:
            return len(base)
        n, length = len(base), base.tokens.shape[1]
        if (len(seq) < n or seq.tokens.shape[1] < length
                or not torch.equal(seq.gene_rows[:n], base.gene_rows)
                or not torch.equal(seq.tokens[:n, :length], base.tokens)
                or not torch.equal(seq.mask[:n, :length], base.mask)
                or bool(seq.mask[:n, length:].any())):
            return 0
        return n

    def _base_embeddings(self, model: GeneSpliceModel, seq: SequenceInputs, idx: Tensor
                         ) -> Tensor:
        """Embeddings of base rows ``idx`` (encoded on first use, then cached per model)."""
        n_base = len(self.base)
        emb, done = self._emb.get(id(model), (None, None))
        if emb is None:
            emb = torch.zeros(n_base, model.sequence_encoder.config.out_dim, device=self.device)
            done = torch.zeros(n_base, dtype=torch.bool, device=self.device)
            self._emb[id(model)] = (emb, done)
        todo = idx[~done[idx]]
        if len(todo):
            emb[todo] = self._encode(model, seq.tokens[todo], seq.mask[todo])
            done[todo] = True
        return emb[idx]

    @torch.no_grad()
    def _embedded(self, model: GeneSpliceModel, seq: SequenceInputs | None,
                  gene_field: Tensor) -> SequenceInputs | None:
        """Embeddings-mode sequence inputs of the genes where ``gene_field`` is True."""
        if seq is None or not model.config.uses_sequence:
            return None
        idx = torch.nonzero(gene_field[seq.gene_rows]).squeeze(1)
        if seq.embeddings is not None:
            return SequenceInputs(gene_rows=seq.gene_rows[idx], embeddings=seq.embeddings[idx])
        n_base = self._shared_prefix(seq)
        parts = []
        if n_base:
            parts.append(self._base_embeddings(model, seq, idx[idx < n_base]))
        other = idx[idx >= n_base]
        if len(other):
            parts.append(self._encode(model, seq.tokens[other], seq.mask[other]))
        if not parts:
            return None
        return SequenceInputs(gene_rows=seq.gene_rows[idx], embeddings=torch.cat(parts))

    def _query(self, graph: GraphInputs, rows: Tensor) -> _Query:
        """The receptive field of ``rows`` and, where it is a small part of the graph, the
        graph without the genes outside it (exact for ``rows``; the GAT's cost scales with
        the number of nodes). Inputs are moved to the models' device."""
        graph = graph.to(self.device)
        rows = torch.as_tensor(rows, dtype=torch.long).to(self.device)
        if self.training_view:
            return _Query(graph, rows, None, None)
        field = receptive_field(graph, rows, self.n_layers)["gene"]
        if self.config.label_attention and graph.label_edge_index is not None:
            ei = graph.label_edge_index            # the read-out's sources: one more hop
            field = field.index_fill(0, ei[0, edges_into(ei, rows)[0]], True)
        n = graph.num_nodes["gene"]
        if int(field.sum()) > self.compact_below * n:
            return _Query(graph, rows, field, None)
        small, _, new_index = drop_genes(graph, None, torch.nonzero(~field).squeeze(1))
        return _Query(small, new_index[rows], field, new_index)

    def sequence_inputs(self, model: GeneSpliceModel, query: _Query,
                        seq: SequenceInputs | None) -> SequenceInputs | None:
        """``model``'s sequence inputs for a prepared query (embeddings mode, restricted to
        the receptive field; the inputs themselves in the training view)."""
        if seq is not None:
            seq = seq.to(self.device)
        if self.training_view:
            return seq
        s = self._embedded(model, seq, query.field)
        return s if query.new_index is None else remap_sequences(s, query.new_index)

    # -- queries ---------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, graph: GraphInputs, seq: SequenceInputs | None, rows: Tensor, *,
                batch_size: int = 20_000, progress: bool = False, desc: str = "predict"
                ) -> tuple[Tensor, Tensor]:
        """``(prediction [g, t], has_sequence [g])`` for gene ``rows`` (on :attr:`device`)."""
        q = self._query(graph, rows)
        batches = [q.rows[i:i + batch_size] for i in range(0, len(q.rows), batch_size)]
        level = profile = has = None
        bar = tqdm(total=len(batches) * len(self.models()), desc=desc, disable=not progress,
                   leave=False)
        for name, model in self.models():
            s = self.sequence_inputs(model, q, seq)
            outs = []
            for b in batches:
                outs.append(model(q.graph, s, b))
                bar.update()
            has = torch.cat([o.has_sequence for o in outs])
            if name in ("level", "both"):
                level = torch.cat([o.level for o in outs])
            if name in ("profile", "both"):
                profile = torch.cat([o.profile for o in outs])
        bar.close()
        return level[:, None] + profile, has

    @torch.no_grad()
    def embeddings(self, graph: GraphInputs, seq: SequenceInputs | None, rows: Tensor
                   ) -> Embeddings:
        """Sequence, graph and fused views of ``rows`` from the profile-best weights (the
        weights behind the tissue profile)."""
        model = self.profile_model
        q = self._query(graph, rows)
        s = self.sequence_inputs(model, q, seq)
        h_all, has = model.input_states(q.graph, s, q.rows)
        h_seq, h_graph, h, _ = model.views(q.graph, h_all, q.rows)
        return Embeddings(h_seq if model.config.uses_sequence else None, h_graph, h,
                          has[q.rows])

    def attention_into(self, graph: GraphInputs, seq: SequenceInputs | None, row: int,
                       weights: str = "profile") -> dict[EdgeType, tuple[Tensor, Tensor]]:
        """GATv2 attention on the edges into gene ``row`` from the ``weights`` (``level`` /
        ``profile``) model: edge type → ``(source rows [e], weights [e, L])``, heads averaged
        (:func:`~genesplice.models.attribution.attention_into`); gene rows are ``graph``'s."""
        model = self.level_model if weights == "level" else self.profile_model
        q = self._query(graph, [row])
        s = self.sequence_inputs(model, q, seq)
        layers = model.attention(restrict_graph(q.graph, q.rows, self.n_layers), s)
        out = attention_into(layers, int(q.rows[0]))
        if q.new_index is None:
            return out
        old_of_new = torch.nonzero(q.new_index >= 0).squeeze(1)
        return {et: ((old_of_new[src] if et[0] == "gene" else src), w)
                for et, (src, w) in out.items()}

    def input_gradient(self, graph: GraphInputs, seq: SequenceInputs, row: int,
                       tokens: Tensor, tissue: int) -> Tensor:
        """Gradient of the prediction for gene ``row`` (whose sequence is ``tokens [l]``) in
        tissue column ``tissue`` with respect to its one-hot bases, ``[4, l]``: the level
        model's gradient of the level plus the profile model's gradient of the profile."""
        q = self._query(graph, [row])
        tokens = tokens.to(self.device)
        targets = {"level": lambda out: out.level[0],
                   "profile": lambda out: out.profile[0, tissue],
                   "both": lambda out: out.level[0] + out.profile[0, tissue]}
        total = None
        for name, model in self.models():
            s = self.sequence_inputs(model, q, seq)
            grad = onehot_gradient(model, q.graph, s, int(q.rows[0]), tokens, targets[name])
            total = grad if total is None else total + grad
        return total

    @torch.no_grad()
    def label_readout(self, graph: GraphInputs, seq: SequenceInputs | None, row: int,
                      weights: str = "profile") -> LabelReadout:
        """What the label attention of the ``weights`` (``level`` / ``profile``) model read
        for gene ``row``: its labelled neighbours (gene rows of ``graph``), their similarity,
        attention and labels per output column, and the gene's blend weights."""
        model = self.level_model if weights == "level" else self.profile_model
        if model.label_attention is None or not graph.has_labels:
            raise ValueError("this model has no label read-out")
        q = self._query(graph, [row])
        s = self.sequence_inputs(model, q, seq)
        h_in, _ = model.input_states(q.graph, s, q.rows)
        h, *_ = model.gene_states(q.graph, h_in, q.rows)
        read = model.read_labels(q.graph, h, h_in, q.rows)
        src = read.edge_index[0]
        labels = q.graph.labels[src]
        if q.new_index is not None:
            src = torch.nonzero(q.new_index >= 0).squeeze(1)[src]
        return LabelReadout(src, read.edge_attr[:, 0], read.alpha, labels,
                            model.label_gate(h)[0] * read.has_neighbours[0])

    @torch.no_grad()
    def mutagenesis(self, graph: GraphInputs, seq: SequenceInputs, row: int, tokens: Tensor,
                    mutants: Tensor) -> Tensor:
        """``Δ [m, t]``: prediction of gene ``row`` with each of ``mutants [m, l]`` as its
        sequence minus the prediction with ``tokens [l]`` (every variant is a copy of the gene,
        :func:`copy_genes`, evaluated in one pass)."""
        graph, seq = graph.to(self.device), seq.to(self.device)
        all_tokens = torch.cat([tokens[None], mutants]).to(self.device)
        g2, s2, copies = copy_genes(graph, seq, torch.full((len(all_tokens),), row,
                                                           device=self.device),
                                    tokens=all_tokens,
                                    mask=torch.ones_like(all_tokens, dtype=torch.bool))
        pred, _ = self.predict(g2, s2, copies)
        return pred[1:] - pred[:1]


@dataclass(frozen=True)
class LabelReadout:
    """A gene's label read-out: neighbour ``rows [e]``, ``similarity [e]``, attention
    ``alpha [e, c]`` and ``labels [e, c]`` (c = level + tissues), and the gene's blend
    ``gate [c]``; neighbour ``j`` moves column ``c`` by ``gate_c * alpha_jc * labels_jc``
    (towards the read-out, away from the model's own prediction)."""

    rows: Tensor
    similarity: Tensor
    alpha: Tensor
    labels: Tensor
    gate: Tensor


@dataclass(frozen=True)
class _Query:
    graph: GraphInputs           # the graph the model runs on (compacted or not)
    rows: Tensor                 # the query rows in that graph
    field: Tensor | None         # [n_genes] bool, receptive field (None: training view)
    new_index: Tensor | None     # original gene row -> compacted row (-1 outside the field)
