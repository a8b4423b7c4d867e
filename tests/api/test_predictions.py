"""genesplice.api.predictions: predict, observed, embed, write_predictions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from genesplice.training.experiment import build_model
from genesplice.training.loop import predict_rows
from tests.api.helpers import TISSUES


def test_predict_dataframe_shape_labels_and_values(gs, trained):
    df = gs.predict(["TP53", "ENSG00000163631", "myc"], tissues=TISSUES, progress=False)
    assert df.shape == (3, 2)
    assert list(df.index) == ["TP53", "ALB", "MYC"]          # Ensembl id and case resolved
    assert df.index.name == "gene_symbol" and df.columns.name == "tissue"
    assert list(df.columns) == TISSUES
    assert df.attrs["unit"] == "log10(nTPM + 1)"
    assert df.attrs["views"] == {g: "sequence+graph" for g in df.index}
    # the numbers training reports (genesplice.training.loop.predict_rows): the level from
    # the level-best weights, the centred profile from the profile-best weights
    # (queries use every promoter: gs.data, not the subset run's training data)
    data, extra = gs.data, trained["extra"]
    rows = torch.tensor([data.gene_ids.index(g) for g in df.index])
    parts = []
    for state in (extra["level_state"], extra["profile_state"]):
        model = build_model(extra["model_args"])
        model.load_state_dict(state)
        parts.append(predict_rows(model, data, rows))
    reference = parts[0].mean(1, keepdim=True) + parts[1] - parts[1].mean(1, keepdim=True)
    cols = [data.tissues.index(t) for t in TISSUES]
    np.testing.assert_allclose(df.to_numpy(), reference[:, cols].numpy(), atol=2e-5)


def test_observed_and_embed_layouts(gs):
    obs = gs.observed(["ALB"], tissues="liver")
    assert obs.loc["ALB", "liver"] > 3.0                      # albumin: liver, log10 nTPM > 3
    emb = gs.embed(["TP53", "ALB"], view="all")
    d = gs._model.config.hidden
    assert emb.shape == (2, 3 * d)
    assert [c.split("_")[0] for c in emb.columns[::d]] == ["sequence", "graph", "fused"]
    assert gs.embed("TP53").shape == (1, d)


def test_write_predictions_for_genes_is_atomic_csv(gs, tmp_path):
    """With ``genes``: the predict() table as CSV (%.5f) through genesplice.io.atomic, into a
    folder made on the way, and no temporary file left next to it."""
    path = gs.write_predictions(tmp_path / "sub" / "preds.csv", genes=["TP53", "ALB"],
                                progress=False)
    assert path == tmp_path / "sub" / "preds.csv"
    assert [p.name for p in path.parent.iterdir()] == ["preds.csv"]
    got = pd.read_csv(path)
    assert list(got.columns) == ["gene_symbol", *gs.tissues]
    assert list(got["gene_symbol"]) == ["TP53", "ALB"]
    want = gs.predict(["TP53", "ALB"], progress=False).to_numpy()
    np.testing.assert_allclose(got[gs.tissues].to_numpy(), want, atol=5e-6)


def test_predict_as_anndata_obs_tissues_var_genes(gs):
    """``as_anndata=True``: the same numbers as the DataFrame, transposed to the scverse
    layout (obs = tissues, var = genes), with ids, unit, checksums and embeddings."""
    genes = ["TP53", "ENSG00000163631", "myc"]
    df = gs.predict(genes, progress=False)
    ad = gs.predict(genes, progress=False, as_anndata=True)
    assert ad.shape == (len(gs.tissues), 3)
    assert list(ad.obs_names) == gs.tissues and list(ad.var_names) == ["TP53", "ALB", "MYC"]
    assert ad.obs_names.name == "tissue" and ad.var_names.name == "gene_symbol"
    np.testing.assert_allclose(ad.X.T, df.to_numpy(), atol=1e-5)          # float32
    assert list(ad.var["ensembl_id"]) == ["ENSG00000141510", "ENSG00000163631",
                                          "ENSG00000136997"]
    assert list(ad.var["graph_gene_id"]) == ["TP53", "ALB", "MYC"]
    assert ad.uns["unit"] == "log10(nTPM + 1)" == df.attrs["unit"]
    assert ad.uns["data_checksums"] == gs.data.checksums
    assert ad.uns["model"]["variant"] == gs.variant
    emb = gs.embed(["TP53", "ALB", "MYC"], view="fused")
    np.testing.assert_allclose(ad.varm["X_fused"], emb.to_numpy(), atol=1e-5)
    assert set(ad.varm) == {"X_sequence", "X_graph", "X_fused"}
