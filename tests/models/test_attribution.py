"""Inference and attribution maths on a tiny SYNTHETIC graph with the real promoter encoder
architecture (untrained weights): receptive-field restriction is exact, copies and appended
genes reproduce their originals, gradient × input and ISM bookkeeping, attention sums.

Real-gene behaviour (sign agreement of ISM and gradient × input on a trained model, variant
effects) is tested in tests/test_api.py.
"""
import pytest
import torch

from genesplice.models.attribution import (
    attention_into,
    gradient_x_input,
    ism_table,
    onehot_gradient,
    single_base_mutants,
)
from genesplice.models.graph_encoder import GraphEncoderConfig
from genesplice.models.inference import (
    NewGeneEdges,
    TwoStateModel,
    append_genes,
    copy_genes,
    drop_genes,
    receptive_field,
    restrict_graph,
)
from genesplice.models.model import (
    FusedModelConfig,
    GeneSpliceModel,
    GraphInputs,
    SequenceInputs,
)
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig

ANN = ("go_term", "rev_annotated_with", "gene")
REG = ("gene", "regulates", "gene")
REV_REG = ("gene", "rev_regulates", "gene")
ISA = ("go_term", "is_a", "go_term")
ETS = [ANN, REG, REV_REG, ISA]
N_GENES, N_TERMS = 8, 4


def synthetic_inputs():
    """8 genes (6 with a synthetic 60 bp sequence), 4 GO terms, TF edges with sign/confidence."""
    g = torch.Generator().manual_seed(0)
    reg = torch.tensor([[0, 0, 1, 5], [1, 2, 3, 6]])
    ei = {ANN: torch.tensor([[0, 1, 1, 2, 3, 3, 0], [0, 1, 2, 3, 4, 5, 6]]),
          REG: reg, REV_REG: reg.flip(0), ISA: torch.tensor([[0, 1], [2, 3]])}
    ea = {REG: torch.randn(4, 2, generator=g), REV_REG: torch.randn(4, 2, generator=g)}
    membership = torch.sparse_coo_tensor(torch.tensor([[0, 1, 2, 3, 4, 5, 6], [0, 1, 1, 2, 3, 3, 0]]),
                                         torch.ones(7), (N_GENES, N_TERMS)).coalesce().to_sparse_csr()
    graph = GraphInputs({"gene": N_GENES, "go_term": N_TERMS}, ei, ea, membership)
    rows = torch.tensor([0, 1, 2, 3, 5, 6])
    seq = SequenceInputs(gene_rows=rows, tokens=torch.randint(0, 4, (6, 60), generator=g),
                         mask=torch.ones(6, 60, dtype=torch.bool))
    return graph, seq


def make_model(seed):
    torch.manual_seed(seed)
    enc = SequenceEncoderConfig.promoter()
    cfg = FusedModelConfig(variant="fused", hidden=16, proj_dim=4,
                           graph=GraphEncoderConfig(hidden=16, heads=2, n_layers=2, dropout=0.0))
    model = GeneSpliceModel(cfg, n_tissues=5, n_function_labels=0,
                            num_nodes={"gene": N_GENES, "go_term": N_TERMS}, edge_types=ETS,
                            edge_dims={REG: 2, REV_REG: 2}, n_membership_features=N_TERMS,
                            sequence_encoder=SequenceEncoder(enc), sequence_dim=enc.out_dim)
    with torch.no_grad():                       # non-zero heads and linear path
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.fixture(scope="module")
def two_state():
    graph, seq = synthetic_inputs()
    return TwoStateModel(make_model(0), make_model(1), seq), graph, seq


def full_prediction(tsm, graph, seq, rows):
    out = []
    for model in (tsm.level_model, tsm.profile_model):
        model.refresh_sequence_cache(seq)
        with torch.no_grad():
            out.append(model(graph, seq, rows))
    return out[0].level[:, None] + out[1].profile


def test_receptive_field_follows_regulatory_edges():
    graph, _ = synthetic_inputs()
    field = receptive_field(graph, torch.tensor([3]), n_layers=2)
    # layer 2: gene 3 <- TF 1 (regulates), GO term 2; layer 1: TF 1 <- TF 0 (regulates),
    # gene 3 (rev_regulates: its target), term 1; term 2 <- term 0 (is_a). Gene 2 reaches
    # TF 0 only after one layer, too late to matter.
    assert field["gene"].nonzero().squeeze(1).tolist() == [0, 1, 3]
    assert field["go_term"].nonzero().squeeze(1).tolist() == [0, 1, 2]


def test_restricted_prediction_equals_full_graph_pass(two_state):
    tsm, graph, seq = two_state
    rows = torch.tensor([3, 7, 0])
    pred, has = tsm.predict(graph, seq, rows)
    assert pred.shape == (3, 5)
    assert has.tolist() == [True, False, True]
    torch.testing.assert_close(pred, full_prediction(tsm, graph, seq, rows), atol=1e-5, rtol=0)


def test_copy_with_own_sequence_predicts_like_original(two_state):
    tsm, graph, seq = two_state
    rows = torch.tensor([3, 3, 6])
    tokens = seq.tokens[[3, 3, 5]]
    g2, s2, copies = copy_genes(graph, seq, rows, tokens=tokens, mask=torch.ones_like(tokens, dtype=torch.bool))
    assert g2.num_nodes["gene"] == N_GENES + 3 and copies.tolist() == [8, 9, 10]
    assert g2.membership.shape == (N_GENES + 3, N_TERMS)
    pred, _ = tsm.predict(g2, s2, copies)
    orig, _ = tsm.predict(graph, seq, rows)
    torch.testing.assert_close(pred, orig, atol=1e-5, rtol=0)


def test_drop_then_append_reproduces_a_gene(two_state):
    """Gene 2 (regulated by TF 0, annotated with term 1) removed, then added back as a new node."""
    tsm, graph, seq = two_state
    g_minus, s_minus, new_index = drop_genes(graph, seq, torch.tensor([2]))
    assert g_minus.num_nodes["gene"] == N_GENES - 1 and int(new_index[2]) == -1
    assert all(int(ei[1].max()) < N_GENES - 1 for et, ei in g_minus.edge_index_dict.items()
               if et[2] == "gene")
    n = N_GENES - 1
    edges = NewGeneEdges(
        edge_index={ANN: torch.tensor([[1], [n]]), REG: torch.tensor([[0], [n]]),
                    REV_REG: torch.tensor([[n], [0]])},
        edge_attr={REG: graph.edge_attr_dict[REG][1:2], REV_REG: graph.edge_attr_dict[REV_REG][1:2]})
    g_back, s_back, new = append_genes(
        g_minus, s_minus, n_new=1, edges=edges, membership_rows=[torch.tensor([1])],
        tokens=seq.tokens[2:3], mask=seq.mask[2:3])
    pred, has = TwoStateModel(tsm.level_model, tsm.profile_model, s_minus).predict(g_back, s_back, new)
    orig, _ = tsm.predict(graph, seq, torch.tensor([2]))
    assert has.tolist() == [True]
    torch.testing.assert_close(pred, orig, atol=1e-5, rtol=0)


def test_attention_on_restricted_edges_equals_a_larger_field(two_state):
    tsm, graph, seq = two_state
    sub = tsm.attention_into(graph, seq, 3)
    assert set(sub) == {ANN, REG}                       # GO term 2 and TF 1 point at gene 3
    assert tsm._query(graph, torch.tensor([3])).new_index is not None   # compacted: 3 of 8 genes
    assert sub[REG][0].tolist() == [1] and sub[ANN][0].tolist() == [2]  # original numbering
    for src, w in sub.values():
        assert w.shape == (len(src), 2)
        torch.testing.assert_close(w.sum(0), torch.ones(2))       # softmax per relation/layer
    model = tsm.profile_model
    model.refresh_sequence_cache(seq)
    full = attention_into(model.attention(graph, seq), 3)
    for et in sub:
        torch.testing.assert_close(sub[et][1], full[et][1], atol=1e-6, rtol=0)
    assert len(restrict_graph(graph, torch.tensor([3]), 2).edge_index_dict[ISA][0]) == 1


def _prediction_at_onehot(tsm, graph, seq, row, tokens, tissue, onehot):
    """Prediction with gene ``row``'s one-hot input replaced by ``onehot [4, l]`` (any reals)."""
    total = 0.0
    for name, model in tsm.models():
        q = tsm._query(graph, torch.tensor([row]))
        s = tsm.sequence_inputs(model, q, seq)
        stem = model.sequence_encoder.stem[0]

        def swap(_module, args):
            x = args[0].clone()
            x[0, :4, :onehot.shape[1]] = onehot
            return (x, *args[1:])

        handle = stem.register_forward_pre_hook(swap)
        try:
            emb = model.sequence_encoder(tokens[None], torch.ones(1, len(tokens), dtype=torch.bool))
        finally:
            handle.remove()
        hit = torch.nonzero(s.gene_rows == q.rows[0]).squeeze(1)
        s2 = SequenceInputs(gene_rows=s.gene_rows, embeddings=s.embeddings.index_put((hit,), emb))
        out = model(q.graph, s2, q.rows)
        total = total + (out.level[0] if name == "level" else out.profile[0, tissue])
    return total


def test_onehot_gradient_matches_a_directional_finite_difference(two_state):
    tsm, graph, seq = two_state
    row, tokens, tissue = 1, seq.tokens[1], 2
    grad = tsm.input_gradient(graph, seq, row, tokens, tissue=tissue)
    assert grad.shape == (4, 60)
    onehot = torch.nn.functional.one_hot(tokens, 4).T.float()
    direction = torch.randn(4, 60, generator=torch.Generator().manual_seed(1))
    eps = 1e-2
    with torch.no_grad():
        up = _prediction_at_onehot(tsm, graph, seq, row, tokens, tissue, onehot + eps * direction)
        down = _prediction_at_onehot(tsm, graph, seq, row, tokens, tissue, onehot - eps * direction)
    numeric = float((up - down) / (2 * eps))
    analytic = float((grad * direction).sum())
    assert abs(numeric - analytic) <= 0.05 * abs(analytic) + 1e-5


def test_mutants_and_ism_table_bookkeeping(two_state):
    tsm, graph, seq = two_state
    row, tokens = 1, seq.tokens[1]
    mutants, pos, base = single_base_mutants(tokens, torch.tensor([10, 30]))
    assert len(mutants) == 6 and (mutants != tokens).sum(1).tolist() == [1] * 6
    assert set(zip(pos.tolist(), base.tolist())).isdisjoint({(10, int(tokens[10])),
                                                            (30, int(tokens[30]))})
    delta = tsm.mutagenesis(graph, seq, row, tokens, mutants)
    assert delta.shape == (6, 5) and delta.abs().sum() > 0
    table = ism_table(delta[:, 2], pos, base, 60)
    assert table.shape == (4, 60) and table[tokens[10], 10] == 0 and table[:, 0].abs().sum() == 0
    torch.testing.assert_close(table[base, pos], delta[:, 2])


def test_gradient_x_input_centring():
    grad = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [6.0, 0.0]])     # synthetic
    plain, centred = gradient_x_input(grad, torch.tensor([3, 4]))            # T, then N
    assert plain.tolist() == [6.0, 0.0]
    assert centred.tolist() == [3.0, 0.0]


def test_onehot_gradient_needs_embeddings_inputs(two_state):
    tsm, graph, seq = two_state
    with pytest.raises(ValueError, match="embeddings-mode"):
        onehot_gradient(tsm.profile_model, graph, seq, 1, seq.tokens[1], lambda o: o.level[0])
