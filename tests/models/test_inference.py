"""The one two-state predictor (:class:`TwoStateModel`) on a tiny SYNTHETIC graph: training's
view equals the model's own forward bit for bit, the state-dict form equals full-graph
passes of the two weight sets, compaction to the receptive field is exact, and gene
dropping is :func:`drop_nodes` plus membership and sequences."""
import copy
import types

import pytest
import torch

from genesplice.models.graph_encoder import drop_nodes
from genesplice.models.graph_encoder import receptive_field as edge_receptive_field
from genesplice.models.inference import TwoStateModel, drop_genes, receptive_field
from genesplice.training.loop import predict_rows
from tests.models.test_attribution import N_GENES, full_prediction, make_model, synthetic_inputs


def _forward(model, graph, seq, rows):
    with torch.no_grad():
        out = model(graph, seq, rows)
    return out.level[:, None] + out.profile


def test_training_view_is_the_models_own_forward():
    """Mid-epoch: the cache holds older weights, the query genes are encoded now."""
    graph, seq = synthetic_inputs()
    model = make_model(0)
    model.refresh_sequence_cache(seq)
    with torch.no_grad():
        for p in model.sequence_encoder.parameters():
            p.add_(0.05)                                 # the cache is now stale
    rows = torch.tensor([0, 3, 5, 7])
    expected = torch.cat([_forward(model, graph, seq, rows[:2]),     # the same batches
                          _forward(model, graph, seq, rows[2:])])
    model.train()
    tsm = TwoStateModel(model, model, seq, training_view=True)
    pred, has = tsm.predict(graph, seq, rows, batch_size=2)
    assert torch.equal(pred, expected)
    assert has.tolist() == [True, True, True, False]
    data = types.SimpleNamespace(graph_inputs=graph, sequences=seq)
    model.train()
    assert torch.equal(predict_rows(model, data, rows, batch_size=2), expected)
    assert model.training                                # mode restored


def test_predict_rows_with_states_equals_full_passes_of_both_weight_sets():
    graph, seq = synthetic_inputs()
    level_model, profile_model = make_model(0), make_model(1)
    model = make_model(2)
    before = copy.deepcopy(model.state_dict())
    data = types.SimpleNamespace(graph_inputs=graph, sequences=seq)
    rows = torch.arange(N_GENES)
    pred = predict_rows(model, data, rows, level_state=level_model.state_dict(),
                        profile_state=profile_model.state_dict())
    ref = full_prediction(TwoStateModel(level_model, profile_model, seq), graph, seq, rows)
    torch.testing.assert_close(pred, ref, atol=1e-5, rtol=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # one state for both: the level and profile of one weight set
    same = predict_rows(model, data, rows, level_state=before, profile_state=before)
    model.eval().refresh_sequence_cache(seq)
    torch.testing.assert_close(same, _forward(model, graph, seq, rows), atol=1e-5, rtol=0)


@pytest.mark.parametrize("rows", [[3], [0, 6], [7]])
def test_compaction_to_the_receptive_field_is_exact(rows):
    graph, seq = synthetic_inputs()
    a, b = make_model(0), make_model(1)
    rows = torch.tensor(rows)
    compact = TwoStateModel(a, b, seq, compact_below=1.0)
    whole = TwoStateModel(a, b, seq, compact_below=0.0)
    assert compact._query(graph, rows).new_index is not None
    assert whole._query(graph, rows).new_index is None
    p1, h1 = compact.predict(graph, seq, rows)
    p2, h2 = whole.predict(graph, seq, rows)
    torch.testing.assert_close(p1, p2, atol=1e-6, rtol=0)
    assert torch.equal(h1, h2)


def test_receptive_field_of_inputs_is_the_edge_walk():
    graph, _ = synthetic_inputs()
    rows = torch.tensor([2, 6])
    ours = receptive_field(graph, rows, 2)
    walk = edge_receptive_field(graph.edge_index_dict, {"gene": rows}, graph.num_nodes, 2)
    assert all(torch.equal(ours[nt], walk[nt]) for nt in walk)


def test_drop_genes_is_drop_nodes_plus_membership_and_sequences():
    graph, seq = synthetic_inputs()
    g2, s2, new_index = drop_genes(graph, seq, torch.tensor([1, 4]))
    ei, ea, idx = drop_nodes(graph.edge_index_dict, graph.edge_attr_dict, "gene",
                             torch.tensor([1, 4]), N_GENES, renumber=True)
    assert torch.equal(new_index, idx)
    assert all(torch.equal(g2.edge_index_dict[et], ei[et]) for et in ei)
    assert all(torch.equal(g2.edge_attr_dict[et], ea[et]) for et in ea)
    assert g2.num_nodes["gene"] == N_GENES - 2
    kept = torch.tensor([0, 2, 3, 5, 6, 7])
    assert torch.equal(g2.membership.to_dense(), graph.membership.to_dense()[kept])
    assert s2.gene_rows.tolist() == [0, 1, 2, 3, 4]      # genes 0, 2, 3, 5, 6 renumbered
    assert torch.equal(s2.tokens, seq.tokens[[0, 2, 3, 4, 5]])
