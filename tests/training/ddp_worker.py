"""Worker for tests/training/test_distributed.py (not a test itself): one small real training
run of the fused model, in one process or as one rank of ``torchrun``.

``python tests/training/ddp_worker.py GRAPH_DIR OUT_DIR [KEY=VALUE ...] [--resume]``: a saved
default graph, the run folder, config overrides (as ``genesplice train --set``). The labelled
genes are a fixed real slice (:data:`N_GENES`, seeded; 40 chr8 test and 40 chr9 validation
genes among them); the whole graph is kept. Rank 0 writes ``OUT_DIR/fused.pt`` (the
checkpoint), ``OUT_DIR/predictions.npy`` (every graph gene × tissue) and
``OUT_DIR/run.json`` (ranks, restarts, the epoch it resumed from, the test genes' mean
per-tissue Pearson r). After a torchrun restart (``--max-restarts``) it resumes from the
checkpoint, as ``genesplice train`` does.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

from genesplice.graph.hetero import KnowledgeGraph
from genesplice.training import distributed
from genesplice.training.checkpoint import load_checkpoint
from genesplice.training.config import RunConfig, with_overrides
from genesplice.training.experiment import fit_ridge, prepare_from_config, train_variant
from genesplice.training.loop import validation_scores
from genesplice.training.splits import gene_chromosomes

N_GENES = 200


def pick_genes(kg: KnowledgeGraph, n: int = N_GENES) -> list[str]:
    chrom = gene_chromosomes()
    genes = [g for g in kg.node_ids["gene"] if g in chrom.index]
    by = {c: [g for g in genes if chrom[g] == c] for c in ("chr8", "chr9")}
    rest = [g for g in genes if chrom[g] not in ("chr8", "chr9")]
    rng = np.random.default_rng(0)
    return [str(g) for g in rng.choice(rest, n - 80, replace=False)] + by["chr8"][:40] + \
        by["chr9"][:40]


def main(argv: list[str]) -> int:
    resume = "--resume" in argv
    graph_dir, out, *overrides = [a for a in argv if a != "--resume"]
    torch.set_num_threads(1)
    cfg = with_overrides(RunConfig(), ["train.device=cpu", *overrides])
    with distributed.session(cfg.train.device):
        resume = resume or distributed.restart_count() > 0
        ckpt = Path(out) / "fused.pt"
        start = load_checkpoint(ckpt).epoch if resume and ckpt.exists() else 0
        kg = KnowledgeGraph.load(graph_dir)
        data = prepare_from_config(cfg, graph=kg, genes=pick_genes(kg), progress=False)
        result = train_variant("fused", data, cfg, ridge=fit_ridge(data, cfg),
                               out_dir=Path(out), progress=False, resume=resume)
        if distributed.is_rank0():
            test = data.rows["test"]
            scores = validation_scores(torch.from_numpy(result.predictions[test.numpy()]),
                                       data.y[test], data.observed[test])
            np.save(Path(out) / "predictions.npy", result.predictions)
            (Path(out) / "run.json").write_text(json.dumps({
                "world_size": distributed.world_size(),
                "restarts": distributed.restart_count(), "resumed_from_epoch": start,
                "epochs": list(result.train.history["epoch"]),
                "test_tissue_pearson": scores["val_tissue_pearson"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
