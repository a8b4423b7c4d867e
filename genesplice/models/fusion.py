"""Fusion of a gene's sequence view and graph view, and the prediction heads.

Letters: g genes, d hidden width, t tissues, f membership features, k function labels.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class TissueMap(nn.Module):
    """A linear map from one tissue set's predictions to another's (fine-tuning to new tissues):
    ``level' = a · level + b``, ``profile' = centre(profile @ A + c)``.

    Shapes: ``level [g]``, ``profile [g, t_in]`` → ``level' [g]``, ``profile' [g, t_out]``
    (rows centred). :meth:`set_` loads a fitted map (e.g. a ridge of new tissues on old ones),
    so that a fine-tuned model starts exactly at the base model pushed through it.
    """

    def __init__(self, n_inputs: int, n_outputs: int) -> None:
        super().__init__()
        self.level_scale = nn.Parameter(torch.ones(()))
        self.level_bias = nn.Parameter(torch.zeros(()))
        self.weight = nn.Parameter(torch.zeros(n_inputs, n_outputs))
        self.bias = nn.Parameter(torch.zeros(n_outputs))

    @torch.no_grad()
    def set_(self, a: float, b: float, A: Tensor, c: Tensor) -> None:
        self.level_scale.fill_(float(a))
        self.level_bias.fill_(float(b))
        self.weight.copy_(torch.as_tensor(A, dtype=self.weight.dtype))
        self.bias.copy_(torch.as_tensor(c, dtype=self.bias.dtype))

    def forward(self, level: Tensor, profile: Tensor) -> tuple[Tensor, Tensor]:
        out = profile @ self.weight + self.bias                                # [g, t_out]
        return (self.level_scale * level + self.level_bias,
                out - out.mean(dim=-1, keepdim=True))


class GatedFusion(nn.Module):
    """``h = z * h_seq + (1 - z) * h_graph`` with a per-dimension gate ``z = σ(W [h_seq; h_graph])``.

    Shapes: ``h_seq``, ``h_graph``: ``[g, d]`` → ``h``: ``[g, d]``; :meth:`gate` gives ``z``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(2 * dim, dim)

    def gate(self, h_seq: Tensor, h_graph: Tensor) -> Tensor:
        return torch.sigmoid(self.proj(torch.cat([h_seq, h_graph], dim=-1)))

    def forward(self, h_seq: Tensor, h_graph: Tensor) -> Tensor:
        z = self.gate(h_seq, h_graph)
        return z * h_seq + (1 - z) * h_graph


class ExpressionHeads(nn.Module):
    """Predict a gene's expression *level* (mean over tissues) and *profile* (centred, per tissue).

    The prediction per tissue is ``level + profile`` with the profile centred to mean zero, so
    the two targets can be weighted and early-stopped separately.

    Shapes: ``h [g, d]`` → ``level [g]``, ``profile [g, t]`` (rows sum to 0).
    """

    def __init__(self, dim: int, n_tissues: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.level = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout),
                                   nn.Linear(dim, 1))
        self.profile = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout),
                                     nn.Linear(dim, n_tissues))

    @torch.no_grad()
    def zero_output_(self) -> None:
        """Zero the last layers, so the heads start by adding nothing (e.g. on top of a
        warm-started linear path); gradients still reach them."""
        for head in (self.level, self.profile):
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        level = self.level(h).squeeze(-1)                           # [g]
        profile = self.profile(h)                                   # [g, t]
        return level, profile - profile.mean(dim=-1, keepdim=True)


class MembershipLinear(nn.Module):
    """A linear path over annotation membership (gene × GO term / pathway / TF), like ridge.

    ``membership`` is a sparse ``[g, f]`` matrix (0/1 or weights); output is ``level [g]`` and a
    centred ``profile [g, t]``. Trained jointly with the network; its shrinkage comes from the
    optimiser's weight decay plus an explicit L2 penalty (:meth:`l2`), as ridge's does.
    """

    def __init__(self, n_features: int, n_tissues: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_features, n_tissues + 1))  # [f, 1 + t]
        self.bias = nn.Parameter(torch.zeros(n_tissues + 1))                # [1 + t]

    @torch.no_grad()
    def warm_start_(self, coef: Tensor, intercept: Tensor) -> None:
        """Start from a fitted ridge solution (``coef [f, 1 + t]``, ``intercept [1 + t]``)."""
        self.weight.copy_(coef)
        self.bias.copy_(intercept)

    def forward(self, membership: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
        """``membership``: sparse CSR ``[n_genes, f]`` of 0/1; ``rows [g]``: genes to predict.

        Computed as an ``embedding_bag`` sum over each gene's features (fast in both
        directions, and only for the requested rows).
        """
        crow, col = membership.crow_indices(), membership.col_indices()
        starts, ends = crow[rows], crow[rows + 1]
        counts = ends - starts                                     # [g]
        offsets = torch.cumsum(counts, 0) - counts                 # [g]
        within = torch.arange(int(counts.sum()), device=col.device) - \
            torch.repeat_interleave(offsets, counts)
        flat = col[torch.repeat_interleave(starts, counts) + within]
        out = nn.functional.embedding_bag(flat, self.weight, offsets, mode="sum",
                                          include_last_offset=False)  # [g, 1 + t]
        out = out + self.bias
        level, profile = out[:, 0], out[:, 1:]
        return level, profile - profile.mean(dim=-1, keepdim=True)

    def l2(self) -> Tensor:
        return self.weight.pow(2).sum()


class ProjectionHead(nn.Module):
    """Two-layer projection used for the contrastive (InfoNCE) views, L2-normalised output."""

    def __init__(self, dim: int, out_dim: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out_dim))

    def forward(self, h: Tensor) -> Tensor:
        return nn.functional.normalize(self.net(h), dim=-1)


class LabelGate(nn.Module):
    """Per gene and output column, how far to move a prediction towards the label read-out:
    ``w = σ(b_c + W h)`` (``[g, c]``), ``b_c`` starting at ``logit(init)`` and ``W`` at zero,
    so every gene starts with the same blend and learns a tissue-conditional one (FiLM-like).
    """

    def __init__(self, dim: int, n_columns: int, init: float = 0.4) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, n_columns)
        nn.init.zeros_(self.proj.weight)
        nn.init.constant_(self.proj.bias, math.log(init / (1 - init)))     # logit(init)

    def forward(self, h: Tensor) -> Tensor:
        return torch.sigmoid(self.proj(h))
