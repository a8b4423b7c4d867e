"""Masked-nucleotide pretraining (issue 5, part 4) on the real EPDnew core promoters: the split
keeps test/validation chromosomes out of training, a short run beats the unigram-entropy
baseline on held-out chr9 promoters, and the checkpoint round-trips with weights_only.

Contrastive view (issue 10, item 2): the second view's reverse complement / shift is exact with
padding and N, a short contrastive run makes held-out embeddings strand-consistent while still
beating the unigram baseline, the projection head and settings are checkpointed and resume,
checkpoints from before the view still load, and bad settings fail before any work."""
import pytest
import torch

from genesplice.cli import main
from genesplice.io.errors import GeneSpliceInputError
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig
from genesplice.sequence.encode import PAD_INDEX, decode_tokens, reverse_complement
from genesplice.training.checkpoint import load_checkpoint, save_checkpoint
from genesplice.training.config import PretrainConfig
from genesplice.training.pretrain import (load_pretrained_encoder, load_pretraining_state,
                                          paired_views, pretrain_encoder,
                                          promoter_pretraining_sequences, random_crops)


@pytest.fixture(scope="module")
def promoter_data():
    return promoter_pretraining_sequences()


@pytest.fixture(scope="module")
def short_run(promoter_data, tmp_path_factory):
    """250 steps (batch 64) on training-chromosome promoters; ~10 s on one thread."""
    path = tmp_path_factory.mktemp("pretrain") / "encoder.pt"
    return pretrain_encoder(SequenceEncoderConfig.promoter(), promoter_data.train, steps=250,
                            warmup=25, batch_size=64, lr=3e-3, seed=0,
                            held_out=promoter_data.held_out, checkpoint_path=path,
                            num_threads=1)


def test_promoter_split_keeps_test_and_validation_genes_out(promoter_data, gene_chrom):
    d = promoter_data
    train_chroms = set(gene_chrom.reindex(list(set(d.train_gene_ids))))
    assert not train_chroms & {"chr8", "chr9"} and None not in train_chroms
    assert set(gene_chrom.reindex(list(set(d.held_out_gene_ids)))) == {"chr9"}
    n_train, n_held = d.train[0].shape[0], d.held_out[0].shape[0]
    assert n_train + n_held + d.n_excluded_chromosome + d.n_unknown_chromosome == d.n_records
    assert d.n_records == 29_598 and n_held > 1_000 and d.n_excluded_chromosome > 900
    # EPDnew -49..+10: 60 bp, except one 59 bp record (right-padded, mask False there)
    lengths = torch.cat([d.train[1].sum(1), d.held_out[1].sum(1)])
    assert d.train[0].shape[1] == 60 and int((lengths == 60).sum()) >= len(lengths) - 1
    assert d.excluded_chromosomes == ("chr8",) and d.held_out_chromosomes == ("chr9",)


def test_short_pretraining_beats_unigram_baseline_on_held_out_promoters(short_run):
    before, after = short_run.held_out_before, short_run.held_out_after
    assert before.unigram_entropy == after.unigram_entropy
    assert 1.30 < after.unigram_entropy < 1.386            # GC-rich promoters, below 2 bits
    assert before.loss > before.unigram_entropy              # untrained: worse than frequencies
    assert after.loss < after.unigram_entropy - 0.03, short_run.summary()
    assert after.accuracy > 0.40 and after.n_sequences == before.n_sequences
    assert len(short_run.train_losses) == 250
    assert "unigram-entropy baseline" in short_run.summary()


def test_checkpoint_round_trips_weights_only(short_run):
    raw = torch.load(short_run.checkpoint_path, weights_only=True)
    assert raw["step"] == 250 and raw["extra"]["kind"] == "masked_nucleotide_pretraining"
    cfg, state = load_pretrained_encoder(short_run.checkpoint_path)
    assert cfg == SequenceEncoderConfig.promoter()
    # what train_variant(..., encoder_state=state) does with it
    enc = SequenceEncoder(cfg)
    enc.load_state_dict(state)
    ref = SequenceEncoder(cfg)
    ref.load_state_dict(short_run.encoder_state)
    x = torch.tensor([[0, 1, 2, 3] * 15])
    m = torch.ones_like(x, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(enc.eval()(x, m), ref.eval()(x, m))
    assert raw["extra"]["held_out_after"]["loss"] == pytest.approx(short_run.held_out_after.loss)


def test_load_rejects_other_checkpoints(tmp_path):
    other = save_checkpoint(tmp_path / "other.pt", model_state={"w": torch.zeros(2)},
                            config={"x": 1})
    with pytest.raises(GeneSpliceInputError, match="not a pretrained-encoder checkpoint"):
        load_pretrained_encoder(other)
    bad = dict(SequenceEncoderConfig.promoter().to_dict(), d_model=33)
    with pytest.raises(GeneSpliceInputError, match="invalid sequence-encoder config"):
        SequenceEncoderConfig.from_dict(bad)


def test_random_crops_keep_real_bases():
    gen = torch.Generator().manual_seed(0)
    synthetic_tokens = torch.randint(0, 4, (50, 1_000), generator=gen)
    synthetic_mask = torch.zeros(50, 1_000, dtype=torch.bool)
    synthetic_mask[:25, :100] = True          # edge-padded at the end
    synthetic_mask[25:, 950:] = True          # edge-padded at the start
    t, m = random_crops(synthetic_tokens, synthetic_mask, 200, gen)
    assert t.shape == m.shape == (50, 200) and bool(m.any(-1).all())


def test_cli_pretrain_writes_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "enc.pt"
    assert main(["pretrain", "--out", str(out), "--steps", "20", "--quiet",
                 "--contrastive-weight", "0.2", "--contrastive-views", "both",
                 "--max-shift-bp", "5", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "held-out 1,136 on chr9" in text and "unigram-entropy baseline" in text
    assert "contrastive view 'both' (max shift 5 bp), weight 0.2" in text
    assert "held-out RC consistency" in text
    cfg, _ = load_pretrained_encoder(out)
    assert cfg == SequenceEncoderConfig.promoter()
    state = load_pretraining_state(out)
    assert state.settings["max_shift_bp"] == 5 and state.settings["device"] == "cpu"
    # --init-from continues from it (encoder and both heads)
    again = tmp_path / "enc2.pt"
    assert main(["pretrain", "--out", str(again), "--steps", "2", "--quiet",
                 "--init-from", str(out), "--contrastive-weight", "0.2"]) == 0
    assert load_checkpoint(again).extra["init_from"] == str(out)


def test_cli_long_sequence_study_rejects_bad_flanks(capsys):
    assert main(["long-sequence-study", "--flanks-kb", "ten"]) == 2
    assert "--flanks-kb must be numbers" in capsys.readouterr().err


# ------------------------------------------------------------------ contrastive view (issue 10)

def _synthetic_rows():
    """Synthetic tokens (shape test only): row 0 right-padded, row 1 with an N, row 2 padded at
    the start (a contig edge)."""
    rows = ["ACGTTGCA---", "AACNGGTTACG", "---GGGCATTA"]
    tokens = torch.tensor([["ACGTN-".index(c) for c in r] for r in rows])
    return rows, tokens, tokens != PAD_INDEX


def test_rc_view_is_the_reverse_complement_with_padding_and_n():
    rows, tokens, mask = _synthetic_rows()
    gen = torch.Generator().manual_seed(0)
    (a, am), (b, bm) = paired_views(tokens, mask, crop_bp=None, views="rc", max_shift_bp=0,
                                    generator=gen)
    assert torch.equal(a, tokens) and torch.equal(am, mask)
    for i, row in enumerate(rows):
        assert decode_tokens(b[i]).replace("-", "") == reverse_complement(row.replace("-", ""))
        assert torch.equal(bm[i], mask[i].flip(0)) and torch.equal(b[i] == PAD_INDEX, ~bm[i])
    (_, _), (bb, bbm) = paired_views(b, bm, crop_bp=None, views="rc", max_shift_bp=0,
                                     generator=gen)
    assert torch.equal(bb, tokens) and torch.equal(bbm, mask)      # rc(rc(x)) == x


def test_shift_view_is_the_same_locus_moved_by_at_most_max_shift():
    gen = torch.Generator().manual_seed(1)
    synthetic = torch.randint(0, 4, (64, 400), generator=gen)
    mask = torch.ones_like(synthetic, dtype=torch.bool)
    (a, _), (b, bm) = paired_views(synthetic, mask, crop_bp=100, views="shift",
                                   max_shift_bp=7, generator=gen)
    text = ["".join(map(str, r.tolist())) for r in synthetic]
    starts_a = [t.find("".join(map(str, r.tolist()))) for t, r in zip(text, a)]
    starts_b = [t.find("".join(map(str, r.tolist()))) for t, r in zip(text, b)]
    shifts = [sb - sa for sa, sb in zip(starts_a, starts_b)]
    assert min(starts_a) >= 0 and min(starts_b) >= 0 and bool(bm.all())   # cut from the source
    assert max(abs(x) for x in shifts) <= 7 and len(set(shifts)) > 5
    # a row no longer than the crop is shifted in place, with padding where it ends; "both"
    # is the reverse complement of such a shifted view
    rows, tokens, mask = _synthetic_rows()
    (_, _), (s, sm) = paired_views(tokens, mask, crop_bp=None, views="both", max_shift_bp=3,
                                   generator=torch.Generator().manual_seed(2))
    for i, row in enumerate(rows):
        rc_core = reverse_complement(row.replace("-", ""))
        got = decode_tokens(s[i]).replace("-", "")
        assert got and got in rc_core and len(got) >= len(rc_core) - 3
        assert torch.equal(s[i] == PAD_INDEX, ~sm[i])
    with pytest.raises(ValueError, match="views"):
        paired_views(tokens, mask, crop_bp=None, views="mirror", max_shift_bp=0, generator=gen)


@pytest.fixture(scope="module")
def contrastive_run(promoter_data, tmp_path_factory):
    """The short run's settings with the RC contrastive term (weight 0.1), 60 steps."""
    path = tmp_path_factory.mktemp("pretrain_nce") / "encoder.pt"
    return pretrain_encoder(SequenceEncoderConfig.promoter(), promoter_data.train, steps=60,
                            warmup=6, batch_size=64, lr=3e-3, seed=0,
                            held_out=promoter_data.held_out, checkpoint_path=path,
                            num_threads=1, contrastive_weight=0.1, contrastive_views="rc")


def test_contrastive_run_makes_embeddings_strand_consistent(contrastive_run, short_run):
    c, m = contrastive_run, short_run
    assert len(c.contrastive_losses) == 60 and not m.contrastive_losses
    # masked-only: the RC of a promoter is barely closer than an unrelated promoter's RC
    assert m.rc_after.margin < 0.1, m.summary()
    assert c.rc_after.cosine > 0.95 and c.rc_after.margin > m.rc_after.margin + 0.2, c.summary()
    assert c.held_out_after.loss < c.held_out_after.unigram_entropy     # still learned context
    tail = c.contrastive_losses[-6:]
    assert sum(tail) / len(tail) < 0.8 * torch.log(torch.tensor(64.0)).item()  # below chance
    text = c.summary()
    assert "contrastive view 'rc'" in text and "held-out RC consistency" in text


def test_contrastive_checkpoint_resumes_and_old_checkpoints_load(contrastive_run, short_run,
                                                                 promoter_data, tmp_path):
    state = load_pretraining_state(contrastive_run.checkpoint_path)
    assert state.settings["contrastive_weight"] == 0.1 and state.step == 60
    assert state.settings["contrastive_views"] == "rc"
    assert state.heads["contrast_head"].keys() == contrastive_run.contrast_head_state.keys()
    raw = load_checkpoint(contrastive_run.checkpoint_path)
    assert raw.extra["rc_after"]["margin"] == pytest.approx(contrastive_run.rc_after.margin)
    # one more step from the checkpoint starts from its weights (not a fresh encoder)
    more = pretrain_encoder(state.config, promoter_data.held_out, steps=1, warmup=0, lr=1e-9,
                            contrastive_weight=0.1, init_state=state.encoder_state,
                            init_heads=state.heads, num_threads=1)
    for k, v in contrastive_run.contrast_head_state.items():
        assert torch.allclose(more.contrast_head_state[k], v, atol=1e-6)
    # a checkpoint written before the contrastive view: no head, no contrastive settings
    ck = load_checkpoint(short_run.checkpoint_path)
    old_settings = {k: v for k, v in ck.config["pretrain"].items()
                    if "contrastive" not in k and k not in ("max_shift_bp", "device")}
    old_extra = {k: v for k, v in ck.extra.items() if not k.startswith("rc_")}
    old = save_checkpoint(tmp_path / "old.pt", model_state=ck.model_state, step=ck.step,
                          config={**ck.config, "pretrain": old_settings}, extra=old_extra)
    cfg, _ = load_pretrained_encoder(old)
    state = load_pretraining_state(old)
    assert cfg == SequenceEncoderConfig.promoter() and state.heads["contrast_head"] is None
    assert state.settings["contrastive_weight"] == 0.0 and state.heads["head"] is not None


def test_bad_contrastive_settings_fail_before_any_work(capsys):
    with pytest.raises(GeneSpliceInputError, match="pretrain.contrastive_views = 'mirror'"):
        PretrainConfig(contrastive_views="mirror")
    with pytest.raises(GeneSpliceInputError, match="pretrain.max_shift_bp = 0"):
        PretrainConfig(contrastive_views="shift", max_shift_bp=0)
    with pytest.raises(GeneSpliceInputError, match="contrastive_weight = -1"):
        PretrainConfig(contrastive_weight=-1)
    assert PretrainConfig(contrastive_views="both", max_shift_bp=16).max_shift_bp == 16
    assert main(["pretrain", "--contrastive-views", "shift", "--max-shift-bp", "0",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "pretrain.max_shift_bp = 0" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="contrastive_temperature"):
        pretrain_encoder(SequenceEncoderConfig.promoter(), _synthetic_rows()[1:], steps=1,
                         contrastive_weight=0.1, contrastive_temperature=0.0)


def test_pretrain_device_is_checked_before_any_work(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GeneSpliceInputError, match="CUDA is not available"):
        pretrain_encoder(SequenceEncoderConfig.promoter(), _synthetic_rows()[1:], steps=1,
                         device="cuda")
    assert main(["pretrain", "--device", "cuda", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "device 'cuda' was asked for but CUDA is not available" in err
