"""Session-scoped real-data fixtures for the training tests (parsed once per session)."""
import pytest

from genesplice.annotations.expression import read_expression_table
from genesplice.graph.features import membership_from_graph
from genesplice.training.ridge import fit_ridge_baseline
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


@pytest.fixture(scope="session")
def membership(kg, expression):
    """The production gene x (GO term | pathway | TF) matrix of the default graph
    (:func:`genesplice.graph.features.membership_from_graph`), rows in expression-table order."""
    return membership_from_graph(kg, gene_ids=expression.gene_ids)


@pytest.fixture(scope="session")
def ridge_chr8(membership, expression, chr8_split):
    """Ridge on the real chr8/chr9 split; a short alpha grid around the optimum keeps it fast
    (the full default grid also selects 100 for both parts, see the report)."""
    return fit_ridge_baseline(membership, expression.values, train_genes=chr8_split.train,
                              val_genes=chr8_split.val, alphas=(30.0, 100.0, 300.0))
