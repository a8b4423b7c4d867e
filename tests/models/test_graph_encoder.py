"""The graph encoder on a tiny SYNTHETIC graph: one layer loop for ``forward`` and
``attention`` (bit-identical to PyG's HeteroConv), and the edge-set helpers
(receptive field, per-layer restriction, node dropping) from one backward walk."""
import pytest
import torch

from genesplice.models.graph_encoder import (GraphEncoderConfig, HeteroGATEncoder, drop_nodes,
                                             receptive_field, restrict_to_targets)
from tests.models.test_model import ETS, synthetic_graph


def encoder(aggr="sum", n_layers=2):
    torch.manual_seed(0)
    return HeteroGATEncoder(["gene", "go_term"], ETS, {ETS[3]: 2},
                            GraphEncoderConfig(hidden=8, heads=2, aggr=aggr, n_layers=n_layers,
                                               dropout=0.3, attn_dropout=0.3))


def inputs():
    g = torch.Generator().manual_seed(3)
    return {"gene": torch.randn(5, 8, generator=g), "go_term": torch.randn(3, 8, generator=g)}


def heteroconv_reference(enc, x, ei, ea):
    """The loop as it was written over PyG's HeteroConv.forward."""
    h = dict(x)
    for conv, norms in zip(enc.convs, enc.norms):
        out = conv(h, dict(ei), edge_attr_dict=dict(ea))
        h = {nt: enc.dropout(norms[nt](h[nt] + torch.relu(out[nt]))) if nt in out else h[nt]
             for nt in h}
    return h


@pytest.mark.parametrize("aggr", ["sum", "mean"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_forward_is_bit_identical_to_heteroconv(aggr, mode):
    enc = encoder(aggr, n_layers=3)
    getattr(enc, mode)()
    graph, x = synthetic_graph(), inputs()
    # an edge dict in another order than the module's: messages are still summed in module order
    ei = dict(reversed(list(graph.edge_index_dict.items())))
    torch.manual_seed(7)
    ours = enc(x, ei, graph.edge_attr_dict)
    torch.manual_seed(7)
    ref = heteroconv_reference(enc, x, ei, graph.edge_attr_dict)
    assert set(ours) == {"gene", "go_term"}
    for nt in ref:
        assert torch.equal(ours[nt], ref[nt]), nt


def test_attention_is_separate_and_normalised():
    enc = encoder().eval()
    graph, x = synthetic_graph(), inputs()
    out = enc(x, graph.edge_index_dict, graph.edge_attr_dict)
    assert set(out) == {"gene", "go_term"}            # forward returns embeddings only
    layers = enc.attention(x, graph.edge_index_dict, graph.edge_attr_dict)
    assert len(layers) == 2
    for layer in layers:
        assert set(layer) == set(ETS)
        for et, (ei, alpha) in layer.items():
            assert torch.equal(ei, graph.edge_index_dict[et])
            assert alpha.shape == (ei.shape[1], 2)
            assert ((alpha >= 0) & (alpha <= 1)).all()
            # incoming attention of each destination sums to 1 per head
            n_dst = graph.num_nodes[et[2]]
            sums = torch.zeros(n_dst, 2).index_add_(0, ei[1], alpha)
            hit = torch.zeros(n_dst, dtype=torch.bool)
            hit[ei[1]] = True
            torch.testing.assert_close(sums[hit], torch.ones(int(hit.sum()), 2))
            assert (sums[~hit] == 0).all()


def test_restricted_receptive_field_equals_full_graph_pass():
    enc = encoder().eval()
    graph, x = synthetic_graph(), inputs()
    full = enc(x, graph.edge_index_dict, graph.edge_attr_dict)["gene"]
    targets = torch.tensor([1, 3])
    layers = restrict_to_targets(graph.edge_index_dict, graph.edge_attr_dict,
                                 {"gene": targets}, graph.num_nodes, 2)
    part = enc(x, [a for a, _ in layers], [b for _, b in layers])["gene"]
    assert torch.allclose(part[targets], full[targets], atol=1e-6)
    # the last layer only keeps edges into the targets
    last = layers[-1][0]
    for et, ei in last.items():
        if et[2] == "gene":
            assert set(ei[1].tolist()) <= {1, 3}
    # attributes stay aligned with their edges
    for ei_l, ea_l in layers:
        assert ea_l[ETS[3]].shape[0] == ei_l[ETS[3]].shape[1]


def test_receptive_field_is_the_nodes_the_restricted_layers_read():
    graph = synthetic_graph()
    targets = {"gene": torch.tensor([3])}
    layers = restrict_to_targets(graph.edge_index_dict, graph.edge_attr_dict, targets,
                                 graph.num_nodes, 2)
    field = receptive_field(graph.edge_index_dict, targets, graph.num_nodes, 2)
    read = {"gene": {3}, "go_term": set()}
    for ei_l, _ in layers:
        for (src, _, _), ei in ei_l.items():
            read[src].update(ei[0].tolist())
    assert {nt: set(m.nonzero().squeeze(1).tolist()) for nt, m in field.items()} == read
    # gene 3 <- gene 4 (regulates), term 2; term 2 <- terms 0, 1 (is_a), genes 3, 4
    # (annotated_with); gene 4 <- term 2. Gene 1 -> gene 2 never reaches gene 3.
    assert field["gene"].nonzero().squeeze(1).tolist() == [3, 4]
    assert field["go_term"].nonzero().squeeze(1).tolist() == [0, 1, 2]


def test_drop_nodes_keeps_or_renumbers():
    graph = synthetic_graph()
    ei, ea = graph.edge_index_dict, graph.edge_attr_dict
    kept, kept_attr, new_index = drop_nodes(ei, ea, "gene", torch.tensor([1]), 5,
                                            renumber=False)
    assert new_index.tolist() == [0, -1, 1, 2, 3]
    assert kept[ETS[3]].tolist() == [[4], [3]]                      # 0->1 and 1->2 gone
    assert torch.equal(kept_attr[ETS[3]], ea[ETS[3]][2:])
    assert kept[ETS[0]].tolist() == [[0, 2, 3, 4], [0, 1, 2, 2]]    # old numbering
    assert torch.equal(kept[ETS[2]], ei[ETS[2]])                   # no gene: untouched
    renum, _, _ = drop_nodes(ei, ea, "gene", torch.tensor([1]), 5, renumber=True)
    assert renum[ETS[3]].tolist() == [[3], [2]]
    assert renum[ETS[0]].tolist() == [[0, 1, 2, 3], [0, 1, 2, 2]]
    assert renum[ETS[1]].tolist() == [[0, 1, 2, 2], [0, 1, 2, 3]]
