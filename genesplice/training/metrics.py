"""Held-out expression metrics, NaN-aware (a missing observed cell is left out, not zero).

* per tissue, across genes: Pearson, Spearman, r² (coefficient of determination);
* per gene, across tissues, after centring each gene on its mean over its observed tissues
  (tissue specificity): Pearson and Spearman of the centred profiles, and the profile r².

Pearson's r is unchanged by centring, so the per-gene Pearson equals the plain per-gene Pearson
across tissues; the centring matters for the profile r², which ignores the level. A correlation
is NaN when fewer than 3 cells are observed or either side is constant (e.g. a gene at 0 in
every tissue); such rows are counted in the summary and left out of its means.

Results are tidy DataFrames (one row per tissue / gene) plus a summary dict.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from genesplice.io.errors import GeneSpliceInputError
from genesplice.training.targets import level_profile

MIN_OBSERVED = 3


@dataclass(frozen=True)
class EvaluationResult:
    """``per_tissue``: columns tissue, n_genes, pearson, spearman, r2.
    ``per_gene``: columns gene_id, n_tissues, pearson_centred, spearman_centred, r2_centred.
    ``summary``: means over tissues / genes (NaN rows left out) and counts."""

    per_tissue: pd.DataFrame
    per_gene: pd.DataFrame
    summary: dict[str, float | int | str] = field(default_factory=dict)


def align(observed: pd.DataFrame, predicted: pd.DataFrame) -> pd.DataFrame:
    """``predicted`` restricted and ordered to ``observed``'s genes and tissues.

    Every observed gene and tissue must be predicted, with no NaN prediction where a value was
    observed; otherwise a :class:`GeneSpliceInputError` names what is missing.
    """
    miss_g = observed.index.difference(predicted.index)
    miss_t = observed.columns.difference(predicted.columns)
    if len(miss_g) or len(miss_t):
        raise GeneSpliceInputError(
            f"predictions lack {len(miss_g)} genes (e.g. {list(miss_g[:5])}) and tissues "
            f"{list(miss_t)} of the observed table (expected every observed gene and tissue)")
    pred = predicted.loc[observed.index, observed.columns].astype("float64")
    bad = pred.isna().to_numpy() & observed.notna().to_numpy()
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise GeneSpliceInputError(f"{int(bad.sum())} predictions are NaN where a value was "
                                   f"observed (e.g. gene {observed.index[r]!r}, tissue "
                                   f"{observed.columns[c]!r})")
    return pred


def masked_pearson(x: np.ndarray, y: np.ndarray, mask: np.ndarray, axis: int) -> np.ndarray:
    """Pearson r along ``axis`` using only cells where ``mask``; NaN if < 3 cells or constant.

    ``x``, ``y``, ``mask``: same shape; the result has that shape without ``axis`` (a 0-d
    array for 1-d input)."""
    n = mask.sum(axis=axis)
    xs = np.where(mask, x, 0.0)
    ys = np.where(mask, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = xs.sum(axis=axis, keepdims=True) / np.expand_dims(n, axis)
        my = ys.sum(axis=axis, keepdims=True) / np.expand_dims(n, axis)
        dx = np.where(mask, x - mx, 0.0)
        dy = np.where(mask, y - my, 0.0)
        sxx = (dx * dx).sum(axis=axis)
        syy = (dy * dy).sum(axis=axis)
        sxy = (dx * dy).sum(axis=axis)
        r = sxy / np.sqrt(sxx * syy)
    tiny = 1e-12
    undefined = (n < MIN_OBSERVED) | (sxx <= tiny * np.maximum(n, 1)) | \
        (syy <= tiny * np.maximum(n, 1))
    return np.clip(np.where(undefined, np.nan, r), -1.0, 1.0)


def _masked_ranks(x: np.ndarray, mask: np.ndarray, axis: int) -> np.ndarray:
    """Average ranks along ``axis`` among observed cells (NaN elsewhere)."""
    return stats.rankdata(np.where(mask, x, np.nan), axis=axis, nan_policy="omit")


def _masked_r2(obs: np.ndarray, pred: np.ndarray, mask: np.ndarray, axis: int) -> np.ndarray:
    n = mask.sum(axis=axis)
    o = np.where(mask, obs, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mo = o.sum(axis=axis, keepdims=True) / np.expand_dims(n, axis)
        ss_tot = np.where(mask, (obs - mo) ** 2, 0.0).sum(axis=axis)
        ss_res = np.where(mask, (obs - pred) ** 2, 0.0).sum(axis=axis)
        r2 = 1.0 - ss_res / ss_tot
    r2[(n < MIN_OBSERVED) | (ss_tot <= 1e-12 * np.maximum(n, 1))] = np.nan
    return r2


def per_tissue_metrics(observed: pd.DataFrame, predicted: pd.DataFrame) -> pd.DataFrame:
    """One row per tissue: correlation of observed and predicted across genes, and r²."""
    pred = align(observed, predicted)
    o, p, m = observed.to_numpy(float), pred.to_numpy(float), observed.notna().to_numpy()
    return pd.DataFrame({
        "tissue": list(observed.columns),
        "n_genes": m.sum(axis=0),
        "pearson": masked_pearson(o, p, m, axis=0),
        "spearman": masked_pearson(_masked_ranks(o, m, 0), _masked_ranks(p, m, 0), m, axis=0),
        "r2": _masked_r2(o, p, m, axis=0),
    })


def per_gene_metrics(observed: pd.DataFrame, predicted: pd.DataFrame) -> pd.DataFrame:
    """One row per gene: agreement of centred observed and predicted profiles across tissues.

    The prediction is centred over the same observed tissues as the observation.
    """
    pred = align(observed, predicted)
    o, p, m = observed.to_numpy(float), pred.to_numpy(float), observed.notna().to_numpy()
    oc, pc = level_profile(o, m).profile, level_profile(p, m).profile  # 0 where unobserved
    return pd.DataFrame({
        "gene_id": list(observed.index),
        "n_tissues": m.sum(axis=1),
        "pearson_centred": masked_pearson(oc, pc, m, axis=1),
        "spearman_centred": masked_pearson(_masked_ranks(oc, m, 1), _masked_ranks(pc, m, 1),
                                            m, axis=1),
        "r2_centred": _masked_r2(oc, pc, m, axis=1),
    })


def _median_pearson(observed: pd.DataFrame, predicted: pd.DataFrame) -> float:
    """Pearson across genes of the per-gene median over observed tissues (NaN-aware)."""
    mask = observed.notna().to_numpy()
    obs = np.nanmedian(np.where(mask, observed.to_numpy(float), np.nan), axis=1)
    pred = np.nanmedian(np.where(mask, predicted.to_numpy(float), np.nan), axis=1)
    ok = np.isfinite(obs) & np.isfinite(pred)
    return float(masked_pearson(pred[ok][None], obs[ok][None], np.ones((1, int(ok.sum())), bool),
                                axis=1)[0]) if ok.sum() > 2 else float("nan")


def evaluate_predictions(observed: pd.DataFrame, predicted: pd.DataFrame, *,
                         model: str = "model") -> EvaluationResult:
    """Per-tissue and per-gene metrics plus a summary dict.

    Summary keys: model, n_genes, n_tissues, n_observed, pearson_tissue, spearman_tissue,
    r2_tissue (means over tissues), pearson_gene, spearman_gene, r2_gene (means over genes with a
    defined value), n_gene_undefined (genes whose per-gene Pearson is NaN), pearson_median
    (Pearson across genes of each gene's median over its observed tissues — the "median
    expression" of Xpresso-style models), r2_pooled (one r² over every observed cell), mse
    (over every observed cell).
    """
    pt = per_tissue_metrics(observed, predicted)
    pg = per_gene_metrics(observed, predicted)
    pred = align(observed, predicted)
    m = observed.notna().to_numpy()
    o = observed.to_numpy(float)[m]
    p = pred.to_numpy(float)[m]
    ss_res = float(((o - p) ** 2).sum())
    ss_tot = float(((o - o.mean()) ** 2).sum()) if o.size else float("nan")
    summary: dict[str, float | int | str] = {
        "model": model,
        "n_genes": int(observed.shape[0]),
        "n_tissues": int(observed.shape[1]),
        "n_observed": int(m.sum()),
        "pearson_tissue": float(pt["pearson"].mean()),
        "spearman_tissue": float(pt["spearman"].mean()),
        "r2_tissue": float(pt["r2"].mean()),
        "pearson_gene": float(pg["pearson_centred"].mean()),
        "spearman_gene": float(pg["spearman_centred"].mean()),
        "r2_gene": float(pg["r2_centred"].mean()),
        "n_gene_undefined": int(pg["pearson_centred"].isna().sum()),
        "pearson_median": _median_pearson(observed, pred),
        "r2_pooled": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
        "mse": ss_res / o.size if o.size else float("nan"),
    }
    return EvaluationResult(per_tissue=pt, per_gene=pg, summary=summary)
