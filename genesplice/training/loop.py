"""The training loop: readable top to bottom, in the spirit of nanoGPT's ``train.py``.

Every epoch refreshes the cached sequence embeddings of all genes (the GAT's gene features
outside the current batch), then walks the training genes in shuffled mini-batches; each step
computes the batch genes' GAT embeddings on their receptive field only (exactly what a
full-graph pass gives them) and, in a fixed order:

1. forward on an edge-dropout view of the graph (augmentation and the contrastive second view),
2. loss = level MSE + profile MSE (+ InfoNCE sequence↔graph) (+ smoothed BCE function head),
3. backward, clip, AdamW step, scheduler step (warmup then cosine or cyclic),
4. evaluate on validation genes: the **level** (Pearson across genes of the per-gene mean) and
   the **profile** (mean per-gene Pearson of the centred values) are tracked and early-stopped
   *separately*, each keeping its own best weights,
5. write a checkpoint atomically (config, step, epoch, optimizer/scheduler/RNG state, best
   metrics, best weights, history), so ``resume=True`` continues to the same result.

Final predictions take the level from the best-level weights and the profile from the
best-profile weights (:func:`predict_rows`).
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from genesplice.training.config import TrainConfig, config_to_dict
from genesplice.models.model import GeneSpliceModel, ModelOutput
from genesplice.training.checkpoint import (capture_rng_state, load_checkpoint,
                                            restore_rng_state, save_checkpoint)
from genesplice.training.data import TrainingData
from genesplice.training.losses import info_nce, level_profile_loss, smoothed_bce_with_logits
from genesplice.training.schedules import build_scheduler

log = logging.getLogger(__name__)

MAX_CONTRASTIVE = 2048   # genes per InfoNCE batch (the logits matrix is b × b)


@dataclass
class TrainResult:
    history: pd.DataFrame
    best_level: float
    best_profile: float
    best_level_epoch: int
    best_profile_epoch: int
    level_state: dict[str, torch.Tensor]
    profile_state: dict[str, torch.Tensor]
    checkpoint_path: Path | None
    seconds: float


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _pearson_rows(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pearson per row over masked cells; NaN where fewer than 3 cells or no variance."""
    m = mask.to(a.dtype)
    n = m.sum(1)
    ma = (a * m).sum(1) / n.clamp(min=1)
    mb = (b * m).sum(1) / n.clamp(min=1)
    da, db = (a - ma[:, None]) * m, (b - mb[:, None]) * m
    cov = (da * db).sum(1)
    den = (da.pow(2).sum(1) * db.pow(2).sum(1)).sqrt()
    r = cov / den
    r[(n < 3) | (den <= 0)] = float("nan")
    return r


def validation_scores(pred: torch.Tensor, y: torch.Tensor, observed: torch.Tensor
                      ) -> dict[str, float]:
    """Level Pearson across genes, mean per-gene centred Pearson, mean per-tissue Pearson."""
    m = observed
    yz = torch.nan_to_num(y)
    n = m.sum(1).clamp(min=1)
    lev_y = (yz * m).sum(1) / n
    lev_p = (pred * m).sum(1) / n
    has = m.any(1)
    level = _pearson_rows(lev_p[has][None], lev_y[has][None], torch.ones_like(lev_y[has][None],
                                                                            dtype=torch.bool))
    prof = _pearson_rows(pred - lev_p[:, None], yz - lev_y[:, None], m)
    tissue = _pearson_rows(pred.T, yz.T, m.T)
    return {"val_level_pearson": float(level[0]),
            "val_gene_pearson": float(torch.nanmean(prof)),
            "val_tissue_pearson": float(torch.nanmean(tissue))}


def predict_rows(model: GeneSpliceModel, data: TrainingData, rows: torch.Tensor, *,
                 level_state: dict | None = None, profile_state: dict | None = None,
                 batch_size: int = 2048) -> torch.Tensor:
    """Predictions ``[len(rows), t]``: level from ``level_state``, profile from ``profile_state``
    (either defaults to the model's current weights). The model's weights are restored after."""
    was_training = model.training
    current = _state(model) if (level_state or profile_state) else None
    # copies: a caller may pass live tensors (model.state_dict()) that loading would overwrite
    level_state = None if level_state is None else {k: v.clone() for k, v in level_state.items()}
    if profile_state is not None:
        profile_state = {k: v.clone() for k, v in profile_state.items()}
    model.eval()

    def run(state) -> ModelOutput:
        if state is not None:
            model.load_state_dict(state)
            model.refresh_sequence_cache(data.sequences)
        outs = [model(data.graph_inputs, data.sequences, rows[i:i + batch_size])
                for i in range(0, len(rows), batch_size)]
        return ModelOutput(*(None if outs[0].__dict__[k] is None else
                             torch.cat([o.__dict__[k] for o in outs])
                             for k in ModelOutput.__dataclass_fields__))

    try:
        with torch.no_grad():
            out_level = run(level_state)
            if profile_state is not None and profile_state is not level_state:
                out_profile = run(profile_state)
            else:
                out_profile = out_level
        return out_level.level[:, None] + out_profile.profile
    finally:
        if current is not None:
            model.load_state_dict(current)
            model.refresh_sequence_cache(data.sequences)
        model.train(was_training)


def _loss(model: GeneSpliceModel, out: ModelOutput, data: TrainingData, rows: torch.Tensor,
          cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    lp = level_profile_loss(out.prediction, data.y[rows], data.observed[rows],
                            level_weight=cfg.level_weight, profile_weight=cfg.profile_weight)
    total = lp.total
    parts = {"loss_level": lp.level.item(), "loss_profile": lp.profile.item()}
    if cfg.aux_weight > 0 and out.function_logits.shape[1] > 0:
        aux = smoothed_bce_with_logits(out.function_logits, data.function_labels[rows],
                                       smoothing=cfg.label_smoothing)
        total = total + cfg.aux_weight * aux
        parts["loss_function"] = aux.item()
    if cfg.contrastive_weight > 0 and out.z_seq is not None:
        idx = torch.nonzero(out.has_sequence).squeeze(1)
        if len(idx) > MAX_CONTRASTIVE:
            idx = idx[torch.randperm(len(idx))[:MAX_CONTRASTIVE]]
        if len(idx) >= 2:
            nce = info_nce(out.z_seq[idx], out.z_graph[idx],
                           temperature=cfg.contrastive_temperature)
            total = total + cfg.contrastive_weight * nce
            parts["loss_contrastive"] = nce.item()
    parts["loss"] = total.item()
    return total, parts


def configure_optimizer(model: GeneSpliceModel, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices (rank ≥ 2), none on biases, norms and single vectors.

    The membership linear path (warm-started from the ridge solution) gets its own group with
    ``lr * linear_lr_scale``: it starts where ridge's validation-chosen shrinkage put it, and
    the network learns mostly what ridge leaves over.
    """
    linear = set()
    if getattr(model, "membership_linear", None) is not None:
        linear = {id(p) for p in model.membership_linear.parameters()}
    decay, no_decay, lin = [], [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if id(p) in linear:
            lin.append(p)
        else:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if lin:
        groups.append({"params": lin, "weight_decay": 0.0, "lr": cfg.lr * cfg.linear_lr_scale})
    return torch.optim.AdamW(groups, lr=cfg.lr)


def train_model(model: GeneSpliceModel, data: TrainingData, cfg: TrainConfig, *,
                checkpoint_path: str | Path | None = None, resume: bool = False,
                config_dict: dict | None = None, model_args: dict | None = None,
                progress: bool = True, stop_after_epoch: int | None = None,
                desc: str = "train") -> TrainResult:
    """Train ``model`` on ``data`` (see the module docstring for the step order).

    ``checkpoint_path``: written after every epoch (atomically). ``resume=True`` restores model,
    optimizer, scheduler, RNG, history and best weights from it and continues.
    ``stop_after_epoch`` ends early as if interrupted (used by the resume test).
    ``config_dict`` / ``model_args`` are stored in the checkpoint as plain data.
    """
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    opt = configure_optimizer(model, cfg)
    train_rows, val_rows = data.rows["train"], data.rows["val"]
    batch = cfg.batch_size if cfg.batch_size > 0 else len(train_rows)
    steps_per_epoch = math.ceil(len(train_rows) / batch)
    total_steps = max(cfg.epochs * steps_per_epoch, cfg.warmup_steps + 1)
    sched = build_scheduler(opt, warmup_steps=cfg.warmup_steps, total_steps=total_steps,
                            min_lr=cfg.min_lr, kind=cfg.schedule,
                            cycle_steps=cfg.cycle_steps or None)
    history: list[dict] = []
    best = {"level": -math.inf, "profile": -math.inf}
    best_epoch = {"level": -1, "profile": -1}
    best_state = {"level": _state(model), "profile": _state(model)}
    start_epoch = 0
    ckpt_path = Path(checkpoint_path) if checkpoint_path else None

    if resume:
        if ckpt_path is None or not ckpt_path.exists():
            raise FileNotFoundError(f"cannot resume: no checkpoint at {ckpt_path}")
        ck = load_checkpoint(ckpt_path)
        model.load_state_dict(ck.model_state)
        opt.load_state_dict(ck.optimizer_state)
        sched.load_state_dict(ck.scheduler_state)
        extra = ck.extra
        history = [dict(zip(extra["history_columns"], row)) for row in extra["history_rows"]]
        best = {"level": extra["best_level"], "profile": extra["best_profile"]}
        best_epoch = {"level": extra["best_level_epoch"], "profile": extra["best_profile_epoch"]}
        best_state = {"level": extra["level_state"], "profile": extra["profile_state"]}
        start_epoch = ck.epoch
        restore_rng_state(ck.rng_state)
        if extra.get("finished"):
            start_epoch = cfg.epochs

    stalled = {k: (start_epoch - 1 - best_epoch[k]) for k in best}
    bar = tqdm(range(start_epoch, cfg.epochs), desc=desc, disable=not progress, leave=False,
               initial=start_epoch, total=cfg.epochs)
    finished = False
    epoch = start_epoch
    for epoch in bar:
        model.train()
        model.refresh_sequence_cache(data.sequences)
        order = train_rows[torch.randperm(len(train_rows))]
        sums: dict[str, float] = {}
        for i in range(0, len(order), batch):
            rows = order[i:i + batch]
            view = data.graph_inputs.drop_edges(cfg.edge_dropout)
            out = model(view, data.sequences, rows)
            loss, parts = _loss(model, out, data, rows, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
            opt.step()
            sched.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v * len(rows) / len(order)
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], **sums}
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            pred = predict_rows(model, data, val_rows)
            scores = validation_scores(pred, data.y[val_rows], data.observed[val_rows])
            row.update(scores)
            for key, metric in (("level", "val_level_pearson"), ("profile", "val_gene_pearson")):
                value = scores[metric]
                if not math.isnan(value) and value > best[key]:
                    best[key], best_epoch[key] = value, epoch + 1
                    best_state[key] = _state(model)
                    stalled[key] = 0
                else:
                    stalled[key] += 1
            bar.set_postfix(level=f"{scores['val_level_pearson']:.3f}",
                            profile=f"{scores['val_gene_pearson']:.3f}")
        history.append(row)
        done = (all(s >= cfg.patience for s in stalled.values()) if
                cfg.stop_level_and_profile_separately else
                min(stalled.values()) >= cfg.patience) and cfg.patience > 0
        finished = done or epoch + 1 == cfg.epochs
        if ckpt_path is not None:
            _write(ckpt_path, model, opt, sched, cfg, config_dict, model_args, epoch + 1,
                   best, best_epoch, best_state, history, data, finished)
        if done:
            log.info("early stop at epoch %d (no improvement for %d epochs)", epoch + 1,
                     cfg.patience)
            break
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    bar.close()
    return TrainResult(history=pd.DataFrame(history), best_level=best["level"],
                       best_profile=best["profile"], best_level_epoch=best_epoch["level"],
                       best_profile_epoch=best_epoch["profile"],
                       level_state=best_state["level"], profile_state=best_state["profile"],
                       checkpoint_path=ckpt_path, seconds=time.time() - t0)


def _write(path, model, opt, sched, cfg, config_dict, model_args, epoch, best, best_epoch,
           best_state, history, data, finished) -> None:
    columns = sorted({k for row in history for k in row})
    rows = [[row.get(c, float("nan")) for c in columns] for row in history]
    save_checkpoint(
        path, model_state=_state(model), optimizer_state=opt.state_dict(),
        scheduler_state=sched.state_dict(),
        config=config_dict if config_dict is not None else {"train": config_to_dict(cfg)},
        step=sched.last_epoch, epoch=epoch, best_metric=best["profile"],
        rng_state=capture_rng_state(),
        data_checksums=data.checksums,
        extra={"best_level": best["level"], "best_profile": best["profile"],
               "best_level_epoch": best_epoch["level"],
               "best_profile_epoch": best_epoch["profile"],
               "level_state": best_state["level"], "profile_state": best_state["profile"],
               "history_columns": columns, "history_rows": rows, "finished": finished,
               "model_args": copy.deepcopy(model_args or {}),
               "tissues": list(data.tissues), "function_names": list(data.function_names),
               "feature_names": list(data.feature_names)})
