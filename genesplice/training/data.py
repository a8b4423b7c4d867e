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
- ``membership [g, f]`` sparse gene × feature matrix (direct GO terms, pathways and TF
  regulators with at least a few training genes) for the ridge baseline and the model's
  linear path;
- the GAT's message edges: genes receive from GO terms, pathways and regulators, terms and
  pathways from their hierarchies (``message_edges``); gene → term edges are left out so a
  gene's receptive field stays small and no gene's features flow into the term embeddings;
- ``function_labels [g, k]``: membership in each top-level pathway (propagated);
- the label read-out's inputs (``similar_genes > 0``): each gene's ``k`` most similar
  *training* genes by TF-IDF cosine over the membership matrix (itself excluded) as label
  edges, and the training genes' level and centred profile as node labels — validation and
  test labels are never inputs (``labelled`` marks the training genes only);
- sequence tokens of each gene's core promoter (genes without one get the model's learned
  "no sequence" vector).
"""
from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genesplice.annotations.expression import ExpressionTable
from genesplice.annotations.ids import GeneResolver
from genesplice.graph.features import (
    GeneLevelFeatures,
    gene_level_features,
    membership_features,
    top_level_pathways,
)
from genesplice.graph.hetero import KnowledgeGraph
from genesplice.graph.similarity import similarity_edges
from genesplice.models.graph_encoder import drop_nodes
from genesplice.models.model import GraphInputs, SequenceInputs
from genesplice.sequence.encode import encode_sequence, pad_tokens
from genesplice.training.splits import chromosome_split
from genesplice.training.targets import level_profile

log = logging.getLogger(__name__)

GO_EDGE = ("gene", "annotated_with", "go_term")
PATHWAY_EDGE = ("gene", "member_of", "pathway")


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
    gene_level: GeneLevelFeatures | None = None   # standardised (mean/std kept) gene features
    gene_structure: pd.DataFrame | None = None    # the transcript table they were built from
    label_idf: np.ndarray | None = None           # [f] IDF of the label edges' similarity
    display_symbols: dict[str, str] = field(default_factory=dict)   # graph id -> table symbol
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
            out.iloc[rows.cpu().numpy()] = name
        return out

    def observed_frame(self, rows: torch.Tensor) -> pd.DataFrame:
        """Observed values of some gene rows as a genes × tissues DataFrame (NaN = missing)."""
        r = rows.cpu().numpy()
        return pd.DataFrame(self.y[rows.to(self.y.device)].cpu().numpy().astype(np.float64),
                            index=[self.gene_ids[i] for i in r], columns=self.tissues)

    def to(self, device: torch.device | str) -> "TrainingData":
        """The tensors the model reads (targets, rows, graph, sequences, function labels) on
        ``device``; ``self`` when they are there already. The scipy matrix stays as it is."""
        device = torch.device(device)
        if self.y.device == device or (device.index is None and
                                       self.y.device.type == device.type):
            return self
        graph_inputs = self.graph_inputs.to(device)
        return replace(self, y=self.y.to(device), observed=self.observed.to(device),
                       rows={k: v.to(device) for k, v in self.rows.items()},
                       graph_inputs=graph_inputs, membership=graph_inputs.membership,
                       function_labels=self.function_labels.to(device),
                       sequences=None if self.sequences is None else
                       self.sequences.to(device))


def message_edges(edge_types) -> list[tuple[str, str, str]]:
    """Edge types the GAT passes messages along: everything except gene → term and
    gene → pathway (their reverse edges carry term/pathway information *to* genes)."""
    return [et for et in edge_types if not (et[0] == "gene" and et[2] != "gene")]


def _to_torch_csr(m: sp.csr_matrix) -> torch.Tensor:
    m = m.tocsr().astype(np.float32)
    with warnings.catch_warnings():   # "sparse CSR support is in beta": we only index it
        warnings.simplefilter("ignore", UserWarning)
        return _csr(m)


def _csr(m: sp.csr_matrix) -> torch.Tensor:
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


def to_graph_ids(symbols: pd.Index | list[str], gene_index: dict[str, int],
                 resolver: GeneResolver | None, ensembl: pd.Series | None = None
                 ) -> dict[str, str]:
    """Map table symbols to graph gene ids: exact id first, then the resolver (aliases, then
    the row's Ensembl id). Returns only the symbols that map to a graph gene."""
    out: dict[str, str] = {}
    pending = []
    for s in symbols:
        if s in gene_index:
            out[s] = s
        else:
            pending.append(s)
    if resolver is not None and pending:
        mapped, _ = resolver.resolve(pending)
        for s in pending:
            g = mapped.get(s)
            if g is None and ensembl is not None and isinstance(ensembl.get(s), str):
                g = resolver.resolve([ensembl[s]])[0].get(ensembl[s])
            if g in gene_index:
                out[s] = g
    return out


def prepare_training_data(graph: KnowledgeGraph, expression: ExpressionTable, *,
                          gene_chromosomes: pd.Series, promoters: pd.DataFrame | None = None,
                          test_chromosomes=("chr8",), val_chromosomes=("chr9",),
                          min_genes_per_feature: int = 5, min_genes_per_function: int = 50,
                          genes: list[str] | None = None,
                          resolver: GeneResolver | None = None,
                          similar_genes: int = 0,
                          gene_structure: pd.DataFrame | None = None,
                          window_embeddings: np.ndarray | None = None) -> TrainingData:
    """Align expression, split, features, function labels and sequences to the graph's genes.

    ``genes`` optionally restricts the *labelled* genes (e.g. a few hundred for a quick test);
    the graph itself is kept whole, and only the sequences those genes can see are encoded.
    ``resolver`` maps table symbols that are not graph ids (renamed genes, aliases) onto the
    graph's official symbols. ``similar_genes``: label edges per gene from its most similar
    training genes (0: no label read-out inputs). ``gene_structure``: canonical transcripts
    (:func:`~genesplice.annotations.gene_structure.read_gene_structure`) for the gene-level
    features (:func:`~genesplice.graph.features.gene_level_features`, standardised on the
    training genes). ``window_embeddings [n_genes, d]``: cached embeddings of each gene's
    genome window in graph gene order, NaN rows where the genome lacks it (the window view).
    """
    gene_ids = list(graph.node_ids["gene"])
    index = {g: i for i, g in enumerate(gene_ids)}
    report: dict[str, object] = {"genes_in_graph": len(gene_ids)}
    y, tissues, display = _align_expression(expression, index, resolver, report)
    observed = ~np.isnan(y)
    labelled = [g for g in gene_ids if observed[index[g]].any()]
    if genes is not None:
        wanted = set(genes)
        labelled = [g for g in labelled if g in wanted]
    rows = _split_rows(gene_chromosomes, labelled, index, resolver, test_chromosomes,
                       val_chromosomes, report)

    roots = top_level_pathways(graph)
    function_labels, function_names = _function_labels(graph, roots, min_genes_per_function)
    report["function_labels"] = len(function_names)
    ei_dict, ea_dict = _message_graph(graph, roots, report)

    x, feature_names, counts = membership_features(graph, exclude_pathways=roots,
                                                   count_rows=rows["train"].numpy(),
                                                   min_genes=min_genes_per_feature)
    report.update(counts)
    num_nodes = {nt: int(graph.data[nt].num_nodes) for nt in graph.data.node_types}
    edge_dims = {et: int(v.shape[1]) for et, v in ea_dict.items() if v.dim() == 2 and v.shape[1]}
    ea_dict = {et: v for et, v in ea_dict.items() if et in edge_dims}
    labels = _label_inputs(y, observed, rows["train"], x, similar_genes, report)
    label_idf = labels.pop("label_idf", None)
    # function-label pathways are not counted: the features say nothing of the aux labels
    features = gene_level_features(graph, gene_structure, exclude_pathways=roots)
    features = features.standardized(rows["train"].numpy())
    report["gene_features"] = list(features.feature_names)
    graph_inputs = GraphInputs(num_nodes, ei_dict, ea_dict, _to_torch_csr(x), **labels,
                               gene_features=torch.from_numpy(features.matrix),
                               **_window_inputs(window_embeddings, rows, report))

    checksums: dict[str, str] = {}
    sequences, n_seq = None, 0
    if promoters is not None:
        visible = None if genes is None else _visible_genes(labelled, ei_dict, gene_ids, index)
        if visible is not None and labels:
            ei = labels["label_edge_index"]
            targets = torch.isin(ei[1], torch.tensor([index[g] for g in labelled]))
            visible.update(gene_ids[i] for i in ei[0, targets].tolist())
        sequences, n_seq = _promoter_sequences(promoters, gene_ids, index, resolver, visible,
                                               report, checksums)
    report["genes_with_sequence"] = n_seq
    checksums.update({"expression": _fingerprint(np.nan_to_num(y, nan=-1.0)),
                      "graph": _fingerprint(*[graph.data[et].edge_index.numpy()
                                              for et in graph.data.edge_types]),
                      "genes": hashlib.sha256("\n".join(gene_ids).encode()).hexdigest()})
    log.info("training data: %s", report)
    return TrainingData(gene_ids=gene_ids, tissues=tissues, y=torch.from_numpy(y),
                        observed=torch.from_numpy(observed), rows=rows,
                        graph_inputs=graph_inputs, edge_dims=edge_dims,
                        membership=graph_inputs.membership, membership_csr=x,
                        feature_names=feature_names, function_labels=function_labels,
                        function_names=function_names, sequences=sequences,
                        gene_level=features, gene_structure=gene_structure,
                        label_idf=None if label_idf is None else label_idf.numpy(),
                        display_symbols=display, checksums=checksums, report=report)


def with_targets(inputs: TrainingData, targets: TrainingData) -> TrainingData:
    """``inputs``' model inputs — graph, membership features, the label read-out's labels and
    edges, gene features, promoters, windows, function labels — with ``targets``' table:
    tissues, values and split. A fine-tuned model reads exactly what its base model read
    (``inputs``: the base run's data) and learns the new table
    (:mod:`genesplice.training.finetune`). Both must be on one graph.

    ``report["input_labels_held_out"]`` counts genes whose (base-table) labels are read-out
    inputs although they are validation / test genes of ``targets`` (0 when both runs use the
    same chromosome split); the new table's own values are never inputs."""
    if inputs.gene_ids != targets.gene_ids:
        raise ValueError("inputs and targets were assembled on different graphs")
    checksums = dict(inputs.checksums, expression=targets.checksums["expression"],
                     input_expression=inputs.checksums["expression"])
    report = dict(targets.report, input_tissues=len(inputs.tissues))
    labelled = inputs.graph_inputs.labelled
    if labelled is not None:
        held = torch.cat([targets.rows["val"], targets.rows["test"]]).cpu()
        report["input_labels_held_out"] = int(labelled.cpu()[held].sum())
    return replace(inputs, tissues=list(targets.tissues), y=targets.y,
                   observed=targets.observed, rows=dict(targets.rows),
                   display_symbols={**inputs.display_symbols, **targets.display_symbols},
                   checksums=checksums, report=report)


def _align_expression(expression: ExpressionTable, index: dict[str, int],
                      resolver: GeneResolver | None, report: dict
                      ) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """``(y [g, t] float32 with NaN where missing, tissues, graph id → table symbol)``."""
    expr = expression.values
    tissues = list(expr.columns)
    to_graph = to_graph_ids(expr.index, index, resolver, expression.ensembl_ids)
    in_graph = expr.index.isin(list(to_graph))
    display = {}
    for sym, g in to_graph.items():
        display.setdefault(g, sym)
    report.update({
        "expression_genes": int(len(expr)),
        "expression_genes_not_in_graph": int((~in_graph).sum()),
        "expression_genes_not_in_graph_examples": list(expr.index[~in_graph][:5]),
    })
    y = np.full((len(index), len(tissues)), np.nan, dtype=np.float32)
    hit = expr[in_graph]
    hit = hit[~pd.Index([to_graph[s] for s in hit.index]).duplicated(keep="first")]
    report["expression_rows_collapsed_onto_one_graph_gene"] = int(in_graph.sum() - len(hit))
    y[[index[to_graph[s]] for s in hit.index]] = hit.to_numpy(np.float32)
    return y, tissues, display


def _split_rows(gene_chromosomes: pd.Series, labelled: list[str], index: dict[str, int],
                resolver: GeneResolver | None, test_chromosomes, val_chromosomes,
                report: dict) -> dict[str, torch.Tensor]:
    """Train / val / test gene rows of a whole-chromosome split of the labelled genes."""
    chrom_in = gene_chromosomes.dropna()
    chrom_in = chrom_in[~chrom_in.index.duplicated(keep="first")]
    chrom_map = to_graph_ids(chrom_in.index, index, resolver)
    chrom = {}
    for sym, c in chrom_in.items():
        if sym in chrom_map:
            chrom.setdefault(chrom_map[sym], c)
    split = chromosome_split(chrom, test=tuple(test_chromosomes),
                             val=tuple(val_chromosomes), genes=labelled)
    rows = {name: torch.tensor(sorted(index[g] for g in getattr(split, name)), dtype=torch.long)
            for name in ("train", "val", "test")}
    report.update({"labelled_genes": len(labelled),
                   "labelled_without_chromosome": split.n_unknown,
                   **{f"n_{k}": int(len(v)) for k, v in rows.items()}})
    return rows


def _function_labels(graph: KnowledgeGraph, roots: list[int], min_genes: int
                     ) -> tuple[torch.Tensor, list[str]]:
    """``function_labels [g, k]`` (membership in each top-level pathway with at least
    ``min_genes`` genes, propagated) and their names."""
    n_genes = graph.data["gene"].num_nodes
    function_m = (graph.membership(PATHWAY_EDGE, propagate=True)[:, roots]
                  if roots else sp.csr_matrix((n_genes, 0)))
    n_per = np.asarray(function_m.sum(axis=0)).ravel()
    keep_fn = [j for j in range(len(roots)) if n_per[j] >= min_genes]
    labels = torch.from_numpy(function_m[:, keep_fn].toarray().astype(np.float32))
    names = [graph.name("pathway", graph.node_ids["pathway"][roots[j]]) for j in keep_fn]
    return labels, names


def _message_graph(graph: KnowledgeGraph, roots: list[int], report: dict
                   ) -> tuple[dict, dict]:
    """The GAT's message edges (:func:`message_edges`) without any edge touching the
    function-label pathways ``roots`` (the nodes stay, isolated)."""
    ei_all, ea_all = {}, {}
    for et in graph.data.edge_types:
        store = graph.data[et]
        ei_all[et] = store.edge_index
        if "edge_attr" in store and store.edge_attr is not None:
            ea_all[et] = store.edge_attr.float()
    ei_dict, ea_dict, _ = drop_nodes(ei_all, ea_all, "pathway",
                                     torch.as_tensor(roots, dtype=torch.long),
                                     int(graph.data["pathway"].num_nodes), renumber=False)
    report["edges_removed_for_function_labels"] = sum(
        ei_all[et].shape[1] - ei_dict[et].shape[1] for et in ei_all)
    keep = set(message_edges(ei_dict))
    return ({et: v for et, v in ei_dict.items() if et in keep},
            {et: v for et, v in ea_dict.items() if et in keep})


def _window_inputs(embeddings: np.ndarray | None, rows: dict[str, torch.Tensor], report: dict
                   ) -> dict[str, torch.Tensor]:
    """``window_features`` (0 where missing) and ``has_window`` from the cached window
    embeddings, with how many genes of each split have a window in the report."""
    if embeddings is None:
        return {}
    has = np.isfinite(embeddings).all(axis=1)
    report["genes_with_window"] = int(has.sum())
    report.update({f"n_{k}_with_window": int(has[v.numpy()].sum()) for k, v in rows.items()})
    return {"window_features": torch.from_numpy(np.where(has[:, None], embeddings, 0.0)
                                                .astype(np.float32)),
            "has_window": torch.from_numpy(has)}


def _label_inputs(y: np.ndarray, observed: np.ndarray, train_rows: torch.Tensor,
                  membership: sp.csr_matrix, k: int, report: dict) -> dict[str, torch.Tensor]:
    """The label read-out's :class:`GraphInputs` fields (empty when ``k == 0``): training
    genes' ``[level, centred profile]`` (0 elsewhere), the ``labelled`` mask (training genes
    with a value) and label edges from each gene's ``k`` most similar training genes
    (:func:`~genesplice.graph.similarity.similarity_edges`, cosine as the edge attribute)."""
    if k <= 0:
        return {}
    report["similar_genes"] = k
    train = train_rows.numpy()
    lp = level_profile(y[train], observed[train])
    labels = np.zeros((len(y), 1 + y.shape[1]), dtype=np.float32)
    labels[train, 0] = lp.level
    labels[train, 1:] = lp.profile
    labelled = np.zeros(len(y), dtype=bool)
    labelled[train] = observed[train].any(1)
    edges = label_edges(membership, np.flatnonzero(labelled), k)
    report["label_edges"] = int(edges["label_edge_index"].shape[1])
    report["genes_with_label_edges"] = int(len(np.unique(edges["label_edge_index"][1])))
    return {"labels": torch.from_numpy(labels), "labelled": torch.from_numpy(labelled),
            **edges}


def label_edges(membership: sp.csr_matrix, labelled_rows: np.ndarray, k: int
                ) -> dict[str, torch.Tensor]:
    """``label_edge_index [2, e]`` / ``label_edge_attr [e, 1]`` (cosine): each gene's ``k``
    most similar labelled genes over ``membership``'s columns
    (:func:`~genesplice.graph.similarity.similarity_edges`), and the ``label_idf [f]`` it
    weighted the columns with (kept, so that genes added later are compared the same way)."""
    ei, cos, index = similarity_edges(membership, labelled_rows, k)
    return {"label_edge_index": torch.from_numpy(ei),
            "label_edge_attr": torch.from_numpy(cos[:, None]),
            "label_idf": torch.from_numpy(index.idf)}


def _visible_genes(labelled: list[str], ei_dict: dict, gene_ids: list[str],
                   index: dict[str, int]) -> set[str]:
    """The labelled genes and their gene → gene neighbours in the GAT (the sequences a
    restricted run needs)."""
    keep = set(labelled)
    targets = torch.tensor([index[g] for g in labelled], dtype=torch.long)
    for et, ei in ei_dict.items():
        if et[0] == "gene" and et[2] == "gene":
            dst_in = torch.isin(ei[1], targets)
            keep.update(gene_ids[i] for i in ei[0][dst_in].tolist())
    return keep


def _promoter_sequences(promoters: pd.DataFrame, gene_ids: list[str], index: dict[str, int],
                        resolver: GeneResolver | None, visible: set[str] | None, report: dict,
                        checksums: dict) -> tuple[SequenceInputs | None, int]:
    """Promoter tokens of the graph's genes (only ``visible`` ones when given)."""
    pmap = to_graph_ids(pd.unique(promoters["gene_symbol"]), index, resolver)
    mapped = promoters.assign(graph_gene=promoters["gene_symbol"].map(pmap))
    report["promoters_not_in_graph"] = int(mapped["graph_gene"].isna().sum())
    # fingerprint every mapped promoter (not just a restricted run's), so a checkpoint of a
    # quick run on a gene subset still matches the same inputs when it is reloaded
    first = mapped.dropna(subset=["graph_gene"]).drop_duplicates("graph_gene")
    checksums["sequences"] = hashlib.sha256(
        "\n".join(first["graph_gene"] + "\t" + first["sequence"]).encode()).hexdigest()
    if visible is not None:
        mapped = mapped[mapped["graph_gene"].isin(visible)]
    return promoter_inputs(gene_ids, mapped.dropna(subset=["graph_gene"]),
                           id_column="graph_gene")
