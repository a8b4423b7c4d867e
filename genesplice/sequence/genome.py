"""One genome over one or more indexed FASTA files (each read by :class:`GenomeWindows`).

The bundled sequence comes in parts — GRCh37 chr20 and chrX 1-70 Mb for the long-sequence
study, hg38 chr2 / chr17 regions for variant effects — and every reader of more than one FASTA
goes through :class:`Genome`: a query goes to the first part that holds the position.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from genesplice.io.constants import GRCH37_FASTAS
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.sequence.encode import decode_tokens
from genesplice.sequence.fasta import GenomeWindows


class Genome:
    """One or more indexed FASTAs read as one genome. ``parts[i]`` is the i-th FASTA's
    :class:`GenomeWindows`; each query goes to the first part that holds the position.

    Usable as a context manager (closes every part on exit).
    """

    def __init__(self, fasta_paths: Sequence[str | os.PathLike] | str | os.PathLike) -> None:
        if isinstance(fasta_paths, (str, os.PathLike)):
            fasta_paths = [fasta_paths]
        self.paths = [Path(p) for p in fasta_paths]
        if not self.paths:
            raise GeneSpliceInputError("no genome FASTA given (expected at least one path)")
        self.parts = [GenomeWindows(p) for p in self.paths]

    @classmethod
    def grch37(cls, fasta_paths: Sequence[str | os.PathLike] | None = None) -> "Genome":
        """``fasta_paths``, default the bundled GRCh37 chr20 and chrX (1-70 Mb) sequence."""
        return cls(list(fasta_paths) if fasta_paths else
                   [knowledge_path(p) for p in GRCH37_FASTAS])

    def __len__(self) -> int:
        return len(self.parts)

    def __iter__(self) -> Iterator[GenomeWindows]:
        return iter(self.parts)

    def __getitem__(self, i: int) -> GenomeWindows:
        return self.parts[i]

    def part_index(self, chrom: str, pos0: int) -> int:
        """Index of the first part holding base ``pos0`` of ``chrom``; -1 if none does."""
        for i, part in enumerate(self.parts):
            if part.covers(chrom, pos0):
                return i
        return -1

    def part_for(self, chrom: str, pos0: int) -> GenomeWindows | None:
        i = self.part_index(chrom, pos0)
        return None if i < 0 else self.parts[i]

    def fetch_text(self, chrom: str, start0: int, end0: int) -> str:
        """Forward-strand bases of ``[start0, end0)`` (``-`` where the genome has no sequence)."""
        part = self.part_for(chrom, start0)
        if part is None:
            return "-" * (end0 - start0)
        tokens, mask = part.fetch(chrom, start0, end0, "+")
        text = np.array(list(decode_tokens(tokens)))
        text[~mask.numpy()] = "-"
        return "".join(text)

    def fetch(self, part: int, chrom: str, start0: int, end0: int, strand: str = "+"
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`GenomeWindows.fetch` of part ``part``: tokens ``[l]`` and mask ``[l]``."""
        return self.parts[part].fetch(chrom, start0, end0, strand)

    def close(self) -> None:
        for part in self.parts:
            part.close()

    def __enter__(self) -> "Genome":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Genome({[p.name for p in self.paths]})"


__all__ = ["Genome"]
