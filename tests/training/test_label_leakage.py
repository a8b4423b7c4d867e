"""No held-out label reaches any input: the label read-out (training genes' observed profiles
as inputs) is checked end to end, from the expression table through data assembly to
predictions. Each test would fail if a validation / test label, or a gene's own label, leaked."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from genesplice.annotations.gene_structure import read_gene_structure
from genesplice.annotations.ids import default_resolver
from genesplice.training.config import RunConfig
from genesplice.training.data import prepare_training_data
from genesplice.training.experiment import build_model, model_args
from genesplice.training.loop import predict_rows
from genesplice.training.splits import gene_chromosomes
from tests.slices import gene_slice

N_TRAIN, N_HELD = 300, 40


@pytest.fixture(scope="module")
def setup(kg, expression):
    chrom = gene_chromosomes()
    pick = gene_slice(kg, N_TRAIN, N_HELD, seed=1)
    structure, _ = read_gene_structure()

    def assemble(expr):
        return prepare_training_data(kg, expr, gene_chromosomes=chrom, genes=pick,
                                     resolver=default_resolver(), similar_genes=20,
                                     gene_structure=structure)

    data = assemble(expression)
    cfg = RunConfig()
    torch.manual_seed(0)
    model = build_model(model_args(data, cfg.model.fused("graph_only"), None))
    with torch.no_grad():                     # a gate that reads the labels strongly
        model.label_gate.proj.bias.fill_(2.0)
    return assemble, data, model, expression


def _with_values(expression, genes, change):
    values = expression.values.copy()
    rows = values.index.isin(genes)
    values.loc[rows] = change(values.loc[rows].to_numpy())
    return replace(expression, values=values)


def _predict(model, data):
    return predict_rows(model, data, torch.arange(data.n_genes)).numpy()


def test_only_training_genes_are_label_inputs(setup):
    _, data, _, _ = setup
    gi = data.graph_inputs
    train = torch.zeros(data.n_genes, dtype=torch.bool)
    train[data.rows["train"]] = True
    assert gi.labelled.sum() > 0 and not (gi.labelled & ~train).any()
    assert not gi.labels[~train].any()
    # label edges come from training genes only and never from a gene to itself
    assert gi.labelled[gi.label_edge_index[0]].all()
    assert not (gi.label_edge_index[0] == gi.label_edge_index[1]).any()
    assert data.report["label_edges"] == gi.label_edge_index.shape[1]


def test_held_out_labels_change_no_prediction(setup):
    assemble, data, model, expression = setup
    held = [data.gene_ids[i] for i in torch.cat([data.rows["val"], data.rows["test"]])]
    rng = np.random.default_rng(0)
    scrambled = assemble(_with_values(expression, held,
                                      lambda v: rng.permutation(v.ravel()).reshape(v.shape) + 3))
    assert not torch.equal(scrambled.y, data.y)           # the targets did change …
    np.testing.assert_array_equal(_predict(model, scrambled), _predict(model, data))  # … no input


def test_a_gene_never_reads_its_own_label(setup):
    assemble, data, model, expression = setup
    base = _predict(model, data)
    gi = data.graph_inputs
    # a training gene that other genes read as a neighbour
    sources, counts = torch.unique(gi.label_edge_index[0], return_counts=True)
    row = int(sources[counts.argmax()])
    gene = data.gene_ids[row]
    changed = assemble(_with_values(expression, [gene], lambda v: v[:, ::-1] + 2.0))
    pred = _predict(model, changed)
    np.testing.assert_array_equal(pred[row], base[row])   # its own prediction: unchanged
    readers = gi.label_edge_index[1, gi.label_edge_index[0] == row].unique().numpy()
    assert np.abs(pred[readers] - base[readers]).max() > 1e-3   # its readers: changed
