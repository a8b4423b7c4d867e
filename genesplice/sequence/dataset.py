"""Torch datasets of gene sequences: TSS windows from a genome, or promoter strings.

An item is a :class:`SequenceItem` ``(tokens [l], mask [l], gene_id, tss_index)``; batches
come from :func:`collate_sequences`, which right-pads with ``PAD`` (mask ``False``).

Training augmentations (off by default, deterministic per ``(seed, epoch, index)``):
``reverse_complement_prob`` flips the window to the other strand (tokens complemented and
reversed, mask reversed, ``tss_index`` mirrored); ``max_shift`` moves the window by up to that
many bases (real flanking sequence is read, nothing is rolled around).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import pandas as pd
import torch
from torch.utils.data import Dataset

from genesplice.io.errors import GeneSpliceInputError
from genesplice.sequence.encode import encode_sequence, pad_tokens, reverse_complement_tokens
from genesplice.sequence.fasta import CoverageReport, GenomeWindows

log = logging.getLogger(__name__)


class SequenceItem(NamedTuple):
    tokens: torch.Tensor   # LongTensor[l]
    mask: torch.Tensor     # BoolTensor[l], True = real base
    gene_id: str
    tss_index: int         # position of the TSS in tokens


@dataclass(frozen=True)
class SequenceBatch:
    tokens: torch.Tensor      # LongTensor[b, l]
    mask: torch.Tensor        # BoolTensor[b, l]
    gene_ids: list[str]
    tss_index: torch.Tensor   # LongTensor[b]


def collate_sequences(items: Sequence[SequenceItem]) -> SequenceBatch:
    """Right-pad a list of items to one batch (``PAD``, mask ``False``)."""
    tokens, mask = pad_tokens([it.tokens for it in items], [it.mask for it in items])
    return SequenceBatch(tokens, mask, [it.gene_id for it in items],
                         torch.tensor([it.tss_index for it in items], dtype=torch.long))


class _Augmenting(Dataset):
    def __init__(self, reverse_complement_prob: float, max_shift: int, seed: int):
        if not 0.0 <= reverse_complement_prob <= 1.0:
            raise ValueError(f"reverse_complement_prob must be in [0, 1], got {reverse_complement_prob}")
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {max_shift}")
        self.reverse_complement_prob = reverse_complement_prob
        self.max_shift = int(max_shift)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new augmentations (call once per epoch, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def _draw(self, index: int) -> tuple[int, bool]:
        if not self.max_shift and not self.reverse_complement_prob:
            return 0, False
        gen = torch.Generator().manual_seed(hash((self.seed, self.epoch, int(index))) & 0x7FFFFFFF)
        shift = int(torch.randint(-self.max_shift, self.max_shift + 1, (1,), generator=gen))
        flip = bool(torch.rand((), generator=gen) < self.reverse_complement_prob)
        return shift, flip

    @staticmethod
    def _flip(tokens: torch.Tensor, mask: torch.Tensor, tss_index: int):
        return reverse_complement_tokens(tokens), mask.flip(-1), tokens.shape[-1] - 1 - tss_index


class TssWindowDataset(_Augmenting):
    """``[tss - upstream, tss + downstream)`` windows (gene strand) for the genes a FASTA holds.

    Genes whose TSS the FASTA does not hold are left out and reported in ``self.report``
    (:class:`~genesplice.sequence.fasta.CoverageReport`, also logged); :meth:`item_for` on one
    of them raises :class:`GeneSpliceInputError`.
    """

    def __init__(self, genome: GenomeWindows, tss_table: pd.DataFrame, upstream: int,
                 downstream: int, *, reverse_complement_prob: float = 0.0, max_shift: int = 0,
                 seed: int = 0, full_windows_only: bool = False):
        super().__init__(reverse_complement_prob, max_shift, seed)
        self.genome = genome
        self.upstream, self.downstream = int(upstream), int(downstream)
        self.report: CoverageReport = genome.coverage(tss_table, upstream, downstream)
        keep = tss_table["gene_id"].isin(set(self.report.covered_gene_ids))
        if full_windows_only:
            full = [genome.covers(c, (t - upstream) if s == "+" else (t - downstream + 1)) and
                    genome.covers(c, (t + downstream - 1) if s == "+" else (t + upstream))
                    for c, t, s in zip(tss_table["chrom"], tss_table["tss"], tss_table["strand"])]
            keep &= pd.Series(full, index=tss_table.index)
        self.table = tss_table.loc[keep].reset_index(drop=True)
        self._all = tss_table
        if self.table.empty:
            raise GeneSpliceInputError(
                f"no gene of the TSS table lies in the FASTA ({self.report.n_missing_contig} on "
                f"chromosomes it lacks, e.g. {', '.join(self.report.missing_chroms[:5])})",
                path=genome.path)

    @property
    def gene_ids(self) -> list[str]:
        return self.table["gene_id"].tolist()

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> SequenceItem:
        row = self.table.iloc[index]
        shift, flip = self._draw(index)
        sign = 1 if row["strand"] == "+" else -1
        w = self.genome.window(row["chrom"], int(row["tss"]) + sign * shift, row["strand"],
                               self.upstream, self.downstream)
        tokens, mask, tss_index = w.tokens, w.mask, self.upstream - shift
        if flip:
            tokens, mask, tss_index = self._flip(tokens, mask, tss_index)
        return SequenceItem(tokens, mask, str(row["gene_id"]), tss_index)

    def item_for(self, gene_id: str) -> SequenceItem:
        """The (un-augmented) item of one gene; a clear error if the FASTA lacks its TSS."""
        w = self.genome.gene_window(self._all, gene_id, self.upstream, self.downstream)
        return SequenceItem(w.tokens, w.mask, gene_id, w.tss_index)


class PromoterDataset(_Augmenting):
    """Short promoter sequences (e.g. EPDnew −49..+10) from a table with ``gene_symbol``,
    ``sequence`` and ``tss_index`` columns (:func:`~genesplice.sequence.promoters.read_promoter_fasta`).
    Only reverse complement applies (``max_shift`` must stay 0: there is no flank to read)."""

    def __init__(self, promoters: pd.DataFrame, *, id_column: str = "gene_symbol",
                 reverse_complement_prob: float = 0.0, seed: int = 0):
        super().__init__(reverse_complement_prob, 0, seed)
        missing = {id_column, "sequence", "tss_index"} - set(promoters.columns)
        if missing:
            raise ValueError(f"promoter table lacks columns {sorted(missing)}")
        self.table = promoters.reset_index(drop=True)
        self.id_column = id_column

    @property
    def gene_ids(self) -> list[str]:
        return self.table[self.id_column].astype(str).tolist()

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> SequenceItem:
        row = self.table.iloc[index]
        tokens = encode_sequence(row["sequence"])
        mask = torch.ones_like(tokens, dtype=torch.bool)
        tss_index = int(row["tss_index"])
        if self._draw(index)[1]:
            tokens, mask, tss_index = self._flip(tokens, mask, tss_index)
        return SequenceItem(tokens, mask, str(row[self.id_column]), tss_index)
