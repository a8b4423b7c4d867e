"""The head registry: built-in heads by name, a new head added from its own module (this test
module) without editing the core model, and unchanged state-dict keys (old checkpoints load).
Tiny SYNTHETIC graph (shapes only), from test_model."""
import pytest
import torch
from torch import nn

from genesplice.models.fusion import ExpressionHeads, ProjectionHead
from genesplice.models.graph_encoder import GraphEncoderConfig
from genesplice.models.heads import build_head, head_names, register_head
from genesplice.models.masked_lm import MaskedNucleotideHead
from genesplice.models.model import FusedModelConfig, GeneSpliceModel
from tests.models.test_model import ETS, MeanEmbed, synthetic_graph


@register_head("test_gene_classes")
class GeneClassHead(nn.Module):
    """A user's own head: classify genes into ``n_outputs`` classes (e.g. their own labels)."""

    def __init__(self, *, dim: int, n_outputs: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, n_outputs))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def _model(extra=()):
    cfg = FusedModelConfig(variant="fused", hidden=8, proj_dim=4,
                           graph=GraphEncoderConfig(hidden=8, heads=2), extra_heads=extra)
    return GeneSpliceModel(cfg, n_tissues=6, n_function_labels=3,
                           num_nodes={"gene": 5, "go_term": 3}, edge_types=ETS,
                           edge_dims={ETS[3]: 2}, n_membership_features=3,
                           sequence_encoder=MeanEmbed(), sequence_dim=8)


def test_builtin_heads_are_registered_by_name():
    assert {"tissue", "function", "contrastive", "masked_nucleotides"} <= set(head_names())
    assert isinstance(build_head("tissue", dim=8, n_outputs=5), ExpressionHeads)
    assert isinstance(build_head("contrastive", dim=8, out_dim=4), ProjectionHead)
    assert build_head("function", dim=8, n_outputs=3).out_features == 3
    assert isinstance(build_head("masked_nucleotides", d_model=8, downsample=4),
                      MaskedNucleotideHead)
    with pytest.raises(KeyError, match="unknown head 'nope'"):
        build_head("nope", dim=8)


def test_a_name_cannot_be_taken_twice():
    with pytest.raises(ValueError, match="already registered"):
        register_head("tissue")(GeneClassHead)


def test_state_dict_keys_of_the_existing_model_are_unchanged():
    keys = set(_model().state_dict())
    for key in ("heads.level.0.weight", "heads.profile.3.bias", "function_head.weight",
                "proj_seq.net.2.weight", "proj_graph.net.0.bias"):
        assert key in keys
    assert not any(k.startswith("extra_heads") for k in keys)


def test_a_new_head_is_built_trained_and_saved_without_editing_the_model():
    torch.manual_seed(0)
    model = _model(extra=(("classes", "test_gene_classes", 3),))
    assert isinstance(model.extra_heads["classes"], GeneClassHead)
    rows = torch.arange(5)
    target = torch.tensor([0, 1, 2, 1, 0])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        out = model(synthetic_graph(), None, rows)
        assert out.extra["classes"].shape == (5, 3)
        loss = nn.functional.cross_entropy(out.extra["classes"], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    # the config round-trips (as in a checkpoint's model_args) and the weights load back
    again = GeneSpliceModel(FusedModelConfig.from_dict(model.config.to_dict()), n_tissues=6,
                            n_function_labels=3, num_nodes={"gene": 5, "go_term": 3},
                            edge_types=ETS, edge_dims={ETS[3]: 2}, n_membership_features=3,
                            sequence_encoder=MeanEmbed(), sequence_dim=8)
    again.load_state_dict(model.state_dict())
    assert again.config.extra_heads == (("classes", "test_gene_classes", 3),)
    assert _model()(synthetic_graph(), None, rows).extra == {}
