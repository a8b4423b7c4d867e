"""'Does long sequence help?' (issue 5): k-mer features, the study's scoring, its config, and the
study end to end on a small real slice (30 chrX training genes, 30 chr20 test genes). The cohort
and the windows are tested in tests/sequence (test_cohort.py, test_windows.py); the ridge in
tests/training/test_ridge.py."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from genesplice.io.errors import GeneSpliceInputError
from genesplice.sequence import PAD_INDEX, WindowSet
from genesplice.studies.long_sequence import (LongSequenceStudyConfig, kmer_features,
                                               run_long_sequence_study, score_predictions)
from genesplice.training.metrics import evaluate_predictions
from genesplice.training.ridge import CV_ALPHAS


def test_kmer_features_are_frequencies():
    synthetic = WindowSet(("a", "b"), torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3],
                                                    [1, 2, 1, 2, 4, 1, 2, PAD_INDEX]],
                                                   dtype=torch.uint8),
                          torch.tensor([[True] * 8, [True] * 7 + [False]]), 4, 4)
    x, names = kmer_features(synthetic)
    assert x.shape == (2, 64 + 256 + 3) and names[:2] == ["3mer:AAA", "3mer:AAC"]
    np.testing.assert_allclose(x[:, :64].sum(1), 1.0)
    np.testing.assert_allclose(x[:, 64:320].sum(1), 1.0)
    assert x[0, names.index("3mer:ACG")] == pytest.approx(2 / 6)
    assert x[1, names.index("gc_fraction")] == 1.0            # N and padding are not bases
    assert x[1, names.index("acgt_fraction")] == pytest.approx(6 / 8)


def test_score_predictions_adds_level_pearson_and_bootstrap_se():
    rng = np.random.default_rng(0)
    synthetic_obs = pd.DataFrame(rng.normal(size=(40, 5)), index=[f"g{i}" for i in range(40)],
                                 columns=[f"t{j}" for j in range(5)])
    synthetic_obs.iloc[2, 3] = np.nan
    synthetic_pred = synthetic_obs.to_numpy() + 0.5 * rng.normal(size=(40, 5))
    synthetic_pred[2, 3] = 7.0                                 # unobserved: must not count
    s = score_predictions(synthetic_obs, synthetic_pred, model="m", n_boot=50, seed=1)
    ref = evaluate_predictions(synthetic_obs, pd.DataFrame(synthetic_pred,
                                                           index=synthetic_obs.index,
                                                           columns=synthetic_obs.columns))
    assert s["pearson_tissue"] == ref.summary["pearson_tissue"]
    assert s["pearson_gene"] == ref.summary["pearson_gene"]
    obs_level = synthetic_obs.mean(axis=1)                     # pandas skips the NaN
    pred_level = pd.DataFrame(synthetic_pred).where(synthetic_obs.notna().to_numpy()).mean(axis=1)
    assert s["pearson_level"] == pytest.approx(np.corrcoef(obs_level, pred_level)[0, 1])
    assert 0 < s["se_pearson_tissue"] < 0.2 and 0 < s["se_pearson_gene"] < 0.2
    flat = score_predictions(synthetic_obs, np.zeros((40, 5)), model="0", n_boot=0)
    assert np.isnan(flat["pearson_level"]) and np.isnan(flat["se_pearson_tissue"])


def test_config_defaults_and_validation():
    cfg = LongSequenceStudyConfig()
    assert cfg.flanks_bp == (10_000, 50_000) and cfg.encoders == ("random", "pretrained")
    assert cfg.alphas == CV_ALPHAS and cfg.train_chromosomes == ("chrX",)
    assert LongSequenceStudyConfig(flanks_bp=[50_000, 10_000]).flanks_bp == (10_000, 50_000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1
    with pytest.raises(GeneSpliceInputError, match=r"unknown encoders \['bert'\]"):
        LongSequenceStudyConfig(encoders=("random", "bert"))
    with pytest.raises(GeneSpliceInputError, match="flanks_bp must be >= 100 bp"):
        LongSequenceStudyConfig(flanks_bp=(50,))


def test_study_end_to_end_on_a_small_slice(tmp_path):
    cfg = LongSequenceStudyConfig(n_train_genes=30, n_test_genes=30, pretrain_steps=5,
                                  main_training_promoters=False, n_boot=20, num_threads=1)
    res = run_long_sequence_study(cfg, out_dir=tmp_path)
    t = res.table
    windows = ["60 bp", "±10 kb", "±50 kb", "60 bp + ±10 kb + ±50 kb"]
    for fam in ("k-mer (3+4-mer, GC, CpG)", "encoder, random init",
                "encoder, pretrained (MLM on train windows)"):
        rows = t[t["features"] == fam].set_index("window")
        assert list(rows.index) == windows
        assert np.isfinite(rows[["pearson_tissue", "pearson_gene", "r2_pooled"]].to_numpy()).all()
        assert (rows["n_train"] == 30).all() and (rows["n_test"] == 30).all()
    assert t.loc[t["features"].str.startswith("k-mer"), "n_features"].tolist()[:3] == [323] * 3
    text = (tmp_path / "long_sequence.md").read_text()
    assert "| k-mer (3+4-mer, GC, CpG) | ±50 kb |" in text and "Pretraining: 5 steps" in text
    assert len(pd.read_csv(tmp_path / "long_sequence.csv")) == len(t) == 13
    assert res.markdown_path == tmp_path / "long_sequence.md"
    assert res.pretraining["steps"] == 5 and res.cohort.n_cohort == 844
