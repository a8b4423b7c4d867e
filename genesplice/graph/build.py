"""Recipe -> parsed sources -> filtered tables -> networkx (typed) -> ``HeteroData``.

:func:`build_graph` runs one step per source, each a stage of a tqdm bar (:data:`STAGES`):
the gene-id resolver, the gene universe, the GO ontology and annotations, Reactome, the
regulatory networks; then "filter terms" turns each source into node ids and edge tables
(:func:`_go_part`, :func:`_reactome_part`, :func:`_regulatory_part`) and
:mod:`genesplice.graph.assemble` makes the networkx graph and the ``HeteroData``.

Term/pathway sizes are counted after true-path propagation over the gene universe; terms below
``min_genes`` are dropped and their genes re-attached to the nearest kept ancestors (see
:mod:`genesplice.graph.recipes` for why the default is 10). Everything dropped or unmapped is
counted in ``KnowledgeGraph.stats``.
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from genesplice.annotations.go import (EVIDENCE_GROUPS, GO_NAMESPACES, REGULATES_SIGN,
                                       GeneOntology, read_gaf, read_go_obo)
from genesplice.annotations.ids import GeneResolver
from genesplice.annotations.ontology import (Ancestors, expand, expand_rows, lift_rows,
                                             reduce_pairs, root_mask)
from genesplice.annotations.reactome import (ReactomeHierarchy, read_reactome_hierarchy,
                                             read_reactome_mapping)
from genesplice.annotations.regulatory import merge_regulatory, read_dorothea, read_trrust
from genesplice.annotations.report import ParseReport
from genesplice.graph.assemble import (EDGE_ATTRS, GENE_REG, GO_ANNOT, GO_EVIDENCE_COLUMNS,
                                       PATHWAY_EVIDENCE_COLUMNS, PATHWAY_MEMBER,
                                       assemble_networkx, networkx_to_hetero)
from genesplice.graph.hetero import KnowledgeGraph
from genesplice.graph.recipes import Recipe, default_recipe_path, load_recipe
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import sha256_file
from genesplice.io.pause_gc import paused_gc
from genesplice.io.tables import read_bytes, read_table

__all__ = ["EDGE_ATTRS", "STAGES", "assemble_networkx", "build_graph", "networkx_to_hetero"]
STAGES = ("gene ids", "gene universe", "GO ontology", "GO annotations", "Reactome",
          "regulatory network", "filter terms", "networkx", "HeteroData")


class _Stages:
    """A tqdm bar with one step per stage, and per-stage timings."""

    def __init__(self, progress: bool):
        self.bar = tqdm(total=len(STAGES), desc="build-graph", unit="stage",
                        disable=not progress, file=sys.stderr, leave=True)
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        self.bar.set_description(f"build-graph: {name}")
        t0 = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - t0, 3)
        self.bar.update(1)

    def close(self):
        self.bar.set_description("build-graph: done")
        self.bar.close()


@dataclass
class _Build:
    """What the steps share: the recipe, the stats they fill and the input files they read."""
    recipe: Recipe
    stats: dict[str, Any] = field(default_factory=lambda: {
        "skipped": {}, "unmapped": {}, "inputs_used": {}, "terms": {}})
    inputs: dict[str, Path] = field(default_factory=dict)

    def input(self, label: str, value: str) -> Path:
        """The recipe path ``value``, recorded as input ``label`` (hashed into the graph)."""
        self.inputs[label] = path = self.recipe.path(value)
        return path


@dataclass
class _Parts:
    """Node ids, names, node tensors and edge tables of the graph being built."""
    gene_ids: list[str]
    node_ids: dict[str, list[str]] = field(default_factory=dict)
    node_names: dict[str, dict[str, str]] = field(default_factory=dict)
    node_tensors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    tables: dict[tuple[str, str, str], pd.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.node_ids["gene"] = self.gene_ids
        self.gene_index = {g: i for i, g in enumerate(self.gene_ids)}


def build_graph(recipe: Recipe | str | os.PathLike | None = None, *,
                progress: bool = True) -> KnowledgeGraph:
    """Build the knowledge graph described by ``recipe`` (a :class:`Recipe` or a TOML path;
    default ``graphs/human_default.toml``).

    Python's cyclic garbage collector is paused during the build: networkx allocates a few
    million small dicts, which otherwise trigger repeated full collections (2-3x slower)
    while nothing here creates reference cycles worth collecting.
    """
    with paused_gc():
        return _build_graph(recipe, progress=progress)


def _build_graph(recipe: Recipe | str | os.PathLike | None, *, progress: bool) -> KnowledgeGraph:
    if recipe is None:
        recipe = default_recipe_path()
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    stage = _Stages(progress)
    b = _Build(recipe)
    t_start = time.perf_counter()
    with stage("gene ids"):
        resolver = _gene_resolver(b)
    with stage("gene universe"):
        universe = _read_universe(recipe, resolver, b.stats)
        if universe is not None:
            b.input("gene universe", recipe.genes.universe_file)
    uset = set(universe) if universe is not None else None
    with stage("GO ontology"):
        go = read_go_obo(b.input("GO ontology", recipe.go.obo),
                         relations=recipe.go.relations) if recipe.go.enabled else None
    with stage("GO annotations"):
        ann = _go_annotations(b, go, resolver, uset) if recipe.go.enabled else None
    with stage("Reactome"):
        rx, hier = _reactome(b, resolver, uset) if recipe.reactome.enabled else (None, None)
    with stage("regulatory network"):
        reg = _regulatory(b, resolver, uset) if recipe.regulatory.enabled else None
    with stage("filter terms"):
        parts = _Parts(universe if universe is not None else _annotated_genes(ann, rx, reg))
        if go is not None:
            _go_part(parts, go, ann, recipe, b.stats)
        if rx is not None:
            _reactome_part(parts, hier, rx, recipe, b.stats)
        if reg is not None:
            _regulatory_part(parts, reg)
    with stage("networkx"):
        g = assemble_networkx(parts.node_ids, parts.node_names, parts.tables)
    with stage("HeteroData"):
        data, attr_names = networkx_to_hetero(g, parts.node_ids, parts.node_tensors,
                                              reverse=recipe.graph.reverse_edges)
    b.stats["genes"] = _gene_stats(data, parts.gene_ids, recipe)
    b.stats["seconds"] = dict(stage.seconds, total=round(time.perf_counter() - t_start, 3))
    stage.close()
    kg = KnowledgeGraph(
        data=data, node_ids=parts.node_ids, node_names=parts.node_names,
        edge_attr_names=attr_names, recipe=recipe.to_dict(),
        inputs={k: {"path": str(Path(p).resolve()), "sha256": sha256_file(p)}
                for k, p in b.inputs.items()},
        stats=b.stats, nx_graph=g)
    return kg.validate()


# ---------------------------------------------------------------------------- reading steps
def _gene_resolver(b: _Build) -> GeneResolver:
    """Stage "gene ids": the one resolver every source goes through."""
    genes = b.recipe.genes
    table = b.input("gene id table", genes.id_table)
    umap = b.input("uniprot map", genes.uniprot_map) if genes.uniprot_map else None
    return GeneResolver.from_table(table, uniprot_map=umap, ambiguous=genes.ambiguous)


def _go_annotations(b: _Build, go: GeneOntology, resolver: GeneResolver,
                    uset: set[str] | None) -> pd.DataFrame:
    """Stage "GO annotations": the GAF, filtered as the recipe says, inside the universe."""
    cfg = b.recipe.go
    ann, rep = read_gaf(b.input("GO annotations", cfg.gaf), resolver=resolver, ontology=go,
                        exclude_not=cfg.exclude_not, evidence=cfg.evidence or None,
                        exclude_evidence=cfg.exclude_evidence or None,
                        namespaces=cfg.namespaces)
    _report_into(b.stats, "GO annotations", rep)
    return _restrict_to_universe(ann, ["gene"], uset, b.stats, "GO annotations")


def _reactome(b: _Build, resolver: GeneResolver, uset: set[str] | None
              ) -> tuple[pd.DataFrame, ReactomeHierarchy]:
    """Stage "Reactome": gene -> pathway rows (named pathways only) and the hierarchy."""
    rc, stats = b.recipe.reactome, b.stats
    mapping = b.input("Reactome mapping", rc.mapping)
    relation = b.input("Reactome hierarchy", rc.hierarchy)
    names = b.input("Reactome names", rc.names)
    rx, rep = read_reactome_mapping(mapping, resolver=resolver, species=rc.species)
    _report_into(stats, "Reactome mapping", rep)
    hier = read_reactome_hierarchy(relation, names, species=rc.species)
    _report_into(stats, "Reactome hierarchy", hier.report)
    known = rx["pathway_id"].isin(hier.names.index)
    if (~known).any():
        stats["skipped"].setdefault("Reactome mapping", {})[
            "pathway not in the names file"] = int((~known).sum())
    return _restrict_to_universe(rx[known], ["gene"], uset, stats, "Reactome mapping"), hier


def _regulatory(b: _Build, resolver: GeneResolver, uset: set[str] | None) -> pd.DataFrame:
    """Stage "regulatory network": TRRUST and/or DoRothEA merged into one TF -> target table."""
    rg = b.recipe.regulatory
    tr = do = None
    if rg.use_trrust:
        tr, rep = read_trrust(b.input("TRRUST", rg.trrust), resolver=resolver)
        _report_into(b.stats, "TRRUST", rep)
    if rg.use_dorothea:
        do, rep = read_dorothea(b.input("DoRothEA", rg.dorothea), resolver=resolver,
                                max_confidence=rg.dorothea_max_confidence)
        _report_into(b.stats, "DoRothEA", rep)
    reg = merge_regulatory(tr, do, trrust_confidence=rg.trrust_confidence)
    return _restrict_to_universe(reg, ["tf", "target"], uset, b.stats, "regulatory network")


# ---------------------------------------------------------------------------- filter terms
def _annotated_genes(ann: pd.DataFrame | None, rx: pd.DataFrame | None,
                     reg: pd.DataFrame | None) -> list[str]:
    """Universe "annotated": every gene with at least one edge, sorted."""
    parts = [x for x in (ann["gene"] if ann is not None else None,
                         rx["gene"] if rx is not None else None,
                         reg["tf"] if reg is not None else None,
                         reg["target"] if reg is not None else None) if x is not None]
    return sorted(set(pd.concat(parts))) if parts else []


def _go_part(parts: _Parts, go: GeneOntology, ann: pd.DataFrame, recipe: Recipe,
             stats: dict) -> None:
    """GO terms kept by size (after propagation), gene -> term edges and term -> term
    relations among the kept terms."""
    cfg = recipe.go
    anc = go.ancestors()
    gc = ann["gene"].map(parts.gene_index).to_numpy(dtype=np.int64)
    tc = anc.codes(ann["go_id"]).astype(np.int64)
    ev = ann["evidence"].map({c: g for g, cs in EVIDENCE_GROUPS.items() for c in cs}).to_numpy()
    flags = {g: ev == g for g in EVIDENCE_GROUPS}
    ns = go.terms["namespace"].reindex(anc.nodes).to_numpy()
    allowed = np.isin(ns, list(cfg.namespaces))
    g_, t_, fl, kept, info = _filter_and_attach(anc, gc, tc, flags, allowed, cfg.min_genes,
                                                cfg.max_genes, cfg.propagate)
    stats["terms"]["go"] = info
    kept_ids = [anc.nodes[i] for i in np.flatnonzero(kept)]  # GO ids sort as strings
    kept_ids.sort()
    tidx = {t: i for i, t in enumerate(kept_ids)}
    parts.node_ids["go_term"] = kept_ids
    sub_terms = go.terms.loc[kept_ids]
    parts.node_names["go_term"] = dict(zip(kept_ids, sub_terms["name"].tolist()))
    parts.node_tensors["go_term"] = {"namespace": torch.tensor(
        sub_terms["namespace"].map({n: i for i, n in enumerate(GO_NAMESPACES)})
        .to_numpy(np.int64))}
    parts.tables[GO_ANNOT] = _gene_edge_table(parts.gene_ids, anc.nodes, g_, t_, fl,
                                              GO_EVIDENCE_COLUMNS)
    e = go.edges[go.edges["child"].isin(tidx) & go.edges["parent"].isin(tidx)]
    info["relations_dropped_with_terms"] = int(len(go.edges) - len(e))
    for rel in ("is_a", "part_of"):
        sub = e[e["relation"] == rel]
        parts.tables[("go_term", rel, "go_term")] = pd.DataFrame(
            {"src": sub["child"].to_numpy(), "dst": sub["parent"].to_numpy()})
    sub = e[e["relation"].isin(list(REGULATES_SIGN))]
    parts.tables[("go_term", "regulates", "go_term")] = pd.DataFrame(
        {"src": sub["child"].to_numpy(), "dst": sub["parent"].to_numpy(),
         "sign": sub["relation"].map(REGULATES_SIGN).to_numpy(np.float32)})


def _reactome_part(parts: _Parts, hier: ReactomeHierarchy, rx: pd.DataFrame, recipe: Recipe,
                   stats: dict) -> None:
    """Pathways kept by size, gene -> pathway edges, the part_of hierarchy among the kept
    pathways and the ``top_level`` node mask (its roots)."""
    rc = recipe.reactome
    panc = hier.ancestors()
    gc = rx["gene"].map(parts.gene_index).to_numpy(dtype=np.int64)
    pc = panc.codes(rx["pathway_id"]).astype(np.int64)
    evs = rx["evidence"].fillna("")
    flags = {"TAS": evs.str.contains("TAS").to_numpy(),
             "IEA": evs.str.contains("IEA").to_numpy()}
    allowed = np.ones(len(panc.nodes), dtype=bool)
    g_, p_, fl, kept, info = _filter_and_attach(panc, gc, pc, flags, allowed, rc.min_genes,
                                                rc.max_genes, rc.propagate)
    stats["terms"]["reactome"] = info
    kept_ids = sorted(panc.nodes[i] for i in np.flatnonzero(kept))
    pidx = {p: i for i, p in enumerate(kept_ids)}
    parts.node_ids["pathway"] = kept_ids
    parts.node_names["pathway"] = dict(zip(kept_ids, hier.names.loc[kept_ids].tolist()))
    parts.tables[PATHWAY_MEMBER] = _gene_edge_table(parts.gene_ids, panc.nodes, g_, p_, fl,
                                                    PATHWAY_EVIDENCE_COLUMNS)
    h = hier.edges[hier.edges["child"].isin(pidx) & hier.edges["parent"].isin(pidx)]
    parts.tables[("pathway", "part_of", "pathway")] = pd.DataFrame(
        {"src": h["child"].to_numpy(), "dst": h["parent"].to_numpy()})
    top = root_mask(len(kept_ids), h["child"].map(pidx).to_numpy(),
                         h["parent"].map(pidx).to_numpy())
    parts.node_tensors["pathway"] = {"top_level": torch.from_numpy(top)}


def _regulatory_part(parts: _Parts, reg: pd.DataFrame) -> None:
    """TF -> target edges with sign and confidence (sources and PMIDs kept in networkx)."""
    parts.tables[GENE_REG] = pd.DataFrame({
        "src": reg["tf"].to_numpy(), "dst": reg["target"].to_numpy(),
        "sign": reg["sign"].to_numpy(np.float32),
        "confidence": reg["confidence"].to_numpy(np.float32),
        "sources": reg["sources"].to_numpy(), "pmids": reg["pmids"].to_numpy()})


def _gene_stats(data, gene_ids: list[str], recipe: Recipe) -> dict[str, Any]:
    """Universe size and the genes without GO / pathway / regulatory edges."""
    deg = np.zeros(len(gene_ids), dtype=np.int64)
    gstats: dict[str, Any] = {"universe": len(gene_ids),
                              "universe_source": recipe.genes.universe}
    for et, key in ((GO_ANNOT, "without_go"), (PATHWAY_MEMBER, "without_pathway"),
                    (GENE_REG, "without_regulation")):
        if et in data.edge_types:
            has = np.zeros(len(gene_ids), dtype=bool)
            ei = data[et].edge_index.numpy()
            has[ei[0]] = True
            if et == GENE_REG:
                has[ei[1]] = True
            deg += has
            gstats[key] = int((~has).sum())
    gstats["without_any"] = int((deg == 0).sum())
    return gstats


# ---------------------------------------------------------------------------- helpers
def _report_into(stats: dict, label: str, rep: ParseReport) -> None:
    if rep.skipped:
        stats["skipped"][label] = dict(rep.skipped)
    if rep.n_unmapped:
        stats["unmapped"][label] = {"n": rep.n_unmapped, "examples": rep.unmapped_examples[:10]}


def _read_universe(recipe: Recipe, resolver: GeneResolver, stats: dict) -> list[str] | None:
    g = recipe.genes
    if g.universe == "annotated":
        return None
    path = recipe.path(g.universe_file)
    rep = ParseReport(source=str(path))
    if g.universe == "expression" or g.universe_column:
        head = read_bytes(path).split(b"\n", 1)[0].decode("utf-8", "replace").split("\t")
        has_header = g.universe_column in head
    else:
        has_header = False
    if has_header:
        cols = [g.universe_column] + (["ensembl_id"] if "ensembl_id" in head else [])
        df = read_table(path, columns=cols, required=(g.universe_column,))
        ids = df[g.universe_column]
    elif g.universe == "file":
        df = read_table(path, header=False, min_columns=1)
        ids = df[0]
    else:
        raise GeneSpliceInputError(
            f"expected a header with column {g.universe_column!r} (genes.universe_column)",
            path=path, line=1)
    rep.rows_read = len(ids)
    sym = resolver.resolve_series(ids)
    if has_header and "ensembl_id" in df.columns and sym.isna().any():
        miss = sym.isna()
        sym = sym.copy()
        sym[miss] = resolver.resolve_series(df.loc[miss, "ensembl_id"])
    miss = sym.isna()
    rep.skip("gene id not mapped", int(miss.sum()))
    rep.add_unmapped(list(pd.unique(ids[miss])))
    rep.n_unmapped = int(ids[miss].nunique())
    universe = sorted(set(sym.dropna()))
    rep.skip("duplicate symbol after mapping", int((~miss).sum()) - len(universe))
    rep.rows_kept = len(universe)
    _report_into(stats, "gene universe", rep)
    stats["inputs_used"]["gene universe"] = str(path)
    return universe


def _restrict_to_universe(df: pd.DataFrame, cols: list[str], universe: set[str] | None,
                          rep_stats: dict, label: str) -> pd.DataFrame:
    if universe is None:
        return df
    m = np.ones(len(df), dtype=bool)
    for c in cols:
        m &= df[c].isin(universe).to_numpy()
    if (~m).sum():
        rep_stats["skipped"].setdefault(label, {})["gene outside the gene universe"] = \
            int((~m).sum())
    return df[m]


def _filter_and_attach(anc: Ancestors, gene_codes: np.ndarray, term_codes: np.ndarray,
                       flags: dict[str, np.ndarray], allowed: np.ndarray, min_genes: int,
                       max_genes: int, propagate: bool
                       ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray,
                                  dict[str, int]]:
    """Sizes after propagation -> kept terms -> (gene, term) edges with OR-ed flags."""
    n_terms = len(anc.nodes)
    _, t_all, _ = expand(anc, gene_codes, term_codes)
    sizes = np.bincount(t_all, minlength=n_terms)
    kept = allowed & (sizes >= max(min_genes, 1))
    if max_genes:
        kept &= sizes <= max_genes
    info = {"annotated_terms": int((sizes > 0).sum()),
            "below_min_genes": int((allowed & (sizes > 0) & (sizes < min_genes)).sum()),
            "above_max_genes": int((allowed & (sizes > max_genes)).sum()) if max_genes else 0}
    if propagate:
        rows, t, is_self = expand_rows(anc, term_codes)
        keep = kept[t]
        rows, t, is_self = rows[keep], t[keep], is_self[keep]
        lost = np.ones(len(term_codes), dtype=bool)
        lost[rows] = False
    else:
        rows, t, lost = lift_rows(anc, term_codes, kept)
        is_self = t == term_codes[rows]
    fl = {k: v[rows] for k, v in flags.items()}
    fl["direct"] = is_self
    g, t, fl = reduce_pairs(gene_codes[rows], t, n_terms, fl)
    info["annotations_without_kept_term"] = int(lost.sum())
    return g, t, fl, kept, info


def _gene_edge_table(gene_ids, term_nodes, gene_codes, term_codes, flags, columns
                     ) -> pd.DataFrame:
    """gene → term/pathway edges as ids (``src``, ``dst``) plus float32 evidence columns."""
    df = pd.DataFrame({"src": np.asarray(gene_ids, dtype=object)[gene_codes],
                       "dst": np.asarray(term_nodes, dtype=object)[term_codes]})
    for c in columns:
        df[c] = flags[c].astype(np.float32)
    return df
