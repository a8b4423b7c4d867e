"""The window view end to end on real bundled DNA (GRCh37 chr20 + chrX 1-70 Mb): config checks,
window embeddings as training data (cached, reused), the window-only model trained on the genes
that have a window, and the report rows."""
import json
from dataclasses import replace

import numpy as np
import pytest

from genesplice.io.errors import GeneSpliceInputError
from genesplice.training.config import DataConfig, RunConfig, load_config, with_overrides
from genesplice.training.experiment import run_experiment

SHIPPED = "configs/long_window_cohort.toml"


def test_config_checks_the_window_settings():
    with pytest.raises(GeneSpliceInputError, match="data.sequence_view = 'windows'"):
        DataConfig(sequence_view="windows")
    with pytest.raises(GeneSpliceInputError, match="1 … 1,048,576 bp"):
        DataConfig(window_upstream=1_000_000, window_downstream=100_000)
    assert DataConfig(sequence_view="both").uses_window and DataConfig().uses_promoter
    assert not DataConfig().uses_window


def test_shipped_long_window_config():
    cfg = load_config(SHIPPED)
    assert cfg.data.sequence_view == "both"
    assert cfg.data.window_upstream >= 50_000 and cfg.data.window_downstream >= 50_000
    assert cfg.train.test_chromosomes == ("chr20",) and "chr20" not in cfg.train.val_chromosomes
    assert cfg.train.variants[0] == "fused" and "window_only" in cfg.train.variants


@pytest.fixture(scope="module")
def run(window_run):
    """The session's small window run (tests/conftest.py: fused + window_only, ±2 kb)."""
    return (window_run["cfg"], window_run["out"], window_run["summary"], window_run["genes"],
            window_run["kg"])


def test_window_run_reports_windows_and_rows(run, capsys):
    cfg, out, summary, _, _ = run
    report = summary["data"]
    assert report["genes_with_window"] > 500            # chr20 + chrX 1-70 Mb genes
    assert report["n_test_with_window"] > 0 and report["n_train_with_window"] > 0
    assert report["n_val_with_window"] == 0             # chr9: no DNA bundled
    metrics = summary["seed_metrics"]
    assert {"fused", "window_only"} <= set(metrics)
    assert all(np.isfinite(m["pearson_median_mean"]) for m in metrics.values())
    md = (out / "run" / "report.md").read_text()
    assert "median-expression Pearson" in md and "window_only" in md
    assert (out / "cache" / "index.json").exists()
    assert json.loads((out / "run" / "summary.json").read_text())["data"]["genes_with_window"] \
        == report["genes_with_window"]


def test_window_only_model_learns_from_genes_with_a_window(run):
    _, out, _, _, _ = run
    import pandas as pd
    history = pd.read_csv(out / "run" / "history_window_only.csv")
    assert history["val_gene_pearson"].isna().all()     # no validation gene has a window


def test_second_run_reuses_the_embedding_store(run, capsys):
    cfg, out, _, pick, kg = run
    cfg2 = replace(cfg, train=replace(cfg.train, epochs=1))
    run_experiment(cfg2, out / "run2", variants=("window_only",), graph=kg, genes=pick,
                   progress=False)
    printed = capsys.readouterr().out
    assert "0 embedded now" in printed and "reused" in printed
