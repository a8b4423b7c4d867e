"""A small, seeded slice of real graph genes with every split present, for quick runs."""
import numpy as np

from genesplice.training.splits import gene_chromosomes


def gene_slice(kg, n_train: int, n_held: int, seed: int) -> list[str]:
    """``n_train`` genes drawn (``seed``) off chr8 / chr9, then the first ``n_held`` chr8
    (test) and the first ``n_held`` chr9 (validation) genes of the graph; only genes with a
    known chromosome."""
    chrom = gene_chromosomes()
    genes = [g for g in kg.node_ids["gene"] if g in chrom.index]
    rest = [g for g in genes if chrom[g] not in ("chr8", "chr9")]
    picked = np.random.default_rng(seed).choice(rest, n_train, replace=False)
    return ([str(g) for g in picked] + [g for g in genes if chrom[g] == "chr8"][:n_held]
            + [g for g in genes if chrom[g] == "chr9"][:n_held])
