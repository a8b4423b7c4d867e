"""Masked-nucleotide pretraining (issue 5, part 4) on the real EPDnew core promoters: the split
keeps test/validation chromosomes out of training, a short run beats the unigram-entropy
baseline on held-out chr9 promoters, and the checkpoint round-trips with weights_only."""
import pytest
import torch

from genesplice.cli import main
from genesplice.io.errors import GeneSpliceInputError
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig
from genesplice.training.checkpoint import save_checkpoint
from genesplice.training.pretrain import (load_pretrained_encoder, pretrain_encoder,
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
    assert main(["pretrain", "--out", str(out), "--steps", "20", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "held-out 1,136 on chr9" in text and "unigram-entropy baseline" in text
    cfg, _ = load_pretrained_encoder(out)
    assert cfg == SequenceEncoderConfig.promoter()


def test_cli_long_sequence_study_rejects_bad_flanks(capsys):
    assert main(["long-sequence-study", "--flanks-kb", "ten"]) == 2
    assert "--flanks-kb must be numbers" in capsys.readouterr().err
