"""Graph encoder: GATv2 per edge type over the gene / GO-term / pathway knowledge graph.

One :class:`torch_geometric.nn.HeteroConv` of :class:`torch_geometric.nn.GATv2Conv` per layer,
one conv per ``(src, relation, dst)`` edge type, followed by a residual connection,
LayerNorm and dropout per node type. Edge attributes (regulatory sign / confidence) enter
through ``edge_dim`` where an edge type has them.

Attention weights are returned by :meth:`HeteroGATEncoder.attention`, a separate method over
the same layer loop: ``forward`` always returns the node-embedding dict.

The edge-set helpers live here too, one implementation each: :func:`restrict_to_targets`
(per-layer edges that compute some targets exactly), :func:`receptive_field` (the nodes
whose features reach them; both from one backward walk), :func:`edges_into` and
:func:`drop_nodes`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv, HeteroConv

EdgeType = tuple[str, str, str]


@dataclass(frozen=True)
class GraphEncoderConfig:
    """Hyper-parameters of :class:`HeteroGATEncoder`.

    Args:
        hidden: node embedding width (all node types share it).
        heads: attention heads per GATv2 conv (``hidden`` must be divisible by it).
        n_layers: number of HeteroConv layers (2-3 is what a GO/Reactome graph needs).
        dropout: dropout on node embeddings after each layer.
        attn_dropout: dropout on attention coefficients.
        aggr: how messages of different edge types into one node type are combined.
    """

    hidden: int = 64
    heads: int = 4
    n_layers: int = 2
    dropout: float = 0.2
    attn_dropout: float = 0.1
    aggr: str = "sum"

    def __post_init__(self) -> None:
        if self.aggr not in ("sum", "mean"):
            raise ValueError(f"aggr must be 'sum' or 'mean', got {self.aggr!r}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} must be divisible by heads={self.heads}")


def _walk_back(edge_index_dict: Mapping[EdgeType, Tensor], targets: Mapping[str, Tensor],
               num_nodes: Mapping[str, int], n_layers: int
               ) -> tuple[list[dict[EdgeType, Tensor]], dict[str, Tensor]]:
    """The one backward walk over the layers: ``(keep, needed)``.

    Working back from the last layer, layer ``l`` keeps the edges whose destination is needed
    after it (``keep[l][et]``: bool ``[e_et]``); their sources become needed before it.
    ``keep`` is in forward order; ``needed[nt]`` (bool ``[n_nt]``) marks the nodes whose
    *input* features reach ``targets`` (the receptive field).
    """
    device = next(iter(edge_index_dict.values())).device if edge_index_dict else None
    needed = {nt: torch.zeros(n, dtype=torch.bool, device=device) for nt, n in num_nodes.items()}
    for nt, rows in targets.items():
        needed[nt][rows] = True
    keeps = []
    for _ in range(n_layers):
        keep_l = {}
        before = {nt: m.clone() for nt, m in needed.items()}
        for et, ei in edge_index_dict.items():
            keep = needed[et[2]][ei[1]]
            keep_l[et] = keep
            before[et[0]][ei[0, keep]] = True
        keeps.append(keep_l)
        needed = before
    return keeps[::-1], needed


def receptive_field(edge_index_dict: Mapping[EdgeType, Tensor], targets: Mapping[str, Tensor],
                    num_nodes: Mapping[str, int], n_layers: int) -> dict[str, Tensor]:
    """Boolean masks ``[n_nt]`` per node type of the nodes whose input features reach
    ``targets`` after ``n_layers`` layers of message passing (the nodes the edge sets of
    :func:`restrict_to_targets` read)."""
    return _walk_back(edge_index_dict, targets, num_nodes, n_layers)[1]


def restrict_to_targets(edge_index_dict: Mapping[EdgeType, Tensor],
                        edge_attr_dict: Mapping[EdgeType, Tensor] | None,
                        targets: Mapping[str, Tensor], num_nodes: Mapping[str, int],
                        n_layers: int) -> list[tuple[dict[EdgeType, Tensor], dict[EdgeType, Tensor]]]:
    """Per-layer edge sets that compute the final embeddings of ``targets`` exactly.

    Layer ``l`` keeps only the edges whose destination is needed after it (see
    :func:`_walk_back`). This is what a neighbour loader does without sampling: the
    embeddings of the target rows equal a full-graph pass, at the cost of their receptive
    field only. Returns ``n_layers`` pairs ``(edge_index_dict, edge_attr_dict)`` in forward
    order.
    """
    edge_attr_dict = dict(edge_attr_dict or {})
    keeps, _ = _walk_back(edge_index_dict, targets, num_nodes, n_layers)
    layers = []
    for keep_l in keeps:
        ei_l = {et: ei[:, keep_l[et]] for et, ei in edge_index_dict.items()}
        ea_l = {et: edge_attr_dict[et][keep_l[et]] for et in edge_index_dict
                if et in edge_attr_dict}
        layers.append((ei_l, ea_l))
    return layers


def edges_into(edge_index: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """The edges of ``edge_index [2, e]`` into each of ``rows [k]``: ``(edge positions,
    position in rows of the row each goes into)``, grouped by row in ``rows`` order.

    A gather over the edges sorted by destination (taken as they are when already sorted, as
    the label edges and their surgery keep them), so its cost follows the edges selected, not
    all of them.
    """
    dst = edge_index[1]
    if len(dst) > 1 and not bool((dst[1:] >= dst[:-1]).all()):
        order = torch.argsort(dst, stable=True)
        dst = dst[order]
    else:
        order = None
    lo = torch.searchsorted(dst, rows)
    hi = torch.searchsorted(dst, rows, right=True)
    counts = hi - lo
    offsets = torch.cumsum(counts, 0) - counts
    within = torch.arange(int(counts.sum()), device=dst.device) - \
        torch.repeat_interleave(offsets, counts)
    pick = torch.repeat_interleave(lo, counts) + within
    if order is not None:
        pick = order[pick]
    return pick, torch.repeat_interleave(torch.arange(len(rows), device=dst.device), counts)


def drop_nodes(edge_index_dict: Mapping[EdgeType, Tensor],
               edge_attr_dict: Mapping[EdgeType, Tensor] | None, node_type: str, rows: Tensor,
               n_nodes: int, *, renumber: bool
               ) -> tuple[dict[EdgeType, Tensor], dict[EdgeType, Tensor], Tensor]:
    """Remove every edge touching nodes ``rows`` of ``node_type``: ``(edge_index_dict,
    edge_attr_dict, new_index)``.

    ``new_index [n_nodes]`` maps each old row to its row once the nodes are gone (-1: dropped).
    ``renumber=True`` writes the edges in that numbering (the nodes are removed);
    ``renumber=False`` keeps the old numbering (the nodes stay, isolated).
    """
    edge_attr_dict = dict(edge_attr_dict or {})
    device = next(iter(edge_index_dict.values())).device if edge_index_dict else None
    drop = torch.zeros(n_nodes, dtype=torch.bool, device=device)
    drop[torch.as_tensor(rows, dtype=torch.long, device=device)] = True
    new_index = torch.full((n_nodes,), -1, dtype=torch.long, device=device)
    new_index[~drop] = torch.arange(int((~drop).sum()), device=device)
    ei_dict, ea_dict = {}, {}
    for et, ei in edge_index_dict.items():
        keep = torch.ones(ei.shape[1], dtype=torch.bool, device=ei.device)
        for side in (0, 2):
            if et[side] == node_type:
                keep &= ~drop[ei[side // 2]]
        ei = ei[:, keep]
        if renumber:
            ei = torch.stack([new_index[ei[0]] if et[0] == node_type else ei[0],
                              new_index[ei[1]] if et[2] == node_type else ei[1]])
        ei_dict[et] = ei
        if et in edge_attr_dict:
            ea_dict[et] = edge_attr_dict[et][keep]
    return ei_dict, ea_dict, new_index


class HeteroGATEncoder(nn.Module):
    """GATv2 per edge type, residual + LayerNorm, shared width for all node types.

    Shapes:
        - input ``x_dict[nt]``: ``[n_nt, hidden]``
        - ``edge_index_dict[et]``: ``[2, n_et]``; ``edge_attr_dict[et]``: ``[n_et, edge_dim_et]``
        - output ``dict[nt] -> [n_nt, hidden]``
    """

    def __init__(self, node_types: list[str], edge_types: list[EdgeType],
                 edge_dims: Mapping[EdgeType, int] | None = None,
                 config: GraphEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or GraphEncoderConfig()
        self.node_types = list(node_types)
        self.edge_types = [tuple(et) for et in edge_types]
        edge_dims = dict(edge_dims or {})
        dst_types = {et[2] for et in self.edge_types}
        missing = [nt for nt in self.node_types if nt not in dst_types]
        if missing:
            raise ValueError(f"node types {missing} receive no messages; add reverse edges")
        out_per_head = config.hidden // config.heads
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(config.n_layers):
            convs = {}
            for et in self.edge_types:
                convs[et] = GATv2Conv(
                    (config.hidden, config.hidden), out_per_head, heads=config.heads,
                    concat=True, dropout=config.attn_dropout,
                    add_self_loops=False,  # bipartite relations / DAGs: residual carries self
                    edge_dim=edge_dims.get(et))
            self.convs.append(HeteroConv(convs, aggr=config.aggr))
            self.norms.append(nn.ModuleDict({nt: nn.LayerNorm(config.hidden)
                                             for nt in self.node_types}))
        self.dropout = nn.Dropout(config.dropout)

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        for norms in self.norms:
            for norm in norms.values():
                norm.reset_parameters()

    def __repr__(self) -> str:
        c = self.config
        return (f"{type(self).__name__}(node_types={len(self.node_types)}, "
                f"edge_types={len(self.edge_types)}, hidden={c.hidden}, heads={c.heads}, "
                f"layers={c.n_layers})")

    def forward(self, x_dict: Mapping[str, Tensor],
                edge_index_dict: Mapping[EdgeType, Tensor] | Sequence[Mapping[EdgeType, Tensor]],
                edge_attr_dict: Mapping[EdgeType, Tensor] | Sequence[Mapping[EdgeType, Tensor]]
                | None = None) -> dict[str, Tensor]:
        """Node embeddings after all layers.

        ``edge_index_dict`` / ``edge_attr_dict`` are either one dict used by every layer or a
        sequence with one dict per layer (see :func:`restrict_to_targets`).
        """
        h, _ = self._run(x_dict, edge_index_dict, edge_attr_dict, attention=False)
        return h

    @torch.no_grad()
    def attention(self, x_dict: Mapping[str, Tensor],
                  edge_index_dict: Mapping[EdgeType, Tensor] | Sequence[Mapping[EdgeType, Tensor]],
                  edge_attr_dict: Mapping[EdgeType, Tensor] | Sequence[Mapping[EdgeType, Tensor]]
                  | None = None) -> list[dict[EdgeType, tuple[Tensor, Tensor]]]:
        """Attention coefficients of every layer and edge type (eval mode recommended).

        Returns one dict per layer mapping edge type → ``(edge_index [2, e], alpha [e, heads])``,
        where ``alpha`` are the softmax-normalised GATv2 coefficients (each destination's
        incoming coefficients of one edge type sum to 1 per head). Same pass as
        :meth:`forward` (:meth:`_run`), with GATv2Conv's ``return_attention_weights``.
        """
        _, layers = self._run(x_dict, edge_index_dict, edge_attr_dict, attention=True)
        return layers

    def _per_layer(self, edge_index_dict, edge_attr_dict) -> tuple[list, list]:
        """One ``(edge_index_dict, edge_attr_dict)`` per layer from either argument form."""
        n = self.config.n_layers
        eis = [edge_index_dict] * n if isinstance(edge_index_dict, Mapping) else \
            list(edge_index_dict)
        if edge_attr_dict is None or isinstance(edge_attr_dict, Mapping):
            eas = [edge_attr_dict or {}] * n
        else:
            eas = list(edge_attr_dict)
        return eis, eas

    def _run(self, x_dict, edge_index_dict, edge_attr_dict, *, attention: bool
             ) -> tuple[dict[str, Tensor], list[dict[EdgeType, tuple[Tensor, Tensor]]]]:
        """The layer loop: ``(embeddings, attention per layer)`` (attention ``[]`` unless
        asked for). Each layer: GATv2 per edge type, summed (or averaged) per destination
        type, then ``dropout(LayerNorm(h + relu(messages)))``."""
        eis, eas = self._per_layer(edge_index_dict, edge_attr_dict)
        h = dict(x_dict)
        layers = []
        for conv, norms, ei, ea in zip(self.convs, self.norms, eis, eas):
            out, alphas = self._messages(conv, h, ei, ea, attention=attention)
            h = {nt: self.dropout(norms[nt](h[nt] + torch.relu(out[nt]))) if nt in out else h[nt]
                 for nt in h}
            if attention:
                layers.append(alphas)
        return h, layers

    def _messages(self, conv: HeteroConv, h: Mapping[str, Tensor],
                  edge_index_dict: Mapping[EdgeType, Tensor],
                  edge_attr_dict: Mapping[EdgeType, Tensor], *, attention: bool
                  ) -> tuple[dict[str, Tensor], dict[EdgeType, tuple[Tensor, Tensor]]]:
        """One HeteroConv layer, edge type by edge type in the module's order (what
        ``HeteroConv.forward`` does, op for op), optionally keeping the attention."""
        per_dst: dict[str, list[Tensor]] = {}
        alphas: dict[EdgeType, tuple[Tensor, Tensor]] = {}
        for et, gat in conv.convs.items():
            if et not in edge_index_dict:
                continue
            src, _, dst = et
            x = h[src] if src == dst else (h[src], h[dst])
            kw = {"edge_attr": edge_attr_dict[et]} if et in edge_attr_dict else {}
            if attention:
                y, alphas[et] = gat(x, edge_index_dict[et], return_attention_weights=True, **kw)
            else:
                y = gat(x, edge_index_dict[et], **kw)
            per_dst.setdefault(dst, []).append(y)
        reduce = torch.sum if self.config.aggr == "sum" else torch.mean
        out = {nt: ys[0] if len(ys) == 1 else reduce(torch.stack(ys, dim=0), dim=0)
               for nt, ys in per_dst.items()}
        return out, alphas
