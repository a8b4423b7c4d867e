"""The window view on SYNTHETIC tensors: cached window embeddings as a second sequence view
(genes without a window get the learned "no window" vector), switched off by ``use_window``,
and carried by graph surgery like every per-gene input."""
from dataclasses import replace

import torch

from genesplice.models.graph_encoder import GraphEncoderConfig
from genesplice.models.inference import copy_genes, drop_genes
from genesplice.models.model import FusedModelConfig, GeneSpliceModel
from tests.models.test_model import ETS, MeanEmbed, synthetic_graph

D_WINDOW = 5


def _graph():
    g = synthetic_graph()
    return replace(g, window_features=torch.randn(5, D_WINDOW),
                   has_window=torch.tensor([True, False, True, False, True]))


def _model(variant="fused", **kw):
    cfg = FusedModelConfig(variant=variant, hidden=8, graph=GraphEncoderConfig(hidden=8, heads=2),
                           **kw)
    return GeneSpliceModel(cfg, n_tissues=4, n_function_labels=0,
                           num_nodes={"gene": 5, "go_term": 3}, edge_types=ETS,
                           edge_dims={ETS[3]: 2}, n_membership_features=3,
                           sequence_encoder=MeanEmbed(), sequence_dim=8,
                           window_dim=D_WINDOW).eval()


def test_window_view_enters_the_input_state_where_a_gene_has_one():
    torch.manual_seed(0)
    model, g = _model("sequence_only", use_promoter=False), _graph()
    rows = torch.arange(5)
    h, has = model.input_states(g, None, rows)
    assert has.tolist() == [True, False, True, False, True]
    assert torch.equal(h[1], h[3])                  # no window, no promoter: same vector
    assert not torch.equal(h[0], h[2])
    changed = g.window_features.clone()
    changed[1] += 5.0                               # a gene without a window: not read
    h2, _ = model.input_states(replace(g, window_features=changed), None, rows)
    assert torch.equal(h2, h)
    assert model(g, None, rows).prediction.shape == (5, 4)


def test_use_window_false_ignores_the_window():
    torch.manual_seed(0)
    model, g = _model("fused", use_window=False), _graph()
    assert model.window_proj is None
    a = model(g, None, torch.arange(5)).prediction
    b = model(replace(g, window_features=g.window_features * 3), None,
              torch.arange(5)).prediction
    assert torch.equal(a, b)
    # graph_only reads no DNA at all, windows included
    assert _model("graph_only").window_proj is None


def test_surgery_carries_windows():
    torch.manual_seed(0)
    model, g = _model("fused"), _graph()
    base = model(g, None, torch.arange(5)).prediction
    g2, _, copies = copy_genes(g, None, torch.tensor([0]), tokens=torch.zeros(1, 4).long(),
                               mask=torch.ones(1, 4, dtype=torch.bool))
    assert torch.equal(g2.window_features[copies[0]], g.window_features[0])
    assert bool(g2.has_window[copies[0]])
    small, _, new_index = drop_genes(g, None, torch.tensor([3]))
    assert small.window_features.shape == (4, D_WINDOW)
    assert small.has_window.tolist() == [True, False, True, True]
    assert base.shape == (5, 4)
