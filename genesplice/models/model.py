"""The fused sequence + knowledge-graph expression model (pure torch; it never reads files).

Data flow for one forward pass (full graph, then the requested genes):

    promoter / window tokens ──SequenceEncoder──▶ e_seq [s, d_seq] ──proj──▶ h_seq [g, d]
          (genes without sequence get a learned "no sequence" vector)
    gene nodes: h_seq │ GO-term / pathway nodes: learned embeddings
          ──HeteroGATEncoder (GATv2 per edge type)──▶ h_graph [g, d]
    GatedFusion(h_seq, h_graph) ──▶ h [g, d] ──▶ ExpressionHeads: level [g] + profile [g, t]
    + MembershipLinear over gene × annotation membership (ridge-like linear path)
    + TissueLabelAttention: observed labels of each gene's most similar *training* genes,
      weighted per tissue (label trick: a gene never reads its own label)
    + function head (auxiliary, multi-label) and projection heads (contrastive views)
    [+ TissueMap: a fine-tuned model's base tissues → its new ones (``n_output_tissues``)].

Every head is built by name through the registry of :mod:`genesplice.models.heads`
(``tissue``, ``function``, ``contrastive``; ``config.extra_heads`` adds registered heads of
one's own, read out in ``ModelOutput.extra``).

Variants (ablations) change which views exist, never what ``forward`` returns:
``"fused"``, ``"sequence_only"`` (no graph, no membership), ``"graph_only"`` (no sequence:
gene nodes start from one shared learned vector, never a per-gene lookup). ``use_gat=False``
(graph_only) drops the GAT as well, leaving the linear path (and label attention if enabled).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import torch
from torch import Tensor, nn

from genesplice.models.fusion import GatedFusion, LabelGate, MembershipLinear
from genesplice.models.graph_encoder import (EdgeType, GraphEncoderConfig, HeteroGATEncoder,
                                             edges_into, restrict_to_targets)
from genesplice.models.heads import build_head
from genesplice.models.label_attention import LabelAttentionOutput, TissueLabelAttention

VARIANTS = ("fused", "sequence_only", "graph_only")


@dataclass(frozen=True)
class FusedModelConfig:
    variant: str = "fused"
    hidden: int = 64
    proj_dim: int = 32
    head_dropout: float = 0.1
    use_membership: bool = True
    use_gat: bool = True
    use_gene_features: bool = True
    use_promoter: bool = True        # read the promoter tokens (when the data have them)
    use_window: bool = True          # read the cached window embeddings (when the data have them)
    label_attention: bool = False
    label_init: float = 0.4          # starting blend weight of the label read-out per column
    graph: GraphEncoderConfig = field(default_factory=GraphEncoderConfig)
    #: more heads on the gene states, each ``(output key, registered head name, outputs)``:
    #: ``build_head(name, dim=hidden, n_outputs=outputs)``, read out in ``ModelOutput.extra``
    extra_heads: tuple[tuple[str, str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if not self.use_gat and self.variant != "graph_only":
            raise ValueError("use_gat=False is the graph_only ablation (linear path alone)")
        if self.graph.hidden != self.hidden:
            raise ValueError(f"graph.hidden ({self.graph.hidden}) must equal hidden ({self.hidden})")
        object.__setattr__(self, "extra_heads",
                           tuple((str(k), str(n), int(o)) for k, n, o in self.extra_heads))
        keys = [k for k, _, _ in self.extra_heads]
        if len(set(keys)) != len(keys):
            raise ValueError(f"extra_heads has repeated output keys: {keys}")

    @property
    def uses_sequence(self) -> bool:
        return self.variant != "graph_only"

    @property
    def uses_graph(self) -> bool:
        return self.variant != "sequence_only"

    @property
    def uses_gat(self) -> bool:
        return self.uses_graph and self.use_gat

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
    The label read-out's inputs (all optional): ``labels [n_genes, 1 + t]`` (level, centred
    profile; 0 where unknown), ``labelled [n_genes]`` bool (whose labels may ever be read: the
    training genes), ``label_edge_index [2, e]`` (similar labelled gene → gene) and
    ``label_edge_attr [e, k]``. ``gene_features [n_genes, f]``: per-gene features known
    before any expression is measured (gene structure, TF-ness, annotation counts;
    standardised), added to every gene's input state in the graph variants.
    ``window_features [n_genes, d_w]`` / ``has_window [n_genes]``: cached embeddings of each
    gene's long genome window (0 / False where the genome lacks it), a second sequence view.
    """

    num_nodes: dict[str, int]
    edge_index_dict: dict[EdgeType, Tensor]
    edge_attr_dict: dict[EdgeType, Tensor]
    membership: Tensor | None = None
    labels: Tensor | None = None
    labelled: Tensor | None = None
    label_edge_index: Tensor | None = None
    label_edge_attr: Tensor | None = None
    gene_features: Tensor | None = None
    window_features: Tensor | None = None
    has_window: Tensor | None = None

    @property
    def has_labels(self) -> bool:
        return self.labels is not None and self.label_edge_index is not None

    def _tensors(self) -> dict[str, Tensor]:
        """The optional tensor fields that are set (everything after the edge dicts)."""
        return {f.name: getattr(self, f.name) for f in fields(self)[3:]
                if getattr(self, f.name) is not None}

    def drop_edges(self, p: float, generator: torch.Generator | None = None) -> "GraphInputs":
        """A second graph view: each edge kept with probability ``1 - p`` (augmentation)."""
        if p <= 0:
            return self
        ei, ea = {}, {}
        for et, index in self.edge_index_dict.items():
            keep = torch.rand(index.shape[1], generator=generator, device=index.device) >= p
            ei[et] = index[:, keep]
            if et in self.edge_attr_dict:
                ea[et] = self.edge_attr_dict[et][keep]
        return replace(self, edge_index_dict=ei, edge_attr_dict=ea)

    def to(self, device: torch.device | str) -> "GraphInputs":
        """The same graph with every tensor on ``device`` (``self`` when already there)."""
        others = self._tensors()
        tensors = [*self.edge_index_dict.values(), *self.edge_attr_dict.values(),
                   *others.values()]
        device = torch.device(device)
        if all(_on(t, device) for t in tensors):
            return self
        return replace(self, num_nodes=dict(self.num_nodes),
                       edge_index_dict={et: v.to(device) for et, v in self.edge_index_dict.items()},
                       edge_attr_dict={et: v.to(device) for et, v in self.edge_attr_dict.items()},
                       **{k: v.to(device) for k, v in others.items()})


def _on(t: Tensor, device: torch.device) -> bool:
    """Whether ``t`` is on ``device`` (``cuda`` matches ``cuda:0`` …)."""
    return t.device.type == device.type and (device.index is None
                                             or t.device.index == device.index)


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
        self._row_of_gene: Tensor | None = None

    def __len__(self) -> int:
        return len(self.gene_rows)

    def to(self, device: torch.device | str) -> "SequenceInputs":
        """The same inputs on ``device`` (``self`` when already there)."""
        device = torch.device(device)
        tensors = [t for t in (self.gene_rows, self.tokens, self.mask, self.embeddings)
                   if t is not None]
        if all(_on(t, device) for t in tensors):
            return self
        move = lambda t: None if t is None else t.to(device)
        return SequenceInputs(gene_rows=move(self.gene_rows), tokens=move(self.tokens),
                              mask=move(self.mask), embeddings=move(self.embeddings))

    def rows_of(self, gene_rows: Tensor, n_genes: int) -> tuple[Tensor, Tensor]:
        """For the given gene rows: ``(positions in gene_rows that have a sequence, their
        sequence rows)``."""
        if self._row_of_gene is None or len(self._row_of_gene) != n_genes:
            device = self.gene_rows.device
            table = torch.full((n_genes,), -1, dtype=torch.long, device=device)
            table[self.gene_rows] = torch.arange(len(self.gene_rows), device=device)
            self._row_of_gene = table
        srows = self._row_of_gene[gene_rows]
        pos = torch.nonzero(srows >= 0).squeeze(1)
        return pos, srows[pos]


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
    extra: dict[str, Tensor] = field(default_factory=dict)  # config.extra_heads' outputs

    @property
    def prediction(self) -> Tensor:
        """Per-tissue prediction ``level + profile``: ``[g, t]``."""
        return self.level.unsqueeze(-1) + self.profile


class GeneSpliceModel(nn.Module):
    """Fused sequence + graph model. See the module docstring for the data flow."""

    def __init__(self, config: FusedModelConfig, *, n_tissues: int, n_function_labels: int,
                 num_nodes: dict[str, int], edge_types: list[EdgeType],
                 edge_dims: dict[EdgeType, int] | None = None, n_membership_features: int = 0,
                 sequence_encoder: nn.Module | None = None, sequence_dim: int | None = None,
                 label_edge_dim: int = 1, n_gene_features: int = 0,
                 window_dim: int = 0, n_output_tissues: int = 0) -> None:
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
            self._seq_cache: Tensor | None = None
        else:
            self.seq_proj = None
            self.register_parameter("no_sequence", None)
            self.gene_input = nn.Parameter(torch.zeros(d))   # one shared vector, not per gene
        if config.uses_gat:
            self.node_embeddings = nn.ModuleDict({
                nt: nn.Embedding(n, d) for nt, n in num_nodes.items() if nt != "gene"})
            self.graph_encoder = HeteroGATEncoder(list(num_nodes), edge_types, edge_dims,
                                                  config.graph)
        else:
            self.node_embeddings = None
            self.graph_encoder = None
        self.fusion = GatedFusion(d) if config.variant == "fused" else None
        self.heads = build_head("tissue", dim=d, n_outputs=n_tissues,
                                dropout=config.head_dropout)
        self.membership_linear = (MembershipLinear(n_membership_features, n_tissues)
                                  if config.uses_graph and config.use_membership
                                  and n_membership_features > 0 else None)
        self.function_head = (build_head("function", dim=d, n_outputs=n_function_labels)
                              if n_function_labels else None)
        if config.variant == "fused":
            self.proj_seq, self.proj_graph = (build_head("contrastive", dim=d,
                                                         out_dim=config.proj_dim)
                                              for _ in range(2))
        else:
            self.proj_seq = self.proj_graph = None
        if config.uses_sequence and config.use_window and window_dim > 0:
            self.window_proj = nn.Sequential(nn.Linear(window_dim, d), nn.LayerNorm(d))
            self.no_window = nn.Parameter(torch.zeros(d))
        else:
            self.window_proj = None
            self.register_parameter("no_window", None)
        self.gene_feature_proj = (nn.Linear(n_gene_features, d)
                                  if config.uses_graph and config.use_gene_features
                                  and n_gene_features > 0 else None)
        if config.label_attention:
            self.label_attention = TissueLabelAttention(d, n_tissues + 1, label_edge_dim)
            self.label_gate = LabelGate(d, n_tissues + 1, config.label_init)
        else:
            self.label_attention = self.label_gate = None
        self.extra_heads = nn.ModuleDict({
            key: build_head(name, dim=d, n_outputs=n) for key, name, n in config.extra_heads})
        # a fine-tuned model: the tissues above are its base model's, mapped to the new ones
        self.tissue_map = (build_head("tissue_map", n_inputs=n_tissues,
                                      n_outputs=n_output_tissues)
                           if n_output_tissues else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.node_embeddings is not None:
            for emb in self.node_embeddings.values():
                nn.init.normal_(emb.weight, std=0.1)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- views ---------------------------------------------------------------------------
    def _encode(self, seq: SequenceInputs, srows: Tensor) -> Tensor:
        """Sequence-encoder embeddings ``[len(srows), d_seq]`` of some sequence rows."""
        if seq.embeddings is not None:
            return seq.embeddings[srows]
        if self.sequence_encoder is None:
            raise ValueError("tokens given but the model has no sequence encoder")
        tokens, mask = seq.tokens[srows], seq.mask[srows]
        keep = mask.any(0)                      # trim columns that are padding in every row
        return self.sequence_encoder(tokens[:, keep], mask[:, keep])

    @torch.no_grad()
    def refresh_sequence_cache(self, seq: SequenceInputs | None, batch_size: int = 4096) -> None:
        """Embed every sequence with the current encoder (no gradient) into the cache that
        feeds the GAT's gene nodes outside the current batch."""
        if seq is None or not self.config.uses_sequence:
            self._seq_cache = None
            return
        was = self.training
        self.eval()
        device = seq.gene_rows.device
        parts = [self._encode(seq, torch.arange(i, min(i + batch_size, len(seq)), device=device))
                 for i in range(0, len(seq), batch_size)]
        self.train(was)
        self._seq_cache = torch.cat(parts)

    def sequence_view(self, n_genes: int, seq: SequenceInputs | None,
                      gene_rows: Tensor) -> tuple[Tensor, Tensor]:
        """``h_seq [n_genes, d]`` for every gene and ``has_sequence [n_genes]``.

        The genes in ``gene_rows`` are encoded now (gradient flows into the sequence encoder);
        the other genes take the cached embeddings (:meth:`refresh_sequence_cache`), which is
        how long or many sequences stay affordable while the GAT sees every gene's features.
        """
        d = self.config.hidden
        device = self.heads.level[0].weight.device
        has = torch.zeros(n_genes, dtype=torch.bool, device=device)
        if not self.config.uses_sequence:
            return self.gene_input.expand(n_genes, d), has
        h = self.no_sequence.expand(n_genes, d)
        if seq is None or len(seq) == 0:
            return h, has
        has = has.index_fill(0, seq.gene_rows, True)
        if seq.embeddings is None and getattr(self, "_seq_cache", None) is None:
            self.refresh_sequence_cache(seq)
        cache = seq.embeddings if seq.embeddings is not None else self._seq_cache
        if self.config.uses_gat or self.config.label_attention:   # every gene's features
            # feed the GAT and the label read-out
            h = h.index_put((seq.gene_rows,), self.seq_proj(cache))
        pos, srows = seq.rows_of(gene_rows, n_genes)
        if len(pos):
            fresh = self.seq_proj(self._encode(seq, srows))              # [p, d]
            h = h.index_put((gene_rows[pos],), fresh)
        return h, has

    def input_states(self, graph: GraphInputs, seq: SequenceInputs | None, gene_rows: Tensor
                     ) -> tuple[Tensor, Tensor]:
        """Every gene's input state ``[n_genes, d]`` — its promoter view
        (:meth:`sequence_view`), its window view and its gene-level features, each where the
        model reads it — and ``has_sequence [n_genes]`` (a promoter or a window)."""
        seq = seq if self.config.use_promoter else None
        h, has = self.sequence_view(graph.num_nodes["gene"], seq, gene_rows)
        if self.window_proj is not None and graph.window_features is not None:
            window = graph.has_window[:, None]
            h = h + torch.where(window, self.window_proj(graph.window_features),
                                self.no_window)
            has = has | graph.has_window
        if self.gene_feature_proj is not None and graph.gene_features is not None:
            h = h + self.gene_feature_proj(graph.gene_features)
        return h, has

    def _node_inputs(self, gene_input: Tensor) -> dict[str, Tensor]:
        x = {"gene": gene_input}
        for nt, emb in self.node_embeddings.items():
            x[nt] = emb.weight
        return x

    def graph_view(self, graph: GraphInputs, gene_input: Tensor, gene_rows: Tensor) -> Tensor:
        """``h_graph [len(gene_rows), d]``: the GAT over the knowledge graph, computed on the
        receptive field of ``gene_rows`` only (exactly equal to a full-graph pass)."""
        layers = restrict_to_targets(graph.edge_index_dict, graph.edge_attr_dict,
                                     {"gene": gene_rows}, graph.num_nodes,
                                     self.config.graph.n_layers)
        out = self.graph_encoder(self._node_inputs(gene_input), [ei for ei, _ in layers],
                                 [ea for _, ea in layers])
        return out["gene"][gene_rows]

    def forward(self, graph: GraphInputs, seq: SequenceInputs | None,
                gene_rows: Tensor) -> ModelOutput:
        h_seq_all, has_all = self.input_states(graph, seq, gene_rows)
        h, z_seq, z_graph, gate = self.gene_states(graph, h_seq_all, gene_rows)
        level, profile = self.heads(h)
        if self.membership_linear is not None and graph.membership is not None:
            lin_level, lin_profile = self.membership_linear(graph.membership, gene_rows)
            level = level + lin_level
            profile = profile + lin_profile
        if self.label_attention is not None and graph.has_labels:
            read = self.read_labels(graph, h, h_seq_all, gene_rows)
            w = self.label_gate(h) * read.has_neighbours[:, None]               # [g, 1 + t]
            level = level + w[:, 0] * (read.values[:, 0] - level)
            profile = profile + w[:, 1:] * (read.values[:, 1:] - profile)
            profile = profile - profile.mean(dim=-1, keepdim=True)
        if self.tissue_map is not None:
            level, profile = self.tissue_map(level, profile)
        logits = (self.function_head(h) if self.function_head is not None
                  else h.new_zeros(len(gene_rows), 0))
        extra = {key: head(h) for key, head in self.extra_heads.items()}
        return ModelOutput(level, profile, logits, has_all[gene_rows], z_seq, z_graph, gate,
                           extra)

    def views(self, graph: GraphInputs, h_in: Tensor, gene_rows: Tensor
              ) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        """``(h_seq, h_graph, h, gate)`` of ``gene_rows`` from every gene's input state
        ``h_in [n, d]``: their input states ``[g, d]``, the GAT's view (None without a GAT),
        the state the heads read (the gated fusion in the fused model, else the one view)
        and the fusion gate (fused model only)."""
        h_seq = h_in[gene_rows]
        if not self.config.uses_gat:
            return h_seq, None, h_seq, None
        h_graph = self.graph_view(graph, h_in, gene_rows)
        if self.config.variant != "fused":
            return h_seq, h_graph, h_graph, None
        gate = self.fusion.gate(h_seq, h_graph)
        return h_seq, h_graph, gate * h_seq + (1 - gate) * h_graph, gate

    def gene_states(self, graph: GraphInputs, h_in: Tensor, gene_rows: Tensor
                    ) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
        """``(h [g, d], z_seq, z_graph, gate)`` of ``gene_rows`` (:meth:`views`); the
        contrastive views and the gate exist in the fused model only."""
        h_seq, h_graph, h, gate = self.views(graph, h_in, gene_rows)
        if gate is None:
            return h, None, None, None
        return h, self.proj_seq(h_seq), self.proj_graph(h_graph), gate

    def read_labels(self, graph: GraphInputs, h: Tensor, h_in: Tensor, gene_rows: Tensor
                    ) -> LabelAttentionOutput:
        """The label read-out for ``gene_rows`` (states ``h [g, d]``; every gene's input
        state ``h_in [n, d]``): attention over their similar labelled genes. An edge from a
        gene to itself is never read, so a gene's own label never reaches its prediction —
        in training (where it is the target) and at prediction time alike; and only genes in
        ``graph.labelled`` (the training genes) are ever read."""
        ei = graph.label_edge_index
        pick, position = edges_into(ei, gene_rows)
        src = ei[0, pick]
        not_self = src != gene_rows[position]
        edges = torch.stack([src[not_self], position[not_self]])
        return self.label_attention(h, h_in, graph.labels, graph.labelled, edges,
                                    graph.label_edge_attr[pick[not_self]])

    @torch.no_grad()
    def attention(self, graph: GraphInputs, seq: SequenceInputs | None):
        """GATv2 attention per layer and edge type (see :meth:`HeteroGATEncoder.attention`)."""
        if self.graph_encoder is None:
            raise ValueError(f"a {self.config.variant!r} model without a GAT has no graph "
                             "attention")
        n_genes = graph.num_nodes["gene"]
        device = self.heads.level[0].weight.device
        h_seq_all, _ = self.input_states(graph, seq, torch.arange(n_genes, device=device))
        return self.graph_encoder.attention(self._node_inputs(h_seq_all), graph.edge_index_dict,
                                            graph.edge_attr_dict)
