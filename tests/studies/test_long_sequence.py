"""'Does long sequence help?' (issue 5): the chr20/chrX cohort, strand-aware windows of the right
length with contig-edge masks, k-mer features and the ridge, and the study end to end on a small
real slice (30 chrX training genes, 30 chr20 test genes)."""
import numpy as np
import pandas as pd
import pytest
import torch

from genesplice.io.knowledge import knowledge_path
from genesplice.sequence import PAD_INDEX, read_promoter_fasta, read_tss_bed
from genesplice.io.constants import EPDNEW_PROMOTERS, TSS_BED_HG19
from genesplice.studies.long_sequence import (WindowSet, build_cohort, extract_windows,
                                               fit_level_profile_ridge, kmer_features,
                                               open_genomes, promoter_windows,
                                               run_long_sequence_study)

CHRX_END = 69_999_930          # the bundled GRCh37 chrX record covers [0, 69,999,930)


@pytest.fixture(scope="module")
def genomes():
    g = open_genomes()
    yield g
    for x in g:
        x.close()


@pytest.fixture(scope="module")
def cohort(expression, genomes):
    tss = read_tss_bed(knowledge_path(TSS_BED_HG19))
    return build_cohort(expression, tss, genomes)


def test_cohort_is_the_chr20_chrx_genes_with_a_full_window(cohort):
    r = cohort.report
    assert (r.n_on_sequence, r.n_cohort, r.n_train, r.n_test) == (847, 844, 330, 514)
    assert r.n_unmapped == 3 and r.n_partial_window == 0
    g = cohort.genes
    assert set(g.loc[g["split"] == "train", "chrom"]) == {"chrX"}
    assert set(g.loc[g["split"] == "test", "chrom"]) == {"chr20"}
    assert g["gene_id"].is_unique and (g["tss"] < CHRX_END).all()


def test_windows_match_genome_windows_on_both_strands(cohort, genomes):
    g = cohort.genes
    picks = pd.concat([g[g["strand"] == "+"].head(2), g[g["strand"] == "-"].head(2),
                       g[g["split"] == "train"].head(2)])
    w = extract_windows(genomes, picks, 5_000, 5_000, chunk_bp=2_000_000)
    assert w.tokens.shape == w.mask.shape == (6, 10_000) and w.length == 10_000
    for i, row in enumerate(picks.itertuples()):
        ref = genomes[row.genome].window(row.chrom, row.tss, row.strand, 5_000, 5_000)
        assert torch.equal(w.tokens[i].long(), ref.tokens) and torch.equal(w.mask[i], ref.mask)
    core = w.centre(49, 11)                                   # the 60 bp promoter cut
    assert core.tokens.shape == (6, 60) and torch.equal(core.tokens, w.tokens[:, 4_951:5_011])


def test_long_windows_are_masked_beyond_contig_ends(cohort, genomes):
    g = cohort.genes
    last = g[g["chrom"] == "chrX"].sort_values("tss").tail(1)      # nearest the chrX record end
    first = g[g["chrom"] == "chr20"].sort_values("tss").head(1)    # nearest chr20 base 0
    tss_x, tss_20 = int(last["tss"].iloc[0]), int(first["tss"].iloc[0])
    flank = max(CHRX_END - tss_x, tss_20) + 1_000
    w = extract_windows(genomes, pd.concat([last, first]), flank, flank)
    assert w.tokens.shape == (2, 2 * flank)
    for i, (strand, n_beyond) in enumerate([(last["strand"].iloc[0], tss_x + flank - CHRX_END),
                                            (first["strand"].iloc[0], flank - tss_20)]):
        pad = ~w.mask[i]
        assert int(pad.sum()) == n_beyond
        # the chrX end is downstream on '+', upstream (window start) on '-'; chr20's start the reverse
        at_end = (strand == "+") == (i == 0)
        sl = slice(2 * flank - n_beyond, None) if at_end else slice(0, n_beyond)
        # GenomeWindows convention: bases beyond the sequence read N (4) with mask False
        assert bool(pad[sl].all()) and bool((w.tokens[i][sl] == 4).all())
        assert bool(w.mask[i, flank])                            # the TSS itself is real


def test_promoter_windows_use_epdnew_and_fill_from_genome(cohort, genomes):
    g = cohort.genes.head(40)
    longest = extract_windows(genomes, g, 1_000, 1_000)
    prom = read_promoter_fasta(knowledge_path(EPDNEW_PROMOTERS))
    w, n_fill = promoter_windows(list(g["gene_id"]), prom, longest)
    assert w.tokens.shape == (40, 60) and w.upstream == 49 and 0 < n_fill < 40
    first = prom.drop_duplicates("gene_symbol").set_index("gene_symbol")["sequence"]
    i = next(i for i, s in enumerate(g["gene_id"]) if s in first.index)
    assert "".join("ACGTN-?"[t] for t in w.tokens[i]) == first[g["gene_id"].iloc[i]]


def test_kmer_features_are_frequencies():
    synthetic = WindowSet(("a", "b"), torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3],
                                                    [1, 2, 1, 2, 4, 1, 2, PAD_INDEX]],
                                                   dtype=torch.uint8),
                          torch.tensor([[True] * 8, [True] * 7 + [False]]), 4, 4)
    x, names = kmer_features(synthetic)
    assert x.shape == (2, 64 + 256 + 3) and names[:2] == ["3mer:AAA", "3mer:AAC"]
    np.testing.assert_allclose(x[:, :64].sum(1), 1.0)
    np.testing.assert_allclose(x[:, 64:320].sum(1), 1.0)
    assert x[0, names.index("3mer:ACG")] == pytest.approx(2 / 6)
    assert x[1, names.index("gc_fraction")] == 1.0            # N and padding are not bases
    assert x[1, names.index("acgt_fraction")] == pytest.approx(6 / 8)


def test_ridge_recovers_a_synthetic_linear_signal():
    rng = np.random.default_rng(0)
    synthetic_x = rng.normal(size=(200, 5))
    w = rng.normal(size=(5, 4))
    synthetic_y = synthetic_x @ w + 0.01 * rng.normal(size=(200, 4))
    synthetic_y[3, 1] = np.nan                                  # a missing cell
    model = fit_level_profile_ridge(synthetic_x[:150], synthetic_y[:150])
    pred = model.predict(synthetic_x[150:])
    assert np.corrcoef(pred.ravel(), synthetic_y[150:].ravel())[0, 1] > 0.99
    assert model.alpha_level <= 1.0


def test_study_end_to_end_on_a_small_slice(tmp_path):
    res = run_long_sequence_study(tmp_path, n_train_genes=30, n_test_genes=30,
                                  pretrain_steps=5, main_training_promoters=False, n_boot=20,
                                  num_threads=1)
    t = res.table
    windows = ["60 bp", "±10 kb", "±50 kb", "60 bp + ±10 kb + ±50 kb"]
    for fam in ("k-mer (3+4-mer, GC, CpG)", "encoder, random init",
                "encoder, pretrained (MLM on train windows)"):
        rows = t[t["features"] == fam].set_index("window")
        assert list(rows.index) == windows
        assert np.isfinite(rows[["pearson_tissue", "pearson_gene", "r2_pooled"]].to_numpy()).all()
        assert (rows["n_train"] == 30).all() and (rows["n_test"] == 30).all()
    assert t.loc[t["features"].str.startswith("k-mer"), "n_features"].tolist()[:3] == [323] * 3
    text = (tmp_path / "long_sequence.md").read_text()
    assert "| k-mer (3+4-mer, GC, CpG) | ±50 kb |" in text and "Pretraining: 5 steps" in text
    assert len(pd.read_csv(tmp_path / "long_sequence.csv")) == len(t) == 13
