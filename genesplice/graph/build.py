"""Recipe -> parsed sources -> filtered tables -> networkx (typed) -> ``HeteroData``.

:func:`build_graph` runs the stages with a tqdm bar (one step per stage). Term/pathway sizes
are counted after true-path propagation over the gene universe; terms below ``min_genes`` are
dropped and their genes re-attached to the nearest kept ancestors (see
:mod:`genesplice.graph.recipes` for why the default is 10). Everything dropped or unmapped is
counted in ``KnowledgeGraph.stats``.
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import torch

from genesplice.annotations.go import EVIDENCE_GROUPS, REGULATES_SIGN, read_gaf, read_go_obo
from genesplice.annotations.ids import GeneResolver
from genesplice.annotations.reactome import read_reactome_hierarchy, read_reactome_mapping
from genesplice.annotations.regulatory import merge_regulatory, read_dorothea, read_trrust
from genesplice.annotations.validate import ParseReport, paused_gc, read_table
from genesplice.io.errors import GeneSpliceInputError
from genesplice.annotations.ontology import Ancestors, expand, expand_rows, lift_rows, reduce_pairs
from genesplice.graph.hetero import GO_NAMESPACES, KnowledgeGraph, edge_key
from genesplice.graph.recipes import Recipe, load_recipe

GO_ANNOT = ("gene", "annotated_with", "go_term")
PATHWAY_MEMBER = ("gene", "member_of", "pathway")
GENE_REG = ("gene", "regulates", "gene")
GO_EVIDENCE_COLUMNS = ["direct", *EVIDENCE_GROUPS]
PATHWAY_EVIDENCE_COLUMNS = ["direct", "TAS", "IEA"]
EDGE_ATTRS: dict[tuple[str, str, str], list[str]] = {
    GO_ANNOT: GO_EVIDENCE_COLUMNS,
    ("go_term", "is_a", "go_term"): [],
    ("go_term", "part_of", "go_term"): [],
    ("go_term", "regulates", "go_term"): ["sign"],
    PATHWAY_MEMBER: PATHWAY_EVIDENCE_COLUMNS,
    ("pathway", "part_of", "pathway"): [],
    GENE_REG: ["sign", "confidence"],
}
STAGES = ("gene ids", "gene universe", "GO ontology", "GO annotations", "Reactome",
          "regulatory network", "filter terms", "networkx", "HeteroData")


class _Stages:
    """A tqdm bar with one step per stage, and per-stage timings."""

    def __init__(self, progress: bool):
        from tqdm.auto import tqdm

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
        from genesplice.annotations.validate import read_bytes
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
                       max_genes: int, propagate: bool, n_genes: int
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
    from genesplice.graph.recipes import default_recipe_path
    from genesplice.io.knowledge import sha256_file

    if recipe is None:
        recipe = default_recipe_path()
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    stage = _Stages(progress)
    stats: dict[str, Any] = {"skipped": {}, "unmapped": {}, "inputs_used": {}, "terms": {}}
    inputs: dict[str, Path] = {}
    t_start = time.perf_counter()

    with stage("gene ids"):
        inputs["gene id table"] = recipe.path(recipe.genes.id_table)
        umap = None
        if recipe.genes.uniprot_map:
            umap = inputs["uniprot map"] = recipe.path(recipe.genes.uniprot_map)
        resolver = GeneResolver.from_table(inputs["gene id table"], uniprot_map=umap,
                                           ambiguous=recipe.genes.ambiguous)
    with stage("gene universe"):
        universe = _read_universe(recipe, resolver, stats)
        if universe is not None:
            inputs["gene universe"] = recipe.path(recipe.genes.universe_file)
    uset = set(universe) if universe is not None else None

    go = ann = None
    cfg = recipe.go
    with stage("GO ontology"):
        if cfg.enabled:
            inputs["GO ontology"] = recipe.path(cfg.obo)
            go = read_go_obo(inputs["GO ontology"], relations=cfg.relations)
    with stage("GO annotations"):
        if cfg.enabled:
            inputs["GO annotations"] = recipe.path(cfg.gaf)
            ann, rep = read_gaf(inputs["GO annotations"], resolver=resolver, ontology=go,
                                exclude_not=cfg.exclude_not, evidence=cfg.evidence or None,
                                exclude_evidence=cfg.exclude_evidence or None,
                                namespaces=cfg.namespaces)
            _report_into(stats, "GO annotations", rep)
            ann = _restrict_to_universe(ann, ["gene"], uset, stats, "GO annotations")

    rx = hier = None
    rc = recipe.reactome
    with stage("Reactome"):
        if rc.enabled:
            inputs["Reactome mapping"] = recipe.path(rc.mapping)
            inputs["Reactome hierarchy"] = recipe.path(rc.hierarchy)
            inputs["Reactome names"] = recipe.path(rc.names)
            rx, rep = read_reactome_mapping(inputs["Reactome mapping"], resolver=resolver,
                                            species=rc.species)
            _report_into(stats, "Reactome mapping", rep)
            hier = read_reactome_hierarchy(inputs["Reactome hierarchy"],
                                           inputs["Reactome names"], species=rc.species)
            _report_into(stats, "Reactome hierarchy", hier.report)
            known = rx["pathway_id"].isin(hier.names.index)
            if (~known).any():
                stats["skipped"].setdefault("Reactome mapping", {})[
                    "pathway not in the names file"] = int((~known).sum())
            rx = _restrict_to_universe(rx[known], ["gene"], uset, stats, "Reactome mapping")

    reg = None
    rg = recipe.regulatory
    with stage("regulatory network"):
        if rg.enabled:
            tr = do = None
            if rg.use_trrust:
                inputs["TRRUST"] = recipe.path(rg.trrust)
                tr, rep = read_trrust(inputs["TRRUST"], resolver=resolver)
                _report_into(stats, "TRRUST", rep)
            if rg.use_dorothea:
                inputs["DoRothEA"] = recipe.path(rg.dorothea)
                do, rep = read_dorothea(inputs["DoRothEA"], resolver=resolver,
                                        max_confidence=rg.dorothea_max_confidence)
                _report_into(stats, "DoRothEA", rep)
            reg = merge_regulatory(tr, do, trrust_confidence=rg.trrust_confidence)
            reg = _restrict_to_universe(reg, ["tf", "target"], uset, stats,
                                        "regulatory network")

    with stage("filter terms"):
        if universe is None:  # "annotated": every gene with at least one edge
            parts = [x for x in (ann["gene"] if ann is not None else None,
                                 rx["gene"] if rx is not None else None,
                                 reg["tf"] if reg is not None else None,
                                 reg["target"] if reg is not None else None) if x is not None]
            universe = sorted(set(pd.concat(parts))) if parts else []
        gene_ids = universe
        gindex = {g: i for i, g in enumerate(gene_ids)}
        tables: dict[tuple[str, str, str], pd.DataFrame] = {}
        node_ids: dict[str, list[str]] = {"gene": gene_ids}
        node_names: dict[str, dict[str, str]] = {}
        node_tensors: dict[str, dict[str, torch.Tensor]] = {}

        if go is not None:
            anc = go.ancestors()
            gc = ann["gene"].map(gindex).to_numpy(dtype=np.int64)
            tc = anc.codes(ann["go_id"]).astype(np.int64)
            ev = ann["evidence"].map(
                {c: g for g, cs in EVIDENCE_GROUPS.items() for c in cs}).to_numpy()
            flags = {g: ev == g for g in EVIDENCE_GROUPS}
            ns = go.terms["namespace"].reindex(anc.nodes).to_numpy()
            allowed = np.isin(ns, list(cfg.namespaces))
            g_, t_, fl, kept, info = _filter_and_attach(
                anc, gc, tc, flags, allowed, cfg.min_genes, cfg.max_genes, cfg.propagate,
                len(gene_ids))
            stats["terms"]["go"] = info
            kept_ids = [anc.nodes[i] for i in np.flatnonzero(kept)]  # GO ids sort as strings
            kept_ids.sort()
            tidx = {t: i for i, t in enumerate(kept_ids)}
            node_ids["go_term"] = kept_ids
            sub_terms = go.terms.loc[kept_ids]
            node_names["go_term"] = dict(zip(kept_ids, sub_terms["name"].tolist()))
            node_tensors["go_term"] = {"namespace": torch.tensor(
                sub_terms["namespace"].map({n: i for i, n in enumerate(GO_NAMESPACES)})
                .to_numpy(np.int64))}
            tables[GO_ANNOT] = _gene_edge_table(gene_ids, anc.nodes, g_, t_, fl,
                                                GO_EVIDENCE_COLUMNS)
            e = go.edges[go.edges["child"].isin(tidx) & go.edges["parent"].isin(tidx)]
            stats["terms"]["go"]["relations_dropped_with_terms"] = int(len(go.edges) - len(e))
            for rel in ("is_a", "part_of"):
                sub = e[e["relation"] == rel]
                tables[("go_term", rel, "go_term")] = pd.DataFrame(
                    {"src": sub["child"].to_numpy(), "dst": sub["parent"].to_numpy()})
            sub = e[e["relation"].isin(list(REGULATES_SIGN))]
            tables[("go_term", "regulates", "go_term")] = pd.DataFrame(
                {"src": sub["child"].to_numpy(), "dst": sub["parent"].to_numpy(),
                 "sign": sub["relation"].map(REGULATES_SIGN).to_numpy(np.float32)})

        if rx is not None:
            panc = hier.ancestors()
            gc = rx["gene"].map(gindex).to_numpy(dtype=np.int64)
            pc = panc.codes(rx["pathway_id"]).astype(np.int64)
            evs = rx["evidence"].fillna("")
            flags = {"TAS": evs.str.contains("TAS").to_numpy(),
                     "IEA": evs.str.contains("IEA").to_numpy()}
            allowed = np.ones(len(panc.nodes), dtype=bool)
            g_, p_, fl, kept, info = _filter_and_attach(
                panc, gc, pc, flags, allowed, rc.min_genes, rc.max_genes, rc.propagate,
                len(gene_ids))
            stats["terms"]["reactome"] = info
            kept_ids = sorted(panc.nodes[i] for i in np.flatnonzero(kept))
            pidx = {p: i for i, p in enumerate(kept_ids)}
            node_ids["pathway"] = kept_ids
            node_names["pathway"] = dict(zip(kept_ids, hier.names.loc[kept_ids].tolist()))
            roots = set(hier.roots)
            node_tensors["pathway"] = {"top_level": torch.tensor(
                [p in roots for p in kept_ids], dtype=torch.bool)}
            tables[PATHWAY_MEMBER] = _gene_edge_table(gene_ids, panc.nodes, g_, p_, fl,
                                                      PATHWAY_EVIDENCE_COLUMNS)
            h = hier.edges[hier.edges["child"].isin(pidx) & hier.edges["parent"].isin(pidx)]
            tables[("pathway", "part_of", "pathway")] = pd.DataFrame(
                {"src": h["child"].to_numpy(), "dst": h["parent"].to_numpy()})

        if reg is not None:
            tables[GENE_REG] = pd.DataFrame({
                "src": reg["tf"].to_numpy(), "dst": reg["target"].to_numpy(),
                "sign": reg["sign"].to_numpy(np.float32),
                "confidence": reg["confidence"].to_numpy(np.float32),
                "sources": reg["sources"].to_numpy(), "pmids": reg["pmids"].to_numpy()})

    with stage("networkx"):
        g = assemble_networkx(node_ids, node_names, tables)
    with stage("HeteroData"):
        data, attr_names = networkx_to_hetero(g, node_ids, node_tensors,
                                              reverse=recipe.graph.reverse_edges)

    # genes without annotation
    deg = np.zeros(len(gene_ids), dtype=np.int64)
    gstats = {"universe": len(gene_ids), "universe_source": recipe.genes.universe}
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
    stats["genes"] = gstats
    stats["seconds"] = dict(stage.seconds, total=round(time.perf_counter() - t_start, 3))
    stage.close()
    kg = KnowledgeGraph(
        data=data, node_ids=node_ids, node_names=node_names, edge_attr_names=attr_names,
        recipe=recipe.to_dict(),
        inputs={k: {"path": str(Path(p).resolve()), "sha256": sha256_file(p)}
                for k, p in inputs.items()},
        stats=stats, nx_graph=g)
    return kg.validate()


def assemble_networkx(node_ids: dict[str, list[str]], node_names: dict[str, dict[str, str]],
                      tables: dict[tuple[str, str, str], pd.DataFrame]) -> nx.MultiDiGraph:
    """Typed MultiDiGraph. Nodes are the ids themselves (symbols, ``GO:...``, ``R-HSA-...``;
    the id spaces must be disjoint) with attributes ``type`` and ``name``; edges are keyed by
    relation and carry ``relation`` plus every table column as attributes."""
    g = nx.MultiDiGraph()
    seen: dict[str, str] = {}
    for t, ids in node_ids.items():
        clash = [i for i in ids if i in seen]
        if clash:
            raise GeneSpliceInputError(
                f"id {clash[0]!r} is both a {seen[clash[0]]} and a {t}; node ids must differ")
        seen.update(dict.fromkeys(ids, t))
        names = node_names.get(t, {})
        g.add_nodes_from((i, {"type": t, "name": names.get(i, i)}) for i in ids)
    for (s, rel, d), df in tables.items():
        cols = [c for c in df.columns if c not in ("src", "dst")]
        if cols:
            recs = [dict(zip(cols, vals), relation=rel)
                    for vals in zip(*(df[c].tolist() for c in cols))]
        else:
            recs = [{"relation": rel} for _ in range(len(df))]
        g.add_edges_from(zip(df["src"].tolist(), df["dst"].tolist(), [rel] * len(df), recs))
    return g


def networkx_to_hetero(g: nx.MultiDiGraph, node_ids: dict[str, list[str]],
                       node_tensors: dict[str, dict[str, torch.Tensor]] | None = None, *,
                       reverse: bool = True):
    """Typed networkx graph -> (``HeteroData``, edge_attr column names per edge key).

    Edges are grouped by (src type, relation, dst type), sorted by (src, dst) index, their
    numeric attributes listed in :data:`EDGE_ATTRS` stacked into float32 ``edge_attr``.
    """
    from operator import itemgetter

    from torch_geometric.data import HeteroData

    index = {n: i for ids in node_ids.values() for i, n in enumerate(ids)}
    ntype = {n: t for t, ids in node_ids.items() for n in ids}
    buckets: dict[tuple[str, str, str], tuple[list, list, list]] = {}
    getters: dict[tuple[str, str, str], Any] = {}
    for u, nbrs in g.adjacency():  # plain dict-of-dicts walk: no per-edge view objects
        tu, iu = ntype[u], index[u]
        for v, keyed in nbrs.items():
            tv, iv = ntype[v], index[v]
            for rel, attr in keyed.items():
                et = (tu, rel, tv)
                b = buckets.get(et)
                if b is None:
                    b = buckets[et] = ([], [], [])
                    names = EDGE_ATTRS.get(et, ())
                    getters[et] = (itemgetter(*names) if len(names) > 1 else
                                   (lambda a, n=names[0]: (a[n],)) if names else None)
                b[0].append(iu)
                b[1].append(iv)
                get = getters[et]
                if get is not None:
                    b[2].append(get(attr))
    data = HeteroData()
    for t, ids in node_ids.items():
        data[t].num_nodes = len(ids)
        for k, v in (node_tensors or {}).get(t, {}).items():
            data[t][k] = v
    attr_names: dict[str, list[str]] = {}
    for et in sorted(buckets):
        src, dst, attrs = buckets[et]
        s_arr, d_arr = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
        order = np.lexsort((d_arr, s_arr))
        ei = torch.from_numpy(np.stack([s_arr[order], d_arr[order]]))
        data[et].edge_index = ei
        names = EDGE_ATTRS.get(et, [])
        ea = None
        if names:
            ea = torch.from_numpy(np.asarray(attrs, dtype=np.float32).reshape(-1, len(names))[order])
            data[et].edge_attr = ea
            attr_names[edge_key(et)] = list(names)
        if reverse:
            ret = (et[2], f"rev_{et[1]}", et[0])
            data[ret].edge_index = ei.flip(0).contiguous()
            if ea is not None:
                data[ret].edge_attr = ea.clone()
                attr_names[edge_key(ret)] = list(names)
    return data, attr_names
