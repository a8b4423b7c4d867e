"""CLI: build-graph, validate, demo and train through main([...]) (small recipes keep it fast)."""
import contextlib
import io
import json
import math
from dataclasses import replace

import pytest

from genesplice.cli import main
from genesplice.graph.hetero import KnowledgeGraph
from genesplice.io.knowledge import knowledge_path
from genesplice.models.sequence_encoder import SequenceEncoderConfig
from genesplice.training.checkpoint import load_checkpoint
from genesplice.training.config import RunConfig, load_config

SMALL = """name = "small"
[genes]
universe = "annotated"
[go]
enabled = false
[reactome]
min_genes = 10
[regulatory]
use_dorothea = false
"""


@pytest.fixture
def small_recipe(tmp_path):
    p = tmp_path / "small.toml"
    p.write_text(SMALL)
    return p


def test_build_graph_prints_summary(tmp_path, small_recipe, capsys):
    out = tmp_path / "built"
    assert main(["build-graph", "--recipe", str(small_recipe), "--out", str(out),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "(gene, member_of, pathway)" in text and "(gene, regulates, gene)" in text
    assert "genes with no annotation" in text and "not mapped" in text
    kg = KnowledgeGraph.load(out, check_inputs=True)
    assert set(kg.data.node_types) == {"gene", "pathway"}
    assert "TP53" in kg.node_index("gene")


def test_unknown_recipe_key_one_line_no_traceback(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_text('[go]\nmin_gene = 3\n')
    assert main(["build-graph", "--recipe", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err == (f"genesplice: error: {p}:2: unknown key 'go.min_gene'; expected one of "
                   "enabled, evidence, exclude_evidence, exclude_not, gaf, max_genes, "
                   "min_genes, namespaces, obo, propagate, relations")


def test_validate_ok_and_bad(tmp_path, capsys):
    good = knowledge_path("annotations/trrust_human.tsv.gz")
    assert main(["validate", str(good)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"{good}: OK (trrust) 9,396 rows, 8,427 TF-target pairs"
    bad = tmp_path / "bad.gmt"
    bad.write_text("A\tR-HSA-1\tTP53\nB\tR-HSA-2\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"genesplice: error: {bad}:2: gene set 'B' has no genes")
    assert "\n" not in err
    gaf = tmp_path / "x.txt"
    gaf.write_text("UniProtKB\tP04637\tTP53\n")
    assert main(["validate", str(gaf), "--format", "gaf"]) == 2
    assert ":1: expected 17 tab-separated GAF 2.x columns, found 3" in capsys.readouterr().err


def test_unwritable_output_is_reported_before_work(tmp_path, capsys):
    afile = tmp_path / "taken"
    afile.write_text("x")
    for argv in (["build-graph", "--out", str(afile)], ["train", "--out", str(afile)],
                 ["embed", "--out", str(afile)], ["demo", "--out", str(afile)],
                 ["pretrain", "--out", str(afile / "enc.pt")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"genesplice: error: {afile}") and "\n" not in err, err


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The whole main job (graph → pretrain → train → evaluate → predict) at tiny settings,
    once for this module: (output folder, exit code, what it printed)."""
    out = tmp_path_factory.mktemp("cli") / "demo"
    recipe = out.parent / "small.toml"
    recipe.write_text(SMALL)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["demo", "--out", str(out), "--recipe", str(recipe), "--epochs", "1",
                   "--pretrain-steps", "3", "--max-genes", "300", "--seeds", "2", "--quiet"])
    return out, rc, buf.getvalue()


def test_demo_writes_report(demo_run):
    out, rc, printed = demo_run
    assert rc == 0
    assert (out / "graph" / "tensors.pt").exists()
    report = (out / "report.md").read_text()
    assert "## Knowledge graph" in report and "| node | gene |" in report
    for name in ("ridge", "fused", "graph_only", "gat_only", "graph_only_no_labels",
                 "linear_only", "sequence_only", "no pretraining"):
        assert name in report, name
    assert "(mean ± sd over seeds)" in report
    import pandas as pd
    pred = pd.read_csv(out / "predictions.csv")
    assert pred.columns[0] == "gene_symbol" and "liver" in pred.columns
    assert (out / "fused.pt").exists() and (out / "summary.json").exists()
    # the printed table has one line per model with three finite numbers
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["metrics"]) == 8 and len(summary["seed_metrics"]) == 8
    for name, m in summary["seed_metrics"].items():
        assert f"  {name:36s} {m['pearson_tissue_mean']:.3f} ± " in printed, name
        assert m["seeds"] == (1 if name.startswith(("ridge", "fused (no")) else 2), name
        assert all(math.isfinite(m[k]) for k in ("pearson_tissue_mean", "pearson_gene_mean",
                                                 "r2_tissue_mean", "pearson_gene_sd"))
    assert len(list((out / "seeds").glob("*_seed1.pt"))) == 6


def test_demo_runs_with_the_config_defaults(demo_run):
    # the demo has no settings of its own: config.toml is RunConfig() but for the folders and
    # the two flags given on the command line
    out, _, _ = demo_run
    cfg = load_config(out / "config.toml")
    default = RunConfig()
    assert cfg.model == default.model and cfg.ridge == default.ridge
    assert cfg.train == replace(default.train, epochs=1, seeds=2)
    assert cfg.pretrain == replace(default.pretrain, steps=3)
    assert cfg.data.graph_path == str(out / "graph")


def test_demo_bad_recipe_exits_2_with_one_line(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_text("[go]\nmin_gene = 3\n")
    rc = main(["demo", "--out", str(tmp_path / "demo"), "--recipe", str(p), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith(f"genesplice: error: {p}:2: unknown key 'go.min_gene'")
    assert "\n" not in err
    assert not (tmp_path / "demo" / "summary.json").exists()


def test_demo_bad_device_exits_2_before_any_work(tmp_path, capsys):
    rc = main(["demo", "--out", str(tmp_path / "demo"), "--device", "gpu", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "train.device = 'gpu'" in err and "\n" not in err
    assert not (tmp_path / "demo").exists()


def test_train_unknown_model_exits_2_before_any_work(tmp_path, capsys):
    rc = main(["train", "--out", str(tmp_path / "run"), "--variants", "fusd", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "unknown model(s) ['fusd']" in err and "'gat_only'" in err
    assert "\n" not in err and not (tmp_path / "run").exists()


def test_train_set_model_hidden(demo_run, tmp_path, capsys):
    out, _, _ = demo_run
    run = tmp_path / "train"
    rc = main(["train", "--out", str(run), "--variants", "graph_only", "--quiet", "--set",
               f"data.graph_path={out / 'graph'}", "model.hidden=16", "model.heads=2",
               "train.epochs=1", "pretrain.steps=0", "--device", "cpu"])
    assert rc == 0
    assert "graph_only: per-tissue r" in capsys.readouterr().out
    cfg = load_config(run / "config.toml")
    assert cfg.model.hidden == 16 and cfg.model.heads == 2 and cfg.train.device == "cpu"
    ck = load_checkpoint(run / "graph_only.pt")
    args = ck.extra["model_args"]
    assert args["model"]["hidden"] == 16 and args["model"]["graph"]["heads"] == 2
    assert args["sequence_encoder"] == SequenceEncoderConfig.promoter().to_dict()
    assert not (run / "pretrained_encoder.pt").exists()


@pytest.mark.parametrize("overrides,match", [
    (["model.hidden=30"], "model.hidden = 30 is not divisible by model.heads = 4"),
    (["model.hiden=16"], "unknown key 'model.hiden'"),
    (["train.device=gpu"], "train.device = 'gpu'"),
])
def test_train_bad_override_exits_2_with_one_line(tmp_path, capsys, overrides, match):
    rc = main(["train", "--out", str(tmp_path / "t"), "--set", *overrides])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and match in err and "\n" not in err
    assert not (tmp_path / "t").exists()
