"""Tissue-conditional label attention on SYNTHETIC tensors (shapes and the rules it keeps):
attention sums to one per target and column, invisible genes are never read, a gene never
reads its own label, and the graph surgery of inference carries the label inputs along."""
from dataclasses import replace

import torch

from genesplice.models.graph_encoder import GraphEncoderConfig
from genesplice.models.inference import copy_genes, drop_genes
from genesplice.models.label_attention import TissueLabelAttention
from genesplice.models.model import FusedModelConfig, GeneSpliceModel
from tests.models.test_model import ETS, MeanEmbed, synthetic_graph

T = 6


def test_attention_is_a_weighted_average_of_visible_labels():
    torch.manual_seed(0)
    layer = TissueLabelAttention(dim=8, n_columns=1 + T)
    labels = torch.randn(5, 1 + T)
    visible = torch.tensor([True, True, False, True, False])
    # sources 0..4 → targets 0 and 1
    ei = torch.tensor([[0, 1, 2, 3, 4, 0, 2], [0, 0, 0, 0, 0, 1, 1]])
    sim = torch.rand(ei.shape[1], 1) * 0.9 + 0.1
    out = layer(torch.randn(2, 8), torch.randn(5, 8), labels, visible, ei, sim)
    assert out.values.shape == (2, 1 + T) and out.alpha.shape == (4, 1 + T)
    assert visible[out.edge_index[0]].all()               # invisible sources dropped
    assert torch.allclose(out.alpha[out.edge_index[1] == 0].sum(0), torch.ones(1 + T))
    # target 1's only visible neighbour is gene 0: it reads exactly that label
    assert torch.allclose(out.values[1], labels[0])
    assert out.has_neighbours.tolist() == [True, True]
    # a hidden label can be anything: the output does not change
    labels2 = labels.clone()
    labels2[~visible] = 100.0
    out2 = layer(torch.randn(2, 8).copy_(torch.zeros(2, 8)), torch.zeros(5, 8), labels,
                 visible, ei, sim)
    out3 = layer(torch.zeros(2, 8), torch.zeros(5, 8), labels2, visible, ei, sim)
    assert torch.allclose(out2.values, out3.values)


def test_similarity_prior_weights_closer_genes_more():
    layer = TissueLabelAttention(dim=4, n_columns=3)
    with torch.no_grad():
        layer.query.zero_()                     # the prior alone: weights ∝ sim³
    ei = torch.tensor([[0, 1], [0, 0]])
    sim = torch.tensor([[0.9], [0.3]])
    out = layer(torch.zeros(1, 4), torch.zeros(2, 4), torch.randn(2, 3),
                torch.tensor([True, True]), ei, sim)
    expected = torch.tensor([0.9 ** 3, 0.3 ** 3])
    assert torch.allclose(out.alpha[:, 0], expected / expected.sum(), atol=1e-5)


def _labelled_graph():
    g = synthetic_graph()
    labels = torch.randn(5, 1 + T)
    labelled = torch.tensor([True, True, True, False, False])
    # each gene reads two others (and gene 0 an edge to itself, which must be ignored)
    ei = torch.tensor([[1, 2, 0, 2, 0, 1, 0, 1, 2, 0], [0, 0, 1, 1, 2, 2, 3, 3, 4, 0]])
    return replace(g, labels=labels, labelled=labelled, label_edge_index=ei,
                   label_edge_attr=torch.full((ei.shape[1], 1), 0.5))


def _model():
    cfg = FusedModelConfig(variant="graph_only", hidden=8, label_attention=True,
                           graph=GraphEncoderConfig(hidden=8, heads=2))
    return GeneSpliceModel(cfg, n_tissues=T, n_function_labels=0,
                           num_nodes={"gene": 5, "go_term": 3}, edge_types=ETS,
                           edge_dims={ETS[3]: 2}, n_membership_features=3,
                           sequence_encoder=MeanEmbed(), sequence_dim=8).eval()


def test_model_never_reads_a_genes_own_label():
    torch.manual_seed(0)
    model, g = _model(), _labelled_graph()
    rows = torch.arange(5)
    base = model(g, None, rows).prediction
    changed = g.labels.clone()
    changed[0] += 10.0                        # gene 0's own label (it has a self edge)
    out = model(replace(g, labels=changed), None, rows).prediction
    assert torch.equal(out[0], base[0])
    assert not torch.allclose(out[1], base[1])           # gene 1 reads gene 0
    hidden = g.labels.clone()
    hidden[3:] = 50.0                          # unlabelled genes: never read
    assert torch.equal(model(replace(g, labels=hidden), None, rows).prediction, base)


def test_surgery_keeps_label_inputs_consistent():
    torch.manual_seed(0)
    model, g = _model(), _labelled_graph()
    base = model(g, None, torch.arange(5)).prediction
    # dropping an unlabelled gene changes no prediction of the genes that do not reach it
    # (gene 4 reaches gene 3 only, through a regulatory edge)
    small, _, new_index = drop_genes(g, None, torch.tensor([4]))
    assert small.labels.shape[0] == 4 and small.label_edge_index.max() < 4
    assert small.label_edge_index.shape[1] == g.label_edge_index.shape[1] - 1
    kept = torch.tensor([0, 1, 2])
    out = model(small, None, new_index[kept]).prediction
    assert torch.allclose(out, base[kept], atol=1e-6)
    # a copy of a gene reads the same labelled neighbours as the original
    g2, _, copies = copy_genes(g, None, torch.tensor([2]), tokens=torch.zeros(1, 4).long(),
                               mask=torch.ones(1, 4, dtype=torch.bool))
    assert not g2.labelled[copies].any()
    out = model(g2, None, torch.cat([torch.tensor([2]), copies])).prediction
    assert torch.allclose(out[0], out[1], atol=1e-6)
