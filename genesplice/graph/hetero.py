"""The built knowledge graph: a PyG ``HeteroData`` plus id maps, names, provenance, save/load.

Node types: ``gene`` (official symbols), ``go_term`` (GO ids), ``pathway`` (Reactome ids).
Edge types are ``(src, relation, dst)`` with verb relations (child -> parent for hierarchies,
TF -> target for regulation) and a ``rev_<relation>`` reverse edge for each, sharing its
``edge_attr``. Edge attributes are float32 tensors whose columns are named in
:attr:`KnowledgeGraph.edge_attr_names`:

========================================  =========================================
edge type                                 edge_attr columns
========================================  =========================================
(gene, annotated_with, go_term)           direct, experimental, phylogenetic,
                                          computational, author, curator, electronic
(go_term, is_a / part_of, go_term)        (none)
(go_term, regulates, go_term)             sign (+1 positively, -1 negatively, 0)
(gene, member_of, pathway)                direct, TAS, IEA
(pathway, part_of, pathway)               (none)
(gene, regulates, gene)                   sign (+1/-1/0), confidence (A=1.0 .. E=0.2)
========================================  =========================================

``direct`` is 1 for an annotation made to that very term/pathway and 0 when it was inferred
(re-attached from a dropped, too-small descendant, or propagated).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch_geometric.data import HeteroData

from genesplice.annotations.ontology import Ancestors, build_ancestors, expand
from genesplice.io.atomic import atomic_write
from genesplice.io.errors import DAMAGED_FILE_ERRORS, GeneSpliceInputError
from genesplice.io.knowledge import sha256_file

NODE_TYPES = ("gene", "go_term", "pathway")
EdgeType = tuple[str, str, str]
FORMAT_VERSION = 1
#: hierarchy edge types used to propagate membership to ancestors
HIERARCHY = {"go_term": (("go_term", "is_a", "go_term"), ("go_term", "part_of", "go_term")),
             "pathway": (("pathway", "part_of", "pathway"),)}


def edge_key(et: EdgeType) -> str:
    """``('gene','annotated_with','go_term')`` -> ``'gene__annotated_with__go_term'``."""
    return "__".join(et)


def parse_edge_key(key: str) -> EdgeType:
    a, b, c = key.split("__")
    return a, b, c



@dataclass
class KnowledgeGraph:
    """A built graph. ``data`` is the PyG ``HeteroData``; row ``i`` of node type ``t`` is
    ``node_ids[t][i]``."""
    data: Any  # torch_geometric.data.HeteroData
    node_ids: dict[str, list[str]]
    node_names: dict[str, dict[str, str]] = field(default_factory=dict)
    edge_attr_names: dict[str, list[str]] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    nx_graph: Any = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ lookups
    def node_index(self, node_type: str) -> dict[str, int]:
        """id -> row index for one node type."""
        if node_type not in self.node_ids:
            raise KeyError(f"no node type {node_type!r}; have {sorted(self.node_ids)}")
        return {n: i for i, n in enumerate(self.node_ids[node_type])}

    @property
    def edge_types(self) -> list[EdgeType]:
        return list(self.data.edge_types)

    def name(self, node_type: str, node_id: str) -> str:
        return self.node_names.get(node_type, {}).get(node_id, node_id)

    def attr_names(self, edge_type: EdgeType) -> list[str]:
        return self.edge_attr_names.get(edge_key(edge_type), [])

    def edges(self, edge_type: EdgeType | str) -> pd.DataFrame:
        """One edge type as a DataFrame of ids (src, dst) plus its named attributes."""
        et = self._edge_type(edge_type)
        ei = self.data[et].edge_index.numpy()
        src = np.asarray(self.node_ids[et[0]], dtype=object)[ei[0]]
        dst = np.asarray(self.node_ids[et[2]], dtype=object)[ei[1]]
        df = pd.DataFrame({"src": src, "dst": dst})
        names = self.attr_names(et)
        if names:
            attr = self.data[et].edge_attr.numpy()
            for j, n in enumerate(names):
                df[n] = attr[:, j]
        return df

    def _edge_type(self, edge_type: EdgeType | str) -> EdgeType:
        if isinstance(edge_type, str):
            hits = [et for et in self.data.edge_types if et[1] == edge_type]
            if len(hits) != 1:
                raise KeyError(f"relation {edge_type!r} matches {hits}; pass (src, rel, dst)")
            return hits[0]
        et = tuple(edge_type)
        if et not in self.data.edge_types:
            raise KeyError(f"no edge type {et}; have {self.data.edge_types}")
        return et  # type: ignore[return-value]

    # ------------------------------------------------------------------ features
    def membership(self, edge_type: EdgeType | str, *, propagate: bool = False,
                   value: str | None = None):
        """Gene x feature ``scipy.sparse.csr_matrix`` for a gene-involving edge type.

        Rows follow ``node_ids['gene']``. Columns follow the other end's ``node_ids``:
        ``go_term`` for annotated_with, ``pathway`` for member_of; for
        ``('gene','regulates','gene')`` rows are targets and columns regulators (TFs).
        ``propagate=True`` also marks every ancestor term/pathway (true-path rule over the
        graph's is_a/part_of edges, :func:`genesplice.annotations.ontology.expand`).
        ``value``: an edge_attr column (e.g. ``"sign"``) instead of 1.0 (not with
        ``propagate``).
        """
        et = self._edge_type(edge_type)
        ei = self.data[et].edge_index.numpy()
        if et[0] == "gene" and et[2] == "gene":
            rows, cols, n_cols = ei[1], ei[0], len(self.node_ids["gene"])
        elif et[0] == "gene":
            rows, cols, n_cols = ei[0], ei[1], len(self.node_ids[et[2]])
        elif et[2] == "gene":
            rows, cols, n_cols = ei[1], ei[0], len(self.node_ids[et[0]])
        else:
            raise KeyError(f"{et} does not involve genes")
        if value is not None:
            names = self.attr_names(et)
            if value not in names:
                raise KeyError(f"{et} has no attribute {value!r}; has {names}")
            vals = self.data[et].edge_attr[:, names.index(value)].numpy().astype(np.float64)
        else:
            vals = np.ones(len(rows))
        n_genes = len(self.node_ids["gene"])
        m = sp.csr_matrix((vals, (rows, cols)), shape=(n_genes, n_cols))
        m.sum_duplicates()
        other = et[2] if et[0] == "gene" else et[0]
        if propagate and other in HIERARCHY:
            if value is not None:
                raise GeneSpliceInputError("value= and propagate=True cannot be combined")
            pairs = m.tocoo()
            g, t, _ = expand(self.ancestors(other), pairs.row, pairs.col)
            m = sp.csr_matrix((np.ones(len(g)), (g, t)), shape=(n_genes, n_cols))
        return m

    def ancestors(self, node_type: str) -> Ancestors:
        """Reflexive ancestor sets of ``node_type``'s rows over its hierarchy edges
        (:data:`HIERARCHY`: is_a + part_of for GO terms, part_of for pathways); the nodes are
        the row indices ``0..n-1``."""
        child, parent = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
        for h in HIERARCHY.get(node_type, ()):
            if h in self.data.edge_types:
                e = self.data[h].edge_index.numpy()
                child.append(e[0])
                parent.append(e[1])
        return build_ancestors(list(range(len(self.node_ids[node_type]))),
                               np.concatenate(child), np.concatenate(parent),
                               what=f"{node_type} hierarchy")

    def validate(self) -> "KnowledgeGraph":
        """Check id maps against tensors: node counts, index ranges, attribute shapes.

        Raises :class:`GeneSpliceInputError` naming the edge type, the limit and the index
        found (as PyG's ``validate`` does)."""
        for t in self.data.node_types:
            n = int(self.data[t].num_nodes)
            if len(self.node_ids.get(t, [])) != n:
                raise GeneSpliceInputError(
                    f"node type {t!r}: {len(self.node_ids.get(t, []))} ids for {n} nodes")
        for et in self.data.edge_types:
            ei = self.data[et].edge_index
            if ei.dtype != torch.long or ei.dim() != 2 or ei.size(0) != 2:
                raise GeneSpliceInputError(f"edge type {et}: edge_index must be a [2, E] "
                                           f"long tensor, found {tuple(ei.shape)} {ei.dtype}")
            for row, t in ((0, et[0]), (1, et[2])):
                n = len(self.node_ids[t])
                if ei.size(1) and (int(ei[row].max()) >= n or int(ei[row].min()) < 0):
                    bad = int(ei[row].max()) if int(ei[row].max()) >= n else int(ei[row].min())
                    raise GeneSpliceInputError(
                        f"edge type {et}: {'source' if row == 0 else 'target'} index {bad} "
                        f"outside [0, {n}) of node type {t!r}")
            names = self.attr_names(et)
            if names:
                ea = self.data[et].edge_attr
                if ea.dtype != torch.float32 or tuple(ea.shape) != (ei.size(1), len(names)):
                    raise GeneSpliceInputError(
                        f"edge type {et}: edge_attr must be float32 [{ei.size(1)}, "
                        f"{len(names)}] ({', '.join(names)}), found {tuple(ea.shape)} {ea.dtype}")
        return self

    # ------------------------------------------------------------------ reporting
    def summary(self) -> pd.DataFrame:
        """Nodes and edges per type (one row each) -- ``kind, type, count``."""
        rows = [("node", t, len(self.node_ids[t])) for t in self.node_ids]
        for et in self.data.edge_types:
            rows.append(("edge", "(" + ", ".join(et) + ")", int(self.data[et].num_edges)))
        return pd.DataFrame(rows, columns=["kind", "type", "count"])

    def report_lines(self) -> list[str]:
        """Human-readable extras: genes without annotation, unmapped ids, skipped rows."""
        s = self.stats
        out = []
        if "genes" in s:
            g = s["genes"]
            out.append(f"genes in universe: {g['universe']:,} "
                       f"(source: {g.get('universe_source', '?')})")
            out.append(f"genes with no annotation (no GO, pathway or TF edge): "
                       f"{g['without_any']:,}")
            for k in ("without_go", "without_pathway", "without_regulation"):
                if k in g:
                    out.append(f"  {k.replace('_', ' ')}: {g[k]:,}")
        for src, u in s.get("unmapped", {}).items():
            ex = ", ".join(u.get("examples", [])[:5])
            out.append(f"ids not mapped to a gene symbol in {src}: {u['n']:,}"
                       + (f" (e.g. {ex})" if ex else ""))
        for src, reasons in s.get("skipped", {}).items():
            for reason, n in reasons.items():
                out.append(f"skipped in {src}: {n:,} ({reason})")
        return out

    # ------------------------------------------------------------------ save / load
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``tensors.pt`` (plain dict of tensors) and ``graph.json`` atomically."""
        directory = Path(directory)
        tensors: dict[str, Any] = {"num_nodes": {}, "node": {}, "edge_index": {},
                                   "edge_attr": {}}
        for t in self.data.node_types:
            store = self.data[t]
            tensors["num_nodes"][t] = int(store.num_nodes)
            extra = {k: v for k, v in store.items() if isinstance(v, torch.Tensor)}
            if extra:
                tensors["node"][t] = extra
        for et in self.data.edge_types:
            store = self.data[et]
            tensors["edge_index"][edge_key(et)] = store.edge_index.contiguous()
            if "edge_attr" in store:
                tensors["edge_attr"][edge_key(et)] = store.edge_attr.contiguous()
        meta = {"format_version": FORMAT_VERSION, "node_ids": self.node_ids,
                "node_names": self.node_names, "edge_attr_names": self.edge_attr_names,
                "edge_types": [list(et) for et in self.data.edge_types],
                "recipe": self.recipe, "inputs": self.inputs, "stats": self.stats}
        atomic_write(directory / "tensors.pt", lambda p: torch.save(tensors, p))
        atomic_write(directory / "graph.json",
                      lambda p: Path(p).write_text(json.dumps(meta, indent=1, sort_keys=True)))
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, *, check_inputs: bool = False,
             recipe: dict[str, Any] | None = None) -> "KnowledgeGraph":
        """Load a saved graph (``torch.load(weights_only=True)``).

        ``check_inputs=True`` re-hashes every input file and raises
        :class:`GeneSpliceInputError` if one changed or is missing (a stale graph);
        ``recipe`` (a ``Recipe`` or its dict) must equal the stored one, else stale too.
        """
        directory = Path(directory)
        meta_path, tensor_path = directory / "graph.json", directory / "tensors.pt"
        for p in (meta_path, tensor_path):
            if not p.exists():
                raise GeneSpliceInputError("not a saved graph (missing file); run "
                                           "`genesplice build-graph` first", path=p)
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise GeneSpliceInputError(f"corrupt graph metadata ({exc.msg})", path=meta_path,
                                       line=exc.lineno) from exc
        except UnicodeDecodeError as exc:
            raise GeneSpliceInputError("corrupt graph metadata (not UTF-8 text)",
                                       path=meta_path) from exc
        if not isinstance(meta, dict):
            raise GeneSpliceInputError("corrupt graph metadata (expected a JSON object)",
                                       path=meta_path)
        if meta.get("format_version") != FORMAT_VERSION:
            raise GeneSpliceInputError(
                f"graph format {meta.get('format_version')} != {FORMAT_VERSION}; rebuild it",
                path=meta_path)
        try:
            tensors = torch.load(tensor_path, weights_only=True)
        except DAMAGED_FILE_ERRORS as exc:
            raise GeneSpliceInputError(
                f"not a readable graph tensor file ({type(exc).__name__}); expected one written "
                "by `genesplice build-graph` (rebuild it)", path=tensor_path) from exc
        if not isinstance(tensors, dict) or not {"num_nodes", "node", "edge_index",
                                                 "edge_attr"} <= set(tensors):
            raise GeneSpliceInputError("not a genesplice graph tensor file (expected num_nodes, "
                                       "node, edge_index, edge_attr); rebuild it",
                                       path=tensor_path)
        data = HeteroData()
        for t, n in tensors["num_nodes"].items():
            data[t].num_nodes = n
            for k, v in tensors["node"].get(t, {}).items():
                data[t][k] = v
        for et in meta["edge_types"]:
            key = edge_key(tuple(et))
            data[tuple(et)].edge_index = tensors["edge_index"][key]
            if key in tensors["edge_attr"]:
                data[tuple(et)].edge_attr = tensors["edge_attr"][key]
        kg = cls(data=data, node_ids=meta["node_ids"], node_names=meta["node_names"],
                 edge_attr_names=meta["edge_attr_names"], recipe=meta["recipe"],
                 inputs=meta["inputs"], stats=meta["stats"]).validate()
        if recipe is not None:
            want = recipe.to_dict() if hasattr(recipe, "to_dict") else recipe
            if want != kg.recipe:
                diff = sorted(k for k in set(want) | set(kg.recipe)
                              if want.get(k) != kg.recipe.get(k))
                raise GeneSpliceInputError(
                    f"graph is stale: built from a different recipe (differs in {diff}); "
                    "rebuild it", path=directory)
        if check_inputs:
            problems = kg.stale_inputs()
            if problems:
                raise GeneSpliceInputError(
                    f"graph is stale: {problems[0]}"
                    + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
                    + "; rebuild it", path=directory)
        return kg

    def stale_inputs(self) -> list[str]:
        """Inputs whose sha256 differs from the one recorded at build time (or are gone)."""
        problems = []
        for label, info in self.inputs.items():
            p = Path(info["path"])
            if not p.exists():
                problems.append(f"input {label} missing ({p})")
            elif sha256_file(p) != info["sha256"]:
                problems.append(f"input {label} changed since the build ({p})")
        return problems

    # ------------------------------------------------------------------ networkx
    def to_networkx(self):
        """Typed ``networkx.MultiDiGraph`` (nodes are ids with ``type``/``name``; edges keyed
        by relation). Reverse (``rev_``) edges are left out: networkx edges are directed."""

        if self.nx_graph is not None:
            return self.nx_graph
        g = nx.MultiDiGraph()
        for t, ids in self.node_ids.items():
            names = self.node_names.get(t, {})
            g.add_nodes_from((i, {"type": t, "name": names.get(i, i)}) for i in ids)
        for et in self.data.edge_types:
            if et[1].startswith("rev_"):
                continue
            df = self.edges(et)
            names = self.attr_names(et)
            attrs = df[names].to_dict("records") if names else [{}] * len(df)
            g.add_edges_from((s, d, et[1], {"relation": et[1], **a})
                             for s, d, a in zip(df["src"], df["dst"], attrs))
        self.nx_graph = g
        return g
