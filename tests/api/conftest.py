"""One small fused model for every api test, trained once per session.

``GeneSplice.from_files`` trains it for one epoch on ~400 labelled genes (the graph, promoters
and expression table are the full bundled ones); ``train_variant`` writes the checkpoint and
:meth:`GeneSplice.load` reads it back, rebuilding the training data and checking checksums.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from genesplice.api import GeneSplice
from genesplice.training.checkpoint import load_checkpoint
from genesplice.training.config import RunConfig, TrainConfig
from genesplice.training.experiment import load_graph


@pytest.fixture(scope="session")
def graph_dir(saved) -> Path:
    """The default graph, built once per session and saved in a temporary folder."""
    return saved


@pytest.fixture(scope="session")
def trained(graph_dir, tmp_path_factory):
    """``GeneSplice.from_files``: one epoch of the fused model on ~400 labelled genes,
    checkpointed by ``train_variant`` (on the CPU: the reference numbers are CPU ones)."""
    out = tmp_path_factory.mktemp("api_run")
    kg = load_graph(graph_dir, progress=False)
    genes = kg.node_ids["gene"][::50] + ["ALB", "MYH4", "TP53", "MYC"]
    cfg = RunConfig(name="api-test", train=TrainConfig(epochs=1, batch_size=128, warmup_steps=1,
                                                       seed=0, device="cpu"))
    fresh = GeneSplice.from_files(graph=graph_dir, out_dir=out, config=cfg, genes=genes,
                                  progress=False)
    genes_file = out / "labelled_genes.txt"
    genes_file.write_text("\n".join(genes) + "\n")
    ck = load_checkpoint(fresh.checkpoint)
    return {"checkpoint": Path(fresh.checkpoint), "fresh": fresh, "graph": kg, "genes": genes,
            "genes_file": genes_file, "extra": ck.extra, "graph_dir": graph_dir}


@pytest.fixture(scope="session")
def gs(trained):
    return GeneSplice.load(trained["checkpoint"], graph=trained["graph"],
                           genes=trained["genes"], progress=False)
