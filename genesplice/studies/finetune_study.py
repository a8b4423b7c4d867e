"""Does fine-tuning a trained model beat training from scratch and ridge on new tissues with few
labelled genes? Real data, held-out chromosomes (test chr8, validation chr9 by default).

1. The bundled HPA table is cut into a **base** table (25 tissues) and a **new** table (the
   other 12, :data:`NEW_TISSUES`: every third tissue), both written as files.
2. A base ``fused`` model is trained on the base table only (same chromosome split), so it has
   never seen the new tissues nor any test-chromosome label.
3. For each number of labelled genes (500 / 2,000 / all, drawn off the test chromosomes;
   every test-chromosome gene kept for evaluation only) and seed: ridge, the ``fused`` model
   from scratch and the base model fine-tuned
   (:func:`~genesplice.training.finetune.finetune_model`) on the new table — the same genes and
   the same training settings for the two neural models; metrics on the test genes.

:func:`run_finetune_study` writes ``finetune_study.csv`` (one row per model, size and seed)
and ``finetune_study.md`` (mean ± sd over seeds).
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from genesplice.io.atomic import atomic_write, atomic_write_text
from genesplice.io.constants import EXPRESSION
from genesplice.io.knowledge import knowledge_path
from genesplice.training.config import DataConfig, RunConfig, with_overrides
from genesplice.training.experiment import (evaluate_models, fit_ridge, load_graph,
                                            prepare_from_config, ridge_predict, train_variant)
from genesplice.training.finetune import (MODEL_NAME, finetune_config, finetune_model,
                                          load_base, pick_genes, small_table_batch)
from genesplice.training.pretrain import load_pretrained_encoder
from genesplice.training.report import markdown_table

#: every third of the 37 bundled HPA tissues: the "new" tissues the base model never sees
NEW_TISSUES = ("adrenal gland", "cerebellum", "colon", "fallopian tube", "hypothalamus", "lung",
               "pancreas", "putamen", "skeletal muscle", "spinal cord", "substantia nigra",
               "urinary bladder")
SIZES = (500, 2000, 0)          # labelled genes off the test chromosomes; 0 = all
METRICS = ("pearson_tissue", "pearson_gene", "r2_tissue")


def split_table(out_dir: str | os.PathLike, new_tissues=NEW_TISSUES,
                source: str | os.PathLike | None = None, *, sep: str = "\t",
                suffix: str = "tsv") -> tuple[Path, Path]:
    """Write the bundled (or ``source``) wide nTPM table as ``base_tissues.<suffix>`` (every
    tissue but ``new_tissues``) and ``new_tissues.<suffix>`` (id columns + ``new_tissues``).
    Returns the two paths."""
    src = Path(source) if source else knowledge_path(EXPRESSION)
    raw = pd.read_csv(src, sep="\t", dtype={"ensembl_id": str, "gene_symbol": str})
    missing = [t for t in new_tissues if t not in raw.columns]
    if missing:
        raise ValueError(f"tissues not in {src}: {missing}")
    ids = ["ensembl_id", "gene_symbol"]
    base_cols = [c for c in raw.columns if c not in ids and c not in new_tissues]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = out / f"base_tissues.{suffix}", out / f"new_tissues.{suffix}"
    for path, cols in zip(paths, (base_cols, list(new_tissues))):
        frame = raw[ids + cols]
        atomic_write(path, lambda tmp, f=frame: f.to_csv(tmp, sep=sep, index=False))
    return paths


def train_base(cfg: RunConfig, out_dir: Path, *, graph, encoder_state: dict | None,
               progress: bool):
    """The base ``fused`` model on ``cfg``'s (base) table: ``(out_dir/fused.pt, its data)``."""
    data = prepare_from_config(cfg, graph=graph, progress=progress)
    ridge = fit_ridge(data, cfg)
    train_variant("fused", data, cfg, ridge=ridge, out_dir=out_dir, encoder_state=encoder_state,
                  progress=progress)
    return out_dir / "fused.pt", data


def _row(model: str, n: int, seed: int, n_train: int, result, seconds: float) -> dict:
    return {"model": model, "labelled_genes": n, "seed": seed, "n_train": n_train,
            **{m: result.summary[m] for m in METRICS}, "seconds": round(seconds, 1)}


def run_finetune_study(out_dir: str | os.PathLike, *, graph_path: str | os.PathLike,
                       pretrained_encoder: str | os.PathLike | None = None,
                       sizes=SIZES, seeds_small: int = 2, seeds_large: int = 1,
                       overrides=(), finetune_overrides=(), freeze_parts=(),
                       base_checkpoint: str | os.PathLike | None = None,
                       first_seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """The study (module docstring) under ``out_dir``. ``overrides``: ``KEY=VALUE`` for the
    base model's and the new models' run config (e.g. ``train.epochs=8``);
    ``finetune_overrides``: for the new models only (scratch and fine-tuned alike);
    ``seeds_small`` seeds at sizes ≤ 500, ``seeds_large`` above; ``base_checkpoint``: reuse a
    base model trained earlier by this study; ``first_seed``: seeds count from here (to add
    seeds to an earlier run). Returns the table of every run."""
    out = Path(out_dir)
    base_table, new_table = split_table(out / "tables")
    graph = load_graph(graph_path, progress=progress)
    cfg = RunConfig(name="finetune_study", out_dir=str(out / "base"),
                    data=DataConfig(expression_path=str(base_table.resolve()),
                                    graph_path=str(graph_path)))
    cfg = with_overrides(cfg, [*overrides, "train.seeds=1"])
    encoder_state = (load_pretrained_encoder(pretrained_encoder).state_dict
                     if pretrained_encoder else None)
    t0 = time.time()
    base_data = None
    if base_checkpoint is None:
        base_checkpoint, base_data = train_base(cfg, out / "base", graph=graph,
                                                encoder_state=encoder_state, progress=progress)
    base = load_base(base_checkpoint, graph=graph, data=base_data, progress=progress)
    print(f"base model: {len(base.tissues)} tissues ({time.time() - t0:.0f} s)")
    new_cfg = finetune_config(base, new_table, out, [*overrides, *finetune_overrides])
    full = prepare_from_config(new_cfg, graph=graph, progress=progress)
    rows = []
    for n in sizes:
        n_seeds = seeds_small if 0 < n <= 500 else seeds_large
        for seed in range(first_seed, first_seed + n_seeds):
            genes = pick_genes(full, n, seed=seed)
            data = prepare_from_config(new_cfg, graph=graph, genes=genes, progress=progress)
            n_train = len(data.rows["train"])
            run_cfg = replace(new_cfg, train=replace(
                new_cfg.train, seed=seed,
                batch_size=small_table_batch(new_cfg.train.batch_size, n_train)))
            t = time.time()
            ridge = fit_ridge(data, run_cfg)
            preds = {"ridge": ridge_predict(ridge, data, torch.arange(data.n_genes))}
            secs = {"ridge": time.time() - t}
            t = time.time()
            scratch = train_variant("fused", data, run_cfg, ridge=ridge,
                                    out_dir=out / "runs" / f"n{n}_s{seed}",
                                    encoder_state=encoder_state, progress=progress,
                                    tag="scratch")
            preds["from scratch"], secs["from scratch"] = scratch.predictions, time.time() - t
            t = time.time()
            ft = finetune_model(base, data, run_cfg, out_dir=out / "runs" / f"n{n}_s{seed}",
                                freeze_parts=freeze_parts, progress=progress)
            preds[MODEL_NAME], secs[MODEL_NAME] = ft.predictions, time.time() - t
            preds["base + map (no training)"], secs["base + map (no training)"] = ft.mapped, 0.0
            _, _, results = evaluate_models(data, preds, split="test")
            for name, res in results.items():
                rows.append(_row(name, n or len(torch.cat([full.rows["train"],
                                                           full.rows["val"]])),
                                 seed, n_train, res, secs[name]))
            table = pd.DataFrame(rows)
            print(table.tail(len(results)).to_string(index=False))
            atomic_write(out / "finetune_study.csv",
                         lambda tmp: table.to_csv(tmp, index=False, float_format="%.4f"))
    table = pd.DataFrame(rows)
    atomic_write_text(out / "finetune_study.md", study_markdown(table, base.tissues,
                                                                new_cfg))
    return table


def study_markdown(table: pd.DataFrame, base_tissues, cfg: RunConfig) -> str:
    """Mean ± sd over seeds per model and size, on the test chromosome's genes."""
    grouped = table.groupby(["labelled_genes", "model"], sort=False)
    lines = []
    for (n, model), g in grouped:
        cell = {m: f"{g[m].mean():.3f}" + (f" ± {g[m].std(ddof=1):.3f}" if len(g) > 1 else "")
                for m in METRICS}
        lines.append({"labelled genes": f"{n:,}", "model": model, "seeds": len(g),
                      "train genes": int(g["n_train"].iloc[0]),
                      "per-tissue Pearson": cell["pearson_tissue"],
                      "per-gene Pearson": cell["pearson_gene"], "r² (per tissue)":
                      cell["r2_tissue"], "seconds": f"{g['seconds'].mean():.0f}"})
    frame = pd.DataFrame(lines)
    head = (f"Base model: fused, trained on {len(base_tissues)} tissues; new tissues: "
            f"{', '.join(NEW_TISSUES)}. Test {', '.join(cfg.train.test_chromosomes)} "
            f"(every gene of the new table there), validation "
            f"{', '.join(cfg.train.val_chromosomes)}.\n\n")
    return head + markdown_table(frame) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--graph", required=True, help="built graph folder")
    p.add_argument("--pretrained-encoder", default=None)
    p.add_argument("--base-checkpoint", default=None)
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--seeds-small", type=int, default=2, help="seeds at sizes <= 500")
    p.add_argument("--seeds-large", type=int, default=1, help="seeds above 500 (and 'all')")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", nargs="*", default=[])
    p.add_argument("--finetune-set", dest="ft_overrides", nargs="*", default=[])
    p.add_argument("--freeze", nargs="*", default=[])
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    run_finetune_study(a.out, graph_path=a.graph, pretrained_encoder=a.pretrained_encoder,
                       sizes=tuple(a.sizes), seeds_small=a.seeds_small,
                       seeds_large=a.seeds_large, overrides=a.overrides,
                       finetune_overrides=a.ft_overrides, freeze_parts=tuple(a.freeze),
                       base_checkpoint=a.base_checkpoint, first_seed=a.first_seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
