"""Evaluation report from real chr8 results (ridge + a level-only reference) (issue 5)."""
import sys

import numpy as np
import pandas as pd
import pytest

from genesplice.training.metrics import evaluate_predictions
from genesplice.training.report import write_evaluation_report


@pytest.fixture(scope="module")
def chr8_results(ridge_chr8, membership, expression, chr8_split):
    obs = expression.values.loc[list(chr8_split.test)]
    ridge = ridge_chr8.predict(membership, chr8_split.test)
    # reference: the ridge's own level for every tissue (no tissue specificity)
    level = pd.DataFrame(np.repeat(ridge.mean(axis=1).to_numpy()[:, None], obs.shape[1], 1),
                         index=obs.index, columns=obs.columns)
    preds = {"ridge": ridge, "ridge level only": level}
    return obs, preds, {m: evaluate_predictions(obs, p, model=m) for m, p in preds.items()}


def test_report_files(tmp_path, chr8_results):
    obs, preds, results = chr8_results
    mpl_before = "matplotlib.pyplot" in sys.modules
    paths = write_evaluation_report(tmp_path / "eval", results, observed=obs, predictions=preds,
                                    command="pytest tests/training/test_report.py",
                                    notes=["test chr8, validation chr9"])
    assert ("matplotlib.pyplot" in sys.modules) == mpl_before  # no pyplot / global backend
    names = sorted(p.name for p in paths.plots)
    assert names == ["per_tissue_pearson.png", "per_tissue_r2.png", "per_tissue_spearman.png",
                     "scatter_ridge.png", "scatter_ridge_level_only.png"]
    for p in paths.plots:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    md = paths.markdown.read_text()
    assert md.startswith("# GeneSplice evaluation")
    assert "pytest tests/training/test_report.py" in md and "test chr8" in md
    for p in paths.plots:
        assert f"({p.name})" in md
    s = results["ridge"].summary
    assert f"| ridge | {s['pearson_tissue']:.3f} |" in md
    for t in obs.columns:  # every tissue, named as in the expression table
        assert f"| {t} |" in md
    summary = pd.read_csv(tmp_path / "eval" / "summary.csv")
    assert list(summary["model"]) == ["ridge", "ridge level only"]
    assert summary.loc[0, "pearson_gene"] == pytest.approx(s["pearson_gene"])
    per_tissue = pd.read_csv(tmp_path / "eval" / "per_tissue.csv")
    assert len(per_tissue) == 2 * 37
    assert not [p for p in (tmp_path / "eval").iterdir() if p.name.startswith(".")]


def test_report_needs_results(tmp_path, chr8_results):
    obs, _, _ = chr8_results
    with pytest.raises(ValueError):
        write_evaluation_report(tmp_path, {}, observed=obs)


def test_a_failed_figure_write_leaves_no_file(tmp_path):
    from genesplice.training.report import _save_figure

    class DiskFull:
        def savefig(self, path, **kwargs):
            with open(path, "wb") as fh:
                fh.write(b"\x89PNG partial")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _save_figure(DiskFull(), tmp_path / "plot.png")
    assert list(tmp_path.iterdir()) == []
