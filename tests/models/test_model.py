"""Shape and behaviour tests of the fused model on a tiny SYNTHETIC graph (shapes only).

Real-data training is tested in tests/training/.
"""
import pytest
import torch
from torch import nn

from genesplice.models.graph_encoder import GraphEncoderConfig, HeteroGATEncoder
from genesplice.models.model import (FusedModelConfig, GeneSpliceModel, GraphInputs,
                                     SequenceInputs)

ETS = [("gene", "annotated_with", "go_term"), ("go_term", "rev_annotated_with", "gene"),
       ("go_term", "is_a", "go_term"), ("gene", "regulates", "gene")]


class MeanEmbed(nn.Module):
    """A stand-in sequence encoder: mean of token embeddings over the mask."""

    def __init__(self, d=8):
        super().__init__()
        self.emb = nn.Embedding(6, d)

    def forward(self, tokens, mask):
        e = self.emb(tokens) * mask.unsqueeze(-1)
        return e.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)


def synthetic_graph():
    g = torch.Generator().manual_seed(0)
    ei = {ETS[0]: torch.tensor([[0, 1, 2, 3, 4], [0, 0, 1, 2, 2]]),
          ETS[1]: torch.tensor([[0, 0, 1, 2, 2], [0, 1, 2, 3, 4]]),
          ETS[2]: torch.tensor([[0, 1], [2, 2]]),
          ETS[3]: torch.tensor([[0, 1, 4], [1, 2, 3]])}
    ea = {ETS[3]: torch.randn(3, 2, generator=g)}
    membership = torch.sparse_coo_tensor(ei[ETS[0]], torch.ones(5), (5, 3)).coalesce().to_sparse_csr()
    return GraphInputs({"gene": 5, "go_term": 3}, ei, ea, membership)


def make_model(variant):
    cfg = FusedModelConfig(variant=variant, hidden=8, proj_dim=4,
                           graph=GraphEncoderConfig(hidden=8, heads=2))
    return GeneSpliceModel(cfg, n_tissues=6, n_function_labels=3,
                           num_nodes={"gene": 5, "go_term": 3}, edge_types=ETS,
                           edge_dims={ETS[3]: 2}, n_membership_features=3,
                           sequence_encoder=MeanEmbed(), sequence_dim=8)


@pytest.mark.parametrize("variant", ["fused", "sequence_only", "graph_only"])
def test_output_shapes_and_centred_profile(variant):
    torch.manual_seed(0)
    model = make_model(variant).eval()
    seq = SequenceInputs(gene_rows=torch.tensor([0, 2, 3]), tokens=torch.randint(0, 4, (3, 10)),
                         mask=torch.ones(3, 10, dtype=torch.bool))
    out = model(synthetic_graph(), seq, torch.tensor([0, 1, 4]))
    assert out.level.shape == (3,)
    assert out.prediction.shape == (3, 6)
    assert out.function_logits.shape == (3, 3)
    assert torch.allclose(out.profile.sum(-1), torch.zeros(3), atol=1e-5)
    if variant == "graph_only":
        assert not out.has_sequence.any()
    else:
        assert out.has_sequence.tolist() == [True, False, False]
    assert (out.z_seq is not None) == (variant == "fused")


def test_gradients_reach_sequence_encoder_and_graph():
    torch.manual_seed(0)
    model = make_model("fused").train()
    seq = SequenceInputs(gene_rows=torch.tensor([0, 2]), tokens=torch.randint(0, 4, (2, 10)),
                         mask=torch.ones(2, 10, dtype=torch.bool))
    out = model(synthetic_graph(), seq, torch.arange(5))
    (out.prediction.pow(2).mean() + out.function_logits.mean()).backward()
    assert model.sequence_encoder.emb.weight.grad.abs().sum() > 0
    assert model.node_embeddings["go_term"].weight.grad.abs().sum() > 0


def test_graph_only_has_no_per_gene_parameters():
    model = make_model("graph_only")
    n_genes = 5
    for name, p in model.named_parameters():
        assert p.shape[0] != n_genes or "node_embeddings" in name, name
    assert "gene" not in model.node_embeddings


def test_attention_is_separate_and_normalised():
    torch.manual_seed(0)
    enc = HeteroGATEncoder(["gene", "go_term"], ETS, {ETS[3]: 2},
                           GraphEncoderConfig(hidden=8, heads=2)).eval()
    graph = synthetic_graph()
    x = {"gene": torch.randn(5, 8), "go_term": torch.randn(3, 8)}
    out = enc(x, graph.edge_index_dict, graph.edge_attr_dict)
    assert set(out) == {"gene", "go_term"}            # forward returns embeddings only
    layers = enc.attention(x, graph.edge_index_dict, graph.edge_attr_dict)
    assert len(layers) == 2
    ei, alpha = layers[0][ETS[0]]
    assert alpha.shape == (ei.shape[1], 2)
    assert ((alpha >= 0) & (alpha <= 1)).all()
    # incoming attention of each destination sums to 1 per head
    sums = torch.zeros(3, 2).index_add_(0, ei[1], alpha)
    assert torch.allclose(sums[sums.sum(1) > 0], torch.ones(3, 2)[sums.sum(1) > 0], atol=1e-5)


def test_edge_dropout_view_keeps_attributes_aligned():
    graph = synthetic_graph()
    view = graph.drop_edges(0.5, generator=torch.Generator().manual_seed(1))
    for et, idx in view.edge_index_dict.items():
        if et in view.edge_attr_dict:
            assert view.edge_attr_dict[et].shape[0] == idx.shape[1]
    assert sum(v.shape[1] for v in view.edge_index_dict.values()) < \
        sum(v.shape[1] for v in graph.edge_index_dict.values())


def test_restricted_receptive_field_equals_full_graph_pass():
    from genesplice.models.graph_encoder import restrict_to_targets
    torch.manual_seed(0)
    enc = HeteroGATEncoder(["gene", "go_term"], ETS, {ETS[3]: 2},
                           GraphEncoderConfig(hidden=8, heads=2)).eval()
    graph = synthetic_graph()
    x = {"gene": torch.randn(5, 8), "go_term": torch.randn(3, 8)}
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


def test_membership_linear_matches_dense_product():
    from genesplice.models.fusion import MembershipLinear
    torch.manual_seed(0)
    dense = (torch.rand(6, 4) > 0.5).float()
    lin = MembershipLinear(4, 3)
    lin.warm_start_(torch.randn(4, 4), torch.randn(4))
    rows = torch.tensor([5, 0, 2])
    level, profile = lin(dense.to_sparse_csr(), rows)
    out = dense[rows] @ lin.weight + lin.bias
    assert torch.allclose(level, out[:, 0], atol=1e-6)
    assert torch.allclose(profile, out[:, 1:] - out[:, 1:].mean(1, keepdim=True), atol=1e-6)
