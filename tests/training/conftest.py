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


@pytest.fixture(scope="session")
def membership_pairs():
    """Gene -> feature pairs from the bundled GOA GAF (direct, NOT excluded), Reactome
    (UniProt -> symbol, isoform suffix stripped) and TRRUST (target <- TF), matched on symbol.
    A test-only stand-in until genesplice.graph exposes its membership matrix."""
    import pandas as pd

    from genesplice.io.knowledge import knowledge_path as kp

    gaf = pd.read_csv(kp("annotations/goa_human.gaf.gz"), sep="\t", comment="!", header=None,
                      usecols=[2, 3, 4], names=["symbol", "qualifier", "go_id"], dtype=str)
    gaf = gaf[~gaf["qualifier"].fillna("").str.contains("NOT")]
    u2s = pd.read_csv(kp("annotations/uniprot_to_symbol.tsv.gz"), sep="\t", dtype=str)
    rx = pd.read_csv(kp("annotations/reactome_uniprot2reactome_human.tsv.gz"), sep="\t",
                     header=None, usecols=[0, 1], names=["uniprot_id", "pathway"], dtype=str)
    rx["uniprot_id"] = rx["uniprot_id"].str.split("-").str[0]
    rx = rx.merge(u2s, on="uniprot_id")
    tr = pd.read_csv(kp("annotations/trrust_human.tsv.gz"), sep="\t", dtype=str)
    return pd.concat([
        pd.DataFrame({"gene_id": gaf["symbol"], "feature_id": gaf["go_id"]}),
        pd.DataFrame({"gene_id": rx["symbol"], "feature_id": rx["pathway"]}),
        pd.DataFrame({"gene_id": tr["target"], "feature_id": "TF:" + tr["tf"]}),
    ]).drop_duplicates(ignore_index=True)


@pytest.fixture(scope="session")
def membership(membership_pairs, expression):
    from genesplice.graph.features import membership_matrix
    return membership_matrix(membership_pairs, expression.gene_ids)


@pytest.fixture(scope="session")
def ridge_chr8(membership, expression, chr8_split):
    """Ridge on the real chr8/chr9 split; a short alpha grid around the optimum keeps it fast
    (the full default grid also selects 100 for both parts, see the report)."""
    from genesplice.training.ridge import fit_ridge_baseline
    return fit_ridge_baseline(membership, expression.values, train_genes=chr8_split.train,
                              val_genes=chr8_split.val, alphas=(30.0, 100.0, 300.0))
