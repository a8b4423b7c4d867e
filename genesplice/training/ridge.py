"""Ridge regression baseline on gene -> term / pathway / TF membership features.

Target: the expression table's unit (log10(nTPM + 1) by default), split as in
``genesplice.training.losses`` into a per-gene **level** (mean over observed tissues) and a
centred **profile** (one column per tissue). One ridge model with an unpenalised intercept is
fitted per target column on the training genes; the penalty ``alpha`` is chosen on the
validation genes separately for the level (validation level MSE) and for the profile
(validation profile MSE over observed cells). Prediction = level + profile.

Missing training cells (NaN) are given a profile of 0 (the gene's own level) — 1.6 % of the
bundled table's cells; validation scores use observed cells only.

Solver: block preconditioned conjugate gradient (Jacobi) on the normal equations
``(Xc^T Xc + alpha I) W = Xc^T Yc`` with the centred sparse design ``Xc`` applied implicitly
(``X`` stays sparse; no dense feature x feature matrix), warm-started from alpha to alpha.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from genesplice.graph.features import MembershipFeatures
from genesplice.io.errors import GeneSpliceInputError

log = logging.getLogger(__name__)

DEFAULT_ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)








def level_profile_targets(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(g, 1 + t) targets [level | profile] and the (g, t) observed mask; NaN profile -> 0."""
    mask = ~np.isnan(values)
    n = mask.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.where(n > 0, np.where(mask, values, 0.0).sum(axis=1) / np.maximum(n, 1),
                         np.nan)
    profile = np.where(mask, values - level[:, None], 0.0)
    return np.concatenate([level[:, None], profile], axis=1), mask


def _block_pcg(matvec, rhs: np.ndarray, diag: np.ndarray, x0: np.ndarray | None,
               tol: float, maxiter: int) -> tuple[np.ndarray, int]:
    """Solve A X = B for SPD A (given as ``matvec``) column-wise with a Jacobi preconditioner."""
    x = np.zeros_like(rhs) if x0 is None else x0.copy()
    r = rhs - matvec(x)
    bnorm = np.linalg.norm(rhs, axis=0)
    bnorm[bnorm == 0] = 1.0
    z = r / diag[:, None]
    p = z.copy()
    rz = (r * z).sum(axis=0)
    for it in range(1, maxiter + 1):
        if np.all(np.linalg.norm(r, axis=0) / bnorm < tol):
            return x, it - 1
        ap = matvec(p)
        pap = (p * ap).sum(axis=0)
        step = np.divide(rz, pap, out=np.zeros_like(rz), where=pap > 0)
        x += p * step
        r -= ap * step
        z = r / diag[:, None]
        rz_new = (r * z).sum(axis=0)
        beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0)
        p = z + p * beta
        rz = rz_new
    log.warning("ridge: conjugate gradient stopped after %d iterations (relative residual "
                "%.2e > tol %.0e)", maxiter, float(np.max(np.linalg.norm(r, axis=0) / bnorm)),
                tol)
    return x, maxiter


@dataclass(frozen=True)
class RidgeBaseline:
    """Fitted ridge baseline. ``coef``: (f, 1 + t) for [level | tissue profiles] over
    ``feature_ids``; ``intercept``: (1 + t,); ``validation``: one row per alpha with
    level_mse and profile_mse on the validation genes."""

    feature_ids: tuple[str, ...]
    tissues: tuple[str, ...]
    level_alpha: float
    profile_alpha: float
    coef: np.ndarray
    intercept: np.ndarray
    validation: pd.DataFrame
    n_train: int
    n_val: int

    def predict(self, features: MembershipFeatures,
                genes: Sequence[str] | None = None) -> pd.DataFrame:
        """Predictions (genes x tissues, index ``gene_id``, columns ``tissue``) in the
        expression unit; ``genes`` default: every row of ``features``."""
        genes = list(features.gene_ids if genes is None else genes)
        cols = pd.Index(features.feature_ids).get_indexer(list(self.feature_ids))
        if (cols < 0).any():
            missing = [f for f, c in zip(self.feature_ids, cols) if c < 0]
            raise GeneSpliceInputError(f"{len(missing)} model features are absent from the "
                                       f"membership matrix (e.g. {missing[:5]})")
        x = features.rows(genes)[:, cols]
        out = x @ self.coef + self.intercept                   # (g, 1 + t)
        pred = out[:, :1] + out[:, 1:]
        return pd.DataFrame(pred, index=pd.Index(genes, name="gene_id", dtype=object),
                            columns=pd.Index(list(self.tissues), name="tissue", dtype=object))


def fit_ridge_baseline(features: MembershipFeatures, expression: pd.DataFrame, *,
                       train_genes: Sequence[str], val_genes: Sequence[str],
                       alphas: Sequence[float] = DEFAULT_ALPHAS,
                       min_genes_per_feature: int = 5, tol: float = 1e-6,
                       maxiter: int = 3000) -> RidgeBaseline:
    """Fit level and profile ridge models on ``train_genes``; pick each alpha on ``val_genes``.

    ``expression``: genes x tissues (NaN = missing), e.g. ``read_expression_table().values``.
    Features with fewer than ``min_genes_per_feature`` training genes are dropped (a feature
    seen in one or two genes is a per-gene lookup, which does not transfer to new genes).
    """
    alphas = sorted({float(a) for a in alphas}, reverse=True)
    if not alphas or alphas[-1] <= 0:
        raise GeneSpliceInputError(f"ridge alphas must be > 0, got {alphas}")
    train_genes, val_genes = list(train_genes), list(val_genes)
    if not train_genes or not val_genes:
        raise GeneSpliceInputError("ridge needs training and validation genes")
    missing = [g for g in train_genes + val_genes if g not in expression.index]
    if missing:
        raise GeneSpliceInputError(f"{len(missing)} train/val genes are not in the expression "
                                   f"table (e.g. {missing[:5]})")
    x_tr = features.rows(train_genes)
    x_va = features.rows(val_genes)
    keep = np.flatnonzero(np.asarray((x_tr != 0).sum(axis=0)).ravel() >= min_genes_per_feature)
    if keep.size == 0:
        raise GeneSpliceInputError(f"no feature has >= {min_genes_per_feature} training genes")
    x_tr = sp.csr_matrix(x_tr[:, keep])
    x_va = sp.csr_matrix(x_va[:, keep])
    x_tr_t = sp.csr_matrix(x_tr.T)

    y_tr, _ = level_profile_targets(expression.loc[train_genes].to_numpy(float))
    y_va, m_va = level_profile_targets(expression.loc[val_genes].to_numpy(float))
    ok_tr = ~np.isnan(y_tr[:, 0])
    if not ok_tr.all():  # genes with no observed tissue carry no target
        x_tr = sp.csr_matrix(x_tr[ok_tr])
        x_tr_t = sp.csr_matrix(x_tr.T)
        y_tr = y_tr[ok_tr]
    ok_va = ~np.isnan(y_va[:, 0])
    n = x_tr.shape[0]
    mu = np.asarray(x_tr.mean(axis=0)).ravel()                 # (f,)
    y_mean = y_tr.mean(axis=0)                                 # (1 + t,)
    rhs = x_tr_t @ (y_tr - y_mean)                             # Xc^T Yc = X^T Yc
    gram_diag = np.asarray(x_tr.multiply(x_tr).sum(axis=0)).ravel() - n * mu ** 2

    rows, solutions = [], {}
    w = None
    for alpha in alphas:
        def matvec(v, alpha=alpha):                            # (Xc^T Xc + alpha I) v
            xv = x_tr @ v - mu @ v                             # Xc v, (n, k)
            return x_tr_t @ xv - np.outer(mu, xv.sum(axis=0)) + alpha * v
        w, n_iter = _block_pcg(matvec, rhs, gram_diag + alpha, w, tol, maxiter)
        b = y_mean - mu @ w
        pred = x_va @ w + b
        level_mse = float(np.mean((pred[ok_va, 0] - y_va[ok_va, 0]) ** 2))
        diff = (pred[:, 1:] - y_va[:, 1:])[m_va]
        profile_mse = float(np.mean(diff ** 2))
        rows.append({"alpha": alpha, "level_mse": level_mse, "profile_mse": profile_mse,
                     "cg_iterations": n_iter})
        solutions[alpha] = (w.copy(), b)
    validation = pd.DataFrame(rows).sort_values("alpha", ignore_index=True)
    a_level = float(validation.loc[validation["level_mse"].idxmin(), "alpha"])
    a_prof = float(validation.loc[validation["profile_mse"].idxmin(), "alpha"])
    for a, part in ((a_level, "level"), (a_prof, "profile")):
        if a in (alphas[0], alphas[-1]):
            log.warning("ridge: %s alpha %g is at the edge of the grid %s", part, a, alphas)
    coef = np.concatenate([solutions[a_level][0][:, :1], solutions[a_prof][0][:, 1:]], axis=1)
    intercept = np.concatenate([solutions[a_level][1][:1], solutions[a_prof][1][1:]])
    return RidgeBaseline(feature_ids=tuple(features.feature_ids[i] for i in keep),
                         tissues=tuple(expression.columns), level_alpha=a_level,
                         profile_alpha=a_prof, coef=coef, intercept=intercept,
                         validation=validation, n_train=n, n_val=len(val_genes))
