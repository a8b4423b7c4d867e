"""Assemble everything one training run needs, as tensors aligned to the graph's gene rows.

Inputs are already-parsed objects (a :class:`KnowledgeGraph`, an :class:`ExpressionTable`, a
gene → chromosome Series, optionally a promoter table); nothing here opens files except via
those parsers, so the same code serves bundled data and a user's own files.

What comes out (:class:`TrainingData`):

- ``y [g, t]`` log expression with NaN where the table has no value, ``observed [g, t]``;
- train / val / test gene rows from a whole-chromosome split (genes without expression or
  without a known chromosome are graph nodes but in no split; both are counted);
- the graph as :class:`GraphInputs` with the *function-label* pathways (Reactome top-level
  pathways) and every edge touching them removed, so the auxiliary head predicts something
  the graph does not state;
- ``membership [g, f]`` sparse gene × feature matrix (GO terms and pathways with the true-path
  rule, TF regulators) for the ridge baseline and the model's linear path;
- ``function_labels [g, k]``: membership in each top-level pathway (propagated);
- sequence tokens of each gene's core promoter (genes without one get the model's learned
  "no sequence" vector).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genesplice.annotations.expression import ExpressionTable
from genesplice.graph.hetero import KnowledgeGraph
from genesplice.models.model import GraphInputs, SequenceInputs
from genesplice.sequence.encode import encode_sequence, pad_tokens
from genesplice.training.splits import chromosome_split

log = logging.getLogger(__name__)

GO_EDGE = ("gene", "annotated_with", "go_term")
PATHWAY_EDGE = ("gene", "member_of", "pathway")
TF_EDGE = ("gene", "regulates", "gene")
PATHWAY_HIERARCHY = ("pathway", "part_of", "pathway")


@dataclass
class TrainingData:
    gene_ids: list[str]
    tissues: list[str]
    y: torch.Tensor                       # [g, t] float32, NaN where missing
    observed: torch.Tensor                # [g, t] bool
    rows: dict[str, torch.Tensor]         # "train" / "val" / "test" -> gene rows
    graph_inputs: GraphInputs
    edge_dims: dict[tuple[str, str, str], int]
    membership: torch.Tensor              # [g, f] sparse CSR float32
    membership_csr: sp.csr_matrix         # the same, for scipy (ridge)
    feature_names: list[str]
    function_labels: torch.Tensor         # [g, k] float32 0/1
    function_names: list[str]
    sequences: SequenceInputs | None
    checksums: dict[str, str] = field(default_factory=dict)
    report: dict[str, object] = field(default_factory=dict)

    @property
    def n_genes(self) -> int:
        return len(self.gene_ids)

    @property
    def n_tissues(self) -> int:
        return len(self.tissues)

    def split_of(self) -> pd.Series:
        """gene id → ``train`` / ``val`` / ``test`` / ``none``."""
        out = pd.Series("none", index=self.gene_ids, dtype=object)
        for name, rows in self.rows.items():
            out.iloc[rows.numpy()] = name
        return out

    def observed_frame(self, rows: torch.Tensor) -> pd.DataFrame:
        """Observed values of some gene rows as a genes × tissues DataFrame (NaN = missing)."""
        r = rows.numpy()
        return pd.DataFrame(self.y[rows].numpy().astype(np.float64),
                            index=[self.gene_ids[i] for i in r], columns=self.tissues)


def top_level_pathways(graph: KnowledgeGraph) -> list[int]:
    """Rows of pathways that have children but no parent in the (child, part_of, parent) DAG."""
    if PATHWAY_HIERARCHY not in graph.data.edge_types:
        return []
    ei = graph.data[PATHWAY_HIERARCHY].edge_index.numpy()
    children, parents = set(ei[0].tolist()), set(ei[1].tolist())
    return sorted(parents - children)


def _drop_nodes_from_edges(graph: KnowledgeGraph, node_type: str, rows: list[int]
                           ) -> tuple[dict, dict, int]:
    drop = torch.zeros(graph.data[node_type].num_nodes, dtype=torch.bool)
    drop[rows] = True
    ei_dict, ea_dict, n_removed = {}, {}, 0
    for et in graph.data.edge_types:
        store = graph.data[et]
        ei = store.edge_index
        keep = torch.ones(ei.shape[1], dtype=torch.bool)
        if et[0] == node_type:
            keep &= ~drop[ei[0]]
        if et[2] == node_type:
            keep &= ~drop[ei[1]]
        n_removed += int((~keep).sum())
        ei_dict[et] = ei[:, keep]
        if "edge_attr" in store and store.edge_attr is not None:
            ea_dict[et] = store.edge_attr[keep].float()
    return ei_dict, ea_dict, n_removed


def membership_features(graph: KnowledgeGraph, *, exclude_pathways: list[int],
                        min_genes: int) -> tuple[sp.csr_matrix, list[str], dict[str, int]]:
    """Gene × feature 0/1 matrix: GO terms and pathways (true-path rule), TF regulators.

    Features with fewer than ``min_genes`` genes are dropped (and counted).
    """
    blocks, names, counts = [], [], {}
    et_set = set(graph.data.edge_types)
    if GO_EDGE in et_set:
        blocks.append(graph.membership(GO_EDGE, propagate=True))
        names += [f"go:{t}" for t in graph.node_ids["go_term"]]
    if PATHWAY_EDGE in et_set:
        m = graph.membership(PATHWAY_EDGE, propagate=True).tolil()
        keep = np.setdiff1d(np.arange(m.shape[1]), np.asarray(exclude_pathways, dtype=int))
        blocks.append(m.tocsr()[:, keep])
        names += [f"pathway:{graph.node_ids['pathway'][j]}" for j in keep]
    if TF_EDGE in et_set:
        m = graph.membership(TF_EDGE)
        blocks.append((m != 0).astype(np.float64))
        names += [f"tf:{g}" for g in graph.node_ids["gene"]]
    if not blocks:
        raise ValueError("the graph has no gene → term / pathway / TF edges to build features from")
    x = sp.hstack(blocks).tocsr()
    x.data[:] = 1.0
    n_per = np.asarray(x.sum(axis=0)).ravel()
    keep = np.flatnonzero(n_per >= min_genes)
    counts["features_total"] = int(x.shape[1])
    counts["features_kept"] = int(len(keep))
    return x[:, keep].tocsr(), [names[j] for j in keep], counts


def _to_torch_csr(m: sp.csr_matrix) -> torch.Tensor:
    m = m.tocsr().astype(np.float32)
    return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                   torch.from_numpy(m.indices.astype(np.int64)),
                                   torch.from_numpy(m.data), size=m.shape)


def promoter_inputs(gene_ids: list[str], promoters: pd.DataFrame,
                    id_column: str = "gene_symbol") -> tuple[SequenceInputs | None, int]:
    """Tokens of one promoter per gene (first listed), aligned to graph gene rows."""
    index = {g: i for i, g in enumerate(gene_ids)}
    first = promoters.drop_duplicates(id_column, keep="first")
    hits = first[first[id_column].isin(index)]
    if hits.empty:
        return None, 0
    toks = [encode_sequence(s) for s in hits["sequence"]]
    tokens, mask = pad_tokens(toks)
    rows = torch.tensor([index[g] for g in hits[id_column]], dtype=torch.long)
    return SequenceInputs(gene_rows=rows, tokens=tokens, mask=mask), len(hits)


def _fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def prepare_training_data(graph: KnowledgeGraph, expression: ExpressionTable, *,
                          gene_chromosomes: pd.Series, promoters: pd.DataFrame | None = None,
                          test_chromosomes=("chr8",), val_chromosomes=("chr9",),
                          min_genes_per_feature: int = 5, min_genes_per_function: int = 50,
                          genes: list[str] | None = None) -> TrainingData:
    """Align expression, split, features, function labels and sequences to the graph's genes.

    ``genes`` optionally restricts the *labelled* genes (e.g. a few hundred for a quick test);
    the graph itself is kept whole.
    """
    gene_ids = list(graph.node_ids["gene"])
    index = {g: i for i, g in enumerate(gene_ids)}
    expr = expression.values
    tissues = list(expr.columns)
    in_graph = expr.index.isin(index)
    report: dict[str, object] = {
        "genes_in_graph": len(gene_ids),
        "expression_genes": int(len(expr)),
        "expression_genes_not_in_graph": int((~in_graph).sum()),
        "expression_genes_not_in_graph_examples": list(expr.index[~in_graph][:5]),
    }
    y = np.full((len(gene_ids), len(tissues)), np.nan, dtype=np.float32)
    hit = expr[in_graph]
    y[[index[g] for g in hit.index]] = hit.to_numpy(np.float32)
    observed = ~np.isnan(y)
    has_expr = observed.any(axis=1)

    labelled = [g for g in gene_ids if has_expr[index[g]]]
    if genes is not None:
        wanted = set(genes)
        labelled = [g for g in labelled if g in wanted]
    split = chromosome_split(gene_chromosomes.dropna().to_dict(), test=tuple(test_chromosomes),
                             val=tuple(val_chromosomes), genes=labelled)
    rows = {name: torch.tensor(sorted(index[g] for g in getattr(split, name)), dtype=torch.long)
            for name in ("train", "val", "test")}
    report.update({"labelled_genes": len(labelled),
                   "labelled_without_chromosome": split.n_unknown,
                   **{f"n_{k}": int(len(v)) for k, v in rows.items()}})

    roots = top_level_pathways(graph)
    function_m = (graph.membership(PATHWAY_EDGE, propagate=True)[:, roots]
                  if roots else sp.csr_matrix((len(gene_ids), 0)))
    n_per = np.asarray(function_m.sum(axis=0)).ravel()
    keep_fn = [j for j in range(len(roots)) if n_per[j] >= min_genes_per_function]
    function_labels = torch.from_numpy(function_m[:, keep_fn].toarray().astype(np.float32))
    function_names = [graph.name("pathway", graph.node_ids["pathway"][roots[j]]) for j in keep_fn]
    ei_dict, ea_dict, n_removed = _drop_nodes_from_edges(graph, "pathway", roots)
    report.update({"function_labels": len(keep_fn), "edges_removed_for_function_labels": n_removed})

    x, feature_names, counts = membership_features(graph, exclude_pathways=roots,
                                                   min_genes=min_genes_per_feature)
    report.update(counts)

    num_nodes = {nt: int(graph.data[nt].num_nodes) for nt in graph.data.node_types}
    edge_dims = {et: int(v.shape[1]) for et, v in ea_dict.items() if v.dim() == 2 and v.shape[1]}
    ea_dict = {et: v for et, v in ea_dict.items() if et in edge_dims}
    graph_inputs = GraphInputs(num_nodes, ei_dict, ea_dict, _to_torch_csr(x))

    sequences, n_seq = (promoter_inputs(gene_ids, promoters) if promoters is not None
                        else (None, 0))
    report["genes_with_sequence"] = n_seq
    checksums = {"expression": _fingerprint(np.nan_to_num(y, nan=-1.0)),
                 "graph": _fingerprint(*[graph.data[et].edge_index.numpy()
                                         for et in graph.data.edge_types]),
                 "genes": hashlib.sha256("\n".join(gene_ids).encode()).hexdigest()}
    if sequences is not None:
        checksums["sequences"] = _fingerprint(sequences.tokens.numpy(), sequences.gene_rows.numpy())
    log.info("training data: %s", report)
    return TrainingData(gene_ids=gene_ids, tissues=tissues, y=torch.from_numpy(y),
                        observed=torch.from_numpy(observed), rows=rows,
                        graph_inputs=graph_inputs, edge_dims=edge_dims, membership=graph_inputs.membership,
                        membership_csr=x, feature_names=feature_names,
                        function_labels=function_labels, function_names=function_names,
                        sequences=sequences, checksums=checksums, report=report)
