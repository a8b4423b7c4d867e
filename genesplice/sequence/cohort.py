"""The long-sequence cohort: genes whose TSS (hg19 Xpresso CAGE-corrected windows) lies in the
bundled GRCh37 sequence (chr20, chrX 1-70 Mb) with a full ±core window, whose Ensembl id maps to
a symbol of the expression table, split by whole chromosome (train chrX, test chr20 by default).
Every dropped TSS record is counted in the :class:`CohortReport`.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genesplice.io.chromosomes import normalize_chromosome
from genesplice.io.errors import GeneSpliceInputError
from genesplice.sequence.genome import Genome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CohortReport:
    """How the cohort was cut from the TSS table (every dropped gene is counted here)."""
    n_tss_records: int
    n_on_sequence: int              # TSS inside the bundled sequence
    n_partial_window: int           # TSS inside, but the ±core window is not all real sequence
    n_unmapped: int                 # Ensembl id not in the expression table
    n_duplicate_symbol: int         # a second TSS record for a symbol already in the cohort
    n_other_chromosome: int         # on the sequence but neither a train nor a test chromosome
    n_cohort: int
    n_train: int
    n_test: int
    unmapped_examples: tuple[str, ...]
    train_chromosomes: tuple[str, ...]
    test_chromosomes: tuple[str, ...]

    def summary(self) -> str:
        return (f"{self.n_tss_records:,} TSS records; {self.n_on_sequence:,} on the bundled "
                f"sequence; dropped {self.n_partial_window} without a full core window, "
                f"{self.n_unmapped} not in the expression table (e.g. "
                f"{', '.join(self.unmapped_examples) or '-'}), {self.n_duplicate_symbol} "
                f"repeated symbols, {self.n_other_chromosome} on other chromosomes -> cohort "
                f"{self.n_cohort:,}: train {self.n_train} ({','.join(self.train_chromosomes)}), "
                f"test {self.n_test} ({','.join(self.test_chromosomes)})")


@dataclass(frozen=True)
class LongSequenceCohort:
    """``genes``: one row per gene: gene_id (symbol), ensembl_id, chrom (as in the TSS table),
    tss (0-based), strand, genome (index into the genome list), split (``train``/``test``)."""
    genes: pd.DataFrame
    report: CohortReport

    def head(self, n_train: int, n_test: int) -> "LongSequenceCohort":
        """The first ``n_train`` training and ``n_test`` test genes (small slices for tests)."""
        g = self.genes
        keep = pd.concat([g[g["split"] == "train"].head(n_train), g[g["split"] == "test"].head(n_test)])
        return LongSequenceCohort(keep.reset_index(drop=True), self.report)


def _place_on_genome(tss: pd.DataFrame, genome: Genome, core_flank_bp: int
                     ) -> tuple[pd.Series, pd.Series]:
    """Per TSS record: index of the first genome part holding the TSS (-1: none) and whether
    the whole ±``core_flank_bp`` window (gene strand) lies in that part."""
    genome_of = pd.Series(-1, index=tss.index)
    full = pd.Series(False, index=tss.index)
    minus = (tss["strand"] == "-").to_numpy()
    first = np.where(minus, tss["tss"] - core_flank_bp + 1, tss["tss"] - core_flank_bp)
    last = first + 2 * core_flank_bp - 1          # last base of the ±flank window
    for j in range(len(tss)):
        chrom, pos = tss.at[tss.index[j], "chrom"], int(tss["tss"].iat[j])
        i = genome.part_index(chrom, pos)
        if i >= 0:
            part = genome[i]
            genome_of.iat[j] = i
            full.iat[j] = part.covers(chrom, int(first[j])) and part.covers(chrom, int(last[j]))
    return genome_of, full


def build_cohort(expression, tss: pd.DataFrame, genome: Genome, *,
                 core_flank_bp: int = 10_000, train_chromosomes: Sequence[str] = ("chrX",),
                 test_chromosomes: Sequence[str] = ("chr20",)) -> LongSequenceCohort:
    """Genes of ``tss`` (a :func:`~genesplice.sequence.tss.read_tss_bed` table keyed by Ensembl
    id) whose ±``core_flank_bp`` window lies entirely in one part of ``genome`` and whose Ensembl
    id is in ``expression`` (an :class:`~genesplice.annotations.expression.ExpressionTable`).
    The ``genome`` column of the result is the index of that part."""
    train_c = {normalize_chromosome(c) for c in train_chromosomes}
    test_c = {normalize_chromosome(c) for c in test_chromosomes}
    if not train_c or not test_c or train_c & test_c:
        raise GeneSpliceInputError(f"train chromosomes {sorted(train_c)} and test chromosomes "
                                   f"{sorted(test_c)} must be non-empty and disjoint")
    genome_of, full = _place_on_genome(tss, genome, core_flank_bp)
    on_seq = genome_of >= 0
    ens_to_symbol = pd.Series(expression.ensembl_ids.index.to_numpy(),
                              index=expression.ensembl_ids.to_numpy())
    ens_to_symbol = ens_to_symbol[~ens_to_symbol.index.duplicated(keep="first")]
    symbol = tss["ensembl_id"].fillna(tss["gene_id"]).map(ens_to_symbol)
    chrom = tss["chrom"].map(normalize_chromosome)
    split = pd.Series(np.where(chrom.isin(train_c), "train",
                               np.where(chrom.isin(test_c), "test", "")), index=tss.index)
    partial = on_seq & ~full
    unmapped = on_seq & full & symbol.isna()
    other = on_seq & full & symbol.notna() & (split == "")
    keep = on_seq & full & symbol.notna() & (split != "")
    genes = pd.DataFrame({
        "gene_id": symbol[keep], "ensembl_id": tss.loc[keep, "ensembl_id"],
        "chrom": tss.loc[keep, "chrom"], "tss": tss.loc[keep, "tss"].astype("int64"),
        "strand": tss.loc[keep, "strand"], "genome": genome_of[keep].astype(int),
        "split": split[keep]})
    dup = genes["gene_id"].duplicated(keep="first")
    genes = genes[~dup].reset_index(drop=True)
    report = CohortReport(
        n_tss_records=len(tss), n_on_sequence=int(on_seq.sum()),
        n_partial_window=int(partial.sum()), n_unmapped=int(unmapped.sum()),
        n_duplicate_symbol=int(dup.sum()), n_other_chromosome=int(other.sum()),
        n_cohort=len(genes), n_train=int((genes["split"] == "train").sum()),
        n_test=int((genes["split"] == "test").sum()),
        unmapped_examples=tuple(tss.loc[unmapped, "gene_id"].head(5)),
        train_chromosomes=tuple(sorted(train_c)), test_chromosomes=tuple(sorted(test_c)))
    if not report.n_train or not report.n_test:
        raise GeneSpliceInputError(f"cohort has {report.n_train} training and {report.n_test} "
                                   "test genes (expected both > 0): " + report.summary())
    log.info("long-sequence cohort: %s", report.summary())
    return LongSequenceCohort(genes, report)


__all__ = ["CohortReport", "LongSequenceCohort", "build_cohort"]
