"""Vectorised DAG utilities shared by GO and Reactome: ancestor closure, true-path propagation
(:func:`expand`, the one implementation), roots (:func:`root_mask`), term sizes and lifting
annotations of dropped terms to their nearest kept ancestors.

Ancestor sets are computed once per term (in topological order, parents before children) and
stored as CSR arrays, so propagating N annotations is a handful of numpy gathers, not a per-row
Python loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from genesplice.io.errors import GeneSpliceInputError


@dataclass
class Ancestors:
    """Reflexive ancestor sets of every node, CSR-encoded over ``nodes`` (row i = node i)."""
    nodes: list[str]
    index: dict[str, int]
    indptr: np.ndarray
    indices: np.ndarray

    def of(self, node: str) -> list[str]:
        i = self.index[node]
        return [self.nodes[j] for j in self.indices[self.indptr[i]:self.indptr[i + 1]]]

    def codes(self, values: pd.Series | np.ndarray) -> np.ndarray:
        return pd.Series(values).map(self.index).to_numpy()


def build_ancestors(nodes: list[str], child: np.ndarray, parent: np.ndarray,
                    what: str = "hierarchy") -> Ancestors:
    """Ancestors (including self) for every node given child->parent edges among ``nodes``."""
    index = {n: i for i, n in enumerate(nodes)}
    g = nx.DiGraph()
    g.add_nodes_from(range(len(nodes)))
    c = pd.Series(child).map(index).to_numpy()
    p = pd.Series(parent).map(index).to_numpy()
    g.add_edges_from(zip(c.tolist(), p.tolist()))
    try:
        order = list(nx.topological_sort(g))  # children before parents
    except nx.NetworkXUnfeasible as exc:
        cycle = nx.find_cycle(g)
        names = " -> ".join(nodes[a] for a, _ in cycle)
        raise GeneSpliceInputError(f"{what} has a cycle: {names}") from exc
    anc: list[frozenset[int] | None] = [None] * len(nodes)
    for n in reversed(order):  # parents first
        s = {n}
        for q in g.successors(n):
            s |= anc[q]
        anc[n] = frozenset(s)
    lengths = np.fromiter((len(a) for a in anc), dtype=np.int64, count=len(nodes))
    indptr = np.zeros(len(nodes) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.fromiter((x for a in anc for x in sorted(a)), dtype=np.int64,
                          count=int(indptr[-1]))
    return Ancestors(nodes=nodes, index=index, indptr=indptr, indices=indices)


def root_mask(n_nodes: int, child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """The roots of a child -> parent hierarchy: nodes with a child and no parent.

    ``child``/``parent``: int codes [E] of the edges among nodes ``0..n_nodes-1``. Returns a
    bool mask [n_nodes]. This is *the* definition of a top-level term or pathway (Reactome's
    29 top-level pathways, e.g. "Signal Transduction"); a node without any edge is no root.
    """
    mask = np.zeros(n_nodes, dtype=bool)
    mask[np.asarray(parent, dtype=np.int64)] = True
    mask[np.asarray(child, dtype=np.int64)] = False
    return mask


def expand_rows(anc: Ancestors, term: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each input row, one output row per ancestor of its term (itself included).

    Returns (row index into the input, ancestor term code, is_self).
    """
    term = np.asarray(term, dtype=np.int64)
    lengths = anc.indptr[term + 1] - anc.indptr[term]
    total = int(lengths.sum())
    rep_start = np.repeat(anc.indptr[term], lengths)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out_term = anc.indices[rep_start + within]
    rows = np.repeat(np.arange(len(term), dtype=np.int64), lengths)
    return rows, out_term, out_term == term[rows]


def reduce_pairs(item: np.ndarray, term: np.ndarray, n_terms: int,
                 flags: dict[str, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Unique (item, term) pairs; each boolean flag is OR-ed over the duplicates."""
    item = np.asarray(item, dtype=np.int64)
    term = np.asarray(term, dtype=np.int64)
    key = item * n_terms + term
    order = np.argsort(key)  # the order within equal keys does not matter: flags are OR-ed
    sorted_key = key[order]
    first = np.ones(len(sorted_key), dtype=bool)
    first[1:] = sorted_key[1:] != sorted_key[:-1]
    start = np.flatnonzero(first)
    uniq = sorted_key[start]

    out = {}
    for name, f in (flags or {}).items():
        f = np.asarray(f, dtype=bool)[order]
        out[name] = np.logical_or.reduceat(f, start) if len(f) else f
    return uniq // n_terms, uniq % n_terms, out


def expand(anc: Ancestors, item: np.ndarray, term: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True-path rule: (item, term) pairs -> unique (item, ancestor) pairs + direct flag."""
    rows, t, is_self = expand_rows(anc, term)
    i, t, f = reduce_pairs(np.asarray(item, dtype=np.int64)[rows], t, len(anc.nodes),
                           {"direct": is_self})
    return i, t, f["direct"]


def term_sizes(anc: Ancestors, item: np.ndarray, term: np.ndarray) -> np.ndarray:
    """Number of distinct items per term after propagation (length ``len(anc.nodes)``)."""
    _, t, _ = expand(anc, item, term)
    return np.bincount(t, minlength=len(anc.nodes))


def lift_rows(anc: Ancestors, term: np.ndarray, kept: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map rows whose term is dropped to the term's nearest kept ancestors.

    ``kept`` (bool per term) must be closed upwards -- true when it comes from a minimum size
    on propagated sizes. Returns (row index, new term, lost) where ``lost`` flags input rows
    whose term has no kept ancestor at all. Rows with a kept term map to themselves.
    """
    term = np.asarray(term, dtype=np.int64)
    ok = kept[term]
    dropped = np.unique(term[~ok])
    # frontier (minimal kept ancestors) per dropped term, CSR over ``dropped``
    fr_len = np.zeros(len(dropped), dtype=np.int64)
    fr_idx: list[np.ndarray] = []
    for j, t in enumerate(dropped.tolist()):
        a = anc.indices[anc.indptr[t]:anc.indptr[t + 1]]
        k = a[kept[a]]
        if len(k) > 1:
            covered: set[int] = set()
            for b in k.tolist():
                seg = anc.indices[anc.indptr[b]:anc.indptr[b + 1]]
                covered.update(seg[seg != b].tolist())
            k = np.array([b for b in k.tolist() if b not in covered], dtype=np.int64)
        fr_len[j] = len(k)
        fr_idx.append(k)
    fr_ptr = np.zeros(len(dropped) + 1, dtype=np.int64)
    np.cumsum(fr_len, out=fr_ptr[1:])
    fr_all = np.concatenate(fr_idx) if fr_idx else np.zeros(0, dtype=np.int64)
    rows_ok = np.flatnonzero(ok)
    rows_d = np.flatnonzero(~ok)
    j = np.searchsorted(dropped, term[rows_d])
    lens = fr_len[j]
    total = int(lens.sum())
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    new_t = fr_all[np.repeat(fr_ptr[j], lens) + within]
    lost = np.zeros(len(term), dtype=bool)
    lost[rows_d[lens == 0]] = True
    rows = np.concatenate([rows_ok, np.repeat(rows_d, lens)])
    terms = np.concatenate([term[rows_ok], new_t])
    return rows, terms, lost
