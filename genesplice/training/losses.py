"""Training losses.

Expression targets ``y`` (g, t) are split into a **level** (each gene's mean over its observed
tissues, shape (g,)) and a **profile** (the centred values ``y - level``, (g, t)). The two are
weighted separately: one MSE over all cells is dominated by the level, while tissue specificity
lives in the profile. Missing cells (``mask`` False, NaN allowed in ``y``) are left out of every
mean and every loss.

Robust to noise: ``kind="huber"`` replaces the squared error by the Huber loss (quadratic within
``huber_delta``, linear beyond, so a few outlier labels pull far less), and ``gene_weights``
weights each gene (e.g. :func:`observed_gene_weights`, by how many tissues it was measured in).

Also: symmetric InfoNCE between two views of the same genes, and label-smoothed BCE / CE for the
auxiliary gene-function head. Every loss returns a scalar tensor; the combined loss comes back as
a :class:`LevelProfileLoss` record with named parts.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genesplice.training.targets import level_profile


#: the pointwise losses ``level_profile_loss`` accepts (``train.loss``)
LOSSES = ("mse", "huber")
#: per-gene weights (``train.gene_weights``): none, or by the number of observed tissues
GENE_WEIGHTS = ("none", "observed")


@dataclass(frozen=True)
class LevelProfileLoss:
    total: torch.Tensor    # level_weight * level + profile_weight * profile
    level: torch.Tensor    # MSE (or Huber) of the per-gene level
    profile: torch.Tensor  # MSE (or Huber) of the centred profile over observed cells


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over cells where ``mask`` (NaN targets elsewhere are fine).

    Returns 0 (with gradient graph intact) when no cell is observed.
    """
    mask = mask.bool()
    diff = torch.where(mask, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return (diff * diff).sum() / mask.sum().clamp(min=1).to(pred.dtype)


def masked_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
                kind: str = "mse", huber_delta: float = 1.0,
                weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean pointwise loss (``"mse"`` or ``"huber"`` with ``huber_delta``) over cells where
    ``mask``; ``weight`` (broadcastable to ``pred``, e.g. per-gene ``[g, 1]``) weights the
    cells (a weighted mean). ``kind="mse"`` without weights is :func:`masked_mse`."""
    if kind not in LOSSES:
        raise ValueError(f"loss kind must be one of {LOSSES}, got {kind!r}")
    if kind == "mse" and weight is None:
        return masked_mse(pred, target, mask)
    mask = mask.bool()
    target = torch.where(mask, torch.nan_to_num(target), pred.detach())
    if kind == "huber":
        cell = F.huber_loss(pred, target, reduction="none", delta=huber_delta)
    else:
        cell = (pred - target).pow(2)
    w = mask.to(pred.dtype)
    if weight is not None:
        w = w * weight.to(pred.dtype)
    return (cell * w).sum() / w.sum().clamp(min=1e-12)


def observed_gene_weights(mask: torch.Tensor) -> torch.Tensor:
    """Per-gene weights ``[g]`` proportional to the number of observed tissues (a gene
    measured in 3 of 37 tissues counts 3/37 of a fully measured one), scaled to mean 1 over
    the genes with any observation (0 for genes with none)."""
    n = mask.bool().sum(dim=1).to(torch.float32)
    has = n > 0
    return n / n[has].mean().clamp(min=1e-12) if has.any() else n


def level_profile_loss(pred: torch.Tensor, target: torch.Tensor,
                       mask: torch.Tensor | None = None, *, level_weight: float = 1.0,
                       profile_weight: float = 1.0, kind: str = "mse",
                       huber_delta: float = 1.0,
                       gene_weights: torch.Tensor | None = None) -> LevelProfileLoss:
    """Weighted sum of the level loss and the centred-profile loss (MSE, or Huber with
    ``huber_delta``; ``gene_weights [g]`` weights each gene, default equal).

    The prediction (g, t) is decomposed over the *target's* observed tissues, so a gene missing
    some tissues is compared like for like.
    """
    if mask is None:
        mask = ~torch.isnan(target)
    t = level_profile(target, mask)
    p = level_profile(pred, t.mask)
    has_any = t.mask.any(dim=1)
    level = masked_loss(p.level, t.level, has_any, kind=kind, huber_delta=huber_delta,
                        weight=gene_weights)
    profile = masked_loss(p.profile, t.profile, t.mask, kind=kind, huber_delta=huber_delta,
                          weight=None if gene_weights is None else gene_weights[:, None])
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
