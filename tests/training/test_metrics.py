"""Metrics agree with scipy.stats on real expression values, NaN-aware (issue 5)."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genesplice.io.errors import GeneSpliceInputError
from genesplice.training.metrics import (evaluate_predictions, per_gene_metrics,
                                         per_tissue_metrics)


@pytest.fixture(scope="module")
def slice_(expression, chr8_split):
    """Observed chr8 genes (real), and a prediction: the real values of each gene shifted by a
    noise profile — deterministic, seeded."""
    obs = expression.values.loc[list(chr8_split.test)]
    rng = np.random.default_rng(0)
    pred = obs.fillna(0.0) + rng.normal(0, 0.5, size=obs.shape)
    return obs, pred


def test_per_tissue_matches_scipy(slice_):
    obs, pred = slice_
    pt = per_tissue_metrics(obs, pred)
    assert list(pt["tissue"]) == list(obs.columns)
    for i in (0, 17, 36):
        m = obs.iloc[:, i].notna().to_numpy()
        o, p = obs.iloc[:, i].to_numpy()[m], pred.iloc[:, i].to_numpy()[m]
        assert pt["n_genes"].iat[i] == m.sum()
        assert pt["pearson"].iat[i] == pytest.approx(stats.pearsonr(o, p)[0], abs=1e-12)
        assert pt["spearman"].iat[i] == pytest.approx(stats.spearmanr(o, p)[0], abs=1e-12)
        r2 = 1 - ((o - p) ** 2).sum() / ((o - o.mean()) ** 2).sum()
        assert pt["r2"].iat[i] == pytest.approx(r2, abs=1e-12)


def test_some_chr8_genes_have_missing_tissues(slice_):
    obs, _ = slice_
    assert obs.isna().any(axis=1).sum() > 0


def test_per_gene_centred_matches_scipy(slice_):
    obs, pred = slice_
    pg = per_gene_metrics(obs, pred)
    gaps = np.flatnonzero(obs.isna().any(axis=1).to_numpy())
    for i in [0, 5, int(gaps[0])]:
        m = obs.iloc[i].notna().to_numpy()
        o, p = obs.iloc[i].to_numpy()[m], pred.iloc[i].to_numpy()[m]
        oc, pc = o - o.mean(), p - p.mean()
        assert pg["n_tissues"].iat[i] == m.sum()
        if np.ptp(o) == 0:
            assert np.isnan(pg["pearson_centred"].iat[i])
            continue
        assert pg["pearson_centred"].iat[i] == pytest.approx(stats.pearsonr(oc, pc)[0], abs=1e-12)
        assert pg["spearman_centred"].iat[i] == pytest.approx(stats.spearmanr(oc, pc)[0],
                                                              abs=1e-12)
        assert pg["r2_centred"].iat[i] == pytest.approx(
            1 - ((oc - pc) ** 2).sum() / (oc ** 2).sum(), abs=1e-12)


def test_perfect_and_level_only_predictions(slice_):
    obs, _ = slice_
    perfect = evaluate_predictions(obs, obs.fillna(0.0), model="oracle").summary
    assert perfect["pearson_tissue"] == pytest.approx(1.0)
    assert perfect["r2_pooled"] == pytest.approx(1.0) and perfect["mse"] == 0.0
    # a prediction that knows only each gene's level has no tissue specificity at all
    level = obs.mean(axis=1)
    flat = pd.DataFrame(np.repeat(level.to_numpy()[:, None], obs.shape[1], 1),
                        index=obs.index, columns=obs.columns)
    res = evaluate_predictions(obs, flat, model="level")
    assert res.summary["pearson_tissue"] > 0.5      # genes' levels differ a lot
    assert res.per_gene["pearson_centred"].isna().all()   # constant profile: undefined
    assert res.summary["n_gene_undefined"] == len(obs)
    assert res.per_gene["r2_centred"].dropna().le(1e-12).all()


def test_constant_gene_is_nan_and_counted(slice_):
    obs, pred = slice_
    zeros = obs.index[(obs.fillna(0) == 0).all(axis=1)]
    res = evaluate_predictions(obs, pred)
    if len(zeros):
        assert res.per_gene.set_index("gene_id").loc[zeros, "pearson_centred"].isna().all()
    assert res.summary["n_gene_undefined"] >= len(zeros)
    assert res.summary["pearson_gene"] == pytest.approx(res.per_gene["pearson_centred"].mean())


def test_alignment_errors(slice_):
    obs, pred = slice_
    with pytest.raises(GeneSpliceInputError, match="lack 1 genes"):
        evaluate_predictions(obs, pred.iloc[1:])
    with pytest.raises(GeneSpliceInputError, match="tissues"):
        evaluate_predictions(obs, pred.iloc[:, 1:])
    bad = pred.copy()
    bad.iat[0, 0] = np.nan
    with pytest.raises(GeneSpliceInputError, match="NaN"):
        evaluate_predictions(obs, bad)
    # extra genes/tissues in predictions and reordering are fine
    res = evaluate_predictions(obs.iloc[:50], pred.iloc[::-1])
    assert res.summary["n_genes"] == 50
