"""Fine-tuning to a new table on a small real slice: 12 HPA tissues held out as the "new" table,
a base model trained (1 epoch) on the other 25 on 300 training-chromosome genes + 40 chr8 /
40 chr9 genes. Checks: the start is exactly the base model through the old → new map, the
base inputs are read (never a new-table value), frozen parts fixed, no test label reaching
any input, and a checkpoint that loads by itself."""
import numpy as np
import pandas as pd
import pytest
import torch

from genesplice.api import GeneSplice
from genesplice.io.errors import GeneSpliceInputError
from genesplice.studies.finetune_study import NEW_TISSUES, split_table
from genesplice.training.config import DataConfig, RunConfig, with_overrides
from genesplice.training.experiment import (build_model, fit_ridge, load_trained,
                                            prepare_from_config, train_variant)
from genesplice.training.finetune import (finetune_config, finetune_model, finetuned_args,
                                          freeze, init_from_base, load_base, run_finetune)
from genesplice.training.loop import predict_rows
from tests.slices import gene_slice

pytestmark = pytest.mark.slow     # trains a small base model and fine-tunes it three times

SMALL = ["train.epochs=2", "train.batch_size=64", "train.warmup_steps=2", "train.patience=0",
         "train.seeds=1", "pretrain.steps=0"]


@pytest.fixture(scope="module")
def setup(kg, saved, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finetune")
    base_table, new_table = split_table(tmp / "tables")
    pick = gene_slice(kg, 300, 40, seed=1)
    cfg = with_overrides(RunConfig(out_dir=str(tmp / "base"),
                                   data=DataConfig(expression_path=str(base_table),
                                                   graph_path=str(saved))),
                         [*SMALL, "train.epochs=1"])
    data = prepare_from_config(cfg, graph=kg, genes=pick, progress=False)
    train_variant("fused", data, cfg, ridge=fit_ridge(data, cfg), out_dir=tmp / "base",
                  progress=False)
    base = load_base(tmp / "base" / "fused.pt", graph=kg, genes=pick, progress=False)
    new_cfg = finetune_config(base, new_table, tmp / "ft", SMALL)
    new = prepare_from_config(new_cfg, graph=kg, genes=pick, progress=False)
    result = finetune_model(base, new, new_cfg, out_dir=tmp / "ft", progress=False)
    return dict(tmp=tmp, kg=kg, pick=pick, base=base, cfg=new_cfg, data=new, result=result,
                new_table=new_table)


def test_the_base_model_plus_a_map(setup):
    base, data, res = setup["base"], setup["data"], setup["result"]
    assert len(base.tissues) == 25 and data.tissues == list(NEW_TISSUES)
    assert res.predictions.shape == (data.n_genes, 12) and np.isfinite(res.predictions).all()
    model, _, profile_state, ck = load_trained(setup["tmp"] / "ft" / "finetuned.pt")
    assert ck.extra["tissues"] == list(NEW_TISSUES)
    assert ck.extra["inputs"]["genes"] == setup["pick"]          # the base run's subset
    # the base model's per-tissue parts, then the map to the 12 new tissues
    assert model.heads.profile[3].out_features == 25 and model.label_gate.proj.out_features == 26
    assert tuple(model.tissue_map.weight.shape) == (25, 12)
    # the label read-out reads the BASE run's training genes (level + 25 centred tissues),
    # never a value of the new table
    gi, base_gi = res.data.graph_inputs, base.data.graph_inputs
    assert torch.equal(gi.labels, base_gi.labels) and torch.equal(gi.labelled, base_gi.labelled)
    assert torch.equal(res.data.y.nan_to_num(-9), data.y.nan_to_num(-9))   # targets: new
    assert res.data.report["input_labels_held_out"] == 0          # same chromosome split
    # the map was fitted, and the start predicts exactly the base model through it
    assert res.tissue_map.A.shape == (25, 12)
    train = data.rows["train"]
    assert np.corrcoef(res.mapped[train.numpy()].ravel(), data.y[train].numpy().ravel()
                       )[0, 1] > 0.5
    start = build_model(finetuned_args(base, 12))
    init_from_base(start, base, res.tissue_map)
    state = start.state_dict()
    pred = predict_rows(start, res.data, torch.arange(data.n_genes), level_state=state,
                        profile_state=state).numpy()
    np.testing.assert_allclose(pred, res.mapped, atol=1e-4)


def test_init_copies_the_trunk_and_frozen_parts_stay(setup, tmp_path):
    base, cfg = setup["base"], with_overrides(setup["cfg"], ["train.epochs=1"])
    res = finetune_model(base, setup["data"], cfg, out_dir=tmp_path,
                         freeze_parts=("sequence", "graph"), progress=False)
    state = res.model.state_dict()
    for key in ("sequence_encoder.embed.weight", "graph_encoder.layers.0.convs.0.lin_l.weight"):
        if key in state:
            assert torch.equal(state[key].cpu(), base.state[key])
    frozen = [n for n, p in res.model.named_parameters() if n.startswith("sequence_encoder.")]
    assert frozen and all(torch.equal(res.model.state_dict()[n].cpu(), base.state[n])
                          for n in frozen)
    with pytest.raises(GeneSpliceInputError, match="unknown --freeze"):
        freeze(res.model, ("wings",))


def test_test_labels_never_reach_an_input(setup, tmp_path):
    """Scrambling the new table's test-chromosome values changes the targets, not one
    prediction (validation values choose epochs and the map's penalty, test values nothing)."""
    data = setup["data"]
    test_genes = {data.gene_ids[i] for i in data.rows["test"].tolist()}
    table = pd.read_csv(setup["new_table"], sep="\t")
    rows = table["gene_symbol"].isin(test_genes).to_numpy()
    rng = np.random.default_rng(0)
    cols = list(NEW_TISSUES)
    table.loc[rows, cols] = rng.permutation(table.loc[rows, cols].to_numpy().ravel()
                                            ).reshape(int(rows.sum()), len(cols)) * 5 + 7
    path = tmp_path / "scrambled.tsv"
    table.to_csv(path, sep="\t", index=False)
    cfg = finetune_config(setup["base"], path, tmp_path, SMALL)
    other = prepare_from_config(cfg, graph=setup["kg"], genes=setup["pick"], progress=False)
    assert not torch.equal(torch.nan_to_num(other.y), torch.nan_to_num(data.y))
    res = finetune_model(setup["base"], other, cfg, out_dir=tmp_path, progress=False)
    np.testing.assert_allclose(res.predictions, setup["result"].predictions, atol=1e-5)


def test_run_finetune_writes_outputs_that_load(setup, tmp_path):
    tmp = setup["tmp"]
    labelled = tmp / "labelled.txt"
    labelled.write_text("\n".join(setup["pick"]) + "\n")
    # the command's path on the same slice: the base checkpoint from a subset needs genes=
    with pytest.raises(GeneSpliceInputError, match="labelled-gene subset"):
        run_finetune(tmp / "base" / "fused.pt", setup["new_table"], tmp_path / "x",
                     progress=False)
    # the fine-tuned model rebuilds its base run's inputs by itself (no gene list needed)
    gs = GeneSplice.load(tmp / "ft" / "finetuned.pt", progress=False)
    assert list(gs.tissues) == list(NEW_TISSUES)
    data = setup["data"]
    rows = data.rows["test"][:20].numpy()
    ours = gs.predict(genes=[data.gene_ids[i] for i in rows], progress=False)
    assert list(ours.columns) == list(NEW_TISSUES)
    np.testing.assert_allclose(ours.to_numpy(), setup["result"].predictions[rows], atol=1e-4)
