"""Typed tables -> networkx ``MultiDiGraph`` -> PyG ``HeteroData``: the last two build stages.

The edge types the builder writes and the ``edge_attr`` columns each carries are named here
(:data:`EDGE_ATTRS`); :mod:`genesplice.graph.build` fills the tables, one step per source.
"""
from __future__ import annotations

from operator import itemgetter
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from genesplice.annotations.go import EVIDENCE_GROUPS
from genesplice.graph.hetero import edge_key
from genesplice.io.errors import GeneSpliceInputError

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
