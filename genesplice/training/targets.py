"""The prediction target, split the one way the whole package splits it: a gene's **level** (mean
over its observed tissues) and its centred **profile** (value minus level, per tissue).

Losses, the ridge baseline, the long-sequence study and the metrics all call
:func:`level_profile`; it takes torch tensors or numpy arrays and returns the same kind.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LevelProfile:
    level: torch.Tensor | np.ndarray    # (g,) mean over observed tissues; 0 for a gene with none
    profile: torch.Tensor | np.ndarray  # (g, t) y - level on observed cells, 0 elsewhere
    mask: torch.Tensor | np.ndarray     # (g, t) bool, observed cells
    n_observed: torch.Tensor | np.ndarray  # (g,) observed cells per gene


def level_profile(y: torch.Tensor | np.ndarray,
                  mask: torch.Tensor | np.ndarray | None = None) -> LevelProfile:
    """Split (g, t) values into per-gene level and centred profile over observed cells.

    ``mask`` defaults to ``~isnan(y)``. A gene with no observed cell gets level 0 and an
    all-zero profile (``n_observed`` 0 says so). numpy in → numpy out (same dtype).
    """
    as_numpy = isinstance(y, np.ndarray)
    if as_numpy:  # torch.from_numpy shares memory; a read-only array (pandas) is copied
        y = torch.from_numpy(y if y.flags.writeable else y.copy())
        mask = None if mask is None else torch.from_numpy(np.array(mask, dtype=bool))
    if mask is None:
        mask = ~torch.isnan(y)
    mask = mask.bool()
    y0 = torch.where(mask, y, torch.zeros((), dtype=y.dtype, device=y.device))
    n = mask.sum(dim=1)                                          # (g,)
    level = y0.sum(dim=1) / n.clamp(min=1).to(y.dtype)           # (g,)
    profile = torch.where(mask, y0 - level[:, None], torch.zeros_like(y0))
    if as_numpy:
        return LevelProfile(level.numpy(), profile.numpy(), mask.numpy(), n.numpy())
    return LevelProfile(level=level, profile=profile, mask=mask, n_observed=n)
