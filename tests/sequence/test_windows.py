"""WindowSet / extract_windows / promoter_windows: strand-aware TSS windows read in chunks from
the bundled GRCh37 genome, the same bases as GenomeWindows.window, masked beyond contig ends."""
import pandas as pd
import pytest
import torch

from genesplice.io.constants import EPDNEW_PROMOTERS, TSS_BED_HG19
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.sequence import (build_cohort, extract_windows, promoter_windows,
                                 read_promoter_fasta, read_tss_bed)

CHRX_END = 69_999_930          # the bundled GRCh37 chrX record covers [0, 69,999,930)


@pytest.fixture(scope="module")
def genes(expression, grch37):
    return build_cohort(expression, read_tss_bed(knowledge_path(TSS_BED_HG19)), grch37).genes


def test_windows_match_genome_windows_on_both_strands(genes, grch37):
    g = genes
    picks = pd.concat([g[g["strand"] == "+"].head(2), g[g["strand"] == "-"].head(2),
                       g[g["split"] == "train"].head(2)])
    w = extract_windows(grch37, picks, 5_000, 5_000, chunk_bp=2_000_000)
    assert w.tokens.shape == w.mask.shape == (6, 10_000) and w.length == 10_000
    for i, row in enumerate(picks.itertuples()):
        ref = grch37[row.genome].window(row.chrom, row.tss, row.strand, 5_000, 5_000)
        assert torch.equal(w.tokens[i].long(), ref.tokens) and torch.equal(w.mask[i], ref.mask)
    core = w.centre(49, 11)                                   # the 60 bp promoter cut
    assert core.tokens.shape == (6, 60) and torch.equal(core.tokens, w.tokens[:, 4_951:5_011])
    with pytest.raises(ValueError, match="exceeds the window"):
        w.centre(6_000, 11)
    two = w.rows([picks["gene_id"].iloc[3], picks["gene_id"].iloc[0]])
    assert torch.equal(two.tokens, w.tokens[[3, 0]]) and two.gene_ids[1] == picks["gene_id"].iloc[0]


def test_long_windows_are_masked_beyond_contig_ends(genes, grch37):
    g = genes
    last = g[g["chrom"] == "chrX"].sort_values("tss").tail(1)      # nearest the chrX record end
    first = g[g["chrom"] == "chr20"].sort_values("tss").head(1)    # nearest chr20 base 0
    tss_x, tss_20 = int(last["tss"].iloc[0]), int(first["tss"].iloc[0])
    flank = max(CHRX_END - tss_x, tss_20) + 1_000
    w = extract_windows(grch37, pd.concat([last, first]), flank, flank)
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


def test_promoter_windows_use_epdnew_and_fill_from_genome(genes, grch37):
    g = genes.head(40)
    longest = extract_windows(grch37, g, 1_000, 1_000)
    prom = read_promoter_fasta(knowledge_path(EPDNEW_PROMOTERS))
    w, n_fill = promoter_windows(list(g["gene_id"]), prom, longest)
    assert w.tokens.shape == (40, 60) and w.upstream == 49 and 0 < n_fill < 40
    first = prom.drop_duplicates("gene_symbol").set_index("gene_symbol")["sequence"]
    i = next(i for i, s in enumerate(g["gene_id"]) if s in first.index)
    assert "".join("ACGTN-?"[t] for t in w.tokens[i]) == first[g["gene_id"].iloc[i]]
    j = next(j for j, s in enumerate(g["gene_id"]) if s not in first.index)
    assert torch.equal(w.tokens[j], longest.tokens[j, 1_000 - 49:1_000 + 11])   # genome cut
    with pytest.raises(GeneSpliceInputError, match="have no EPDnew promoter"):
        promoter_windows(list(g["gene_id"]), prom)
