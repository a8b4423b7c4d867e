"""Shape and behaviour tests of the fused model on a tiny SYNTHETIC graph (shapes only).

Real-data training is tested in tests/training/; the graph encoder alone in
test_graph_encoder.py.
"""
import pytest
import torch
from torch import nn

from genesplice.models.fusion import MembershipLinear
from genesplice.models.graph_encoder import GraphEncoderConfig
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


def test_edge_dropout_view_keeps_attributes_aligned():
    graph = synthetic_graph()
    view = graph.drop_edges(0.5, generator=torch.Generator().manual_seed(1))
    for et, idx in view.edge_index_dict.items():
        if et in view.edge_attr_dict:
            assert view.edge_attr_dict[et].shape[0] == idx.shape[1]
    assert sum(v.shape[1] for v in view.edge_index_dict.values()) < \
        sum(v.shape[1] for v in graph.edge_index_dict.values())


def test_membership_linear_matches_dense_product():
    torch.manual_seed(0)
    dense = (torch.rand(6, 4) > 0.5).float()
    lin = MembershipLinear(4, 3)
    lin.warm_start_(torch.randn(4, 4), torch.randn(4))
    rows = torch.tensor([5, 0, 2])
    level, profile = lin(dense.to_sparse_csr(), rows)
    out = dense[rows] @ lin.weight + lin.bias
    assert torch.allclose(level, out[:, 0], atol=1e-6)
    assert torch.allclose(profile, out[:, 1:] - out[:, 1:].mean(1, keepdim=True), atol=1e-6)
