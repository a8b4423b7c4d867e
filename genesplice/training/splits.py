"""Whole-chromosome hold-out: every gene of a held-out chromosome is unseen in training.

Genes are keyed by symbol. Chromosome names are normalised (``8``, ``chr8``, ``CHR8`` ->
``chr8``; ``M``/``MT`` -> ``chrM``) so tables from Ensembl- and UCSC-style sources mix.

``gene_chromosomes`` reads the gene -> chromosome map from a TSS table with pandas; it is a
stop-gap until ``genesplice.sequence`` ships the full TSS reader, which should replace it.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from genesplice.io.chromosomes import normalize_chromosome
from genesplice.io.constants import TSS_HG38
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.io.text import open_text

log = logging.getLogger(__name__)



def gene_chromosomes(path: str | os.PathLike | None = None) -> pd.Series:
    """Gene symbol -> normalised chromosome, from a TSS table (default: bundled hg38 TSS table).

    The table needs columns ``gene_symbol`` and ``chrom`` (tab-separated, header on line 1).
    Rows with an empty symbol are counted and skipped (logged); a symbol listed on two different
    chromosomes keeps its first row (counted and logged). Returns a Series named ``chrom`` with
    index ``gene_id``.
    """
    if path is None:
        path = knowledge_path(TSS_HG38)
    path = Path(path)
    with open_text(path) as fh:
        table = pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in ("gene_symbol", "chrom") if c not in table.columns]
    if missing:
        raise GeneSpliceInputError(
            f"missing columns {missing} (expected a tab-separated header with gene_symbol and "
            f"chrom; found {list(table.columns)[:6]})", path=path, line=1)
    sym = table["gene_symbol"].str.strip()
    chrom = table["chrom"].str.strip()
    no_chrom = chrom == ""
    if no_chrom.any():
        line = int(no_chrom.to_numpy().nonzero()[0][0]) + 2
        raise GeneSpliceInputError("empty chrom (expected a chromosome name)", path=path,
                                   line=line)
    keep = sym != ""
    n_no_symbol = int((~keep).sum())
    df = pd.DataFrame({"gene_id": sym[keep].to_numpy(),
                       "chrom": [normalize_chromosome(c) for c in chrom[keep]]})
    n_conflict = int(df.groupby("gene_id")["chrom"].nunique().gt(1).sum())
    df = df.drop_duplicates("gene_id", keep="first")
    if n_no_symbol or n_conflict:
        log.info("%s: %d rows without gene_symbol skipped; %d symbols on several chromosomes "
                 "(first row kept)", path, n_no_symbol, n_conflict)
    return pd.Series(df["chrom"].to_numpy(), index=pd.Index(df["gene_id"].to_numpy(),
                     name="gene_id", dtype=object), name="chrom", dtype=object)


@dataclass(frozen=True)
class ChromosomeSplit:
    """Gene lists per partition (input order kept) and what could not be placed."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    test_chromosomes: tuple[str, ...]
    val_chromosomes: tuple[str, ...]
    unknown_chromosome: tuple[str, ...]   # genes with no chromosome: in no partition

    @property
    def n_unknown(self) -> int:
        return len(self.unknown_chromosome)

    @property
    def has_test_set(self) -> bool:
        """False when the genes reach none of the test chromosomes (validation only)."""
        return bool(self.test)

    def assignment(self) -> pd.Series:
        """Series gene_id -> ``train``/``val``/``test`` (unknown-chromosome genes absent)."""
        parts = [(g, p) for p, genes in (("train", self.train), ("val", self.val),
                                         ("test", self.test)) for g in genes]
        return pd.Series([p for _, p in parts], index=pd.Index([g for g, _ in parts],
                         name="gene_id", dtype=object), name="split", dtype=object)

    def summary(self) -> str:
        return (f"train {len(self.train)} / val {len(self.val)} "
                f"({','.join(self.val_chromosomes) or '-'}) / test {len(self.test)} "
                f"({','.join(self.test_chromosomes)}); {self.n_unknown} genes with unknown "
                "chromosome left out")


def chromosome_split(gene_to_chrom: Mapping[str, str], test: Sequence[str] = ("chr8",),
                     val: Sequence[str] = ("chr9",), *,
                     genes: Iterable[str] | None = None) -> ChromosomeSplit:
    """Split genes by whole chromosomes.

    ``gene_to_chrom`` maps gene symbol -> chromosome (any naming style). ``genes`` chooses which
    genes to split (e.g. the expression table's); default: every key of ``gene_to_chrom``.
    Genes without a chromosome are reported in ``unknown_chromosome`` (and logged), never put in
    a partition. When the genes (e.g. a user's partial table) reach none of the ``test``
    chromosomes but do reach the validation ones, the split has no test set
    (:attr:`ChromosomeSplit.has_test_set` false; logged). A chromosome named in both ``test``
    and ``val``, an empty ``test``, a validation chromosome that holds none of the genes, or a
    held-out chromosome ``gene_to_chrom`` does not know at all is a
    :class:`GeneSpliceInputError`.
    """
    if isinstance(test, str) or isinstance(val, str):
        raise GeneSpliceInputError("test/val must be sequences of chromosome names, "
                                   f"e.g. ('chr8',); got {test!r} / {val!r}")
    test_c = tuple(dict.fromkeys(normalize_chromosome(c) for c in test))
    val_c = tuple(dict.fromkeys(normalize_chromosome(c) for c in val))
    if not test_c:
        raise GeneSpliceInputError("no test chromosome given (expected e.g. test=('chr8',))")
    both = sorted(set(test_c) & set(val_c))
    if both:
        raise GeneSpliceInputError(f"chromosomes {both} are in both test and validation "
                                   "(expected disjoint sets)")
    lookup = {str(g): normalize_chromosome(c) for g, c in gene_to_chrom.items()
              if c is not None and not (isinstance(c, float) and c != c) and str(c).strip()}
    gene_list = list(dict.fromkeys(gene_to_chrom.keys() if genes is None else genes))
    train_g, val_g, test_g, unknown = [], [], [], []
    ts, vs = set(test_c), set(val_c)
    for g in gene_list:
        c = lookup.get(g)
        if c is None:
            unknown.append(g)
        elif c in ts:
            test_g.append(g)
        elif c in vs:
            val_g.append(g)
        else:
            train_g.append(g)
    seen = {lookup[g] for g in gene_list if g in lookup}
    known = set(lookup.values())
    absent = [c for c in test_c + val_c if c not in seen]
    # a test chromosome that the map knows but the genes do not reach (a partial table):
    # no test set, validation only; a name the map does not know at all (a typo) or a
    # validation chromosome without genes is an error
    no_test = [c for c in absent if c in ts and c in known]
    if no_test and len(no_test) == len(test_c) and val_g:
        log.warning("test chromosomes %s hold none of the %d genes: there is no test set; "
                    "only validation metrics can be reported", no_test, len(gene_list))
        absent = [c for c in absent if c not in no_test]
    elif no_test and len(no_test) < len(test_c):
        log.warning("test chromosomes %s hold none of the %d genes", no_test, len(gene_list))
        absent = [c for c in absent if c not in no_test]
    if absent:
        raise GeneSpliceInputError(f"held-out chromosomes {absent} hold none of the "
                                   f"{len(gene_list)} genes (known: {sorted(seen)[:30]}); "
                                   "choose others with --set train.val_chromosomes=[...] / "
                                   "train.test_chromosomes=[...]")
    if unknown:
        log.info("%d of %d genes have no chromosome (e.g. %s); left out of the split",
                 len(unknown), len(gene_list), ", ".join(unknown[:5]))
    return ChromosomeSplit(train=tuple(train_g), val=tuple(val_g), test=tuple(test_g),
                           test_chromosomes=test_c, val_chromosomes=val_c,
                           unknown_chromosome=tuple(unknown))
