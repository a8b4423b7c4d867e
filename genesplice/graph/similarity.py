"""Gene–gene similarity from annotation alone: TF-IDF cosine over the gene × annotation
membership matrix (GO terms, pathways, regulating TFs), kept as each gene's ``k`` most similar
*candidate* genes.

These edges carry labels, not features: a model reads the observed profiles of a gene's most
similar labelled genes through them (``models.label_attention``). Nothing here looks at
expression; the caller chooses the candidates (the training genes) and so which labels can ever
be read.

Letters: g genes, f features, c candidates, k neighbours per gene, e edges.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class SimilarityIndex:
    """TF-IDF weighting of a membership matrix and the L2-normalised candidate rows.

    ``idf [f]``: ``log(n_genes / (1 + genes with the feature)) + 1``;
    ``candidates [c]``: gene rows that may be neighbours; ``normed``: their TF-IDF rows
    ``[c, f]`` with unit norm (CSR).
    """

    idf: np.ndarray
    candidates: np.ndarray
    normed: sp.csr_matrix

    @classmethod
    def fit(cls, membership: sp.spmatrix, candidates: np.ndarray,
            idf: np.ndarray | None = None) -> "SimilarityIndex":
        """IDF from every row of ``membership [g, f]`` (annotations only; no labels) unless
        given (e.g. the one the model was trained with), and the normalised rows of
        ``candidates``."""
        x = sp.csr_matrix(membership, dtype=np.float64)
        if idf is None:
            df = np.asarray((x != 0).sum(axis=0)).ravel()
            idf = np.log(x.shape[0] / (1.0 + df)) + 1.0
        candidates = np.asarray(candidates, dtype=np.int64)
        return cls(idf=idf, candidates=candidates, normed=_tfidf(x[candidates], idf))

    def neighbours(self, rows: sp.spmatrix, k: int, *, self_rows: np.ndarray | None = None,
                   chunk: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``k`` most similar candidates of each row of ``rows [q, f]``:
        ``(query [e], candidate_row [e], cosine [e])``, cosine > 0 only, best first per query.

        ``self_rows [q]``: the gene row each query row is (``-1`` for a gene outside the
        matrix); a query is never its own neighbour.
        """
        q = _tfidf(sp.csr_matrix(rows, dtype=np.float64), self.idf)
        out_q, out_c, out_s = [], [], []
        pos_of = {int(g): i for i, g in enumerate(self.candidates)}
        for lo in range(0, q.shape[0], chunk):
            sims = (q[lo:lo + chunk] @ self.normed.T).toarray()          # [b, c]
            if self_rows is not None:
                for i, g in enumerate(self_rows[lo:lo + chunk]):
                    j = pos_of.get(int(g))
                    if j is not None:
                        sims[i, j] = 0.0
            kk = min(k, sims.shape[1])
            top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]          # [b, kk]
            val = np.take_along_axis(sims, top, axis=1)
            order = np.argsort(-val, axis=1, kind="stable")
            top, val = np.take_along_axis(top, order, 1), np.take_along_axis(val, order, 1)
            keep = val > 0
            out_q.append((np.arange(lo, lo + len(sims))[:, None] + 0 * top)[keep])
            out_c.append(self.candidates[top[keep]])
            out_s.append(val[keep])
        cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)
        return cat(out_q, np.int64), cat(out_c, np.int64), cat(out_s, np.float32)


def _tfidf(x: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Binary membership × idf, rows scaled to unit L2 norm (all-zero rows stay zero)."""
    w = sp.csr_matrix(x != 0, dtype=np.float64) @ sp.diags(idf)
    norm = np.sqrt(np.asarray(w.multiply(w).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.where(norm > 0, norm, 1.0)) @ w)


def similarity_edges(membership: sp.spmatrix, candidates: np.ndarray, k: int
                     ) -> tuple[np.ndarray, np.ndarray, SimilarityIndex]:
    """Edges ``candidate → gene`` from each gene's ``k`` most similar candidates (itself
    excluded): ``(edge_index [2, e] int64, cosine [e] float32, index)``; row 0 holds the
    candidate (source) rows, row 1 the gene (destination) rows."""
    index = SimilarityIndex.fit(membership, candidates)
    n = membership.shape[0]
    dst, src, cos = index.neighbours(membership, k, self_rows=np.arange(n))
    return np.stack([src, dst]), cos, index
