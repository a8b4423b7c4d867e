"""The graph-model search on a small real slice: smoother rows, one model row, selection on
validation only."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from genesplice.studies.graph_search import model_table, run_graph_search, smoother_table
from genesplice.training.config import RunConfig
from genesplice.training.experiment import fit_ridge, prepare_from_config, ridge_predict
from tests.slices import gene_slice


@pytest.fixture(scope="module")
def small(kg):
    pick = gene_slice(kg, 300, 50, seed=2)
    cfg = RunConfig()
    cfg = replace(cfg, train=replace(cfg.train, epochs=1, batch_size=128, warmup_steps=1))
    data = prepare_from_config(cfg, graph=kg, genes=pick, progress=False)
    return cfg, data, fit_ridge(data, cfg)


def test_smoothers_start_from_ridge_and_change_it(small):
    cfg, data, ridge = small
    pred = ridge_predict(ridge, data, torch.arange(data.n_genes))
    table = smoother_table(data, pred, k=20, powers=(3.0,), weights=(0.5,))
    assert list(table["kind"]) == ["ridge", "blend", "residual"]
    assert np.isfinite(table[["val_gene", "test_gene", "val_tissue"]].to_numpy()).all()
    # the smoothers move the predictions: their scores differ from ridge's
    assert (table["val_gene"].iloc[1:] != table["val_gene"].iloc[0]).all()


def test_model_rows_and_selection(small, tmp_path, monkeypatch):
    cfg, data, ridge = small
    table = model_table(cfg, data, ridge, tmp_path, grid=((), ("model.heads=2",)))
    assert list(table["setting"]) == ["(defaults)", "model.heads=2"]
    assert np.isfinite(table[["val_gene", "test_gene"]].to_numpy()).all()
    assert not (tmp_path / "search.pt").exists()

    # the selection reads validation only: a test column that would pick the other row
    # does not change it
    import genesplice.studies.graph_search as gsearch

    fake = pd.DataFrame({"setting": ["(defaults)", "a", "b"], "seconds": [1.0] * 3,
                         "val_tissue": [0.5] * 3, "val_gene": [0.28, 0.30, 0.20],
                         "test_tissue": [0.5] * 3, "test_gene": [0.50, 0.10, 0.90]})
    monkeypatch.setattr(gsearch, "prepare_from_config", lambda *a, **k: data)
    monkeypatch.setattr(gsearch, "model_table", lambda *a, **k: fake)
    result = run_graph_search(cfg, tmp_path / "out", margin=0.01)
    assert result["selected"] == "a"
    assert "**a** (val 0.3000, test 0.1000)" in (tmp_path / "out" / "graph_search.md").read_text()
    # within the margin the defaults stay
    assert gsearch.select(fake, margin=0.05) == "(defaults)"
