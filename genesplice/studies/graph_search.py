"""What makes the graph model earn its keep? A search over its settings, **selected on the
validation chromosome only** (chr9 by default); the test chromosome is reported for the
selected setting and shown for the others only as a check, never used to choose.

Two parts, both on the run config's data (:func:`~genesplice.training.experiment.prepare_from_config`):

1. **Fixed label smoothers** over the label edges (each gene's most similar training genes by
   annotation TF-IDF cosine), added to the ridge baseline — no training, seconds each:
   ``blend``: move ridge's profile towards the similarity-weighted mean of the neighbours'
   observed profiles (weights ``cos^p``); ``residual``: add the weighted mean of the neighbours'
   ridge residuals (the "correct" step of correct-and-smooth). This calibrates what a learned
   read-out has to beat.
2. **Graph models**: the ``graph_only`` model (GATv2 + linear path + label attention) with one
   setting changed at a time (``--set``-style overrides: depth, heads, width, neighbours,
   label read-out on/off, …), one seed each.

:func:`run_graph_search` writes ``graph_search.md`` and ``graph_search.csv``.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genesplice.io.atomic import atomic_write, atomic_write_text
from genesplice.training.config import RunConfig, with_overrides
from genesplice.training.data import TrainingData, label_edges
from genesplice.training.experiment import (
    evaluate_models,
    fit_ridge,
    prepare_from_config,
    ridge_predict,
    train_variant,
)
from genesplice.training.report import markdown_table
from genesplice.training.targets import level_profile

#: one setting changed at a time from the run config (``section.key=value`` overrides)
DEFAULT_GRID: tuple[tuple[str, ...], ...] = (
    (),
    ("model.label_attention=false",),
    ("model.n_layers=1",),
    ("model.n_layers=3",),
    ("model.heads=2",),
    ("model.heads=8",),
    ("model.hidden=64", "model.heads=4"),
    ("model.similar_genes=25",),
    ("model.similar_genes=100",),
    ("model.dropout=0.1",),
    ("train.epochs=10",),
)


def _scores(data: TrainingData, pred: np.ndarray, split: str) -> dict[str, float]:
    _, _, res = evaluate_models(data, {"m": pred}, split=split)
    s = res["m"].summary
    return {f"{split}_tissue": s["pearson_tissue"], f"{split}_gene": s["pearson_gene"]}


def smoother_table(data: TrainingData, ridge_pred: np.ndarray, *, k: int = 50,
                   powers=(1.0, 3.0), weights=(0.25, 0.5, 0.75)) -> pd.DataFrame:
    """Part 1: ridge + a fixed label smoother over ``k`` label edges per gene (see the module
    docstring); one row per (kind, power, weight) with validation and test Pearson."""
    gi = data.graph_inputs
    labelled = np.flatnonzero(gi.labelled.numpy()) if gi.labelled is not None else \
        data.rows["train"].numpy()
    edges = label_edges(data.membership_csr, labelled, k)
    src, dst = edges["label_edge_index"].numpy()
    cos = edges["label_edge_attr"].numpy()[:, 0].astype(np.float64)
    train = data.rows["train"].numpy()
    y = data.y.numpy().astype(np.float64)
    lp = level_profile(y[train], data.observed.numpy()[train])
    profile = np.zeros_like(y)
    profile[train] = lp.profile
    ridge_profile = ridge_pred - ridge_pred.mean(1, keepdims=True)
    residual = np.zeros_like(y)
    residual[train] = lp.profile - ridge_profile[train]
    n = data.n_genes
    rows = [{"kind": "ridge", "power": np.nan, "weight": 0.0,
             **_scores(data, ridge_pred, "val"), **_scores(data, ridge_pred, "test")}]
    for p in powers:
        w = sp.csr_matrix((cos ** p, (dst, src)), shape=(n, n))
        w = sp.diags(1.0 / np.maximum(np.asarray(w.sum(1)).ravel(), 1e-12)) @ w
        smooth, correct = w @ profile, w @ residual
        for a in weights:
            for kind, pred in (("blend", ridge_pred + a * (smooth - ridge_profile)),
                               ("residual", ridge_pred + a * correct)):
                rows.append({"kind": kind, "power": p, "weight": a,
                             **_scores(data, pred, "val"), **_scores(data, pred, "test")})
    return pd.DataFrame(rows)


def model_table(cfg: RunConfig, data: TrainingData, ridge, out: Path,
                grid=DEFAULT_GRID, progress: bool = False) -> pd.DataFrame:
    """Part 2: ``graph_only`` per grid entry (overrides of ``cfg``), one seed, scored on the
    validation and test chromosomes. Settings that change the data (``similar_genes``)
    re-assemble it."""
    rows = []
    for overrides in grid:
        run_cfg = with_overrides(replace(cfg, train=replace(cfg.train, seeds=1)),
                                 list(overrides))
        run_data = data
        if run_cfg.model.similar_genes != cfg.model.similar_genes or \
                run_cfg.model.reads_labels != cfg.model.reads_labels:
            run_data = prepare_from_config(run_cfg, graph=None, progress=False)
        t0 = time.time()
        vr = train_variant("graph_only", run_data, run_cfg, ridge=ridge, out_dir=out,
                           progress=progress, tag="search")
        rows.append({"setting": " ".join(overrides) or "(defaults)",
                     "seconds": time.time() - t0, **_scores(run_data, vr.predictions, "val"),
                     **_scores(run_data, vr.predictions, "test")})
        (out / "search.pt").unlink(missing_ok=True)
    return pd.DataFrame(rows)


def select(models: pd.DataFrame, margin: float) -> str:
    """The setting to keep: the best validation per-gene Pearson, unless it beats the first
    row (the current defaults) by no more than ``margin`` (e.g. the seed-to-seed sd), in
    which case the defaults stay. Test columns are never read."""
    best = models.loc[models["val_gene"].idxmax()]
    base = models.iloc[0]
    return str(best["setting"] if best["val_gene"] - base["val_gene"] > margin
               else base["setting"])


def run_graph_search(cfg: RunConfig, out_dir: str | os.PathLike, *, grid=DEFAULT_GRID,
                     margin: float = 0.002, progress: bool = False,
                     command: str | None = None) -> dict:
    """Both parts on ``cfg``'s data; writes ``graph_search.md`` / ``.csv`` into ``out_dir``
    and returns ``{"smoothers", "models", "selected"}`` (:func:`select`: the best
    validation per-gene Pearson if it beats the defaults by more than ``margin``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = prepare_from_config(cfg, progress=progress)
    ridge = fit_ridge(data, cfg)
    ridge_pred = ridge_predict(ridge, data, torch.arange(data.n_genes))
    smoothers = smoother_table(data, ridge_pred, k=max(cfg.model.similar_genes, 1))
    models = model_table(cfg, data, ridge, out, grid, progress)
    table = pd.concat([smoothers.assign(part="smoother"), models.assign(part="model")])
    atomic_write(out / "graph_search.csv", lambda tmp: table.to_csv(tmp, index=False))
    selected = select(models, margin)
    split = (f"Validation: {', '.join(cfg.train.val_chromosomes)} ({len(data.rows['val'])} "
             f"genes); test: {', '.join(cfg.train.test_chromosomes)} "
             f"({len(data.rows['test'])} genes).")
    atomic_write_text(out / "graph_search.md",
                      render(smoothers, models, selected, margin, split, command))
    return {"smoothers": smoothers, "models": models, "selected": selected}


def render(smoothers: pd.DataFrame, models: pd.DataFrame, selected: str, margin: float,
           split: str, command: str | None = None) -> str:
    """The Markdown report of :func:`run_graph_search`."""
    md = ["# Graph model search (selected on validation only)", "",
          f"{split} Columns: Pearson per tissue across genes (`*_tissue`) and per gene "
          "across tissues, centred (`*_gene`).", ""]
    if command:
        md += [f"Command: `{command}`", ""]
    row = models.set_index("setting").loc[selected]
    md += ["## 1. Fixed label smoothers on top of ridge", "", markdown_table(smoothers, 4), "",
           "## 2. graph_only, one setting changed at a time (1 seed)", "",
           markdown_table(models, 4), "",
           f"Selected on validation per-gene Pearson (a change must beat the defaults by more "
           f"than {margin:g}, the seed-to-seed sd): **{selected}** "
           f"(val {row['val_gene']:.4f}, test {row['test_gene']:.4f}).", ""]
    return "\n".join(md)
