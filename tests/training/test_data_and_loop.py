"""Real-data training tests: data assembly on the full default graph, a short fused run on a
few hundred labelled genes, ridge warm start, and kill-and-resume to the identical result."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from genesplice.graph.features import top_level_pathways
from genesplice.training.config import RunConfig
from genesplice.training.data import message_edges
from genesplice.training.experiment import (build_model, fit_ridge, load_trained, model_args,
                                            prepare_from_config, ridge_predict, train_variant,
                                            warm_start_from_ridge, write_predictions)
from genesplice.training.loop import predict_rows
from tests.slices import gene_slice

N_GENES = 400


@pytest.fixture(scope="module")
def data(kg, expression):
    # a slice of real genes: every chr8/chr9 gene is kept out of this list except a few, so
    # train/val/test all exist; the whole graph is kept
    pick = gene_slice(kg, N_GENES - 120, 60, seed=0)
    cfg = RunConfig()
    return prepare_from_config(cfg, graph=kg, genes=pick, progress=False)


@pytest.fixture(scope="module")
def ridge(data):
    return fit_ridge(data, RunConfig())


def small_cfg(**train):
    cfg = RunConfig()
    settings = dict(epochs=3, batch_size=64, warmup_steps=2, patience=0, aux_weight=0.1,
                    contrastive_weight=0.05)
    return replace(cfg, train=replace(cfg.train, **{**settings, **train}))


def test_training_data_is_aligned_and_split_by_chromosome(data, kg):
    assert data.gene_ids == list(kg.node_ids["gene"])
    assert data.n_tissues == 37 and "liver" in data.tissues
    assert len(data.rows["test"]) == 60 and len(data.rows["val"]) == 60
    split = data.split_of()
    assert (split == "train").sum() == N_GENES - 120
    # no gene → term / gene → pathway message edges; genes still receive from terms
    ets = set(data.graph_inputs.edge_index_dict)
    assert ("gene", "annotated_with", "go_term") not in ets
    assert ("go_term", "rev_annotated_with", "gene") in ets
    # exactly the graph's message edge types: every gene -> term / pathway type is gone, the
    # rest (reverse edges, hierarchies, regulation) is kept
    kg_ets = set(kg.data.edge_types)
    assert ets == set(message_edges(kg_ets)) < kg_ets
    assert all(not (et[0] == "gene" and et[2] != "gene") for et in ets)
    # function labels are Reactome top-level pathways, removed from the graph's edges
    assert "Signal Transduction" in data.function_names
    assert data.function_labels.shape == (data.n_genes, len(data.function_names))
    roots = torch.tensor(top_level_pathways(kg), dtype=torch.long)
    touching = 0
    for et in kg.data.edge_types:
        ei = kg.data[et].edge_index
        hit = torch.zeros(ei.shape[1], dtype=torch.bool)
        for side, nt in ((0, et[0]), (1, et[2])):
            if nt == "pathway":
                hit |= torch.isin(ei[side], roots)
        touching += int(hit.sum())
        if et in ets:               # what is left keeps every other edge, in order
            kept = data.graph_inputs.edge_index_dict[et]
            assert torch.equal(kept, ei[:, ~hit])
    assert data.report["edges_removed_for_function_labels"] == touching > 0
    # a restricted run encodes the promoters its genes can see: most labelled genes have one,
    # plus their regulatory neighbours, far fewer than all 16,285
    with_seq = set(data.sequences.gene_rows.tolist())
    labelled = torch.cat(list(data.rows.values())).tolist()
    assert sum(r in with_seq for r in labelled) > 0.7 * N_GENES
    assert len(with_seq) < 16285
    assert data.sequences.tokens.shape[1] >= 59
    assert data.membership.shape == (data.n_genes, len(data.feature_names))


def test_ridge_warm_start_reproduces_ridge_before_training(data, ridge, tmp_path):
    cfg = small_cfg(epochs=1)
    # stop before the first step: without the label read-out (which starts as a blend with
    # the neighbours' labels) the model must predict exactly what ridge predicts
    args = model_args(data, cfg.model.fused("fused", label_attention=False),
                      cfg.model.sequence_encoder())
    model = build_model(args)
    warm_start_from_ridge(model, ridge, data)
    test = data.rows["test"]
    pred = predict_rows(model, data, test).numpy()
    assert np.allclose(pred, ridge_predict(ridge, data, test), atol=1e-4)


def test_short_fused_run_writes_checkpoint_and_predictions(data, ridge, tmp_path):
    result = train_variant("fused", data, small_cfg(), ridge=ridge, out_dir=tmp_path,
                           progress=False)
    hist = result.train.history
    assert list(hist["epoch"]) == [1, 2, 3]
    assert {"loss_level", "loss_profile", "loss_function", "loss_contrastive",
            "val_gene_pearson", "val_level_pearson"} <= set(hist.columns)
    assert np.isfinite(result.predictions).all()
    model, level_state, profile_state, ck = load_trained(tmp_path / "fused.pt")
    assert ck.epoch == 3 and ck.extra["finished"]
    assert ck.extra["tissues"] == data.tissues
    out = write_predictions(tmp_path / "predictions.csv", data, result.predictions,
                            "log10(nTPM + 1)")
    df = pd.read_csv(out)
    assert df.columns[0] == "gene_symbol" and list(df.columns[1:]) == data.tissues
    assert len(df) == data.n_genes                 # every graph gene, labelled or not


def test_kill_and_resume_gives_the_same_result(data, ridge, tmp_path):
    cfg = small_cfg(epochs=4)
    full = train_variant("fused", data, cfg, ridge=ridge, out_dir=tmp_path / "full",
                         progress=False)
    train_variant("fused", data, cfg, ridge=ridge, out_dir=tmp_path / "cut", progress=False,
                  stop_after_epoch=2)                      # "killed" after epoch 2
    resumed = train_variant("fused", data, cfg, ridge=ridge, out_dir=tmp_path / "cut",
                            progress=False, resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert np.array_equal(full.predictions, resumed.predictions)
    assert list(resumed.train.history["epoch"]) == [1, 2, 3, 4]


@pytest.mark.parametrize("variant", ["sequence_only", "graph_only"])
def test_ablations_train(data, ridge, tmp_path, variant):
    result = train_variant(variant, data, small_cfg(epochs=1), ridge=ridge, out_dir=tmp_path,
                           progress=False)
    assert np.isfinite(result.predictions).all()
    if variant == "sequence_only":
        assert result.model.graph_encoder is None and result.model.membership_linear is None
    else:
        assert result.model.sequence_encoder is None
