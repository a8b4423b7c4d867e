"""Session-wide real-data fixtures shared by every test folder (built once per session)."""
import pytest

from genesplice.graph.build import build_graph
from genesplice.graph.recipes import default_recipe_path
from genesplice.training.config import load_config, with_overrides
from genesplice.training.experiment import run_experiment
from genesplice.training.splits import gene_chromosomes

LONG_WINDOW_CONFIG = "configs/long_window_cohort.toml"


@pytest.fixture(scope="session")
def kg():
    """The default human graph, built from the real bundled files."""
    return build_graph(default_recipe_path(), progress=False)


@pytest.fixture(scope="session")
def saved(kg, tmp_path_factory):
    out = tmp_path_factory.mktemp("graph") / "human_default"
    kg.save(out)
    return out


@pytest.fixture(scope="session")
def window_run(kg, tmp_path_factory):
    """A small run of the shipped long-window config on real bundled DNA (GRCh37 chr20 + chrX
    1-70 Mb): ±2 kb windows, 150 chrX + 60 chr20 (test) + 40 chr9 + 100 chr1 genes, one epoch
    of ``fused`` and ``window_only``; ``out / "run"`` holds the checkpoints."""
    chrom = gene_chromosomes()
    genes = [g for g in kg.node_ids["gene"] if g in chrom.index]
    pick = ([g for g in genes if chrom[g] == "chrX"][:150]
            + [g for g in genes if chrom[g] == "chr20"][:60]
            + [g for g in genes if chrom[g] == "chr9"][:40]
            + [g for g in genes if chrom[g] == "chr1"][:100])
    out = tmp_path_factory.mktemp("window_run")
    cfg = with_overrides(load_config(LONG_WINDOW_CONFIG), [
        "data.window_upstream=2000", "data.window_downstream=2000",
        f"data.embedding_cache={out / 'cache'}", "train.epochs=1", "train.seeds=1",
        "train.batch_size=128", "train.warmup_steps=1", "pretrain.steps=0",
        "train.device=cpu"])
    summary = run_experiment(cfg, out / "run", variants=("fused", "window_only"), graph=kg,
                             genes=pick, progress=False)
    return {"cfg": cfg, "out": out, "summary": summary, "genes": pick, "kg": kg}
