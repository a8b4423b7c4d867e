"""Learning-rate schedules: one pure function (``lr_at``) and the equivalent torch scheduler.

Two kinds:

* ``cosine``: linear warmup over ``warmup_steps`` (step s < W gives ``base_lr * (s + 1) / W``),
  then cosine decay from ``base_lr`` to ``min_lr`` reached at ``total_steps``, held after.
  torch: ``SequentialLR([LinearLR, CosineAnnealingLR], milestones=[W])``.
* ``cyclic``: triangular cycles of ``cycle_steps`` (default ``total_steps``); each cycle rises
  linearly from ``min_lr`` to ``base_lr`` over ``warmup_steps`` (the first rise is the warmup)
  and falls back to ``min_lr`` over the rest. torch: ``CyclicLR(mode="triangular")``.

``step`` counts optimizer steps from 0; the LR for step s is the one used by the s-th
``optimizer.step()`` (the scheduler is stepped after each optimizer step, as torch expects).
"""
from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import (CosineAnnealingLR, CyclicLR, LinearLR, LRScheduler,
                                      SequentialLR)

from genesplice.io.errors import GeneSpliceInputError

KINDS = ("cosine", "cyclic")


def _check(base_lr: float, warmup_steps: int, total_steps: int, min_lr: float, kind: str,
           cycle_steps: int | None) -> int:
    if kind not in KINDS:
        raise GeneSpliceInputError(f"unknown schedule kind {kind!r} (expected one of {KINDS})")
    if not (base_lr > 0 and 0 <= min_lr <= base_lr):
        raise GeneSpliceInputError(f"expected 0 <= min_lr <= base_lr and base_lr > 0; got "
                                   f"base_lr={base_lr}, min_lr={min_lr}")
    if total_steps < 1 or warmup_steps < 0:
        raise GeneSpliceInputError(f"expected total_steps >= 1 and warmup_steps >= 0; got "
                                   f"{total_steps}, {warmup_steps}")
    if kind == "cosine":
        if warmup_steps >= total_steps:
            raise GeneSpliceInputError(f"warmup_steps ({warmup_steps}) must be < total_steps "
                                       f"({total_steps})")
        return 0
    cycle = total_steps if cycle_steps in (None, 0) else int(cycle_steps)
    if not 1 <= warmup_steps < cycle:
        raise GeneSpliceInputError(f"cyclic schedule needs 1 <= warmup_steps < cycle_steps; "
                                   f"got warmup_steps={warmup_steps}, cycle_steps={cycle}")
    return cycle


def lr_at(step: int, *, base_lr: float, warmup_steps: int, total_steps: int,
          min_lr: float = 0.0, kind: str = "cosine", cycle_steps: int | None = None) -> float:
    """Learning rate for optimizer step ``step`` (0-based). Pure; see the module docstring."""
    cycle = _check(base_lr, warmup_steps, total_steps, min_lr, kind, cycle_steps)
    if step < 0:
        raise GeneSpliceInputError(f"step must be >= 0, got {step}")
    if kind == "cosine":
        if step < warmup_steps:
            return base_lr * (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
        return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
    c = step % cycle
    if c < warmup_steps:
        frac = c / warmup_steps
    else:
        frac = 1.0 - (c - warmup_steps) / (cycle - warmup_steps)
    return min_lr + (base_lr - min_lr) * frac


def build_scheduler(optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int,
                    min_lr: float = 0.0, kind: str = "cosine",
                    cycle_steps: int | None = None) -> LRScheduler:
    """The torch scheduler matching :func:`lr_at`, with ``base_lr`` = each group's current lr.

    Build it right after the optimizer (before any step) and call ``scheduler.step()`` after
    every ``optimizer.step()``.
    """
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    for b in base_lrs:
        cycle = _check(b, warmup_steps, total_steps, min_lr, kind, cycle_steps)
    if kind == "cosine":
        cosine = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=min_lr)
        if warmup_steps == 0:
            return cosine
        if warmup_steps == 1:  # LinearLR(total_iters=0) is rejected; a one-step warmup is base_lr
            warm = LinearLR(optimizer, start_factor=1.0, end_factor=1.0, total_iters=1)
        else:
            warm = LinearLR(optimizer, start_factor=1.0 / warmup_steps, end_factor=1.0,
                            total_iters=warmup_steps - 1)
        return SequentialLR(optimizer, schedulers=[warm, cosine], milestones=[warmup_steps])
    return CyclicLR(optimizer, base_lr=min_lr, max_lr=base_lrs, step_size_up=warmup_steps,
                    step_size_down=cycle - warmup_steps, mode="triangular",
                    cycle_momentum=False)
