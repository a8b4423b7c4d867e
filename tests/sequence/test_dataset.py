import pytest
import torch
from torch.utils.data import DataLoader

from genesplice.io.errors import GeneSpliceInputError
from genesplice.sequence import (PAD_INDEX, PromoterDataset, TssWindowDataset, collate_sequences,
                                 first_promoter_per_gene, reverse_complement_tokens)


@pytest.fixture(scope="module")
def chr20_windows(chr20, hg19_tss):
    return TssWindowDataset(chr20, hg19_tss, 10_000, 10_000)


def test_tss_windows_for_the_chr20_genes(chr20_windows):
    ds = chr20_windows
    assert len(ds) == 517 and ds.report.n_covered == 517
    assert ds.report.n_missing_contig == 18_362 - 517
    item = ds[0]
    assert item.tokens.shape == item.mask.shape == (20_000,)
    assert item.tokens.dtype == torch.long and item.mask.dtype == torch.bool
    assert item.tss_index == 10_000 and item.gene_id == ds.gene_ids[0]
    assert torch.equal(ds.item_for(item.gene_id).tokens, item.tokens)


def test_reverse_complement_augmentation(chr20, hg19_tss, chr20_windows):
    flipped = TssWindowDataset(chr20, hg19_tss, 10_000, 10_000, reverse_complement_prob=1.0)
    for i in (0, 7):
        plain, rc = chr20_windows[i], flipped[i]
        assert rc.tokens.shape == plain.tokens.shape
        assert torch.equal(rc.tokens, reverse_complement_tokens(plain.tokens))
        assert torch.equal(rc.mask, plain.mask.flip(0))
        assert rc.tss_index == 20_000 - 1 - 10_000
        assert torch.equal(reverse_complement_tokens(rc.tokens), plain.tokens)


def test_shift_augmentation_reads_real_flanks(chr20, hg19_tss):
    ds = TssWindowDataset(chr20, hg19_tss, 500, 500, max_shift=20, seed=3)
    big = TssWindowDataset(chr20, hg19_tss, 520, 520)
    shifts = set()
    for i in range(6):
        item, ref = ds[i], big[i]
        s = 500 - item.tss_index
        shifts.add(s)
        assert -20 <= s <= 20
        # the shifted window is a slice of the wider unshifted window, TSS still at the gene's TSS
        assert torch.equal(item.tokens, ref.tokens[20 + s:20 + s + 1000])
    assert len(shifts) > 1
    again = TssWindowDataset(chr20, hg19_tss, 500, 500, max_shift=20, seed=3)
    assert [again[i].tss_index for i in range(6)] == [ds[i].tss_index for i in range(6)]
    ds.set_epoch(1)
    assert [ds[i].tss_index for i in range(6)] != [again[i].tss_index for i in range(6)]


def test_edge_padded_chrx_windows_and_errors(chrx, hg19_tss):
    ds = TssWindowDataset(chrx, hg19_tss, 10_000, 10_000)
    assert len(ds) == 330 and ds.report.n_outside_sequence == 404
    # ±500 kb: 7 genes near the 70 Mb truncation get one-sided edge padding
    full = TssWindowDataset(chrx, hg19_tss, 500_000, 500_000, full_windows_only=True)
    assert len(full) == full.report.n_full_window == 323
    assert full[0].mask.all() and full[len(full) - 1].mask.all()
    with pytest.raises(GeneSpliceInputError, match="ENSG00000000003"):
        ds.item_for("ENSG00000000003")


def test_collate_pads_with_pad_index(epdnew, chr20_windows):
    promoters = PromoterDataset(first_promoter_per_gene(epdnew).head(64))
    batch = collate_sequences([promoters[0], chr20_windows[0]])
    assert batch.tokens.shape == (2, 20_000) and batch.mask[0].sum() == 60
    assert (batch.tokens[0, 60:] == PAD_INDEX).all()
    assert batch.gene_ids == ["NOC2L", chr20_windows.gene_ids[0]]
    assert batch.tss_index.tolist() == [49, 10_000]
    loader = DataLoader(promoters, batch_size=16, collate_fn=collate_sequences)
    first = next(iter(loader))
    assert first.tokens.shape == (16, 60) and first.mask.all()


def test_promoter_reverse_complement(epdnew):
    table = first_promoter_per_gene(epdnew).head(4)
    plain, flipped = PromoterDataset(table), PromoterDataset(table, reverse_complement_prob=1.0)
    assert torch.equal(flipped[1].tokens, reverse_complement_tokens(plain[1].tokens))
    assert flipped[1].tss_index == 60 - 1 - 49
