"""Ridge regression, the one home of the package's ridge solvers and of its alpha selection.

Target: the expression table's unit (log10(nTPM + 1) by default), split by
:func:`genesplice.training.targets.level_profile` into a per-gene **level** (mean over observed
tissues) and a centred **profile** (one column per tissue). One ridge model with an unpenalised
intercept is fitted per target column; the penalty is chosen by :func:`select_alphas`
separately for the level (held-out level MSE) and for the profile (held-out profile MSE over
observed cells). Prediction = level + profile. Missing training cells (NaN) are given a profile
of 0 (the gene's own level) — 1.6 % of the bundled table's cells; held-out scores use observed
cells only.

Two solvers, one per kind of design:

* :func:`fit_ridge_baseline` — sparse gene → term / pathway / TF membership features; alphas
  chosen on the validation genes. Block preconditioned conjugate gradient (Jacobi) on the normal
  equations ``(Xc^T Xc + alpha I) W = Xc^T Yc`` with the centred sparse design ``Xc`` applied
  implicitly (``X`` stays sparse; no dense feature x feature matrix), warm-started from alpha to
  alpha.
* :func:`fit_level_profile_ridge` — dense (standardised) features such as sequence embeddings;
  alphas chosen by k-fold CV on the training genes. Closed form along the whole alpha path from
  one eigendecomposition of the smaller Gram matrix (:func:`ridge_path`).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genesplice.graph.features import MembershipFeatures
from genesplice.io.errors import GeneSpliceInputError
from genesplice.training.targets import level_profile

log = logging.getLogger(__name__)

#: the membership baseline's grid (validation-gene selection)
DEFAULT_ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
#: the dense CV ridge's grid (10^-1 .. 10^5, two steps per decade)
CV_ALPHAS = tuple(float(a) for a in np.logspace(-1, 5, 13))


# ------------------------------------------------------------------------------ targets, selection

def level_profile_matrix(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``values [g, t]`` (NaN = missing) → targets ``[g, 1 + t]`` = [level | profile], the
    observed mask ``[g, t]`` and ``has_level [g]`` (at least one observed tissue)."""
    lp = level_profile(np.asarray(values, dtype=np.float64))
    y = np.concatenate([lp.level[:, None], lp.profile], axis=1)
    return y, lp.mask, lp.n_observed > 0


def held_out_errors(pred: np.ndarray, y: np.ndarray, observed: np.ndarray,
                    has_level: np.ndarray) -> tuple[float, int, float, int]:
    """Squared errors of ``pred [g, 1 + t]`` against targets ``y``: (level SSE over genes with
    a level, their count, profile SSE over observed cells, their count)."""
    level_d = pred[has_level, 0] - y[has_level, 0]
    profile_d = (pred[:, 1:] - y[:, 1:])[observed]
    return (float(np.sum(level_d ** 2)), int(level_d.size),
            float(np.sum(profile_d ** 2)), int(profile_d.size))


def select_alphas(scores: pd.DataFrame) -> tuple[float, float]:
    """``(level alpha, profile alpha)``: the alphas of ``scores`` (columns ``alpha``,
    ``level_mse``, ``profile_mse``; one row per alpha) with the lowest held-out level and
    profile MSE (ties: the smaller alpha). An alpha at the edge of the grid is logged."""
    table = scores.sort_values("alpha", ignore_index=True)
    a_level = float(table.loc[table["level_mse"].idxmin(), "alpha"])
    a_prof = float(table.loc[table["profile_mse"].idxmin(), "alpha"])
    grid = table["alpha"].tolist()
    for a, part in ((a_level, "level"), (a_prof, "profile")):
        if a in (grid[0], grid[-1]):
            log.warning("ridge: %s alpha %g is at the edge of the grid (%d alphas, %g .. %g)",
                        part, a, len(grid), grid[0], grid[-1])
    return a_level, a_prof


def _check_alphas(alphas: Sequence[float]) -> list[float]:
    """Distinct alphas, largest first; each must be > 0."""
    out = sorted({float(a) for a in alphas}, reverse=True)
    if not out or out[-1] <= 0:
        raise GeneSpliceInputError(f"ridge alphas must be > 0, got {out}")
    return out


# ------------------------------------------------------------------------------ sparse: PCG

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


def _membership_design(features: MembershipFeatures, expression: pd.DataFrame,
                       train_genes: list[str], val_genes: list[str], min_genes_per_feature: int):
    """Kept feature columns, sparse train / validation designs and their targets."""
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
    y_tr, _, ok_tr = level_profile_matrix(expression.loc[train_genes].to_numpy(float))
    y_va, m_va, ok_va = level_profile_matrix(expression.loc[val_genes].to_numpy(float))
    x_tr = sp.csr_matrix(x_tr[:, keep])
    if not ok_tr.all():  # genes with no observed tissue carry no target
        x_tr, y_tr = sp.csr_matrix(x_tr[ok_tr]), y_tr[ok_tr]
    return keep, x_tr, sp.csr_matrix(x_va[:, keep]), y_tr, (y_va, m_va, ok_va)


def _pcg_path(x_tr: sp.csr_matrix, y_tr: np.ndarray, alphas: list[float], *, tol: float,
              maxiter: int) -> Iterator[tuple[float, np.ndarray, np.ndarray, int]]:
    """Yield ``(alpha, coef [f, 1 + t], intercept [1 + t], iterations)`` along ``alphas``
    (largest first, each solve warm-started from the previous)."""
    x_tr_t = sp.csr_matrix(x_tr.T)
    n = x_tr.shape[0]
    mu = np.asarray(x_tr.mean(axis=0)).ravel()                 # (f,)
    y_mean = y_tr.mean(axis=0)                                 # (1 + t,)
    rhs = x_tr_t @ (y_tr - y_mean)                             # Xc^T Yc = X^T Yc
    gram_diag = np.asarray(x_tr.multiply(x_tr).sum(axis=0)).ravel() - n * mu ** 2
    w = None
    for alpha in alphas:
        def matvec(v, alpha=alpha):                            # (Xc^T Xc + alpha I) v
            xv = x_tr @ v - mu @ v                             # Xc v, (n, k)
            return x_tr_t @ xv - np.outer(mu, xv.sum(axis=0)) + alpha * v
        w, n_iter = _block_pcg(matvec, rhs, gram_diag + alpha, w, tol, maxiter)
        yield alpha, w.copy(), y_mean - mu @ w, n_iter


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
    alphas = _check_alphas(alphas)
    train_genes, val_genes = list(train_genes), list(val_genes)
    keep, x_tr, x_va, y_tr, (y_va, m_va, ok_va) = _membership_design(
        features, expression, train_genes, val_genes, min_genes_per_feature)
    rows, solutions = [], {}
    for alpha, w, b, n_iter in _pcg_path(x_tr, y_tr, alphas, tol=tol, maxiter=maxiter):
        l_sse, l_n, p_sse, p_n = held_out_errors(x_va @ w + b, y_va, m_va, ok_va)
        rows.append({"alpha": alpha, "level_mse": l_sse / l_n, "profile_mse": p_sse / p_n,
                     "cg_iterations": n_iter})
        solutions[alpha] = (w, b)
    validation = pd.DataFrame(rows).sort_values("alpha", ignore_index=True)
    a_level, a_prof = select_alphas(validation)
    coef = np.concatenate([solutions[a_level][0][:, :1], solutions[a_prof][0][:, 1:]], axis=1)
    intercept = np.concatenate([solutions[a_level][1][:1], solutions[a_prof][1][1:]])
    return RidgeBaseline(feature_ids=tuple(features.feature_ids[i] for i in keep),
                         tissues=tuple(expression.columns), level_alpha=a_level,
                         profile_alpha=a_prof, coef=coef, intercept=intercept,
                         validation=validation, n_train=x_tr.shape[0], n_val=len(val_genes))


# ------------------------------------------------------------------------------ dense: CV path

def ridge_path(x: np.ndarray, y: np.ndarray) -> Callable[[float], np.ndarray]:
    """Coefficient function of alpha for centred ``x [n, p]``, ``y [n, k]`` (→ ``[p, k]``):
    one eigendecomposition of the smaller Gram matrix (``XᵀX`` when n ≥ p, else ``XXᵀ``).

    The algebra runs in torch (float64) so that ``torch.set_num_threads`` governs it: numpy's
    OpenBLAS threads spin against each other on a busy 2-core machine (54 s vs 1.3 s measured
    for the long-sequence study's ridge fits).
    """
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float64))
    n, p = xt.shape
    if n >= p:
        lam, v = torch.linalg.eigh(xt.T @ xt)                  # p p
        vty = v.T @ (xt.T @ yt)

        def coef(alpha: float) -> np.ndarray:
            return (v @ (vty / (lam.clamp(min=0) + alpha)[:, None])).numpy()
    else:
        lam, u = torch.linalg.eigh(xt @ xt.T)                  # n n
        uty = u.T @ yt

        def coef(alpha: float) -> np.ndarray:                  # Xᵀ (XXᵀ + αI)⁻¹ y
            return (xt.T @ (u @ (uty / (lam.clamp(min=0) + alpha)[:, None]))).numpy()
    return coef


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = x.mean(0), x.std(0)
    return mu, np.where(sd > 1e-12, sd, 1.0)


@dataclass(frozen=True)
class RidgeModel:
    """Level and centred-profile ridge on standardised dense features (alphas chosen by CV)."""
    mean: np.ndarray            # [p]
    scale: np.ndarray           # [p]
    coef_level: np.ndarray      # [p]
    coef_profile: np.ndarray    # [p, t]
    intercept_level: float
    intercept_profile: np.ndarray   # [t]
    alpha_level: float
    alpha_profile: float
    cv_mse_level: float
    cv_mse_profile: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``x [g, p]`` → ``[g, t]`` predictions: level + centred profile."""
        z = (x - self.mean) / self.scale
        level = z @ self.coef_level + self.intercept_level
        profile = z @ self.coef_profile + self.intercept_profile
        profile = profile - profile.mean(1, keepdims=True)
        return level[:, None] + profile


def cv_scores(x: np.ndarray, y: np.ndarray, observed: np.ndarray, has_level: np.ndarray,
              alphas: Sequence[float], *, n_folds: int, seed: int) -> pd.DataFrame:
    """k-fold CV of the dense ridge: one row per alpha with level_mse and profile_mse (pooled
    over folds) of ``x [n, p]`` against targets ``y [n, 1 + t]``."""
    fold = np.random.default_rng(seed).permutation(len(y)) % n_folds
    sse = np.zeros((len(alphas), 4))
    for f in range(n_folds):
        tr, te = fold != f, fold == f
        mu, sd = _standardise(x[tr])
        ymu = y[tr].mean(0)
        coef = ridge_path((x[tr] - mu) / sd, y[tr] - ymu)
        zte = (x[te] - mu) / sd
        for i, alpha in enumerate(alphas):
            sse[i] += held_out_errors(zte @ coef(alpha) + ymu, y[te], observed[te], has_level[te])
    return pd.DataFrame({"alpha": [float(a) for a in alphas],
                         "level_mse": sse[:, 0] / np.maximum(sse[:, 1], 1),
                         "profile_mse": sse[:, 2] / np.maximum(sse[:, 3], 1)})


def fit_level_profile_ridge(x: np.ndarray, values: np.ndarray, *,
                            alphas: Sequence[float] = CV_ALPHAS, n_folds: int = 5,
                            seed: int = 0) -> RidgeModel:
    """Ridge for the level and for the centred profile of ``values [n, t]`` (NaN = missing)
    on dense features ``x [n, p]`` (standardised), each alpha picked by :func:`select_alphas`
    on ``n_folds``-fold CV (MSE over observed cells) of these genes."""
    if x.shape[0] != values.shape[0] or x.shape[0] < n_folds:
        raise GeneSpliceInputError(f"need as many feature rows as genes and >= {n_folds} genes "
                                   f"(got {x.shape[0]} and {values.shape[0]})")
    alphas = sorted(_check_alphas(alphas))
    y, observed, has_level = level_profile_matrix(values)
    scores = cv_scores(x, y, observed, has_level, alphas, n_folds=n_folds, seed=seed)
    a_level, a_prof = select_alphas(scores)
    best = scores.set_index("alpha")
    mu, sd = _standardise(x)
    ymu = y.mean(0)
    coef = ridge_path((x - mu) / sd, y - ymu)
    c_l, c_p = coef(a_level), coef(a_prof)
    return RidgeModel(mean=mu, scale=sd, coef_level=c_l[:, 0], coef_profile=c_p[:, 1:],
                      intercept_level=float(ymu[0]), intercept_profile=ymu[1:],
                      alpha_level=a_level, alpha_profile=a_prof,
                      cv_mse_level=float(best.at[a_level, "level_mse"]),
                      cv_mse_profile=float(best.at[a_prof, "profile_mse"]))


__all__ = [
    "CV_ALPHAS", "DEFAULT_ALPHAS", "RidgeBaseline", "RidgeModel", "cv_scores",
    "fit_level_profile_ridge", "fit_ridge_baseline", "held_out_errors", "level_profile_matrix",
    "ridge_path", "select_alphas",
]
