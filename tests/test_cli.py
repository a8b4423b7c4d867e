"""CLI: build-graph, validate and demo through main([...]) (small recipes keep it fast)."""
import pytest

from genesplice.cli import main
from genesplice.graph.hetero import KnowledgeGraph
from genesplice.io.knowledge import knowledge_path

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
    assert out == f"{good}: OK (tsv) 9,396 rows x 4 columns"
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


def test_demo_writes_report(tmp_path, small_recipe, capsys):
    out = tmp_path / "demo"
    # the whole main job (graph → pretrain → train → evaluate → predict) at tiny settings
    assert main(["demo", "--out", str(out), "--recipe", str(small_recipe), "--epochs", "1",
                 "--pretrain-steps", "3", "--max-genes", "300", "--quiet"]) == 0
    assert (out / "graph" / "tensors.pt").exists()
    report = (out / "report.md").read_text()
    assert "## Knowledge graph" in report and "| node | gene |" in report
    for name in ("ridge", "fused", "graph_only", "sequence_only", "no pretraining"):
        assert name in report, name
    import pandas as pd
    pred = pd.read_csv(out / "predictions.csv")
    assert pred.columns[0] == "gene_symbol" and "liver" in pred.columns
    assert (out / "fused.pt").exists() and (out / "summary.json").exists()
