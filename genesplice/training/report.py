"""Evaluation report: Markdown + PNG plots from metrics and predictions of several models.

``write_evaluation_report`` writes into ``out_dir``:

* ``report.md`` — a summary table (one row per model), the command that produced it, and a
  per-tissue table of every model's Pearson side by side;
* ``per_tissue_<metric>.png`` — per-tissue bars for all models side by side;
* ``scatter_<model>.png`` — observed vs predicted for a few tissues (one panel per tissue);
* ``summary.csv``, ``per_tissue.csv``, ``per_gene.csv`` — the tidy tables with a ``model``
  column.

``graph_summary_text`` / ``graph_report_section`` describe a built knowledge graph (nodes and
edges per type, build notes) as console text / a Markdown section (``build-graph``, the demo).
Every file is written atomically (:mod:`genesplice.io.atomic`).

Matplotlib draws with the Agg canvas attached to each figure inside the function, so nothing
about the global backend is set at import time or changed for the caller.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genesplice.graph.hetero import KnowledgeGraph
from genesplice.io.atomic import atomic_write, atomic_write_text
from genesplice.io.constants import UNIT_LABELS
from genesplice.training.metrics import EvaluationResult, align, masked_pearson

SUMMARY_COLUMNS = ("pearson_tissue", "spearman_tissue", "r2_tissue", "pearson_gene",
                   "spearman_gene", "r2_pooled", "n_genes", "n_gene_undefined")


@dataclass(frozen=True)
class ReportPaths:
    markdown: Path
    plots: tuple[Path, ...]
    tables: tuple[Path, ...]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def _save_figure(fig, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _fmt(v, digits: int = 3) -> str:
    if isinstance(v, (float, np.floating)):
        return "nan" if np.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def markdown_table(df: pd.DataFrame, digits: int = 3) -> str:
    """``df`` as a Markdown table, floats with ``digits`` decimals (NaN as ``nan``)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, digits) for v in row) + " |")
    return "\n".join(lines)


def plot_per_tissue_bars(results: Mapping[str, EvaluationResult], metric: str, path: Path
                         ) -> Path:
    """Grouped horizontal bars: one group per tissue, one bar per model."""
    models = list(results)
    tissues = list(next(iter(results.values())).per_tissue["tissue"])
    fig = _figure(8.0, max(4.0, 0.28 * len(tissues) * max(1, len(models)) ** 0.5 + 1.5))
    ax = fig.add_subplot()
    height = 0.8 / len(models)
    y = np.arange(len(tissues))
    for k, m in enumerate(models):
        vals = results[m].per_tissue.set_index("tissue").loc[tissues, metric].to_numpy()
        ax.barh(y + (k - (len(models) - 1) / 2) * height, vals, height=height,
                label=f"{m} (mean {np.nanmean(vals):.3f})")
    ax.set_yticks(y, tissues, fontsize=7)
    ax.set_ylim(len(tissues) - 0.5, -0.5)  # first tissue on top
    ax.set_xlabel(f"{metric} across held-out genes")
    ax.axvline(0, color="black", lw=0.5)
    ax.legend(fontsize=7, loc="lower right")
    _save_figure(fig, path)
    return path


def plot_observed_vs_predicted(observed: pd.DataFrame, predicted: pd.DataFrame,
                               tissues: Sequence[str], path: Path, *, title: str = "",
                               unit: str = UNIT_LABELS["log10_ntpm1"]) -> Path:
    """One scatter panel per tissue (observed cells only) with Pearson r in the title."""
    pred = align(observed, predicted)
    n = len(tissues)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig = _figure(3.2 * ncol, 3.0 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for ax, t in zip(axes.ravel(), tissues):
        o, p = observed[t].to_numpy(float), pred[t].to_numpy(float)
        ok = ~np.isnan(o)
        o, p = o[ok], p[ok]
        ax.scatter(o, p, s=4, alpha=0.4, linewidths=0)
        lo, hi = float(min(o.min(), p.min())), float(max(o.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.7)
        r = float(masked_pearson(o, p, np.ones(len(o), dtype=bool), axis=0))
        ax.set_title(f"{t} (r = {r:.2f}, n = {len(o)})", fontsize=8)
        ax.set_xlabel(f"observed {unit}", fontsize=7)
        ax.set_ylabel(f"predicted {unit}", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=9)
    _save_figure(fig, path)
    return path


def write_evaluation_report(out_dir: str | os.PathLike,
                            results: Mapping[str, EvaluationResult], *,
                            observed: pd.DataFrame,
                            predictions: Mapping[str, pd.DataFrame] | None = None,
                            title: str = "GeneSplice evaluation", command: str | None = None,
                            notes: Sequence[str] = (), sections: Sequence[str] = (),
                            scatter_tissues: Sequence[str] | None = None,
                            n_scatter_tissues: int = 6, unit: str = UNIT_LABELS["log10_ntpm1"],
                            metrics: Sequence[str] = ("pearson", "spearman", "r2")
                            ) -> ReportPaths:
    """Write the Markdown report, plots and tables for ``results`` (model name -> metrics).

    ``observed``: the held-out genes x tissues table the metrics were computed on;
    ``predictions``: model name -> predictions (for scatter plots; models without one get no
    scatter). ``scatter_tissues`` default: the ``n_scatter_tissues`` tissues spread evenly over
    the table's columns. ``command`` is quoted in the report so the numbers can be reproduced.
    ``sections``: Markdown lines placed right after the title (e.g. the knowledge graph's).
    """
    if not results:
        raise ValueError("write_evaluation_report needs at least one model's results")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    predictions = dict(predictions or {})
    tissues = list(observed.columns)
    if scatter_tissues is None:
        idx = np.unique(np.linspace(0, len(tissues) - 1, min(n_scatter_tissues, len(tissues)))
                        .round().astype(int))
        scatter_tissues = [tissues[i] for i in idx]

    summary = pd.DataFrame([{**r.summary, "model": m} for m, r in results.items()])
    cols = ["model"] + [c for c in SUMMARY_COLUMNS if c in summary.columns]
    per_tissue = pd.concat([r.per_tissue.assign(model=m) for m, r in results.items()],
                           ignore_index=True)
    per_gene = pd.concat([r.per_gene.assign(model=m) for m, r in results.items()],
                         ignore_index=True)
    tables = []
    for name, df in (("summary.csv", summary), ("per_tissue.csv", per_tissue),
                     ("per_gene.csv", per_gene)):
        atomic_write_text(out / name, df.to_csv(index=False))
        tables.append(out / name)

    plots = [plot_per_tissue_bars(results, m, out / f"per_tissue_{m}.png") for m in metrics]
    for name, pred in predictions.items():
        plots.append(plot_observed_vs_predicted(
            observed, pred, scatter_tissues, out / f"scatter_{_slug(name)}.png",
            title=f"{name}: observed vs predicted, held-out genes", unit=unit))

    wide = per_tissue.pivot(index="tissue", columns="model", values="pearson")
    wide = wide.loc[tissues, list(results)].reset_index()
    md = [f"# {title}", "", *sections]
    if command:
        md += ["Produced by:", "", "```", command, "```", ""]
    md += [f"Held-out genes: {observed.shape[0]}; tissues: {observed.shape[1]}; unit: {unit}.",
           "Per-tissue metrics are computed across genes and averaged over tissues; per-gene "
           "metrics across tissues after centring each gene (tissue specificity), averaged over "
           "genes with a defined value (`n_gene_undefined` genes are constant).", ""]
    md += [f"- {n}" for n in notes]
    if notes:
        md.append("")
    md += ["## Summary", "", markdown_table(summary[cols]), "", "## Plots", ""]
    md += [f"![{p.stem}]({p.name})" for p in plots]
    md += ["", "## Per-tissue Pearson", "", markdown_table(wide), ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(md))
    return ReportPaths(markdown=path, plots=tuple(plots), tables=tuple(tables))


def graph_summary_text(kg: KnowledgeGraph) -> str:
    """The nodes/edges-per-type table and the build report lines, as console text."""
    table = kg.summary().to_string(index=False, formatters={"count": "{:,}".format})
    return "\n".join([table, *kg.report_lines()])


def graph_report_section(kg: KnowledgeGraph, *, recipe: str | os.PathLike,
                         graph_dir: str | os.PathLike) -> list[str]:
    """Markdown lines of a ``## Knowledge graph`` section (recipe, folder, counts, notes)."""
    md = ["## Knowledge graph", "", f"Recipe: `{recipe}`; built graph: `{graph_dir}`", "",
          "| kind | type | count |", "|---|---|---:|"]
    md += [f"| {r.kind} | {r.type} | {r.count:,} |" for r in kg.summary().itertuples()]
    return md + ["", *[f"- {x}" for x in kg.report_lines()], ""]
