"""Mini-batched graphs by neighbour sampling (``train.graph_batches = "sampled"``).

Exact batches (the default) give every batch gene its whole receptive field: every edge
within ``model.n_layers`` hops into it (:func:`~genesplice.models.inference.restrict_graph`).
On a dense graph — DoRothEA A–E's 454k TF → target edges, several species — that field is
most of the graph for every batch. Sampled batches bound it the way PyG's ``NeighborLoader``
does: from the batch genes (the *seeds*), each hop draws at most ``fan_out[edge type][hop]``
incoming edges per node of the last hop's new nodes, without replacement (``-1``: all), and
the model runs on the sampled edges only. Validation and prediction stay exact.

* :class:`NeighborSampler` — the sampler, a PyG :class:`~torch_geometric.sampler.BaseSampler`
  (``sample_from_nodes`` → :class:`~torch_geometric.sampler.HeteroSamplerOutput`, so it plugs
  into PyG's ``NodeLoader`` over :func:`hetero_data`) in pure torch on the graph's device:
  PyG's own ``NeighborSampler`` needs the compiled ``pyg-lib`` or ``torch-sparse`` wheels,
  which do not exist for this torch.
* :func:`sample_batch` — the sampled subgraph as the model's :class:`GraphInputs`: gene nodes
  renumbered (the sampled genes plus the sources of the seeds' label edges, in ascending
  full-graph order; :func:`~genesplice.models.inference.drop_genes`), every per-gene input
  (:data:`~genesplice.models.inference.PER_GENE`) and membership row carried, label edges
  restricted to kept genes; other node types keep their full-graph ids (their learned
  embeddings are looked up by id). It returns the id ↔ row maps
  (:class:`SampledBatch`).

Sequences stay whole: every sequence row is kept, those of genes outside the sample point at
one extra isolated gene row (the *sink*: no edges, zero inputs, unlabelled), so the model's
per-epoch cache of sequence embeddings (one row per sequence) is used as it is. With every
fan-out ``-1`` and one hop per GAT layer the seeds' outputs equal an exact batch's.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.sampler import (BaseSampler, HeteroSamplerOutput, NodeSamplerInput,
                                     NumNeighbors)

from genesplice.graph.hetero import edge_key, parse_edge_key
from genesplice.io.errors import GeneSpliceInputError
from genesplice.models.graph_encoder import EdgeType, edges_into
from genesplice.models.inference import PER_GENE, NewGeneEdges, append_genes, drop_genes
from genesplice.models.model import GraphInputs, SequenceInputs

#: ``train.graph_batches``: exact receptive-field batches, or sampled ones (this module)
GRAPH_BATCHES = ("exact", "sampled")
#: ``train.edge_num_neighbors`` entries: ``src__relation__dst=f1,f2`` (one fan-out per hop)
_EDGE_FAN_OUT = re.compile(r"^(\w+__\w+__\w+)=(-?\d+(?:,-?\d+)*)$")


def parse_edge_fan_out(entry: str) -> tuple[EdgeType, tuple[int, ...]]:
    """``"go_term__rev_annotated_with__gene=5,5"`` → ``(edge type, (5, 5))``."""
    m = _EDGE_FAN_OUT.match(entry.replace(" ", ""))
    if m is None:
        raise GeneSpliceInputError(f"train.edge_num_neighbors entry {entry!r} (expected "
                                   "'src__relation__dst=f1,f2', one fan-out per hop, -1 = all)")
    return parse_edge_key(m.group(1)), tuple(int(v) for v in m.group(2).split(","))


def fan_out_problems(num_neighbors: Sequence[int], edge_num_neighbors: Sequence[str]
                     ) -> list[str]:
    """What is wrong with a fan-out setting (``[]``: nothing); the graph is not needed."""
    problems = []
    if not num_neighbors or any(k < -1 for k in num_neighbors):
        problems.append(f"train.num_neighbors = {list(num_neighbors)} (expected one fan-out "
                        "per hop, each >= 0 or -1 = all)")
    for entry in edge_num_neighbors:
        try:
            _, hops = parse_edge_fan_out(entry)
        except GeneSpliceInputError as e:
            problems.append(str(e))
            continue
        if len(hops) != len(num_neighbors) or any(k < -1 for k in hops):
            problems.append(f"train.edge_num_neighbors entry {entry!r} (expected "
                            f"{len(num_neighbors)} fan-outs >= -1, as train.num_neighbors)")
    return problems


def fan_out(edge_types: Sequence[EdgeType], num_neighbors: Sequence[int],
            edge_num_neighbors: Sequence[str] = ()) -> dict[EdgeType, list[int]]:
    """Fan-out per edge type and hop: ``num_neighbors`` for every edge type, overridden per
    edge type by ``edge_num_neighbors`` entries (:func:`parse_edge_fan_out`)."""
    problems = fan_out_problems(num_neighbors, edge_num_neighbors)
    if problems:
        raise GeneSpliceInputError("; ".join(problems))
    values = {edge_key(et): list(num_neighbors) for et in edge_types}
    for entry in edge_num_neighbors:
        et, hops = parse_edge_fan_out(entry)
        if edge_key(et) not in values:
            raise GeneSpliceInputError(
                f"train.edge_num_neighbors entry {entry!r}: the graph has no edge type "
                f"{edge_key(et)} (message edge types: {sorted(values)})")
        values[edge_key(et)] = list(hops)
    resolved = NumNeighbors(values).get_values(list(edge_types))   # PyG's own resolution
    return {et: list(resolved[et]) for et in edge_types}


def _ranges(starts: Tensor, counts: Tensor) -> tuple[Tensor, Tensor]:
    """Positions ``starts[i] .. starts[i] + counts[i] - 1`` for every ``i`` (concatenated)
    and the ``i`` each belongs to."""
    seg = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    offsets = torch.cumsum(counts, 0) - counts
    within = torch.arange(len(seg), device=counts.device) - offsets[seg]
    return starts[seg] + within, seg


class NeighborSampler(BaseSampler):
    """Hetero neighbour sampling towards the seeds (pure torch, on the edges' device).

    ``edge_index_dict`` / ``num_nodes``: the graph (:class:`GraphInputs` fields);
    ``fan_out[et]``: how many incoming edges of type ``et`` each node draws at each hop
    (``-1``: all; :func:`fan_out`). Hop ``h`` expands the nodes first reached at hop ``h - 1``
    (the seeds at hop 0), as PyG's ``NeighborSampler`` does, so every sampled edge is drawn
    once. Randomness comes from torch's global generator (checkpointed with training).
    """

    def __init__(self, edge_index_dict: Mapping[EdgeType, Tensor], num_nodes: Mapping[str, int],
                 fan_out: Mapping[EdgeType, Sequence[int]]) -> None:
        self.num_nodes = dict(num_nodes)
        self.fan_out = {et: list(fan_out[et]) for et in edge_index_dict}
        hops = {len(v) for v in self.fan_out.values()}
        if len(hops) > 1:
            raise ValueError(f"every edge type needs the same number of hops, got {hops}")
        self.num_hops = hops.pop() if hops else 0
        self.csc: dict[EdgeType, tuple[Tensor, Tensor, Tensor]] = {}
        for et, ei in edge_index_dict.items():        # edges sorted by destination
            perm = torch.argsort(ei[1], stable=True)
            colptr = ei.new_zeros(self.num_nodes[et[2]] + 1)
            colptr[1:] = torch.cumsum(torch.bincount(ei[1], minlength=self.num_nodes[et[2]]), 0)
            self.csc[et] = (colptr, perm, ei[0, perm])

    def _draw(self, et: EdgeType, dst: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Up to ``k`` incoming edges of each node in ``dst``: ``(positions in the sorted
        edges, position in dst of the node each goes into)``."""
        colptr = self.csc[et][0]
        lo, deg = colptr[dst], colptr[dst + 1] - colptr[dst]
        pos, seg = _ranges(lo, deg)
        if k < 0 or len(pos) == 0 or int(deg.max()) <= k:
            return pos, seg
        # random rank of each candidate among its node's candidates; keep ranks < k
        order = torch.argsort(torch.rand(len(pos), device=pos.device))
        order = order[torch.argsort(seg[order], stable=True)]
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order), device=pos.device) - \
            (torch.cumsum(deg, 0) - deg)[seg[order]]
        keep = rank < k
        return pos[keep], seg[keep]

    def sample_from_nodes(self, inputs: NodeSamplerInput) -> HeteroSamplerOutput:
        """Sample around ``inputs.node`` (unique rows of ``inputs.input_type``, the seeds).
        ``node[nt]``: full-graph ids of the sampled nodes in the order reached (seeds
        first); ``row`` / ``col``: each sampled edge's source / destination as positions in
        ``node``; ``edge``: its position in the full graph's edge list of its type."""
        seed_type, seeds = inputs.input_type or "gene", inputs.node
        device = seeds.device
        local = {nt: torch.full((n,), -1, dtype=torch.long, device=device)
                 for nt, n in self.num_nodes.items()}
        if len(torch.unique(seeds)) != len(seeds):
            raise ValueError("seed rows must be unique")
        local[seed_type][seeds] = torch.arange(len(seeds), device=device)
        nodes = {nt: [] for nt in self.num_nodes}
        nodes[seed_type].append(seeds)
        count = {nt: 0 for nt in self.num_nodes}
        count[seed_type] = len(seeds)
        rows, cols, edges = ({et: [] for et in self.csc} for _ in range(3))
        n_nodes = {nt: [len(seeds) if nt == seed_type else 0] for nt in self.num_nodes}
        n_edges = {et: [] for et in self.csc}
        frontier = {seed_type: seeds}
        for hop in range(self.num_hops):
            reached: dict[str, list[Tensor]] = {}
            for et, (_, perm, src_sorted) in self.csc.items():
                dst = frontier.get(et[2])
                k = self.fan_out[et][hop]
                if dst is None or len(dst) == 0 or k == 0:
                    n_edges[et].append(0)
                    continue
                pos, seg = self._draw(et, dst, k)
                src = src_sorted[pos]
                new = torch.unique(src[local[et[0]][src] < 0])
                local[et[0]][new] = count[et[0]] + torch.arange(len(new), device=device)
                count[et[0]] += len(new)
                nodes[et[0]].append(new)
                reached.setdefault(et[0], []).append(new)
                rows[et].append(local[et[0]][src])
                cols[et].append(local[et[2]][dst[seg]])
                edges[et].append(perm[pos])
                n_edges[et].append(len(pos))
            frontier = {nt: torch.cat(v) for nt, v in reached.items()}
            for nt in self.num_nodes:
                n_nodes[nt].append(int(sum(len(t) for t in reached.get(nt, []))))
        cat = lambda parts: (torch.cat(parts) if parts else
                             torch.zeros(0, dtype=torch.long, device=device))
        return HeteroSamplerOutput(
            node={nt: cat(v) for nt, v in nodes.items()},
            row={et: cat(v) for et, v in rows.items()},
            col={et: cat(v) for et, v in cols.items()},
            edge={et: cat(v) for et, v in edges.items()},
            num_sampled_nodes=n_nodes, num_sampled_edges=n_edges,
            metadata=(inputs.input_id, inputs.time))

    def sample_from_edges(self, inputs, neg_sampling=None):
        raise NotImplementedError("genesplice samples around gene nodes only")


def neighbor_sampler(graph: GraphInputs, num_neighbors: Sequence[int],
                     edge_num_neighbors: Sequence[str] = ()) -> NeighborSampler:
    """The sampler over ``graph``'s message edges with the configured fan-out
    (``train.num_neighbors`` / ``train.edge_num_neighbors``)."""
    return NeighborSampler(graph.edge_index_dict, graph.num_nodes,
                           fan_out(list(graph.edge_index_dict), num_neighbors,
                                   edge_num_neighbors))


def hetero_data(graph: GraphInputs) -> HeteroData:
    """``graph`` as a PyG :class:`HeteroData` (for PyG loaders): node counts, edges with
    their ``edge_attr``, and the dense per-gene inputs as ``data["gene"].<name>``."""
    data = HeteroData()
    for nt, n in graph.num_nodes.items():
        data[nt].num_nodes = n
    for et, ei in graph.edge_index_dict.items():
        data[et].edge_index = ei
        if et in graph.edge_attr_dict:
            data[et].edge_attr = graph.edge_attr_dict[et]
    for name in PER_GENE:
        if getattr(graph, name) is not None:
            data["gene"][name] = getattr(graph, name)
    return data


@dataclass(frozen=True)
class SampledBatch:
    """One sampled mini-batch and its id ↔ row maps.

    ``graph``: the subgraph (genes renumbered; other node types keep their full-graph ids);
    ``sequences``: every sequence, ``gene_rows`` renumbered (outside the sample: the sink);
    ``seeds [b]``: the new rows of the seed genes, in the seeds' order (what the model is
    asked for); ``gene_ids [k]``: full-graph row of each new gene row (``-1``: the sink);
    ``new_index [n_genes]``: full-graph row → new row (``-1``: not in the batch);
    ``sampler``: the sampler's output (``node``/``edge``: sampled full-graph node ids per type
    and edge positions per edge type, the per-hop counts).
    """

    graph: GraphInputs
    sequences: SequenceInputs | None
    seeds: Tensor
    gene_ids: Tensor
    new_index: Tensor
    sampler: HeteroSamplerOutput


def sample_batch(graph: GraphInputs, seq: SequenceInputs | None, rows: Tensor,
                 sampler: NeighborSampler) -> SampledBatch:
    """The sampled subgraph around the seed genes ``rows`` (see the module docstring)."""
    out = sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=rows,
                                                     input_type="gene"))
    ei, ea = {}, {}
    for et, index in graph.edge_index_dict.items():
        e = out.edge[et]
        ei[et] = index[:, e]
        if et in graph.edge_attr_dict:
            ea[et] = graph.edge_attr_dict[et][e]
    n_genes = graph.num_nodes["gene"]
    keep = torch.zeros(n_genes, dtype=torch.bool, device=rows.device)
    keep[out.node["gene"]] = True
    if graph.label_edge_index is not None:       # the seeds read their similar genes' labels
        pick, _ = edges_into(graph.label_edge_index, rows)
        keep[graph.label_edge_index[0, pick]] = True
    sub, _, new_index = drop_genes(replace(graph, edge_index_dict=ei, edge_attr_dict=ea), None,
                                   torch.nonzero(~keep).squeeze(1))
    gene_ids = torch.nonzero(keep).squeeze(1)
    sub_seq = None
    if seq is not None:
        seq_rows = new_index[seq.gene_rows]
        outside = seq_rows < 0
        if bool(outside.any()):
            sub, _, sink = append_genes(sub, None, n_new=1, edges=NewGeneEdges({}, {}))
            seq_rows = torch.where(outside, sink, seq_rows)
            gene_ids = torch.cat([gene_ids, gene_ids.new_full((1,), -1)])
        sub_seq = SequenceInputs(gene_rows=seq_rows, tokens=seq.tokens, mask=seq.mask,
                                 embeddings=seq.embeddings)
    return SampledBatch(graph=sub, sequences=sub_seq, seeds=new_index[rows], gene_ids=gene_ids,
                        new_index=new_index, sampler=out)
