"""run_experiment on a user's own partial table (issue 13): a comma-separated, symbol-only
table cut from real rows of the bundled HPA file, without any gene on the test chromosome.
It trains anyway (validation metrics, a note that there is no test set) and predictions.csv
covers every gene of the graph, with predictions.splits.csv saying which were labelled."""
import json
from dataclasses import replace

import pandas as pd
import pytest

from genesplice.io.constants import EXPRESSION
from genesplice.io.knowledge import knowledge_path
from genesplice.training.config import RunConfig
from genesplice.training.experiment import SPLIT_NAMES, run_experiment
from genesplice.training.splits import gene_chromosomes


@pytest.fixture(scope="module")
def partial_csv(tmp_path_factory):
    """Every 60th real HPA row not on chr8, symbol column + the 37 tissues, comma-separated."""
    raw = pd.read_csv(knowledge_path(EXPRESSION), sep="\t", dtype=str, keep_default_na=False)
    chrom = gene_chromosomes()
    raw = raw[raw["gene_symbol"].map(chrom).fillna("") != "chr8"]
    path = tmp_path_factory.mktemp("mine") / "my_table.csv"
    raw.drop(columns=["ensembl_id"]).iloc[::60].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def run(kg, partial_csv, tmp_path_factory):
    cfg = RunConfig()
    cfg = replace(cfg, data=replace(cfg.data, expression_path=str(partial_csv)),
                  train=replace(cfg.train, epochs=1, seeds=1, device="cpu"),
                  pretrain=replace(cfg.pretrain, steps=0))
    out = tmp_path_factory.mktemp("run")
    summary = run_experiment(cfg, out, variants=("linear_only",), graph=kg, progress=False)
    return out, summary


def test_partial_table_trains_without_a_test_set(run):
    out, summary = run
    assert summary["evaluation_split"] == "validation"
    assert summary["data"]["n_test"] == 0 and summary["data"]["n_val"] > 0
    assert set(summary["metrics"]) == {"ridge (GO+Reactome+TF membership)", "linear_only"}
    report = (out / "report.md").read_text()
    assert "No test set" in report and "validation" in report.splitlines()[0]


def test_predictions_cover_every_graph_gene_with_splits(run, kg):
    out, summary = run
    pred = pd.read_csv(out / "predictions.csv")
    genes = list(kg.node_ids["gene"])
    assert len(pred) == len(genes) == summary["data"]["genes_in_graph"]
    assert pred.drop(columns="gene_symbol").notna().all().all()   # unmeasured genes too
    splits = pd.read_csv(out / "predictions.splits.csv")
    assert list(splits["graph_gene_id"]) == genes
    assert list(splits["gene_symbol"]) == list(pred["gene_symbol"])
    counts = splits["split"].value_counts().to_dict()
    assert set(counts) == {"train", "validation", "unlabelled"}
    assert counts["train"] == summary["data"]["n_train"]
    assert counts["validation"] == summary["data"]["n_val"]
    assert (splits.loc[splits["split"] != "unlabelled", "n_observed_tissues"] > 0).all()
    meta = json.loads((out / "predictions.meta.json").read_text())
    assert meta["n_genes"] == len(genes) and meta["has_test_set"] is False
    assert meta["splits"]["test"] == 0 and meta["n_labelled"] == counts["train"] + \
        counts["validation"]
    assert set(SPLIT_NAMES.values()) == {"train", "validation", "test", "unlabelled"}
