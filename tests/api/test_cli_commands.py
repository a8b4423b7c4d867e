"""`genesplice predict` / `genesplice explain` on the api tests' checkpoint."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genesplice.cli import main


def test_cli_predict_genes_and_explain(trained, tmp_path, capsys):
    out = tmp_path / "preds.csv"
    assert main(["predict", "--checkpoint", str(trained["checkpoint"]), "--genes", "TP53",
                 "MYC", "--out", str(out), "--graph", str(trained["graph_dir"]),
                 "--labelled-genes", str(trained["genes_file"]), "--quiet"]) == 0
    df = pd.read_csv(out)
    assert list(df["gene_symbol"]) == ["TP53", "MYC"]
    assert list(df.columns[1:]) == list(trained["extra"]["tissues"])
    assert main(["predict", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.pt: checkpoint not found" in err
    assert main(["explain", "--checkpoint", str(trained["checkpoint"]), "--gene", "MYH4",
                 "--tissue", "skeletal muscle", "--out-dir", str(tmp_path), "--top", "3",
                 "--ism-window", "-5", "5", "--labelled-genes", str(trained["genes_file"]),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "MYH4 in skeletal muscle: predicted" in printed
    for name in ("MYH4_skeletal_muscle_neighbours.csv", "MYH4_skeletal_muscle_attributions.csv",
                 "MYH4_skeletal_muscle.png"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.slow
def test_cli_predict_all_genes_writes_the_training_table_layout(gs, trained, tmp_path):
    """Without --genes: every gene of the graph, through the same writer as a
    training run's predictions.csv (first column gene_symbol, tissues as in the table)."""
    data = gs.data
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--checkpoint", str(trained["checkpoint"]), "--out", str(out),
                 "--graph", str(trained["graph_dir"]), "--labelled-genes",
                 str(trained["genes_file"]), "--quiet"]) == 0
    got = pd.read_csv(out)
    assert list(got.columns) == ["gene_symbol", *data.tissues]
    expected = [data.display_symbols.get(g, g) for g in data.gene_ids]   # every graph gene
    assert list(got["gene_symbol"]) == expected and len(expected) > 19_000
    sample = got.sample(50, random_state=0).set_index("gene_symbol")
    api = gs.predict(list(sample.index), progress=False)
    np.testing.assert_allclose(sample.to_numpy(), api.to_numpy(), atol=1e-5)  # %.5f in CSV
    splits = pd.read_csv(out.with_name("predictions.splits.csv"))
    assert len(splits) == len(got)
    assert set(splits["split"]) <= {"train", "validation", "test", "unlabelled"}


def test_cli_predict_h5ad_writes_anndata(trained, tmp_path, capsys):
    import anndata
    out = tmp_path / "sub" / "preds.h5ad"
    assert main(["predict", "--checkpoint", str(trained["checkpoint"]), "--genes", "TP53",
                 "MYC", "ENSG00000163631", "--out", str(out), "--graph",
                 str(trained["graph_dir"]), "--labelled-genes", str(trained["genes_file"]),
                 "--quiet"]) == 0
    assert "AnnData, obs = tissues, var = genes" in capsys.readouterr().out
    ad = anndata.read_h5ad(out)
    tissues = list(trained["extra"]["tissues"])
    assert ad.shape == (len(tissues), 3) and list(ad.obs_names) == tissues
    assert list(ad.var_names) == ["TP53", "MYC", "ALB"]
    assert list(ad.var["ensembl_id"]) == ["ENSG00000141510", "ENSG00000136997",
                                          "ENSG00000163631"]
    assert ad.uns["model"]["checkpoint"] == str(trained["checkpoint"])
    assert len(ad.uns["model"]["checkpoint_sha256"]) == 64
    assert {"expression", "graph", "genes"} <= set(ad.uns["data_checksums"])
    assert "X_fused" in ad.varm and ad.varm["X_fused"].shape[0] == 3
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]   # atomic
