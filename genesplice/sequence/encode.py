"""DNA text → integer tokens, reverse complement on tokens, padding to a batch.

Token table (shared by the whole package; the models read these constants)::

    A=0  C=1  G=2  T=3  N=4     real bases (any non-ACGT letter becomes N)
    PAD=5                       no sequence here (beyond a contig end, batch padding)
    MASK=6                      a hidden base, used only by masked-nucleotide pretraining

Masks are ``True`` where a real base (A, C, G, T or N) sits and ``False`` on padding.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

A, C, G, T, N = 0, 1, 2, 3, 4
PAD_INDEX = 5
MASK_INDEX = 6
VOCAB_SIZE = 7
N_BASES = 4  # A, C, G, T: the classes a masked-nucleotide head predicts
ALPHABET = "ACGTN"

_LOOKUP = np.full(256, N, dtype=np.int64)
for _i, _base in enumerate("ACGT"):
    _LOOKUP[ord(_base)] = _i
    _LOOKUP[ord(_base.lower())] = _i

# complement on tokens: A<->T, C<->G, N, PAD and MASK map to themselves
_COMPLEMENT = torch.tensor([T, G, C, A, N, PAD_INDEX, MASK_INDEX], dtype=torch.long)


def encode_sequence(sequence: str) -> torch.Tensor:
    """Tokens ``LongTensor[l]`` of a DNA string; case-insensitive, non-ACGT letters → N."""
    raw = np.frombuffer(sequence.encode("ascii", errors="replace"), dtype=np.uint8)
    return torch.from_numpy(_LOOKUP[raw].copy())


def decode_tokens(tokens: torch.Tensor) -> str:
    """Inverse of :func:`encode_sequence` (``PAD`` → ``-``, ``MASK`` → ``?``), for debugging/tests."""
    table = np.array(list(ALPHABET + "-?"))
    return "".join(table[tokens.detach().cpu().numpy()])


def reverse_complement_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """Reverse complement along the last dim; PAD/MASK/N stay what they are (they move)."""
    return _COMPLEMENT.to(tokens.device)[tokens].flip(-1)


def reverse_complement(sequence: str) -> str:
    """Reverse complement of an (uppercase or lowercase) DNA string; unknown letters → N."""
    return decode_tokens(reverse_complement_tokens(encode_sequence(sequence)))


def pad_tokens(token_list: Sequence[torch.Tensor], masks: Sequence[torch.Tensor] | None = None,
               length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D token tensors to ``[b, length]`` with ``PAD``; returns ``(tokens, mask)``.

    ``masks`` (one per sequence) carries existing padding masks (e.g. contig-edge padding);
    without it every given token counts as real unless it is ``PAD``.
    """
    if not token_list:
        raise ValueError("pad_tokens needs at least one sequence")
    longest = max(int(t.shape[-1]) for t in token_list)
    length = longest if length is None else length
    if length < longest:
        raise ValueError(f"length {length} is shorter than the longest sequence ({longest})")
    out = torch.full((len(token_list), length), PAD_INDEX, dtype=torch.long)
    out_mask = torch.zeros((len(token_list), length), dtype=torch.bool)
    for i, tok in enumerate(token_list):
        n = int(tok.shape[-1])
        out[i, :n] = tok
        out_mask[i, :n] = (tok != PAD_INDEX) if masks is None else masks[i]
    return out, out_mask
