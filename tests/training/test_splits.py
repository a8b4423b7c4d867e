"""Whole-chromosome split on the real TSS table and expression table (issue 5)."""
import gzip

import pytest

from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.io.chromosomes import normalize_chromosome
from genesplice.training.splits import chromosome_split, gene_chromosomes


@pytest.mark.parametrize("name,expected", [("8", "chr8"), ("chr8", "chr8"), ("CHR08", "chr8"),
                                           ("x", "chrX"), ("chrY", "chrY"), ("MT", "chrM"),
                                           ("chrM", "chrM"), ("chr1_KI270706v1", "chr1_KI270706v1")])
def test_normalize_chromosome(name, expected):
    assert normalize_chromosome(name) == expected


def test_gene_chromosomes_reads_bundled_tss(gene_chrom):
    with gzip.open(knowledge_path("coords/tss_hg38.tsv.gz"), "rt") as fh:
        n_rows = sum(1 for _ in fh) - 1
    assert n_rows == 20573
    # 151 rows have no symbol and are skipped; symbols are unique in this table
    assert len(gene_chrom) == 20573 - 151
    assert gene_chrom["SAMD11"] == "chr1" and gene_chrom["TSPAN6"] == "chrX"
    assert gene_chrom.index.is_unique
    assert set(gene_chrom) <= {f"chr{c}" for c in list(range(1, 23)) + ["X", "Y"]}


def test_chr8_chr9_split_of_expression_genes(expression, chr8_split):
    s = chr8_split
    # 640 expression-table genes have a TSS on chr8 (639 when joined on Ensembl id instead:
    # PINX1's two Ensembl ids both lack a TSS-table id but its symbol has one)
    assert len(s.test) == 640
    assert len(s.val) == 731
    assert s.n_unknown == 20082 - 19129
    assert len(s.train) + len(s.val) + len(s.test) + s.n_unknown == expression.n_genes
    assert not set(s.train) & set(s.test) and not set(s.val) & set(s.test)
    assert "PINX1" in s.test and "MYC" in s.test and "ABL1" in s.val
    # input order is kept
    order = {g: i for i, g in enumerate(expression.gene_ids)}
    assert [order[g] for g in s.test] == sorted(order[g] for g in s.test)
    a = s.assignment()
    assert a["MYC"] == "test" and a["TSPAN6"] == "train" and len(a) == 19129


def test_names_are_normalised_and_report_unknown():
    m = {"A": "8", "B": "chr9", "C": "1", "D": "X", "E": ""}
    s = chromosome_split(m, test=["chr8"], val=["9"], genes=["A", "B", "C", "D", "E", "F"])
    assert s.test == ("A",) and s.val == ("B",) and s.train == ("C", "D")
    assert s.unknown_chromosome == ("E", "F")
    assert s.test_chromosomes == ("chr8",) and s.val_chromosomes == ("chr9",)
    s2 = chromosome_split(m, test=("chr8", "chrX"), val=())
    assert s2.test == ("A", "D") and s2.val == () and s2.train == ("B", "C")


def test_bad_split_requests():
    m = {"A": "chr8", "B": "chr9"}
    with pytest.raises(GeneSpliceInputError, match="both"):
        chromosome_split(m, test=("8",), val=("chr8",))
    with pytest.raises(GeneSpliceInputError, match="chr23"):
        chromosome_split(m, test=("chr23",), val=())
    with pytest.raises(GeneSpliceInputError, match="sequences"):
        chromosome_split(m, test="chr8")
    with pytest.raises(GeneSpliceInputError, match="no test"):
        chromosome_split(m, test=(), val=())


def test_gene_chromosomes_missing_column(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("symbol\tchrom\nA\tchr1\n")
    with pytest.raises(GeneSpliceInputError) as e:
        gene_chromosomes(p)
    assert e.value.line == 1 and "gene_symbol" in str(e.value)


def test_partial_table_without_test_chromosome_genes_has_no_test_set(expression, gene_chrom):
    """A user's table with no gene on the test chromosome still splits (validation only);
    a test chromosome the map does not know at all (a typo) is still an error."""
    genes = [g for g in expression.gene_ids[:3000] if gene_chrom.get(g) != "chr8"]
    split = chromosome_split(gene_chrom, test=("chr8",), val=("chr9",), genes=genes)
    assert not split.has_test_set and split.test == ()
    assert len(split.val) > 0 and len(split.train) > 0
    with pytest.raises(GeneSpliceInputError, match="chr99"):
        chromosome_split(gene_chrom, test=("chr99",), val=("chr9",), genes=genes)
    no_val = [g for g in genes if gene_chrom.get(g) != "chr9"]
    with pytest.raises(GeneSpliceInputError, match="val_chromosomes"):
        chromosome_split(gene_chrom, test=("chr8",), val=("chr9",), genes=no_val)
