"""Masked-nucleotide objective: masking rules (synthetic_*), head shapes, and pretraining on
real GRCh37 chr20 TSS windows beating the unigram-entropy baseline."""
import math

import pytest
import torch

from genesplice.io.knowledge import knowledge_path
from genesplice.models.masked_lm import (MaskedNucleotideHead, mask_tokens, masked_lm_loss,
                                         unigram_entropy)
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig
from genesplice.sequence import (MASK_INDEX, PAD_INDEX, GenomeWindows, TssWindowDataset,
                                 collate_sequences, read_tss_bed)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Small models: one thread is about as fast and avoids OpenMP spin-waits on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_mask_tokens_only_hides_real_acgt():
    gen = torch.Generator().manual_seed(0)
    synthetic_tokens = torch.randint(0, 5, (4, 5_000), generator=gen)
    synthetic_tokens[:, -500:] = PAD_INDEX
    synthetic_mask = synthetic_tokens != PAD_INDEX
    m = mask_tokens(synthetic_tokens, synthetic_mask, mask_prob=0.15, generator=gen)
    assert not m.target_mask[:, -500:].any()                      # never padding
    assert not m.target_mask[synthetic_tokens == 4].any()          # never N
    rate = m.target_mask.sum() / (synthetic_mask & (synthetic_tokens < 4)).sum()
    assert 0.13 < rate < 0.17
    hidden = m.inputs[m.target_mask]
    assert 0.75 < (hidden == MASK_INDEX).float().mean() < 0.85
    assert torch.equal(m.targets[m.target_mask], synthetic_tokens[m.target_mask])
    assert torch.equal(m.inputs[~m.target_mask], synthetic_tokens[~m.target_mask])


def test_head_shapes_for_lengths_not_divisible_by_downsample():
    cfg = SequenceEncoderConfig.small()
    enc, head = SequenceEncoder(cfg), MaskedNucleotideHead(cfg.d_model, cfg.downsample)
    synthetic_tokens = torch.randint(0, 4, (2, 1_001))
    synthetic_mask = torch.ones(2, 1_001, dtype=torch.bool)
    states, _ = enc.token_states(synthetic_tokens, synthetic_mask)
    logits = head(states, 1_001)
    assert logits.shape == (2, 1_001, 4)
    m = mask_tokens(synthetic_tokens, synthetic_mask, generator=torch.Generator().manual_seed(1))
    out = masked_lm_loss(logits, m)
    assert out.n_targets == int(m.target_mask.sum()) and 0 <= out.accuracy <= 1
    assert abs(unigram_entropy(torch.tensor([0, 1, 2, 3])) - math.log(4)) < 1e-9


@pytest.fixture(scope="module")
def chr20_tss_windows():
    genome = GenomeWindows(knowledge_path("sequence/GRCh37_chr20.fa.gz"))
    tss = read_tss_bed(knowledge_path("sequence/annotation/hg19_promoters_cage_corrected_withChr.bed.gz"))
    ds = TssWindowDataset(genome, tss, 512, 512)
    batch = collate_sequences([ds[i] for i in range(len(ds))])
    genome.close()
    return batch


def test_pretraining_on_chr20_beats_unigram_entropy(chr20_tss_windows):
    """250 steps on 1 kb windows around 400 chr20 TSSs; scored on the other 117 genes."""
    tokens, mask = chr20_tss_windows.tokens, chr20_tss_windows.mask
    assert tokens.shape == (517, 1_024)
    train_tokens, train_mask = tokens[:400], mask[:400]
    test_tokens, test_mask = tokens[400:], mask[400:]
    baseline = unigram_entropy(test_tokens, test_mask)
    assert 1.30 < baseline < math.log(4)             # GC-rich promoters: below 2 bits

    torch.manual_seed(0)
    cfg = SequenceEncoderConfig.small()
    enc, head = SequenceEncoder(cfg), MaskedNucleotideHead(cfg.d_model, cfg.downsample)
    opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=3e-3, foreach=True)
    gen = torch.Generator().manual_seed(0)

    def held_out_loss() -> float:
        enc.eval()
        with torch.no_grad():
            m = mask_tokens(test_tokens, test_mask, generator=torch.Generator().manual_seed(1))
            states, _ = enc.token_states(m.inputs, test_mask)
            loss = masked_lm_loss(head(states, m.inputs.shape[1]), m).loss.item()
        enc.train()
        return loss

    before = held_out_loss()
    for _ in range(250):
        idx = torch.randint(0, 400, (8,), generator=gen)
        m = mask_tokens(train_tokens[idx], train_mask[idx], generator=gen)
        states, _ = enc.token_states(m.inputs, train_mask[idx])
        out = masked_lm_loss(head(states, m.inputs.shape[1]), m)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    after = held_out_loss()
    assert before > baseline                          # untrained: worse than base frequencies
    assert after < baseline - 0.01, (before, after, baseline)
