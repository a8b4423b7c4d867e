"""Session-scoped real-data fixtures for the training tests (parsed once per session)."""
import pytest

from genesplice.annotations.expression import read_expression_table
from genesplice.training.splits import chromosome_split, gene_chromosomes


@pytest.fixture(scope="session")
def expression():
    return read_expression_table()


@pytest.fixture(scope="session")
def gene_chrom():
    return gene_chromosomes()


@pytest.fixture(scope="session")
def chr8_split(expression, gene_chrom):
    return chromosome_split(gene_chrom, test=("chr8",), val=("chr9",),
                            genes=expression.gene_ids)
