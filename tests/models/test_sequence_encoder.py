"""SequenceEncoder: shapes (synthetic_* tensors), masks and real GRCh37 chr20 windows."""
import dataclasses

import pytest
import torch

from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.models import sequence_encoder
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig
from genesplice.sequence import (PAD_INDEX, GenomeWindows, TssWindowDataset, collate_sequences,
                                 encode_sequence, pad_tokens, read_promoter_fasta, read_tss_bed,
                                 reverse_complement_tokens)

TOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Small models: one thread is about as fast and avoids OpenMP spin-waits on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def chr20():
    genome = GenomeWindows(knowledge_path("sequence/GRCh37_chr20.fa.gz"))
    yield genome
    genome.close()


@pytest.fixture(scope="module")
def chr20_tss():
    tss = read_tss_bed(knowledge_path("sequence/annotation/hg19_promoters_cage_corrected_withChr.bed.gz"))
    return tss[tss["chrom"] == "chr20"].reset_index(drop=True)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return SequenceEncoder(SequenceEncoderConfig.small()).eval()


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    return SequenceEncoder(SequenceEncoderConfig.base()).eval()


def _window(genome, tss, i, up, down):
    row = tss.iloc[i]
    return genome.window(row["chrom"], int(row["tss"]), row["strand"], up, down)


def test_configs_and_parameter_counts(small, base):
    assert 24_000_000 <= base.n_parameters() <= 26_000_000
    assert small.n_parameters() < 1_000_000
    assert base.config.downsample == 128 and small.config.downsample == 32
    assert base.config.out_dim == base.config.d_model == 256
    with pytest.raises(ValueError, match="stem_channels"):
        SequenceEncoderConfig(stem_channels=(64,))
    with pytest.raises(ValueError, match="window"):
        SequenceEncoderConfig(window=7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.config.d_model = 3  # frozen


def test_presets_and_dict_round_trip():
    promoter, study = SequenceEncoderConfig.promoter(), SequenceEncoderConfig.long_study()
    assert promoter.downsample == 4 and promoter.window == 16 and promoter.d_model == 32
    assert study.downsample == 128 and study.d_model == SequenceEncoderConfig.small().d_model
    assert SequenceEncoderConfig.preset("long_study", n_layers=3) == \
        SequenceEncoderConfig.long_study(n_layers=3)
    for name in sequence_encoder.ENCODER_PRESETS:
        cfg = SequenceEncoderConfig.preset(name)
        d = cfg.to_dict()
        assert d["stem_strides"] == list(cfg.stem_strides)          # plain data, no tuples
        assert SequenceEncoderConfig.from_dict(d) == cfg
    with pytest.raises(GeneSpliceInputError, match="unknown sequence-encoder preset 'tiny'"):
        SequenceEncoderConfig.preset("tiny")
    with pytest.raises(GeneSpliceInputError, match=r"unknown sequence-encoder config fields \['width'\]"):
        SequenceEncoderConfig.from_dict({"width": 3})
    with pytest.raises(GeneSpliceInputError, match="invalid sequence-encoder config"):
        SequenceEncoderConfig.from_dict({"window": 7})


@pytest.mark.parametrize("length", [1, 7, 60, 129, 1_000, 5_003])
def test_synthetic_shapes_any_length(small, length):
    synthetic_tokens = torch.randint(0, 5, (3, length), generator=torch.Generator().manual_seed(length))
    synthetic_mask = torch.ones(3, length, dtype=torch.bool)
    with torch.no_grad():
        out = small(synthetic_tokens, synthetic_mask)
        states, state_mask = small.token_states(synthetic_tokens, synthetic_mask)
    n = -(-length // 32)
    assert out.shape == (3, 64) and torch.isfinite(out).all()
    assert states.shape == (3, n, 64) and state_mask.shape == (3, n) and state_mask.all()


def test_real_100kb_chr20_window_base_encoder(base, chr20, chr20_tss):
    w = _window(chr20, chr20_tss, 0, 50_000, 50_000)
    assert w.mask.all()
    with torch.no_grad():
        emb = base(w.tokens[None], w.mask[None], torch.tensor([w.tss_index]))
        states, state_mask = base.token_states(w.tokens[None], w.mask[None])
    assert emb.shape == (1, 256) and torch.isfinite(emb).all()
    assert states.shape == (1, 782, 256) and state_mask.all()   # ceil(100000 / 128)
    # different genes give different embeddings
    other = _window(chr20, chr20_tss, 1, 50_000, 50_000)
    with torch.no_grad():
        emb2 = base(other.tokens[None], other.mask[None])
    assert (emb - emb2).abs().max() > 1e-3


@pytest.mark.parametrize("model_name,up,down", [("small", 1_000, 1_000), ("small", 10_000, 10_000),
                                                ("base", 10_000, 10_000), ("base", 30, 30)])
def test_mask_invariance_padded_vs_unpadded(request, chr20, chr20_tss, model_name, up, down):
    model = request.getfixturevalue(model_name)
    w = _window(chr20, chr20_tss, 3, up, down)
    n = len(w.tokens)
    with torch.no_grad():
        alone = model(w.tokens[None], w.mask[None])
        for extra in (1, 97, 6_000):
            tokens, mask = pad_tokens([w.tokens], [w.mask], length=n + extra)
            padded = model(tokens, mask)
            assert (alone - padded).abs().max() < TOL, extra
        # garbage under the padding changes nothing either
        tokens[0, n:] = torch.randint(0, 5, (6_000,))
        assert (alone - model(tokens, mask)).abs().max() < TOL


def test_batched_mixed_lengths_match_one_by_one(small, base, chr20, chr20_tss):
    """A 60 bp EPDnew promoter, a ±1 kb and a ±10 kb chr20 window batched together."""
    promoter = read_promoter_fasta(knowledge_path("coords/epdnew_hs_core_promoters_m49_p10.fa.gz")).iloc[0]
    seqs = [(encode_sequence(promoter["sequence"]), 49),
            (_window(chr20, chr20_tss, 5, 1_000, 1_000).tokens, 1_000),
            (_window(chr20, chr20_tss, 6, 10_000, 10_000).tokens, 10_000)]
    for model in (small, base):
        tokens, mask = pad_tokens([s for s, _ in seqs])
        tss = torch.tensor([t for _, t in seqs])
        with torch.no_grad():
            batched = model(tokens, mask, tss)
            for i, (s, t) in enumerate(seqs):
                single = model(s[None], torch.ones(1, len(s), dtype=torch.bool), torch.tensor([t]))
                assert (batched[i] - single[0]).abs().max() < TOL


def test_tss_index_steers_pooling(small, chr20, chr20_tss):
    w = _window(chr20, chr20_tss, 2, 2_000, 2_000)
    model = SequenceEncoder(SequenceEncoderConfig.small()).eval()
    model.load_state_dict(small.state_dict())
    with torch.no_grad():
        model.pool.distance_bias.copy_(torch.linspace(-3, 3, model.pool.distance_bias.numel())
                                       .view_as(model.pool.distance_bias))
        at_tss = model(w.tokens[None], w.mask[None], torch.tensor([2_000]))
        default = model(w.tokens[None], w.mask[None])           # centre of the real bases
        elsewhere = model(w.tokens[None], w.mask[None], torch.tensor([100]))
        weights = model.pooling_attention(w.tokens[None], w.mask[None])
    assert (at_tss - default).abs().max() < TOL
    assert (at_tss - elsewhere).abs().max() > 1e-3
    assert weights.shape == (1, 4, 125)
    assert torch.allclose(weights.sum(-1), torch.ones(1, 4), atol=1e-5) and (weights >= 0).all()


def test_edge_padded_and_reverse_complemented_windows(small, chr20):
    """Window at chr20's start: 900 bases beyond the contig, masked; RC keeps shapes and moves
    the padding to the end; masked positions never receive pooling weight."""
    w = chr20.window("20", 100, "+", 1_000, 1_000)
    rc_tokens, rc_mask = reverse_complement_tokens(w.tokens), w.mask.flip(0)
    with torch.no_grad():
        e = small(w.tokens[None], w.mask[None], torch.tensor([w.tss_index]))
        e_rc = small(rc_tokens[None], rc_mask[None], torch.tensor([len(w.tokens) - 1 - w.tss_index]))
        weights = small.pooling_attention(w.tokens[None], w.mask[None])
    assert e.shape == e_rc.shape == (1, 64) and torch.isfinite(e_rc).all()
    assert weights[0, :, : 900 // 32].sum() == 0          # tokens with no real base
    assert torch.equal(reverse_complement_tokens(rc_tokens), w.tokens)


def test_all_padding_is_an_error(small):
    synthetic_tokens = torch.full((2, 50), PAD_INDEX)
    synthetic_mask = torch.zeros(2, 50, dtype=torch.bool)
    synthetic_mask[0, :10] = True
    with pytest.raises(ValueError, match="at least one real base"):
        small(synthetic_tokens, synthetic_mask)


def test_activation_checkpointing_gives_the_same_gradients(chr20, chr20_tss, monkeypatch):
    items = [_window(chr20, chr20_tss, i, 500, 500) for i in range(2)]
    tokens, mask = pad_tokens([w.tokens for w in items], [w.mask for w in items])
    calls = []
    real_checkpoint = sequence_encoder.checkpoint

    def counting_checkpoint(*args, **kwargs):
        calls.append(1)
        return real_checkpoint(*args, **kwargs)

    monkeypatch.setattr(sequence_encoder, "checkpoint", counting_checkpoint)
    grads, n_calls = [], []
    for ckpt in (False, True):
        torch.manual_seed(0)
        model = SequenceEncoder(SequenceEncoderConfig.small(checkpointing=ckpt)).train()
        model(tokens, mask).square().sum().backward()
        n_calls.append(len(calls))
        assert [n for n, p in model.named_parameters() if p.grad is None] == []
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    # the checkpointed run really went through torch.utils.checkpoint, once per block
    assert n_calls == [0, model.config.n_layers]
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], atol=1e-6), name


def test_dataset_batch_feeds_the_encoder(small, chr20, chr20_tss):
    ds = TssWindowDataset(chr20, chr20_tss, 1_000, 1_000, reverse_complement_prob=0.5, max_shift=10)
    batch = collate_sequences([ds[i] for i in range(4)])
    with torch.no_grad():
        out = small(batch.tokens, batch.mask, batch.tss_index)
    assert out.shape == (4, 64) and torch.isfinite(out).all()


def test_base_encoder_embeds_chrx_genes_at_10kb(base):
    genome = GenomeWindows(knowledge_path("sequence/GRCh37_chrX_1-69999930.fa.gz"))
    tss = read_tss_bed(knowledge_path("sequence/annotation/hg19_promoters_cage_corrected_withChr.bed.gz"))
    ds = TssWindowDataset(genome, tss, 10_000, 10_000)
    batch = collate_sequences([ds[i] for i in range(3)])
    genome.close()
    with torch.no_grad():
        out = base(batch.tokens, batch.mask, batch.tss_index)
    assert out.shape == (3, 256) and torch.isfinite(out).all()
    assert torch.cdist(out, out)[0, 1:].min() > 1e-3


@pytest.mark.parametrize("config_name", ["small", "base"])
def test_chunked_stem_equals_whole_stem(request, config_name, chr20, chr20_tss):
    """The stem runs in chunks plus a receptive-field halo; results equal one whole pass."""
    model = request.getfixturevalue(config_name)
    w = _window(chr20, chr20_tss, 4, 40_000, 40_001)
    ds = model.config.downsample
    n = -(-len(w.tokens) // ds)
    tokens, mask = pad_tokens([w.tokens], [w.mask], length=n * ds)
    mask[0, :1_000] = False                      # an edge-padded start, as at a contig end
    with torch.no_grad():
        whole, whole_mask = model._stem(tokens, mask)
        chunked = SequenceEncoder(model.config.__class__(**{**model.config.__dict__, "stem_chunk_tokens": 7}))
        chunked.load_state_dict(model.state_dict())
        parts, parts_mask = chunked.eval()._chunked_stem(tokens, mask)
    assert n > 7 * 3 and torch.equal(whole_mask, parts_mask)
    assert (whole - parts).abs().max() < TOL
