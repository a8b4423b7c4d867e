"""Strand-oriented TSS windows of a gene list, read in chunks from a :class:`Genome`.

A :class:`WindowSet` holds ``[tss - upstream, tss + downstream)`` of every gene, oriented on the
gene's strand (TSS at index ``upstream``), as compact uint8 tokens plus a mask (``False`` beyond
contig ends). :func:`extract_windows` reads them; :func:`promoter_windows` gives the 60 bp EPDnew
core promoters (−49..+10) of a gene list in the same form.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from genesplice.io.chromosomes import alias_key
from genesplice.io.constants import PROMOTER_LENGTH, PROMOTER_TSS_INDEX
from genesplice.io.errors import GeneSpliceInputError
from genesplice.sequence.encode import PAD_INDEX, encode_sequence, reverse_complement_tokens
from genesplice.sequence.genome import Genome

PROMOTER_UPSTREAM, PROMOTER_DOWNSTREAM = PROMOTER_TSS_INDEX, PROMOTER_LENGTH - PROMOTER_TSS_INDEX


@dataclass(frozen=True)
class WindowSet:
    """Strand-oriented windows ``[tss - upstream, tss + downstream)`` of a gene list.

    ``tokens`` is uint8 ``[g, l]`` (token ids, see :mod:`genesplice.sequence.encode`; widened to
    long per batch), ``mask`` bool ``[g, l]`` (``False`` beyond contig ends); the TSS is at
    index ``upstream`` of every row.
    """
    gene_ids: tuple[str, ...]
    tokens: torch.Tensor
    mask: torch.Tensor
    upstream: int
    downstream: int
    name: str = ""

    @property
    def length(self) -> int:
        return self.upstream + self.downstream

    def centre(self, upstream: int, downstream: int, name: str = "") -> "WindowSet":
        """The sub-window ``[tss - upstream, tss + downstream)`` (no re-reading)."""
        if upstream > self.upstream or downstream > self.downstream:
            raise ValueError(f"sub-window ±({upstream}, {downstream}) exceeds the window "
                             f"({self.upstream}, {self.downstream})")
        lo = self.upstream - upstream
        return WindowSet(self.gene_ids, self.tokens[:, lo:lo + upstream + downstream],
                         self.mask[:, lo:lo + upstream + downstream], upstream, downstream, name)

    def rows(self, genes: Sequence[str]) -> "WindowSet":
        """The windows of ``genes`` (in that order)."""
        index = {g: i for i, g in enumerate(self.gene_ids)}
        idx = torch.tensor([index[g] for g in genes], dtype=torch.long)
        return WindowSet(tuple(genes), self.tokens[idx], self.mask[idx], self.upstream,
                         self.downstream, self.name)


def _read_plan(genes: pd.DataFrame, upstream: int, downstream: int) -> pd.DataFrame:
    """Genomic ``[start0, end0)`` of every row, sorted by (part, chromosome, start)."""
    minus = (genes["strand"] == "-").to_numpy()
    tss = genes["tss"].to_numpy(np.int64)
    start0 = np.where(minus, tss - downstream + 1, tss - upstream)
    return pd.DataFrame({"row": np.arange(len(genes)), "genome": genes["genome"].to_numpy(),
                         "chrom": genes["chrom"].map(alias_key).to_numpy(),
                         "chrom_name": genes["chrom"].to_numpy(), "minus": minus,
                         "start0": start0, "end0": start0 + upstream + downstream}
                        ).sort_values(["genome", "chrom", "start0"])


def extract_windows(genome: Genome, genes: pd.DataFrame, upstream: int, downstream: int, *,
                    chunk_bp: int = 4_000_000, name: str = "") -> WindowSet:
    """Windows of every row of ``genes`` (columns gene_id, chrom, tss, strand, genome — the
    index of the ``genome`` part holding the gene, as :func:`~genesplice.sequence.cohort.
    build_cohort` writes it).

    Same result as :meth:`GenomeWindows.window` per gene, but neighbouring genes share one
    read of up to ``chunk_bp`` bases: a bgzip read costs ~60 ms however short, so 850 reads
    of 100 kb take ~60 s while ~40 chunk reads take a few seconds.
    """
    length = upstream + downstream
    tokens = torch.full((len(genes), length), PAD_INDEX, dtype=torch.uint8)
    mask = torch.zeros((len(genes), length), dtype=torch.bool)
    for (part, _), plan in _read_plan(genes, upstream, downstream).groupby(["genome", "chrom"],
                                                                          sort=False):
        rows = plan.to_dict("records")
        i = 0
        while i < len(rows):
            j, lo, hi = i, rows[i]["start0"], rows[i]["end0"]
            while j + 1 < len(rows) and max(hi, rows[j + 1]["end0"]) - lo <= chunk_bp:
                j += 1
                hi = max(hi, rows[j]["end0"])
            chunk_t, chunk_m = genome.fetch(int(part), rows[i]["chrom_name"], int(lo), int(hi))
            for r in rows[i:j + 1]:
                a, b = r["start0"] - lo, r["end0"] - lo
                t, m = chunk_t[a:b], chunk_m[a:b]
                if r["minus"]:
                    t, m = reverse_complement_tokens(t), m.flip(-1)
                tokens[r["row"]] = t.to(torch.uint8)
                mask[r["row"]] = m
            i = j + 1
    return WindowSet(tuple(genes["gene_id"]), tokens, mask, upstream, downstream, name)


def promoter_windows(genes: Sequence[str], promoters: pd.DataFrame,
                     genome_windows: WindowSet | None = None, *, name: str = "60 bp"
                     ) -> tuple[WindowSet, int]:
    """60 bp EPDnew core promoters (first record per symbol) of ``genes``, TSS at index 49.

    ``promoters``: a :func:`~genesplice.sequence.promoters.read_promoter_fasta` table. Genes
    without an EPDnew record take the same −49..+10 cut from ``genome_windows`` (a window set
    holding them); returns the window set and how many genes were filled that way. Without
    ``genome_windows`` such genes are an error.
    """
    first = promoters.drop_duplicates("gene_symbol", keep="first").set_index("gene_symbol")
    length = PROMOTER_UPSTREAM + PROMOTER_DOWNSTREAM
    tokens = torch.full((len(genes), length), PAD_INDEX, dtype=torch.uint8)
    mask = torch.zeros((len(genes), length), dtype=torch.bool)
    missing = [i for i, g in enumerate(genes) if g not in first.index]
    if missing and genome_windows is None:
        raise GeneSpliceInputError(f"{len(missing)} genes have no EPDnew promoter (e.g. "
                                   f"{[genes[i] for i in missing[:5]]})")
    for i, g in enumerate(genes):
        if g in first.index:
            t = encode_sequence(first.at[g, "sequence"])[:length]
            tokens[i, :len(t)] = t.to(torch.uint8)
            mask[i, :len(t)] = True
    if missing:
        cut = genome_windows.centre(PROMOTER_UPSTREAM, PROMOTER_DOWNSTREAM).rows(
            [genes[i] for i in missing])
        tokens[missing] = cut.tokens
        mask[missing] = cut.mask
    return WindowSet(tuple(genes), tokens, mask, PROMOTER_UPSTREAM, PROMOTER_DOWNSTREAM,
                     name), len(missing)


__all__ = ["PROMOTER_DOWNSTREAM", "PROMOTER_UPSTREAM", "WindowSet", "extract_windows",
           "promoter_windows"]
