"""The long-sequence cohort (issue 5): chr20/chrX genes with a full ±10 kb window in the bundled
GRCh37 sequence, split by whole chromosome; every dropped TSS record is counted."""
import pytest

from genesplice.io.constants import TSS_BED_HG19
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.sequence import build_cohort, read_tss_bed

CHRX_END = 69_999_930          # the bundled GRCh37 chrX record covers [0, 69,999,930)


@pytest.fixture(scope="module")
def tss():
    return read_tss_bed(knowledge_path(TSS_BED_HG19))


@pytest.fixture(scope="module")
def cohort(expression, tss, grch37):
    return build_cohort(expression, tss, grch37)


def test_cohort_is_the_chr20_chrx_genes_with_a_full_window(cohort):
    r = cohort.report
    assert (r.n_on_sequence, r.n_cohort, r.n_train, r.n_test) == (847, 844, 330, 514)
    assert r.n_unmapped == 3 and r.n_partial_window == 0
    g = cohort.genes
    assert set(g.loc[g["split"] == "train", "chrom"]) == {"chrX"}
    assert set(g.loc[g["split"] == "test", "chrom"]) == {"chr20"}
    assert g["gene_id"].is_unique and (g["tss"] < CHRX_END).all()
    # the genome column names the part holding the gene: chr20 is part 0, chrX part 1
    assert set(g.loc[g["chrom"] == "chr20", "genome"]) == {0}
    assert set(g.loc[g["chrom"] == "chrX", "genome"]) == {1}
    assert "cohort 844: train 330 (chrX), test 514 (chr20)" in r.summary()


def test_head_takes_the_first_genes_of_each_side(cohort):
    small = cohort.head(3, 2)
    assert small.genes["split"].tolist() == ["train"] * 3 + ["test"] * 2
    assert small.report is cohort.report


def test_bad_splits(expression, tss, grch37):
    with pytest.raises(GeneSpliceInputError, match="must be non-empty and disjoint"):
        build_cohort(expression, tss, grch37, train_chromosomes=("chrX",),
                     test_chromosomes=("X",))
    with pytest.raises(GeneSpliceInputError, match="cohort has 0 training"):
        build_cohort(expression, tss, grch37, train_chromosomes=("chr1",))
