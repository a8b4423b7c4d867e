"""Training losses.

Expression targets ``y`` (g, t) are split into a **level** (each gene's mean over its observed
tissues, shape (g,)) and a **profile** (the centred values ``y - level``, (g, t)). The two are
weighted separately: one MSE over all cells is dominated by the level, while tissue specificity
lives in the profile. Missing cells (``mask`` False, NaN allowed in ``y``) are left out of every
mean and every loss.

Also: symmetric InfoNCE between two views of the same genes, and label-smoothed BCE / CE for the
auxiliary gene-function head. Every loss returns a scalar tensor; the combined loss comes back as
a :class:`LevelProfileLoss` record with named parts.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genesplice.training.targets import level_profile


@dataclass(frozen=True)
class LevelProfileLoss:
    total: torch.Tensor    # level_weight * level + profile_weight * profile
    level: torch.Tensor    # MSE of the per-gene level
    profile: torch.Tensor  # MSE of the centred profile over observed cells


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over cells where ``mask`` (NaN targets elsewhere are fine).

    Returns 0 (with gradient graph intact) when no cell is observed.
    """
    mask = mask.bool()
    diff = torch.where(mask, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return (diff * diff).sum() / mask.sum().clamp(min=1).to(pred.dtype)


def level_profile_loss(pred: torch.Tensor, target: torch.Tensor,
                       mask: torch.Tensor | None = None, *, level_weight: float = 1.0,
                       profile_weight: float = 1.0) -> LevelProfileLoss:
    """Weighted sum of the level MSE and the centred-profile MSE.

    The prediction (g, t) is decomposed over the *target's* observed tissues, so a gene missing
    some tissues is compared like for like.
    """
    if mask is None:
        mask = ~torch.isnan(target)
    t = level_profile(target, mask)
    p = level_profile(pred, t.mask)
    has_any = t.mask.any(dim=1)
    level = masked_mse(p.level, t.level, has_any)
    profile = masked_mse(p.profile, t.profile, t.mask)
    return LevelProfileLoss(total=level_weight * level + profile_weight * profile,
                            level=level, profile=profile)


def info_nce(z_a: torch.Tensor, z_b: torch.Tensor, *, temperature: float = 0.1) -> torch.Tensor:
    """Symmetric InfoNCE: row i of ``z_a`` and row i of ``z_b`` are the positive pair (b, d).

    Embeddings are L2-normalised; logits are cosine similarities / ``temperature``; the loss is
    the mean of the a->b and b->a cross-entropies.
    """
    if z_a.shape != z_b.shape or z_a.dim() != 2:
        raise ValueError(f"info_nce expects two (b, d) tensors of equal shape, got "
                         f"{tuple(z_a.shape)} and {tuple(z_b.shape)}")
    a = F.normalize(z_a, dim=-1)
    b = F.normalize(z_b, dim=-1)
    logits = a @ b.T / temperature                               # (b, b)
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def smoothed_bce_with_logits(logits: torch.Tensor, targets: torch.Tensor, *,
                             smoothing: float = 0.1,
                             mask: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-label BCE with targets pulled towards 0.5: ``y * (1 - s) + s / 2``.

    ``mask`` (same shape, bool) leaves out cells whose label is unknown.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    soft = targets.to(logits.dtype) * (1.0 - smoothing) + 0.5 * smoothing
    loss = F.binary_cross_entropy_with_logits(logits, soft, reduction="none")
    if mask is None:
        return loss.mean()
    mask = mask.bool()
    return torch.where(mask, loss, torch.zeros_like(loss)).sum() / mask.sum().clamp(min=1)


def smoothed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, *,
                           smoothing: float = 0.1) -> torch.Tensor:
    """Single-label CE over classes with label smoothing (``targets``: class indices)."""
    return F.cross_entropy(logits, targets, label_smoothing=smoothing)
