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
best-profile weights (:func:`predict_rows`, a thin wrapper over the one two-state predictor,
:class:`~genesplice.models.inference.TwoStateModel`). ``device=`` moves the model and a copy
of the data to one device (:func:`~genesplice.models.device.resolve_device`).
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from genesplice.models.device import module_device
from genesplice.models.inference import TwoStateModel
from genesplice.models.model import GeneSpliceModel, ModelOutput
from genesplice.training.checkpoint import (capture_rng_state, load_checkpoint,
                                            restore_rng_state, save_checkpoint)
from genesplice.training import distributed
from genesplice.training.config import TrainConfig, config_to_dict
from genesplice.training.data import TrainingData
from genesplice.training.losses import (info_nce, level_profile_loss, observed_gene_weights,
                                        smoothed_bce_with_logits)
from genesplice.training.metrics import masked_pearson
from genesplice.training.sampling import neighbor_sampler, sample_batch
from genesplice.training.schedules import build_scheduler
from genesplice.training.targets import level_profile

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


@dataclass
class _Progress:
    """What an epoch updates and a checkpoint stores: history, best scores and weights."""

    best_state: dict[str, dict[str, torch.Tensor]]
    history: list[dict] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=lambda: {"level": -math.inf,
                                                            "profile": -math.inf})
    best_epoch: dict[str, int] = field(default_factory=lambda: {"level": -1, "profile": -1})
    start_epoch: int = 0


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def validation_scores(pred: torch.Tensor, y: torch.Tensor, observed: torch.Tensor
                      ) -> dict[str, float]:
    """Level Pearson across genes, mean per-gene centred Pearson, mean per-tissue Pearson
    (:func:`~genesplice.training.metrics.masked_pearson` on the
    :func:`~genesplice.training.targets.level_profile` split, float64)."""
    p = pred.detach().cpu().numpy().astype(np.float64)
    t = y.detach().cpu().numpy().astype(np.float64)
    m = observed.detach().cpu().numpy().astype(bool)
    lp_p, lp_t = level_profile(p, m), level_profile(t, m)
    has = m.any(1)
    level = masked_pearson(lp_p.level[has][None], lp_t.level[has][None],
                           np.ones((1, int(has.sum())), bool), axis=1)[0]
    prof = masked_pearson(lp_p.profile, lp_t.profile, m, axis=1)
    tissue = masked_pearson(p, t, m, axis=0)
    return {"val_level_pearson": float(level),
            "val_gene_pearson": _nanmean(prof),
            "val_tissue_pearson": _nanmean(tissue)}


def _with_state(model: GeneSpliceModel, state: dict | None) -> GeneSpliceModel:
    """``model`` itself (``state`` None) or a copy of it holding ``state``."""
    if state is None:
        return model
    other = copy.deepcopy(model)
    other.load_state_dict(state)
    return other


def predict_rows(model: GeneSpliceModel, data: TrainingData, rows: torch.Tensor, *,
                 level_state: dict | None = None, profile_state: dict | None = None,
                 batch_size: int = 2048, device: torch.device | str | None = None
                 ) -> torch.Tensor:
    """Predictions ``[len(rows), t]`` on the CPU: level from ``level_state``, profile from
    ``profile_state`` — a thin wrapper over :class:`~genesplice.models.inference.TwoStateModel`.

    Without states: the model's current weights *as training sees them* (its cached sequence
    embeddings of the epoch for genes outside the query, ``training_view=True``); the
    model's train/eval mode is restored after. With states: copies of the model hold them
    (``model`` is not changed) and every embedding is computed with those weights. A state
    left out defaults to the current weights. ``device``: where to run (default: the model's).
    """
    was_training = model.training
    try:
        if level_state is None and profile_state is None:
            tsm = TwoStateModel(model, model, data.sequences, training_view=True, device=device)
        else:
            level = _with_state(model, level_state)
            profile = level if profile_state is level_state else \
                _with_state(model, profile_state)
            tsm = TwoStateModel(level, profile, data.sequences,
                                device=device or module_device(model))
        pred, _ = tsm.predict(data.graph_inputs, data.sequences, rows, batch_size=batch_size)
    finally:
        model.train(was_training)
    return pred.cpu()


def _loss(model: GeneSpliceModel, out: ModelOutput, data: TrainingData, rows: torch.Tensor,
          cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    observed = data.observed[rows]
    lp = level_profile_loss(out.prediction, data.y[rows], observed,
                            level_weight=cfg.level_weight, profile_weight=cfg.profile_weight,
                            kind=cfg.loss, huber_delta=cfg.huber_delta,
                            gene_weights=(observed_gene_weights(observed)
                                          if cfg.gene_weights == "observed" else None))
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
            idx = idx[torch.randperm(len(idx)).to(idx.device)[:MAX_CONTRASTIVE]]
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
                desc: str = "train", device: torch.device | str | None = None,
                extra: dict | None = None) -> TrainResult:
    """Train ``model`` on ``data`` (see the module docstring for the step order).

    ``checkpoint_path``: written after every epoch (atomically). ``resume=True`` restores model,
    optimizer, scheduler, RNG, history and best weights from it and continues.
    ``stop_after_epoch`` ends early as if interrupted (used by the resume test).
    ``config_dict`` / ``model_args`` / ``extra`` (more plain data, e.g. a fine-tuned model's
    base inputs) are stored in the checkpoint.
    ``device`` (a :class:`torch.device`, e.g. from
    :func:`~genesplice.models.device.resolve_device`): the model is moved there and trained
    on a copy of ``data`` there; default: where the model is.
    """
    t0 = time.time()
    if device is not None:
        model.to(distributed.local_device(torch.device(device)))
    data = data.to(module_device(model))
    torch.manual_seed(cfg.seed + distributed.rank())     # rank 0: exactly one process's seed
    np.random.seed(cfg.seed + distributed.rank())
    distributed.broadcast_parameters(model)               # every rank starts from rank 0's
    opt = configure_optimizer(model, cfg)
    train_rows = data.rows["train"]
    batch = cfg.batch_size if cfg.batch_size > 0 else len(train_rows)
    steps_per_epoch = math.ceil(len(train_rows) / batch)
    total_steps = max(cfg.epochs * steps_per_epoch, cfg.warmup_steps + 1)
    sched = build_scheduler(opt, warmup_steps=cfg.warmup_steps, total_steps=total_steps,
                            min_lr=cfg.min_lr, kind=cfg.schedule,
                            cycle_steps=cfg.cycle_steps or None)
    state = _Progress(best_state={"level": _state(model), "profile": _state(model)})
    ckpt_path = Path(checkpoint_path) if checkpoint_path else None
    if resume:
        state = _resume(ckpt_path, model, opt, sched, cfg)

    stalled = {k: (state.start_epoch - 1 - state.best_epoch[k]) for k in state.best}
    bar = tqdm(range(state.start_epoch, cfg.epochs), desc=desc,
               disable=not progress or not distributed.is_rank0(),
               leave=False, initial=state.start_epoch, total=cfg.epochs)
    for epoch in bar:
        sums = _train_epoch(model, data, cfg, opt, sched, batch, epoch=epoch + 1)
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], **sums}
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            # rank 0 scores and keeps the best weights; every rank takes its decisions
            scores = (_validate(model, data, state, stalled, epoch)
                      if distributed.is_rank0() else None)
            scores, stalled = distributed.broadcast_object((scores, stalled))
            row.update(scores)
            bar.set_postfix(level=f"{scores['val_level_pearson']:.3f}",
                            profile=f"{scores['val_gene_pearson']:.3f}")
        state.history.append(row)
        done = (all(s >= cfg.patience for s in stalled.values()) if
                cfg.stop_level_and_profile_separately else
                min(stalled.values()) >= cfg.patience) and cfg.patience > 0
        ranks_rng = (distributed.gather_object(capture_rng_state())
                     if ckpt_path is not None and distributed.active() else None)
        if ckpt_path is not None and distributed.is_rank0():
            _write(ckpt_path, model, opt, sched, cfg, config_dict, model_args, epoch + 1,
                   state, data, done or epoch + 1 == cfg.epochs, ranks_rng=ranks_rng,
                   more=extra)
        distributed.barrier()                   # the others wait for the checkpoint
        if done:
            log.info("early stop at epoch %d (no improvement for %d epochs)", epoch + 1,
                     cfg.patience)
            break
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    bar.close()
    state = _from_rank0(state)
    return TrainResult(history=pd.DataFrame(state.history), best_level=state.best["level"],
                       best_profile=state.best["profile"],
                       best_level_epoch=state.best_epoch["level"],
                       best_profile_epoch=state.best_epoch["profile"],
                       level_state=state.best_state["level"],
                       profile_state=state.best_state["profile"],
                       checkpoint_path=ckpt_path, seconds=time.time() - t0)


def _resume(ckpt_path: Path | None, model: GeneSpliceModel, opt, sched, cfg: TrainConfig
            ) -> _Progress:
    """Model, optimizer, scheduler and RNG state from a checkpoint; the progress it holds."""
    if ckpt_path is None or not ckpt_path.exists():
        raise FileNotFoundError(f"cannot resume: no checkpoint at {ckpt_path}")
    ck = load_checkpoint(ckpt_path, map_location=module_device(model))
    model.load_state_dict(ck.model_state)
    opt.load_state_dict(ck.optimizer_state)
    sched.load_state_dict(ck.scheduler_state)
    extra = ck.extra
    state = _Progress(
        best_state={"level": extra["level_state"], "profile": extra["profile_state"]},
        history=[dict(zip(extra["history_columns"], row)) for row in extra["history_rows"]],
        best={"level": extra["best_level"], "profile": extra["best_profile"]},
        best_epoch={"level": extra["best_level_epoch"], "profile": extra["best_profile_epoch"]},
        start_epoch=cfg.epochs if extra.get("finished") else ck.epoch)
    restore_rng_state(ck.rng_state)
    others = extra.get("rank_rng_states") or []      # ranks 1.. of a torchrun run
    if distributed.rank() > 0:
        if distributed.rank() <= len(others):
            restore_rng_state(others[distributed.rank() - 1])
        else:                       # saved by fewer ranks: a fresh stream for this one
            torch.manual_seed(cfg.seed + 7919 * distributed.rank() + ck.epoch)
    return state


def _from_rank0(state: _Progress) -> _Progress:
    """Rank 0's history, best scores and best weights on every rank (only rank 0 validates);
    ``state`` itself in one process."""
    if not distributed.active():
        return state
    on_cpu = {k: {n: t.cpu() for n, t in s.items()} for k, s in state.best_state.items()}
    shared = distributed.broadcast_object(
        _Progress(best_state=on_cpu, history=state.history, best=state.best,
                  best_epoch=state.best_epoch, start_epoch=state.start_epoch))
    return state if distributed.is_rank0() else shared


def _train_epoch(model: GeneSpliceModel, data: TrainingData, cfg: TrainConfig, opt, sched,
                 batch: int, *, epoch: int = 0) -> dict[str, float]:
    """One pass over the training genes in shuffled mini-batches (steps 1-3 of the module
    docstring); returns the epoch's mean loss parts.

    Under torchrun every rank walks rank 0's order (the batches one process would draw), takes
    its shard of each batch and adds its gradient, weighted by shard size, to the others'
    (:mod:`~genesplice.training.distributed`) before the shared clip and step."""
    model.train()
    model.refresh_sequence_cache(data.sequences)
    sampler = (neighbor_sampler(data.graph_inputs, cfg.num_neighbors, cfg.edge_num_neighbors)
               if cfg.graph_batches == "sampled" else None)   # None: exact receptive fields
    train_rows = data.rows["train"]
    perm = distributed.broadcast_tensor(torch.randperm(len(train_rows)))
    order = train_rows[perm.to(train_rows.device)]
    sums: dict[str, float] = {}
    for step, i in enumerate(range(0, len(order), batch)):
        distributed.fault_point(epoch, step)
        rows = distributed.shard(order[i:i + batch])
        opt.zero_grad(set_to_none=True)
        parts: dict[str, float] = {}
        if len(rows):
            if sampler is None:
                view = data.graph_inputs.drop_edges(cfg.edge_dropout)
                out = model(view, data.sequences, rows)
            else:                       # train.graph_batches = "sampled" (training/sampling.py)
                b = sample_batch(data.graph_inputs, data.sequences, rows, sampler)
                out = model(b.graph.drop_edges(cfg.edge_dropout), b.sequences, b.seeds)
            loss, parts = _loss(model, out, data, rows, cfg)
            loss.backward()
        distributed.allreduce_gradients(model, len(rows) / len(order[i:i + batch]))
        if cfg.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        opt.step()
        sched.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v * len(rows) / len(order)
    return distributed.allreduce_sums(sums)


def _validate(model: GeneSpliceModel, data: TrainingData, state: _Progress,
              stalled: dict[str, int], epoch: int) -> dict[str, float]:
    """Score the validation genes (step 4); keep the best level / profile weights. Without
    validation genes every epoch counts as the best so far: the latest weights are kept."""
    val_rows = data.rows["val"]
    if len(val_rows) == 0:
        for key in ("level", "profile"):
            state.best[key], state.best_epoch[key] = math.nan, epoch + 1
            state.best_state[key] = _state(model)
            stalled[key] = 0
        return {"val_level_pearson": math.nan, "val_gene_pearson": math.nan,
                "val_tissue_pearson": math.nan}
    pred = predict_rows(model, data, val_rows)
    scores = validation_scores(pred, data.y[val_rows], data.observed[val_rows])
    for key, metric in (("level", "val_level_pearson"), ("profile", "val_gene_pearson")):
        value = scores[metric]
        if not math.isnan(value) and value > state.best[key]:
            state.best[key], state.best_epoch[key] = value, epoch + 1
            state.best_state[key] = _state(model)
            stalled[key] = 0
        else:
            stalled[key] += 1
    return scores


def _write(path: Path, model: GeneSpliceModel, opt, sched, cfg: TrainConfig,
           config_dict: dict | None, model_args: dict | None, epoch: int, state: _Progress,
           data: TrainingData, finished: bool, ranks_rng: list | None = None,
           more: dict | None = None) -> None:
    """The checkpoint of step 5; ``ranks_rng``: every rank's RNG state under torchrun (rank
    0's is ``rng_state``, the others' go to ``extra["rank_rng_states"]``, so a restarted run
    continues each rank's random stream)."""
    history = state.history
    columns = sorted({k for row in history for k in row})
    rows = [[row.get(c, float("nan")) for c in columns] for row in history]
    save_checkpoint(
        path, model_state=_state(model), optimizer_state=opt.state_dict(),
        scheduler_state=sched.state_dict(),
        config=config_dict if config_dict is not None else {"train": config_to_dict(cfg)},
        step=sched.last_epoch, epoch=epoch, best_metric=state.best["profile"],
        rng_state=capture_rng_state(),
        data_checksums=data.checksums,
        extra={"best_level": state.best["level"], "best_profile": state.best["profile"],
               "best_level_epoch": state.best_epoch["level"],
               "best_profile_epoch": state.best_epoch["profile"],
               "level_state": state.best_state["level"],
               "profile_state": state.best_state["profile"],
               "history_columns": columns, "history_rows": rows, "finished": finished,
               "model_args": copy.deepcopy(model_args or {}),
               "tissues": list(data.tissues), "function_names": list(data.function_names),
               "feature_names": list(data.feature_names),
               **({"rank_rng_states": list(ranks_rng[1:])} if ranks_rng else {}),
               **copy.deepcopy(more or {})})
