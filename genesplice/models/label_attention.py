"""Tissue-conditional attention over labelled neighbour genes (the "label trick" read-out).

Each gene ``i`` has edges from its most similar *labelled* genes ``j`` (annotation similarity,
``graph.similarity``). For every output column ``c`` — the level and each tissue — the layer
scores each neighbour GATv2-style with a query of that column, so a neighbour can be trusted in
one tissue and ignored in another::

    z_ij   = LeakyReLU(W_dst h_i + W_src [x_j ; y_j] + W_edge e_ij)      [e, a]
    s_ijc  = β_c log(sim_ij) + q_c · z_ij                               [e, c]
    α_·c   = softmax over the visible neighbours j of i                 [e, c]
    out_ic = Σ_j α_ijc y_jc                                             [g, c]

``y_j = [level_j, centred profile_j]`` are observed labels that the *caller* makes visible:
training genes only, and never along an edge from a gene to itself (``GeneSpliceModel``
drops those), so a gene's own label never reaches its prediction. ``out`` is a
weighted average of neighbours' labels; ``GeneSpliceModel`` adds it with a learned weight per
column. ``forward`` always returns a :class:`LabelAttentionOutput`; ``alpha`` is what explanations
read. The first edge attribute is the similarity ``sim_ij`` in (0, 1]; ``β_c`` starts at 3 and
the queries near zero, so training starts from a fixed smoother that weights neighbours by
``sim³`` (the best such smoother on the validation chromosome) and learns where to depart.

Letters: g target genes, n all genes, e edges, c = 1 + t output columns, d width, a attention width.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.utils import softmax


@dataclass(frozen=True)
class LabelAttentionOutput:
    values: Tensor        # [g, c] attention-weighted neighbour labels (0 where none visible)
    alpha: Tensor         # [e, c] attention of each kept edge per column
    edge_index: Tensor    # [2, e] the kept edges (source gene row, target position in g)
    edge_attr: Tensor     # [e, k] their attributes (column 0: similarity)
    has_neighbours: Tensor  # [g] bool


class TissueLabelAttention(nn.Module):
    """See the module docstring. ``dim``: width of the gene states; ``n_columns``: 1 + tissues;
    ``edge_dim``: edge attributes (cosine similarity …)."""

    def __init__(self, dim: int, n_columns: int, edge_dim: int = 1, att_dim: int = 32,
                 negative_slope: float = 0.2, dropout: float = 0.0) -> None:
        super().__init__()
        self.dst = nn.Linear(dim, att_dim)
        self.src = nn.Linear(dim + n_columns + 1, att_dim, bias=False)
        self.edge = nn.Linear(edge_dim, att_dim, bias=False)
        self.query = nn.Parameter(torch.zeros(n_columns, att_dim))    # one query per column
        self.sim_power = nn.Parameter(torch.full((n_columns,), 3.0))  # β_c
        self.negative_slope = negative_slope
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.query, std=0.1 * att_dim ** -0.5)

    def forward(self, h_dst: Tensor, x_src: Tensor, labels: Tensor, visible: Tensor,
                edge_index: Tensor, edge_attr: Tensor) -> LabelAttentionOutput:
        """``h_dst [g, d]`` target states; ``x_src [n, d]`` every gene's input state;
        ``labels [n, c]``, ``visible [n]`` bool; ``edge_index [2, e]`` (row 0: source gene
        row in ``n``, row 1: target position in ``g``); ``edge_attr [e, edge_dim]``."""
        keep = visible[edge_index[0]]
        ei, ea = edge_index[:, keep], edge_attr[keep]
        src, dst = ei[0], ei[1]
        y = torch.where(visible[:, None], labels, torch.zeros_like(labels))
        # index_select, not x[idx]: its backward (index_add) is deterministic on the CPU
        y_src = y.index_select(0, src)
        src_in = torch.cat([x_src.index_select(0, src), y_src,
                            torch.ones_like(y_src[:, :1])], dim=-1)
        z = nn.functional.leaky_relu(self.dst(h_dst).index_select(0, dst) + self.src(src_in)
                                     + self.edge(ea), self.negative_slope)       # [e, a]
        log_sim = torch.log(ea[:, :1].clamp(min=1e-6))                          # [e, 1]
        scores = log_sim * self.sim_power + z @ self.query.T                     # [e, c]
        alpha = self.dropout(softmax(scores, dst, num_nodes=len(h_dst)))         # [e, c]
        values = h_dst.new_zeros(len(h_dst), labels.shape[1])
        values = values.index_add(0, dst, alpha * y_src)
        has = torch.zeros(len(h_dst), dtype=torch.bool, device=h_dst.device)
        has = has.index_fill(0, dst, True)
        return LabelAttentionOutput(values, alpha, ei, ea, has)
