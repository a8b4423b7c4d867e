"""Graph encoder: GATv2 per edge type over the gene / GO-term / pathway knowledge graph.

One :class:`torch_geometric.nn.HeteroConv` of :class:`torch_geometric.nn.GATv2Conv` per layer,
one conv per ``(src, relation, dst)`` edge type, followed by a residual connection,
LayerNorm and dropout per node type. Edge attributes (regulatory sign / confidence) enter
through ``edge_dim`` where an edge type has them.

Attention weights are returned by :meth:`HeteroGATEncoder.attention`, a separate method:
``forward`` always returns the node-embedding dict.
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


def restrict_to_targets(edge_index_dict: Mapping[EdgeType, Tensor],
                        edge_attr_dict: Mapping[EdgeType, Tensor] | None,
                        targets: Mapping[str, Tensor], num_nodes: Mapping[str, int],
                        n_layers: int) -> list[tuple[dict[EdgeType, Tensor], dict[EdgeType, Tensor]]]:
    """Per-layer edge sets that compute the final embeddings of ``targets`` exactly.

    Working back from the last layer, layer ``l`` keeps only the edges whose destination is
    needed after it; their sources become needed before it. This is what a neighbour loader
    does without sampling: the embeddings of the target rows equal a full-graph pass, at the
    cost of their receptive field only. Returns ``n_layers`` pairs ``(edge_index_dict,
    edge_attr_dict)`` in forward order.
    """
    edge_attr_dict = dict(edge_attr_dict or {})
    needed = {nt: torch.zeros(n, dtype=torch.bool) for nt, n in num_nodes.items()}
    for nt, rows in targets.items():
        needed[nt][rows] = True
    layers = []
    for _ in range(n_layers):
        ei_l, ea_l = {}, {}
        before = {nt: m.clone() for nt, m in needed.items()}
        for et, ei in edge_index_dict.items():
            keep = needed[et[2]][ei[1]]
            kept = ei[:, keep]
            ei_l[et] = kept
            if et in edge_attr_dict:
                ea_l[et] = edge_attr_dict[et][keep]
            before[et[0]][kept[0]] = True
        layers.append((ei_l, ea_l))
        needed = before
    return layers[::-1]


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
        n = self.config.n_layers
        eis = list(edge_index_dict) if not isinstance(edge_index_dict, Mapping) else \
            [edge_index_dict] * n
        if edge_attr_dict is None or isinstance(edge_attr_dict, Mapping):
            eas = [edge_attr_dict or {}] * n
        else:
            eas = list(edge_attr_dict)
        h = dict(x_dict)
        for conv, norms, ei, ea in zip(self.convs, self.norms, eis, eas):
            kwargs = {"edge_attr_dict": dict(ea)} if ea else {}
            out = conv(h, dict(ei), **kwargs)
            h = {nt: self.dropout(norms[nt](h[nt] + torch.relu(out[nt]))) if nt in out else h[nt]
                 for nt in h}
        return h

    @torch.no_grad()
    def attention(self, x_dict: Mapping[str, Tensor], edge_index_dict: Mapping[EdgeType, Tensor],
                  edge_attr_dict: Mapping[EdgeType, Tensor] | None = None,
                  ) -> list[dict[EdgeType, tuple[Tensor, Tensor]]]:
        """Attention coefficients of every layer and edge type (eval mode recommended).

        Returns one dict per layer mapping edge type → ``(edge_index [2, e], alpha [e, heads])``,
        where ``alpha`` are the softmax-normalised GATv2 coefficients (each destination's
        incoming coefficients of one edge type sum to 1 per head).
        """
        edge_attr_dict = dict(edge_attr_dict or {})
        h = dict(x_dict)
        layers = []
        for conv, norms in zip(self.convs, self.norms):
            per_type: dict[EdgeType, tuple[Tensor, Tensor]] = {}
            out: dict[str, list[Tensor]] = {}
            for et, edge_index in edge_index_dict.items():
                et = tuple(et)
                src, _, dst = et
                gat = conv.convs[et]
                kw = {"edge_attr": edge_attr_dict[et]} if et in edge_attr_dict else {}
                y, (ei, alpha) = gat((h[src], h[dst]), edge_index, return_attention_weights=True, **kw)
                per_type[et] = (ei, alpha)
                out.setdefault(dst, []).append(y)
            layers.append(per_type)
            reduce = torch.sum if self.config.aggr == "sum" else torch.mean
            agg = {nt: reduce(torch.stack(v), 0) for nt, v in out.items()}
            h = {nt: norms[nt](h[nt] + torch.relu(agg[nt])) if nt in agg else h[nt] for nt in h}
        return layers
