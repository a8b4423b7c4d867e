"""Masked-nucleotide pretraining: hide bases, predict them from the encoder's token states.

The head is deliberately shallow and sees only the encoder's token states (never the input
bases directly): each state ``[d]`` is projected to ``downsample`` base positions (a 1-D
"pixel shuffle"), so everything it knows about the context comes through the encoder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from genesplice.sequence.encode import MASK_INDEX, N_BASES


@dataclass(frozen=True)
class MaskedTokens:
    inputs: torch.Tensor       # LongTensor[b, l]: tokens with the chosen bases hidden
    targets: torch.Tensor      # LongTensor[b, l]: original base (0..3) where target_mask, else 0
    target_mask: torch.Tensor  # BoolTensor[b, l]: positions to predict


@dataclass(frozen=True)
class MaskedLMLoss:
    loss: torch.Tensor         # mean cross-entropy (nats) over masked bases
    accuracy: torch.Tensor
    n_targets: int


def mask_tokens(tokens: torch.Tensor, mask: torch.Tensor, mask_prob: float = 0.15,
                generator: torch.Generator | None = None, replace_prob: float = 0.8,
                random_prob: float = 0.1) -> MaskedTokens:
    """BERT-style masking of real A/C/G/T bases (never N or padding).

    Of the chosen positions, ``replace_prob`` become ``MASK``, ``random_prob`` a random base and
    the rest keep their base; all of them are targets.
    """
    if not 0.0 < mask_prob < 1.0 or replace_prob + random_prob > 1.0:
        raise ValueError("need 0 < mask_prob < 1 and replace_prob + random_prob <= 1")
    eligible = mask & (tokens < N_BASES)
    draw = torch.rand(tokens.shape, generator=generator, device=tokens.device)
    target_mask = eligible & (draw < mask_prob)
    how = torch.rand(tokens.shape, generator=generator, device=tokens.device)
    random_bases = torch.randint(0, N_BASES, tokens.shape, generator=generator, device=tokens.device)
    inputs = tokens.clone()
    inputs[target_mask & (how < replace_prob)] = MASK_INDEX
    swap = target_mask & (how >= replace_prob) & (how < replace_prob + random_prob)
    inputs[swap] = random_bases[swap]
    targets = torch.where(target_mask, tokens, torch.zeros_like(tokens))
    return MaskedTokens(inputs, targets, target_mask)


class MaskedNucleotideHead(nn.Module):
    """Token states ``[b, n, d]`` → base logits ``[b, l, 4]`` (A, C, G, T)."""

    def __init__(self, d_model: int, downsample: int, d_hidden: int = 32):
        super().__init__()
        self.downsample = downsample
        self.norm = nn.LayerNorm(d_model)
        self.expand = nn.Linear(d_model, downsample * d_hidden)
        self.offset = nn.Parameter(torch.zeros(downsample, d_hidden))
        self.out = nn.Sequential(nn.GELU(), nn.LayerNorm(d_hidden), nn.Linear(d_hidden, N_BASES))

    def forward(self, states: torch.Tensor, length: int) -> torch.Tensor:
        h = rearrange(self.expand(self.norm(states)), "b n (s c) -> b n s c", s=self.downsample)
        h = rearrange(h + self.offset, "b n s c -> b (n s) c")[:, :length]
        return self.out(h)


def masked_lm_loss(logits: torch.Tensor, masked: MaskedTokens) -> MaskedLMLoss:
    """Cross-entropy (nats) and accuracy over the masked positions only."""
    sel = masked.target_mask
    n = int(sel.sum())
    if n == 0:
        raise ValueError("no masked positions to score")
    picked = logits[sel]
    target = masked.targets[sel]
    loss = F.cross_entropy(picked, target)
    accuracy = (picked.argmax(-1) == target).float().mean()
    return MaskedLMLoss(loss, accuracy.detach(), n)


def unigram_entropy(tokens: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Entropy (nats) of the A/C/G/T frequencies: the loss of the best context-free predictor."""
    sel = tokens < N_BASES if mask is None else mask & (tokens < N_BASES)
    counts = torch.bincount(tokens[sel], minlength=N_BASES).double()
    p = counts / counts.sum()
    p = p[p > 0]
    return float(-(p * p.log()).sum()) if len(p) else math.nan
