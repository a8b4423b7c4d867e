"""The fused sequence + knowledge-graph expression model (pure torch; it never reads files).

Data flow for one forward pass (full graph, then the requested genes):

    promoter / window tokens ──SequenceEncoder──▶ e_seq [s, d_seq] ──proj──▶ h_seq [g, d]
          (genes without sequence get a learned "no sequence" vector)
    gene nodes: h_seq │ GO-term / pathway nodes: learned embeddings
          ──HeteroGATEncoder (GATv2 per edge type)──▶ h_graph [g, d]
    GatedFusion(h_seq, h_graph) ──▶ h [g, d] ──▶ ExpressionHeads: level [g] + profile [g, t]
    + MembershipLinear over gene × annotation membership (ridge-like linear path)
    + function head (auxiliary, multi-label) and projection heads (contrastive views).

Variants (ablations) change which views exist, never what ``forward`` returns:
``"fused"``, ``"sequence_only"`` (no graph, no membership), ``"graph_only"`` (no sequence:
gene nodes start from one shared learned vector, never a per-gene lookup).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from genesplice.models.fusion import ExpressionHeads, GatedFusion, MembershipLinear, ProjectionHead
from genesplice.models.graph_encoder import EdgeType, GraphEncoderConfig, HeteroGATEncoder

VARIANTS = ("fused", "sequence_only", "graph_only")


@dataclass(frozen=True)
class FusedModelConfig:
    variant: str = "fused"
    hidden: int = 64
    proj_dim: int = 32
    head_dropout: float = 0.1
    use_membership: bool = True
    graph: GraphEncoderConfig = field(default_factory=GraphEncoderConfig)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.graph.hidden != self.hidden:
            raise ValueError(f"graph.hidden ({self.graph.hidden}) must equal hidden ({self.hidden})")

    @property
    def uses_sequence(self) -> bool:
        return self.variant != "graph_only"

    @property
    def uses_graph(self) -> bool:
        return self.variant != "sequence_only"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FusedModelConfig":
        d = dict(d)
        d["graph"] = GraphEncoderConfig(**d.get("graph", {}))
        return cls(**d)


@dataclass
class GraphInputs:
    """Graph tensors for a full-batch pass.

    ``membership`` is an optional sparse ``[n_genes, n_features]`` matrix for the linear path.
    """

    num_nodes: dict[str, int]
    edge_index_dict: dict[EdgeType, Tensor]
    edge_attr_dict: dict[EdgeType, Tensor]
    membership: Tensor | None = None

    def drop_edges(self, p: float, generator: torch.Generator | None = None) -> "GraphInputs":
        """A second graph view: each edge kept with probability ``1 - p`` (augmentation)."""
        if p <= 0:
            return self
        ei, ea = {}, {}
        for et, index in self.edge_index_dict.items():
            keep = torch.rand(index.shape[1], generator=generator) >= p
            ei[et] = index[:, keep]
            if et in self.edge_attr_dict:
                ea[et] = self.edge_attr_dict[et][keep]
        return GraphInputs(self.num_nodes, ei, ea, self.membership)


@dataclass
class SequenceInputs:
    """Sequence view for the genes that have one.

    Either ``tokens [s, l]`` + ``mask [s, l]`` (encoded end to end) or precomputed
    ``embeddings [s, d_seq]`` (long windows, cached); ``gene_rows [s]`` are gene-node rows.
    """

    gene_rows: Tensor
    tokens: Tensor | None = None
    mask: Tensor | None = None
    embeddings: Tensor | None = None

    def __post_init__(self) -> None:
        if (self.tokens is None) == (self.embeddings is None):
            raise ValueError("give exactly one of tokens (+mask) or embeddings")
        if self.tokens is not None and self.mask is None:
            raise ValueError("tokens need a mask")


@dataclass
class ModelOutput:
    """Everything one forward pass produces, for the requested genes ``[g]``."""

    level: Tensor                 # [g]
    profile: Tensor               # [g, t], rows centred
    function_logits: Tensor       # [g, k]
    has_sequence: Tensor          # [g] bool
    z_seq: Tensor | None          # [g, p] contrastive sequence view (fused only)
    z_graph: Tensor | None        # [g, p] contrastive graph view (fused only)
    gate: Tensor | None           # [g, d] fusion gate (fused only)

    @property
    def prediction(self) -> Tensor:
        """Per-tissue prediction ``level + profile``: ``[g, t]``."""
        return self.level.unsqueeze(-1) + self.profile


class GeneSpliceModel(nn.Module):
    """Fused sequence + graph model. See the module docstring for the data flow."""

    def __init__(self, config: FusedModelConfig, *, n_tissues: int, n_function_labels: int,
                 num_nodes: dict[str, int], edge_types: list[EdgeType],
                 edge_dims: dict[EdgeType, int] | None = None, n_membership_features: int = 0,
                 sequence_encoder: nn.Module | None = None, sequence_dim: int | None = None) -> None:
        super().__init__()
        self.config = config
        d = config.hidden
        self.n_tissues, self.n_function_labels = n_tissues, n_function_labels
        self.sequence_encoder = sequence_encoder if config.uses_sequence else None
        if config.uses_sequence:
            if sequence_dim is None:
                raise ValueError("sequence_dim is required for a model that uses sequence")
            self.seq_proj = nn.Sequential(nn.Linear(sequence_dim, d), nn.LayerNorm(d))
            self.no_sequence = nn.Parameter(torch.zeros(d))
        else:
            self.seq_proj = None
            self.register_parameter("no_sequence", None)
            self.gene_input = nn.Parameter(torch.zeros(d))   # one shared vector, not per gene
        if config.uses_graph:
            self.node_embeddings = nn.ModuleDict({
                nt: nn.Embedding(n, d) for nt, n in num_nodes.items() if nt != "gene"})
            self.graph_encoder = HeteroGATEncoder(list(num_nodes), edge_types, edge_dims,
                                                  config.graph)
        else:
            self.node_embeddings = None
            self.graph_encoder = None
        self.fusion = GatedFusion(d) if config.variant == "fused" else None
        self.heads = ExpressionHeads(d, n_tissues, config.head_dropout)
        self.membership_linear = (MembershipLinear(n_membership_features, n_tissues)
                                  if config.uses_graph and config.use_membership
                                  and n_membership_features > 0 else None)
        self.function_head = nn.Linear(d, n_function_labels) if n_function_labels else None
        if config.variant == "fused":
            self.proj_seq, self.proj_graph = ProjectionHead(d, config.proj_dim), \
                ProjectionHead(d, config.proj_dim)
        else:
            self.proj_seq = self.proj_graph = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.node_embeddings is not None:
            for emb in self.node_embeddings.values():
                nn.init.normal_(emb.weight, std=0.1)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- views ---------------------------------------------------------------------------
    def sequence_view(self, n_genes: int, seq: SequenceInputs | None) -> tuple[Tensor, Tensor]:
        """``h_seq [n_genes, d]`` and ``has_sequence [n_genes]``."""
        d = self.config.hidden
        device = self.heads.level[0].weight.device
        has = torch.zeros(n_genes, dtype=torch.bool, device=device)
        if not self.config.uses_sequence:
            return self.gene_input.expand(n_genes, d), has
        h = self.no_sequence.expand(n_genes, d)
        if seq is None or len(seq.gene_rows) == 0:
            return h, has
        if seq.embeddings is not None:
            e = seq.embeddings                                         # [s, d_seq]
        else:
            if self.sequence_encoder is None:
                raise ValueError("tokens given but the model has no sequence encoder")
            e = self.sequence_encoder(seq.tokens, seq.mask)            # [s, d_seq]
        h = h.index_put((seq.gene_rows,), self.seq_proj(e))            # [n_genes, d]
        has = has.index_fill(0, seq.gene_rows, True)
        return h, has

    def graph_view(self, graph: GraphInputs, gene_input: Tensor) -> Tensor:
        """``h_graph [n_genes, d]`` from the GAT over the whole knowledge graph."""
        x = {"gene": gene_input}
        for nt, emb in self.node_embeddings.items():
            x[nt] = emb.weight
        return self.graph_encoder(x, graph.edge_index_dict, graph.edge_attr_dict)["gene"]

    def forward(self, graph: GraphInputs, seq: SequenceInputs | None,
                gene_rows: Tensor) -> ModelOutput:
        n_genes = graph.num_nodes["gene"]
        h_seq_all, has_all = self.sequence_view(n_genes, seq)
        h_seq = h_seq_all[gene_rows]
        z_seq = z_graph = gate = None
        if self.config.variant == "sequence_only":
            h = h_seq
        else:
            h_graph = self.graph_view(graph, h_seq_all)[gene_rows]
            if self.config.variant == "fused":
                gate = self.fusion.gate(h_seq, h_graph)
                h = gate * h_seq + (1 - gate) * h_graph
                z_seq, z_graph = self.proj_seq(h_seq), self.proj_graph(h_graph)
            else:
                h = h_graph
        level, profile = self.heads(h)
        if self.membership_linear is not None and graph.membership is not None:
            lin_level, lin_profile = self.membership_linear(graph.membership)
            level = level + lin_level[gene_rows]
            profile = profile + lin_profile[gene_rows]
        logits = (self.function_head(h) if self.function_head is not None
                  else h.new_zeros(len(gene_rows), 0))
        return ModelOutput(level, profile, logits, has_all[gene_rows], z_seq, z_graph, gate)

    @torch.no_grad()
    def attention(self, graph: GraphInputs, seq: SequenceInputs | None):
        """GATv2 attention per layer and edge type (see :meth:`HeteroGATEncoder.attention`)."""
        if self.graph_encoder is None:
            raise ValueError(f"a {self.config.variant!r} model has no graph attention")
        h_seq_all, _ = self.sequence_view(graph.num_nodes["gene"], seq)
        x = {"gene": h_seq_all}
        for nt, emb in self.node_embeddings.items():
            x[nt] = emb.weight
        return self.graph_encoder.attention(x, graph.edge_index_dict, graph.edge_attr_dict)
