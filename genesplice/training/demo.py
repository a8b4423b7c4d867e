"""The demo: the main job on the bundled real data, with the default :class:`RunConfig`.

``genesplice demo`` (and ``make demo``) calls :func:`run_demo`: build (or reuse) the knowledge
graph → pretrain the promoter encoder → train the fused model and its ablations → evaluate on the
held-out chromosomes → write predictions. The settings are the config defaults
(``configs/default.toml``), the same ones ``genesplice train`` uses; only the output folder, the
graph folder and the optional ``epochs`` / ``seeds`` / ``pretrain_steps`` / ``device`` overrides
differ.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from genesplice.graph.hetero import KnowledgeGraph
from genesplice.graph.recipes import default_recipe_path
from genesplice.training.config import DataConfig, RunConfig
from genesplice.training.experiment import load_graph, run_experiment
from genesplice.training.report import graph_report_section, graph_summary_text


def demo_config(out_dir: str | Path, *, epochs: int | None = None, seeds: int | None = None,
                pretrain_steps: int | None = None, device: str | None = None) -> RunConfig:
    """``RunConfig()`` writing to ``out_dir`` with its graph in ``out_dir/graph``; ``None``
    keeps the default of ``train.epochs`` / ``train.seeds`` / ``pretrain.steps`` /
    ``train.device``."""
    cfg = RunConfig(name="demo", out_dir=str(out_dir),
                    data=DataConfig(graph_path=str(Path(out_dir) / "graph")))
    train = {k: v for k, v in (("epochs", epochs), ("seeds", seeds), ("device", device))
             if v is not None}
    if train:
        cfg = replace(cfg, train=replace(cfg.train, **train))
    if pretrain_steps is not None:
        cfg = replace(cfg, pretrain=replace(cfg.pretrain, steps=pretrain_steps))
    return cfg


def demo_genes(kg: KnowledgeGraph, max_genes: int) -> list[str] | None:
    """``max_genes`` graph genes spread evenly over the graph's gene order (None: all)."""
    if not max_genes:
        return None
    genes = kg.node_ids["gene"]
    return genes[::max(1, len(genes) // max_genes)][:max_genes]


def _print_results(summary: dict, out_dir: Path, seconds: float) -> None:
    print("\nheld-out test metrics, mean ± sd over seeds (per-tissue Pearson / per-gene "
          "centred Pearson / r²):")
    for name, m in summary["seed_metrics"].items():
        cells = [f"{m[k + '_mean']:.3f} ± {m[k + '_sd']:.3f}"
                 for k in ("pearson_tissue", "pearson_gene", "r2_tissue")]
        print(f"  {name:36s} {' / '.join(cells)}  ({m['seeds']} seed{'s' if m['seeds'] > 1 else ''})")
    print(f"\nreport:      {summary['report']}\nplots:       {', '.join(summary['plots'][:3])} …"
          f"\ncheckpoint:  {out_dir / 'fused.pt'}\npredictions: {out_dir / 'predictions.csv'}"
          f" ({summary['unit']})\ntotal time:  {seconds:.0f} s")


def run_demo(out: str | Path = "runs/demo", *, recipe: str | None = None,
             epochs: int | None = None, seeds: int | None = None,
             pretrain_steps: int | None = None,
             max_genes: int = 0, threads: int = 0, device: str | None = None,
             progress: bool = True) -> dict:
    """The main job on the bundled data, written under ``out``:

    ``graph/`` (built knowledge graph, reused while its inputs are unchanged), ``config.toml``,
    ``pretrained_encoder.pt``, one checkpoint per model, ``report.md`` (graph summary, metrics
    of ridge / fused / ablations / pretraining on-off on the test chromosome, plots),
    ``predictions.csv`` (fused model, every gene of the expression table) and ``summary.json``.
    ``max_genes``: label only this many genes (a quick look); ``threads``: torch CPU threads
    (0: torch's default). Returns the summary dict plus ``knowledge_graph``.
    """
    t0 = time.time()
    if threads > 0:
        torch.set_num_threads(threads)
    out_dir = Path(out)
    cfg = demo_config(out_dir, epochs=epochs, seeds=seeds, pretrain_steps=pretrain_steps,
                      device=device)
    recipe = recipe or str(default_recipe_path())
    print(f"[1/4] knowledge graph ({recipe})")
    kg = load_graph(out_dir / "graph", recipe=recipe, progress=progress)
    print(graph_summary_text(kg))
    print("[2/4] data, ridge baseline, pretraining; [3/4] training; [4/4] evaluation")
    section = graph_report_section(kg, recipe=recipe, graph_dir=out_dir / "graph")
    summary = run_experiment(cfg, out_dir, graph=kg, genes=demo_genes(kg, max_genes),
                             progress=progress, command=f"genesplice demo --out {out}",
                             report_sections=section)
    _print_results(summary, out_dir, time.time() - t0)
    summary["knowledge_graph"] = kg
    return summary
