"""Features derived from a built :class:`~genesplice.graph.hetero.KnowledgeGraph`: the gene ×
annotation membership matrix (GO terms, pathways, regulating TFs) that the ridge baseline and the
model's linear path read, the top-level pathways (the auxiliary function head's labels), and
dense gene-level features from annotation only (:func:`gene_level_features`: transcript
structure, TF-ness, annotation counts), known before any expression is seen.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from genesplice.annotations.ontology import root_mask
from genesplice.graph.hetero import KnowledgeGraph
from genesplice.io.errors import GeneSpliceInputError

log = logging.getLogger(__name__)

PATHWAY_HIERARCHY = ("pathway", "part_of", "pathway")
GO_ANNOTATION = ("gene", "annotated_with", "go_term")
PATHWAY_MEMBERSHIP = ("gene", "member_of", "pathway")
GENE_REGULATION = ("gene", "regulates", "gene")
#: columns of :func:`gene_level_features` from the transcript structure table (when given)
STRUCTURE_FEATURES = ("log10_span_bp", "log1p_n_exons", "has_transcript")
#: columns of :func:`gene_level_features` from the graph (always)
GRAPH_FEATURES = ("is_tf", "log1p_n_targets", "log1p_n_go_terms", "log1p_n_pathways",
                  "log1p_n_regulators")


@dataclass(frozen=True)
class MembershipFeatures:
    """Sparse gene x feature 0/1 matrix (CSR, float64) with its row and column ids."""

    matrix: sp.csr_matrix
    gene_ids: tuple[str, ...]
    feature_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.matrix.shape != (len(self.gene_ids), len(self.feature_ids)):
            raise ValueError(f"matrix shape {self.matrix.shape} does not match "
                             f"{len(self.gene_ids)} genes x {len(self.feature_ids)} features")

    @property
    def gene_index(self) -> dict[str, int]:
        return {g: i for i, g in enumerate(self.gene_ids)}

    def rows(self, genes: Sequence[str]) -> sp.csr_matrix:
        """Rows for ``genes`` (each must be present; the error names the missing ones)."""
        idx = self.gene_index
        missing = [g for g in genes if g not in idx]
        if missing:
            raise GeneSpliceInputError(f"{len(missing)} genes have no row in the membership "
                                       f"matrix (e.g. {missing[:5]}); expected every gene")
        return self.matrix[[idx[g] for g in genes]]


def membership_matrix(pairs: pd.DataFrame, gene_ids: Sequence[str],
                      feature_ids: Sequence[str] | None = None) -> MembershipFeatures:
    """Build a gene x feature 0/1 matrix from a long table with columns gene_id, feature_id.

    Rows follow ``gene_ids`` (genes without any pair get an all-zero row); columns follow
    ``feature_ids`` (default: sorted features of the pairs). Pairs whose gene or feature is not
    listed are left out and counted in a log line; duplicate pairs count once.
    """
    missing = [c for c in ("gene_id", "feature_id") if c not in pairs.columns]
    if missing:
        raise GeneSpliceInputError(f"membership pairs lack columns {missing} "
                                   "(expected gene_id, feature_id)")
    gene_ids = list(dict.fromkeys(gene_ids))
    if feature_ids is None:
        feature_ids = sorted(pairs["feature_id"].astype(str).unique())
    feature_ids = list(dict.fromkeys(feature_ids))
    gi = pd.Index(gene_ids)
    fi = pd.Index(feature_ids)
    r = gi.get_indexer(pairs["gene_id"].astype(str))
    c = fi.get_indexer(pairs["feature_id"].astype(str))
    ok = (r >= 0) & (c >= 0)
    if (~ok).any():
        log.info("membership: %d of %d pairs name a gene or feature outside the requested "
                 "lists (left out)", int((~ok).sum()), len(pairs))
    m = sp.csr_matrix((np.ones(int(ok.sum())), (r[ok], c[ok])),
                      shape=(len(gene_ids), len(feature_ids)))
    m.sum_duplicates()
    m.data[:] = 1.0
    return MembershipFeatures(matrix=m, gene_ids=tuple(gene_ids), feature_ids=tuple(feature_ids))


def membership_from_graph(graph, *, relations: Sequence[str] = ("annotated_with", "member_of",
                                                                  "regulates"),
                          propagate: bool = False,
                          gene_ids: Sequence[str] | None = None) -> MembershipFeatures:
    """Membership features from a built ``genesplice.graph`` ``KnowledgeGraph``.

    One block of columns per gene edge type whose relation is in ``relations`` (reverse edges
    skipped): GO terms (``annotated_with``), pathways (``member_of``) and, for gene -> gene
    ``regulates``, the regulating TFs (columns named ``TF:<symbol>``). ``propagate`` marks
    ancestor terms/pathways too (true-path rule, via ``KnowledgeGraph.membership``).
    ``gene_ids`` reorders the rows (e.g. to the expression table's genes); genes absent from
    the graph get all-zero rows and are counted in a log line.
    """
    blocks, names = [], []
    graph_genes = list(graph.node_ids["gene"])
    for et in graph.edge_types:
        src, rel, dst = et
        if rel.startswith("rev_") or rel not in relations or "gene" not in (src, dst):
            continue
        m = graph.membership(et, propagate=propagate)
        other = dst if src == "gene" else src
        ids = list(graph.node_ids[other])
        if src == "gene" and dst == "gene":
            ids = [f"TF:{g}" for g in ids]
        keep = np.flatnonzero(m.getnnz(axis=0) > 0)
        blocks.append(sp.csr_matrix(m)[:, keep])
        names.extend(ids[i] for i in keep)
    if not blocks:
        raise GeneSpliceInputError(f"the graph has no gene edge type with relation in "
                                   f"{list(relations)} (has {graph.edge_types})")
    matrix = sp.hstack(blocks, format="csr")
    matrix.data[:] = 1.0
    if gene_ids is not None:
        gene_ids = list(dict.fromkeys(gene_ids))
        rows = pd.Index(graph_genes).get_indexer(gene_ids)
        absent = int((rows < 0).sum())
        if absent:
            log.info("membership: %d of %d requested genes are not graph nodes (all-zero rows)",
                     absent, len(gene_ids))
        pad = sp.vstack([matrix, sp.csr_matrix((1, matrix.shape[1]))], format="csr")
        matrix = pad[np.where(rows < 0, matrix.shape[0], rows)]
        graph_genes = gene_ids
    return MembershipFeatures(matrix=sp.csr_matrix(matrix), gene_ids=tuple(graph_genes),
                              feature_ids=tuple(names))


def top_level_pathways(graph: KnowledgeGraph) -> list[int]:
    """Rows (ascending) of the top-level pathways: the roots of the graph's
    (pathway, part_of, pathway) hierarchy, i.e. pathways with sub-pathways and no parent
    (:func:`~genesplice.annotations.ontology.root_mask`, the one definition; the node tensor
    ``pathway.top_level`` written by the builder is the same mask). 29 on the default graph."""
    if PATHWAY_HIERARCHY not in graph.data.edge_types:
        return []
    ei = graph.data[PATHWAY_HIERARCHY].edge_index.numpy()
    return np.flatnonzero(root_mask(len(graph.node_ids["pathway"]), ei[0], ei[1])).tolist()


def membership_features(graph: KnowledgeGraph, *, exclude_pathways: list[int],
                        count_rows: np.ndarray, min_genes: int
                        ) -> tuple[sp.csr_matrix, list[str], dict[str, int]]:
    """Gene × feature 0/1 matrix of *direct* memberships: GO terms, pathways, TF regulators
    (the ridge baseline's features, :func:`membership_from_graph`).


    Columns of ``exclude_pathways`` (the function labels) are removed, and so are features with
    fewer than ``min_genes`` genes among ``count_rows`` (the training genes): a feature seen in
    one or two genes is a per-gene lookup that does not transfer to new genes.
    """
    feats = membership_from_graph(graph)
    names = list(feats.feature_ids)
    excluded = {graph.node_ids["pathway"][j] for j in exclude_pathways}
    x = feats.matrix.tocsr()
    n_per = np.asarray((x[count_rows] != 0).sum(axis=0)).ravel()
    keep = np.flatnonzero((n_per >= min_genes) & np.array([n not in excluded for n in names]))
    counts = {"features_total": int(x.shape[1]), "features_kept": int(len(keep))}
    return x[:, keep].tocsr(), [names[j] for j in keep], counts


# ---------------------------------------------------------------------------- gene-level
@dataclass(frozen=True)
class GeneLevelFeatures:
    """Dense per-gene features from annotation only (no expression).

    ``matrix``: float32 [n_genes, n_features], rows follow ``gene_ids`` (the graph's gene
    order), columns ``feature_names``. ``mean`` / ``std``: float32 [n_features] of the z-score
    that produced ``matrix`` (:meth:`standardized`), ``None`` for raw features.
    """

    matrix: np.ndarray
    gene_ids: tuple[str, ...]
    feature_names: tuple[str, ...]
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.matrix.shape != (len(self.gene_ids), len(self.feature_names)):
            raise ValueError(f"matrix shape {self.matrix.shape} does not match "
                             f"{len(self.gene_ids)} genes x {len(self.feature_names)} features")

    def standardized(self, rows: np.ndarray | None = None, *, mean: np.ndarray | None = None,
                     std: np.ndarray | None = None) -> "GeneLevelFeatures":
        """A new object with each column z-scored: ``(x - mean) / std``.

        ``mean`` / ``std`` [n_features] are computed over ``rows`` (e.g. the training genes;
        default all genes), or given -- e.g. a fitted object's ``.mean`` / ``.std`` to apply
        the same transform to other genes. A constant column (std 0) is only centred. The
        result keeps ``mean`` and ``std``; standardizing it again is an error.
        """
        if self.mean is not None:
            raise ValueError("features are already standardized; standardize the raw ones")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        x = self.matrix.astype(np.float64)
        if mean is None:
            fit = x if rows is None else x[rows]
            mean, std = fit.mean(axis=0), fit.std(axis=0)
        mean = np.asarray(mean, dtype=np.float32)
        std = np.asarray(std, dtype=np.float32)
        scale = np.where(std > 0, std, 1.0)
        z = ((x - mean) / scale).astype(np.float32)
        return GeneLevelFeatures(matrix=z, gene_ids=self.gene_ids,
                                 feature_names=self.feature_names, mean=mean, std=std)


def gene_level_features(kg: KnowledgeGraph, structure: pd.DataFrame | None = None, *,
                        exclude_pathways: Sequence[int] = ()) -> GeneLevelFeatures:
    """Per-gene features of the graph's genes (rows follow ``kg.node_ids["gene"]``).

    From ``structure`` (indexed by gene symbol with ``span_bp`` and ``n_exons``, as
    :func:`~genesplice.annotations.gene_structure.read_gene_structure` returns; columns left
    out when ``None``): ``log10_span_bp`` (log10 transcript genomic span), ``log1p_n_exons``
    and ``has_transcript`` (1/0); genes without a row get 0 in all three (counted in a log
    line). From the graph's direct edges (0 when an edge type is absent): ``is_tf`` (has
    outgoing gene-regulates-gene edges), ``log1p_n_targets``, ``log1p_n_go_terms``,
    ``log1p_n_pathways``, ``log1p_n_regulators`` (incoming regulates edges).
    ``exclude_pathways``: pathway rows not counted (e.g. the top-level pathways a model
    predicts as function labels, so the features say nothing of them).
    """
    genes = list(kg.node_ids["gene"])
    n = len(genes)
    degrees = {"n_targets": _degree(kg, GENE_REGULATION, 0, n),
               "n_go_terms": _degree(kg, GO_ANNOTATION, 0, n),
               "n_pathways": _degree(kg, PATHWAY_MEMBERSHIP, 0, n, exclude=exclude_pathways),
               "n_regulators": _degree(kg, GENE_REGULATION, 1, n)}
    return gene_level_rows(genes, degrees, structure)


def gene_level_rows(genes: Sequence[str], degrees: dict[str, np.ndarray],
                    structure: pd.DataFrame | None = None) -> GeneLevelFeatures:
    """The raw features of :func:`gene_level_features` for any genes, from their edge counts
    ``degrees`` (``n_targets``, ``n_go_terms``, ``n_pathways``, ``n_regulators``: ``[n]``
    each) and ``structure`` (matched by symbol) — also for a gene the graph lacks, e.g. a new
    gene given with its annotations."""
    genes = list(genes)
    n = len(genes)
    n_targets = np.asarray(degrees["n_targets"], dtype=np.float64)
    columns = [n_targets > 0, np.log1p(n_targets),
               *(np.log1p(np.asarray(degrees[k], dtype=np.float64))
                 for k in ("n_go_terms", "n_pathways", "n_regulators"))]
    names = list(GRAPH_FEATURES)
    if structure is not None:
        columns = [*_structure_columns(structure, genes), *columns]
        names = [*STRUCTURE_FEATURES, *names]
    matrix = np.stack(columns, axis=1).astype(np.float32) if n else np.zeros(
        (0, len(names)), dtype=np.float32)
    return GeneLevelFeatures(matrix=matrix, gene_ids=tuple(genes), feature_names=tuple(names))


def _degree(kg: KnowledgeGraph, edge_type: tuple[str, str, str], side: int, n: int, *,
            exclude: Sequence[int] = ()) -> np.ndarray:
    """Edges per gene [n] on ``side`` (0: source, 1: target) of ``edge_type`` (0 if absent),
    leaving out edges whose other end is one of the rows ``exclude``."""
    if edge_type not in kg.data.edge_types:
        return np.zeros(n, dtype=np.float64)
    ei = kg.data[edge_type].edge_index.numpy()
    ends = ei[side][~np.isin(ei[1 - side], np.asarray(exclude, dtype=np.int64))]
    return np.bincount(ends, minlength=n).astype(np.float64)


def _structure_columns(structure: pd.DataFrame, genes: list[str]) -> list[np.ndarray]:
    """log10 span, log1p exons and the has-transcript flag [n] per gene of ``genes``."""
    missing = [c for c in ("span_bp", "n_exons") if c not in structure.columns]
    if missing:
        raise GeneSpliceInputError(f"gene structure table lacks columns {missing} "
                                   "(expected span_bp, n_exons indexed by gene symbol)")
    if not structure.index.is_unique:
        raise GeneSpliceInputError("gene structure table repeats gene symbols in its index; "
                                   "expected one row per gene")
    rows = structure.index.get_indexer(genes)
    found = rows >= 0
    if (~found).any():
        log.info("gene-level features: %d of %d graph genes have no canonical transcript "
                 "(structure features 0, has_transcript 0)", int((~found).sum()), len(genes))
    span = np.zeros(len(genes))
    exons = np.zeros(len(genes))
    span[found] = structure["span_bp"].to_numpy(dtype=np.float64)[rows[found]]
    exons[found] = structure["n_exons"].to_numpy(dtype=np.float64)[rows[found]]
    log_span = np.where(found, np.log10(np.maximum(span, 1.0)), 0.0)
    return [log_span, np.log1p(exons), found.astype(np.float64)]
