"""Plots for explanations (matplotlib): a logo-style attribution track over a gene's sequence,
an in-silico mutagenesis heat map and a neighbour-attention bar chart.

They take the DataFrames that :class:`genesplice.api.GeneSplice` returns
(``attributions(...)``, ``attention(...)``) and draw on a given ``ax`` or a new figure; each
returns the ``Axes`` it drew on (``plot_explanation`` returns the ``Figure``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from genesplice.api.base import RELATION_LABELS

BASE_COLOURS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839", "N": "#999999"}
#: one colour per relation label (GO term, pathway, regulator, target)
RELATION_COLOURS = dict(zip(RELATION_LABELS.values(),
                            ("#4C72B0", "#DD8452", "#55A868", "#8172B3"), strict=True))


def _axes(ax, figsize):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


def _letter(ax, base: str, x: float, y: float, height: float, colour: str) -> None:
    """Draw ``base`` filling ``[x - 0.45, x + 0.45] × [y, y + height]``."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    path = TextPath((0, 0), base, size=1, prop=FontProperties(family="DejaVu Sans",
                                                               weight="bold"))
    box = path.get_extents()
    if box.width <= 0 or box.height <= 0 or height <= 0:
        return
    t = (Affine2D().translate(-box.x0, -box.y0).scale(0.9 / box.width, height / box.height)
         .translate(x - 0.45, y))
    ax.add_patch(PathPatch(t.transform_path(path), facecolor=colour, edgecolor="none"))


def plot_attribution_track(attributions: pd.DataFrame, column: str = "grad_x_input_centred",
                           ax=None, title: str | None = None):
    """Sequence-logo-style track: each reference base drawn as a letter whose height is its
    attribution (above the axis when raising the prediction, below when lowering it).

    ``attributions``: one row per base with ``offset_to_tss``, ``base`` and ``column``.
    """
    ax = _axes(ax, (12, 2.5))
    x = attributions["offset_to_tss"].to_numpy()
    values = attributions[column].to_numpy(dtype=float)
    for xi, base, v in zip(x, attributions["base"], values):
        if np.isfinite(v) and v != 0:
            _letter(ax, base, xi, min(v, 0.0), abs(v), BASE_COLOURS.get(base, "#999999"))
    finite = values[np.isfinite(values)]
    span = float(np.abs(finite).max()) if finite.size else 1.0
    span = span or 1.0
    ax.set_xlim(x.min() - 1, x.max() + 1)
    ax.set_ylim(-1.1 * span, 1.1 * span)
    ax.axhline(0, color="black", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("position relative to the TSS (bp)")
    ax.set_ylabel(column.replace("_", " "))
    if title:
        ax.set_title(title)
    return ax


def plot_ism_heatmap(attributions: pd.DataFrame, ax=None, title: str | None = None):
    """Heat map of in-silico mutagenesis: Δ prediction for each base at each position
    (columns ``ism_A … ism_T``; reference bases are 0)."""
    ax = _axes(ax, (12, 2))
    cols = [f"ism_{b}" for b in "ACGT"]
    sub = attributions.dropna(subset=cols)
    m = sub[cols].to_numpy(dtype=float).T
    lim = float(np.abs(m).max()) if m.size else 1.0
    x = sub["offset_to_tss"].to_numpy()
    im = ax.imshow(m, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                   extent=(x.min() - 0.5, x.max() + 0.5, 3.5, -0.5), interpolation="nearest")
    ax.set_yticks(range(4), list("ACGT"))
    ax.set_xlabel("position relative to the TSS (bp)")
    ax.figure.colorbar(im, ax=ax, label="Δ prediction", fraction=0.03, pad=0.01)
    if title:
        ax.set_title(title)
    return ax


def plot_neighbour_attention(neighbours: pd.DataFrame, top: int = 8, ax=None,
                             title: str | None = None):
    """Horizontal bars of the ``top`` neighbours per relation by attention weight."""
    sub = (neighbours.sort_values("weight", ascending=False).groupby("relation", sort=False)
           .head(top))
    sub = sub.iloc[::-1]
    ax = _axes(ax, (7, 0.3 * max(len(sub), 4) + 1))
    labels = [f"{n[:45]} ({r})" for n, r in zip(sub["neighbour_name"], sub["relation"])]
    colours = [RELATION_COLOURS.get(r, "#999999") for r in sub["relation"]]
    ax.barh(range(len(sub)), sub["weight"], color=colours)
    ax.set_yticks(range(len(sub)), labels, fontsize=8)
    ax.set_xlabel("GAT attention (mean over heads and layers; sums to 1 per relation)")
    if title:
        ax.set_title(title)
    return ax


def plot_labelled_neighbours(neighbours: pd.DataFrame, top: int = 8, ax=None,
                             title: str | None = None):
    """Horizontal bars of the ``top`` labelled neighbours by how far each pulled the
    prediction (``contribution``; red up, blue down), labelled with the annotations the two
    genes share (:meth:`GeneSplice.labelled_neighbours`)."""
    sub = neighbours.head(top).iloc[::-1]
    ax = _axes(ax, (7, 0.3 * max(len(sub), 4) + 1))
    labels = [f"{g} — {a[:50]}" if a else g
              for g, a in zip(sub["neighbour"], sub["shared_annotations"])]
    colours = ["#D62839" if v > 0 else "#255C99" for v in sub["contribution"]]
    ax.barh(range(len(sub)), sub["contribution"], color=colours)
    ax.axvline(0, color="black", lw=0.5)
    ax.set_yticks(range(len(sub)), labels, fontsize=8)
    ax.set_xlabel("pull on the tissue profile (gate × attention × neighbour's observed profile)")
    if title:
        ax.set_title(title)
    return ax


def plot_explanation(explanation, top: int = 8):
    """One figure: labelled neighbours (if the model reads labels), neighbour attention,
    gradient × input track and ISM heat map."""
    import matplotlib.pyplot as plt

    title = (f"{explanation.gene} in {explanation.tissue}: predicted "
             f"{explanation.prediction:.2f} {explanation.unit}")
    panels = []
    labelled = explanation.labelled_neighbours
    if labelled is not None and len(labelled):
        panels.append((2, lambda ax, t: plot_labelled_neighbours(
            labelled, top=top, ax=ax, title=f"{t}\nlabelled neighbours (training genes) read "
                                           "by the label attention")))
    if len(explanation.neighbours):
        panels.append((2, lambda ax, t: plot_neighbour_attention(explanation.neighbours,
                                                                 top=top, ax=ax, title=t)))
    if explanation.attributions is not None:
        panels.append((1, lambda ax, t: plot_attribution_track(
            explanation.attributions, ax=ax, title="gradient × input (centred over bases)")))
        panels.append((1, lambda ax, t: plot_ism_heatmap(explanation.attributions, ax=ax,
                                                         title="in-silico mutagenesis")))
    fig = plt.figure(figsize=(12, 2.2 * sum(h for h, _ in panels) + 1), constrained_layout=True)
    grid = fig.add_gridspec(max(len(panels), 1), 1,
                            height_ratios=[h for h, _ in panels] or [1])
    for i, (_, draw) in enumerate(panels):
        draw(fig.add_subplot(grid[i]), title if i == 0 else None)
    return fig
