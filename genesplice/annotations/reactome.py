"""Reactome: gene->pathway membership (UniProt mapping), pathway hierarchy and names; GMT.

Bundled files (Reactome 2025-01, R-HSA rows only):

- ``reactome_uniprot2reactome_human.tsv.gz``: UniProt accession, pathway id, URL, name,
  evidence, species (no header). Accessions are isoform-stripped and resolved to official
  symbols with the one :class:`~genesplice.annotations.ids.GeneResolver`; unmapped accessions
  are counted and reported.
- ``reactome_pathways_relation_human.tsv.gz``: parent, child (no header). A DAG whose roots are
  the top-level pathways (29 in this release, e.g. "Signal Transduction").
- ``reactome_pathways_human.tsv.gz``: pathway id, name, species (no header).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from genesplice.annotations.ids import GeneResolver, default_resolver, strip_isoform
from genesplice.annotations.ontology import Ancestors, build_ancestors, root_mask
from genesplice.annotations.report import ParseReport
from genesplice.io.constants import (REACTOME_GMT, REACTOME_MAPPING, REACTOME_NAMES,
                                     REACTOME_RELATION)
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.io.tables import read_table
from genesplice.io.text import open_text

MAPPING_COLUMNS = ("uniprot_id", "pathway_id", "url", "pathway_name", "evidence", "species")


def reactome_resolver() -> GeneResolver:
    """The default resolver (it includes the bundled GAF-derived UniProt->symbol fallback)."""
    return default_resolver()


def read_reactome_mapping(path: str | os.PathLike | None = None, *,
                          resolver: GeneResolver | None | bool = None,
                          species: str | None = "Homo sapiens",
                          evidence: tuple[str, ...] | None = None
                          ) -> tuple[pd.DataFrame, ParseReport]:
    """UniProt2Reactome -> unique (gene, pathway_id) rows (+ evidence), and a report.

    ``resolver=False`` keeps the (isoform-stripped) UniProt accessions as ``gene``.
    """
    path = Path(path) if path is not None else knowledge_path(REACTOME_MAPPING)
    report = ParseReport(source=str(path))
    df = read_table(path, header=False, names=MAPPING_COLUMNS,
                    required=("uniprot_id", "pathway_id"))
    report.rows_read = len(df)
    if species is not None:
        m = df["species"] == species
        report.skip(f"species is not {species}", int((~m).sum()))
        df = df[m]
    if evidence is not None:
        m = df["evidence"].isin(evidence)
        report.skip("evidence not selected", int((~m).sum()))
        df = df[m]
    acc = df["uniprot_id"].map(strip_isoform)
    report.notes["isoform_ids"] = int((acc != df["uniprot_id"]).sum())
    if resolver is False:
        gene = acc
    else:
        gene = (resolver or reactome_resolver()).resolve_series(acc)
    miss = gene.isna()
    report.skip("UniProt id not mapped", int(miss.sum()))
    report.add_unmapped(list(pd.unique(acc[miss])))
    report.n_unmapped = int(acc[miss].nunique())
    df = df.assign(gene=gene)[~miss]
    d = (df[["gene", "pathway_id", "evidence"]].fillna({"evidence": ""}).drop_duplicates()
           .sort_values(["gene", "pathway_id", "evidence"]))
    out = d.groupby(["gene", "pathway_id"], sort=False)["evidence"].agg("|".join).reset_index()
    report.skip("duplicate (gene, pathway) after mapping", len(df) - len(out))
    report.rows_kept = len(out)
    return out, report.log()


@dataclass
class ReactomeHierarchy:
    """Pathway names and the parent->child hierarchy (a DAG)."""
    names: pd.Series                 # index pathway_id -> name
    edges: pd.DataFrame              # child, parent
    report: ParseReport = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.names.index)
        g.add_edges_from(zip(self.edges["child"], self.edges["parent"]))
        return g

    @property
    def roots(self) -> list[str]:
        """Top-level pathways: roots of the hierarchy (:func:`~genesplice.annotations.ontology.
        root_mask`: sub-pathways, no parent), sorted."""
        nodes = list(self.names.index)
        index = {p: i for i, p in enumerate(nodes)}
        mask = root_mask(len(nodes), self.edges["child"].map(index).to_numpy(),
                         self.edges["parent"].map(index).to_numpy())
        return sorted(nodes[i] for i in np.flatnonzero(mask))

    def ancestors(self) -> Ancestors:
        return build_ancestors(list(self.names.index), self.edges["child"].to_numpy(),
                               self.edges["parent"].to_numpy(), what="Reactome hierarchy")


def read_reactome_hierarchy(relation_path: str | os.PathLike | None = None,
                            names_path: str | os.PathLike | None = None, *,
                            species: str | None = "Homo sapiens",
                            id_prefix: str | None = "R-HSA-") -> ReactomeHierarchy:
    """Pathway names + hierarchy; a cycle raises :class:`GeneSpliceInputError`."""
    relation_path = Path(relation_path) if relation_path is not None else knowledge_path(REACTOME_RELATION)
    names_path = Path(names_path) if names_path is not None else knowledge_path(REACTOME_NAMES)
    names = read_reactome_names(names_path, species=species)
    report = ParseReport(source=str(relation_path))
    rel = read_reactome_relations(relation_path)
    report.rows_read = len(rel)
    if id_prefix is not None:
        m = rel["parent"].str.startswith(id_prefix) & rel["child"].str.startswith(id_prefix)
        report.skip(f"not {id_prefix} ids", int((~m).sum()))
        rel = rel[m]
    known = rel["parent"].isin(names.index) & rel["child"].isin(names.index)
    report.skip("pathway without a name", int((~known).sum()))
    rel = rel[known].drop_duplicates()
    edges = rel.rename(columns={"parent": "parent", "child": "child"})[["child", "parent"]]
    edges = edges.reset_index(drop=True)
    report.rows_kept = len(edges)
    h = ReactomeHierarchy(names=names, edges=edges, report=report)
    g = h.graph
    if not nx.is_directed_acyclic_graph(g):
        cyc = " -> ".join(a for a, _ in nx.find_cycle(g))
        raise GeneSpliceInputError(f"pathway hierarchy has a cycle: {cyc}", path=relation_path)
    return h


def read_reactome_names(path: str | os.PathLike, *, species: str | None = "Homo sapiens"
                        ) -> pd.Series:
    """ReactomePathways.txt (``pathway_id, name, species``, no header) -> id -> name of the
    given species (all with ``species=None``); the first row of a repeated id wins."""
    names = read_table(path, header=False, names=("pathway_id", "name", "species"),
                       required=("pathway_id", "name"))
    if species is not None:
        names = names[names["species"] == species]
    return names.drop_duplicates("pathway_id").set_index("pathway_id")["name"]


def read_reactome_relations(path: str | os.PathLike) -> pd.DataFrame:
    """ReactomePathwaysRelation.txt (``parent, child``, no header) as written, checked: two
    non-empty fields per line and no cycle (the error names a line of the cycle)."""
    rel = read_table(path, header=False, names=("parent", "child"),
                     required=("parent", "child"))
    g = nx.DiGraph()
    g.add_edges_from(zip(rel["parent"], rel["child"]))
    if not nx.is_directed_acyclic_graph(g):
        cycle = nx.find_cycle(g)
        parent, child = cycle[0]
        i = int(np.argmax(((rel["parent"] == parent) & (rel["child"] == child)).to_numpy()))
        names = " -> ".join([a for a, _ in cycle] + [cycle[0][0]])
        raise GeneSpliceInputError(f"pathway hierarchy has a cycle: {names}", path=path,
                                   line=i + 1)
    return rel


def read_gmt(path: str | os.PathLike | None = None, *,
             resolver: GeneResolver | None | bool = None) -> tuple[pd.DataFrame, ParseReport]:
    """GMT gene sets -> (rows ``pathway_id, name, gene``, report).

    Each line: name, description/id, then genes, tab-separated. A line with fewer than three
    fields (no genes) is an error naming the file and line. For Reactome's GMT the second
    column is the stable id (``R-HSA-...``), used as ``pathway_id``; otherwise the set name is.
    Genes are resolved to official symbols (``resolver=False`` keeps them as written).
    """
    path = Path(path) if path is not None else knowledge_path(REACTOME_GMT)
    report = ParseReport(source=str(path))
    ids, set_names, genes = [], [], []
    seen: set[str] = set()
    with open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            fields = line.rstrip("\r\n").split("\t")
            if not line.strip():
                raise GeneSpliceInputError("blank line; expected 'name<TAB>description"
                                           "<TAB>gene...'", path=path, line=n)
            members = [g for g in fields[2:] if g]
            if len(fields) < 3 or not members:
                raise GeneSpliceInputError(
                    f"gene set {fields[0]!r} has no genes; expected 'name<TAB>description"
                    "<TAB>gene<TAB>gene...'", path=path, line=n)
            sid = fields[1] if fields[1].startswith("R-") else fields[0]
            if sid in seen:
                raise GeneSpliceInputError(f"duplicate gene set {sid!r}", path=path, line=n)
            seen.add(sid)
            ids.extend([sid] * len(members))
            set_names.extend([fields[0]] * len(members))
            genes.extend(members)
    df = pd.DataFrame({"pathway_id": ids, "name": set_names, "gene": genes})
    report.rows_read = len(df)
    if resolver is not False:
        resolver = resolver or default_resolver()
        sym = resolver.resolve_series(df["gene"])
        miss = sym.isna()
        report.skip("gene id not mapped", int(miss.sum()))
        report.add_unmapped(list(pd.unique(df.loc[miss, "gene"])))
        report.n_unmapped = int(df.loc[miss, "gene"].nunique())
        df = df.assign(gene=sym)[~miss]
    before = len(df)
    df = df.drop_duplicates(["pathway_id", "gene"]).reset_index(drop=True)
    report.skip("duplicate gene in a set after mapping", before - len(df))
    report.rows_kept = len(df)
    report.notes["gene_sets"] = len(seen)
    return df, report.log()
