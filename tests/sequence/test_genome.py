"""Genome: one reader over several indexed FASTAs (the bundled GRCh37 chr20 + chrX parts)."""
import pytest

from genesplice.io.errors import GeneSpliceInputError
from genesplice.sequence import Genome
from genesplice.sequence.variants import Genome as VariantsGenome

CHRX_END = 69_999_930          # the bundled GRCh37 chrX record covers [0, 69,999,930)


def test_queries_go_to_the_part_holding_the_position(grch37):
    assert len(grch37) == 2 and [p.path.name for p in grch37] == [
        "GRCh37_chr20.fa.gz", "GRCh37_chrX_1-69999930.fa.gz"]
    assert grch37.part_index("chr20", 1_000_000) == 0 and grch37.part_index("X", 5) == 1
    assert grch37.part_index("chrX", CHRX_END - 1) == 1
    assert grch37.part_index("chrX", CHRX_END) == -1 and grch37.part_for("chr1", 10) is None
    tokens, mask = grch37.fetch(1, "chrX", CHRX_END - 2, CHRX_END + 3)
    assert mask.tolist() == [True, True, False, False, False]
    text = grch37.fetch_text("chrX", CHRX_END - 2, CHRX_END + 3)
    assert text[2:] == "---" and set(text[:2]) <= set("ACGTN")
    assert grch37.fetch_text("chr1", 0, 4) == "----"            # a chromosome it lacks


def test_fetch_text_matches_genome_windows(grch37, chr20):
    tokens, mask = chr20.fetch("chr20", 30_000_000, 30_000_050)
    assert mask.all()
    assert grch37.fetch_text("20", 30_000_000, 30_000_050) == "".join("ACGTN"[t] for t in tokens)


def test_variants_reads_the_same_genome_class():
    assert VariantsGenome is Genome


def test_bad_paths():
    with pytest.raises(GeneSpliceInputError, match="no genome FASTA"):
        Genome([])
    with pytest.raises(GeneSpliceInputError, match="FASTA file not found"):
        Genome("no/such/genome.fa")
