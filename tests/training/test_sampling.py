"""Sampled mini-batch graphs (``train.graph_batches = "sampled"``) on a real slice: the default
human graph, a few hundred labelled genes (as in test_data_and_loop)."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch_geometric.loader import NodeLoader

from genesplice.io.errors import GeneSpliceInputError
from genesplice.models.inference import PER_GENE
from genesplice.training.config import RunConfig, TrainConfig
from genesplice.training.experiment import build_model, model_args, prepare_from_config
from genesplice.training.loop import train_model
from genesplice.training.sampling import (fan_out, hetero_data, neighbor_sampler,
                                          sample_batch)
from tests.slices import gene_slice

N_GENES = 400


@pytest.fixture(scope="module")
def data(kg):
    pick = gene_slice(kg, N_GENES - 120, 60, seed=0)
    return prepare_from_config(RunConfig(), graph=kg, genes=pick, progress=False)


@pytest.fixture(scope="module")
def seeds(data):
    g = torch.Generator().manual_seed(0)
    train = data.rows["train"]
    return train[torch.randperm(len(train), generator=g)[:48]]


def _model(data, seed=0, **model):
    torch.manual_seed(seed)
    cfg = replace(RunConfig().model, **model)
    return build_model(model_args(data, cfg.fused("fused"), cfg.sequence_encoder()))


def test_sampled_batch_holds_the_seeds_and_respects_the_fan_out(data, seeds):
    gi = data.graph_inputs
    fanout = [3, 2]
    b = sample_batch(gi, data.sequences, seeds, neighbor_sampler(gi, fanout))
    assert torch.equal(b.gene_ids[b.seeds], seeds)                  # seeds, in their order
    assert torch.equal(b.new_index[b.gene_ids[b.gene_ids >= 0]],
                       torch.arange(int((b.gene_ids >= 0).sum())))
    out = b.sampler
    assert torch.equal(out.node["gene"][:len(seeds)], seeds)
    n_checked = 0
    for et, full in gi.edge_index_dict.items():
        e = out.edge[et]
        assert len(torch.unique(e)) == len(e)                       # each edge drawn once
        # the subgraph's edges are the full graph's edges at those positions, with attributes
        sub = b.graph.edge_index_dict[et]
        back = torch.stack([b.gene_ids[sub[0]] if et[0] == "gene" else sub[0],
                            b.gene_ids[sub[1]] if et[2] == "gene" else sub[1]])
        assert torch.equal(back, full[:, e])
        if et in gi.edge_attr_dict:
            assert torch.equal(b.graph.edge_attr_dict[et], gi.edge_attr_dict[et][e])
        # per destination: min(in-degree, fan-out of the hop that reached it) edges
        hop_of = torch.repeat_interleave(
            torch.arange(len(out.num_sampled_nodes[et[2]])),
            torch.tensor(out.num_sampled_nodes[et[2]]))
        dst_local = out.col[et]
        drawn = torch.bincount(dst_local, minlength=len(out.node[et[2]]))
        degree = torch.bincount(full[1], minlength=gi.num_nodes[et[2]])[out.node[et[2]]]
        for hop, k in enumerate(fanout):
            at = hop_of == hop
            assert torch.equal(drawn[at], degree[at].clamp(max=k)), (et, hop)
            n_checked += int(at.sum())
        assert int(drawn[hop_of == len(fanout)].sum()) == 0          # the last hop's nodes
    assert n_checked > len(seeds)


def test_sampled_batch_carries_every_per_gene_input(data, seeds):
    gi = data.graph_inputs
    b = sample_batch(gi, data.sequences, seeds, neighbor_sampler(gi, [4, 4]))
    real = b.gene_ids >= 0
    assert int((~real).sum()) == 1 and bool(~real[-1])              # one sink row, last
    carried = [name for name in PER_GENE if getattr(gi, name) is not None]
    assert {"gene_features", "labels", "labelled"} <= set(carried)
    for name in carried:
        sub, full = getattr(b.graph, name), getattr(gi, name)
        assert torch.equal(sub[real], full[b.gene_ids[real]]), name
        assert not bool(sub[~real].any()), name                      # the sink: 0 / False
    m_sub, m_full = b.graph.membership.to_dense(), gi.membership.to_dense()
    assert torch.equal(m_sub[real], m_full[b.gene_ids[real]])
    # every label edge into a seed is there (its source was added), none into the sink
    lei = b.graph.label_edge_index
    back = b.gene_ids[lei]
    full_edges = set(map(tuple, gi.label_edge_index.T.tolist()))
    assert set(map(tuple, back.T.tolist())) <= full_edges
    into_seeds = {e for e in full_edges if e[1] in set(seeds.tolist())}
    assert into_seeds <= set(map(tuple, back.T.tolist()))
    # sequences: all of them, renumbered; outside the sample → the sink
    seq = b.sequences
    assert len(seq) == len(data.sequences) and seq.tokens is data.sequences.tokens
    inside = b.new_index[data.sequences.gene_rows] >= 0
    assert torch.equal(b.gene_ids[seq.gene_rows[inside]], data.sequences.gene_rows[inside])
    assert bool((seq.gene_rows[~inside] == len(b.gene_ids) - 1).all())


def test_all_neighbours_give_the_exact_batch(data, seeds):
    """Fan-out -1 on every hop (one per GAT layer): the seeds' outputs equal an exact batch."""
    model = _model(data).eval()
    gi = data.graph_inputs
    model.refresh_sequence_cache(data.sequences)
    b = sample_batch(gi, data.sequences, seeds,
                     neighbor_sampler(gi, [-1] * model.config.graph.n_layers))
    with torch.no_grad():
        exact = model(gi, data.sequences, seeds)
        sampled = model(b.graph, b.sequences, b.seeds)
    assert torch.allclose(exact.prediction, sampled.prediction, atol=1e-5)
    assert torch.allclose(exact.function_logits, sampled.function_logits, atol=1e-5)


def test_the_sampler_plugs_into_pyg_node_loader(data, seeds):
    gi = data.graph_inputs
    loader = NodeLoader(hetero_data(gi), node_sampler=neighbor_sampler(gi, [2, 2]),
                        input_nodes=("gene", seeds), batch_size=16)
    batch = next(iter(loader))
    assert torch.equal(batch["gene"].n_id[:16], seeds[:16])
    assert torch.equal(batch["gene"].gene_features, gi.gene_features[batch["gene"].n_id])


def test_fan_out_settings_are_checked():
    with pytest.raises(GeneSpliceInputError, match="graph_batches"):
        TrainConfig(graph_batches="approximate")
    with pytest.raises(GeneSpliceInputError, match="num_neighbors"):
        TrainConfig(num_neighbors=())
    with pytest.raises(GeneSpliceInputError, match="edge_num_neighbors entry"):
        TrainConfig(edge_num_neighbors=("gene_regulates_gene=5",))
    with pytest.raises(GeneSpliceInputError, match="expected 2 fan-outs"):
        TrainConfig(edge_num_neighbors=("gene__regulates__gene=5",))
    ets = [("gene", "regulates", "gene"), ("go_term", "rev_annotated_with", "gene")]
    assert fan_out(ets, (10, 5), ("gene__regulates__gene=3,-1",)) == {
        ets[0]: [3, -1], ets[1]: [10, 5]}
    with pytest.raises(GeneSpliceInputError, match="no edge type pathway__x__gene"):
        fan_out(ets, (10, 5), ("pathway__x__gene=1,1",))


def test_training_on_sampled_batches_learns(data):
    cfg = replace(RunConfig().train, epochs=2, batch_size=140, warmup_steps=1, patience=0,
                  lr=3e-3, graph_batches="sampled", num_neighbors=(5, 5))
    model = _model(data, hidden=16, heads=2, promoter_encoder="small")     # a small, fast one
    result = train_model(model, data, cfg, progress=False)
    loss = result.history["loss"].to_numpy()
    assert np.isfinite(loss).all() and loss[-1] < loss[0]
    assert np.isfinite(result.history["val_gene_pearson"]).all()
