"""Fine-tune a trained model to a new expression table (new tissues / cell types / conditions).

``genesplice finetune --checkpoint CK --expression TABLE --out DIR`` keeps the whole base model —
promoter encoder, GAT over the knowledge graph, fusion, its tissue heads, membership linear path
and label read-out, reading exactly the inputs it was trained with — and puts a learned linear
map from its tissues to the new ones on top (:class:`~genesplice.models.fusion.TissueMap`):

1. **Base predictions.** The base model predicts its own tissues for every graph gene from its
   run's inputs (its run config names the table it was trained on; checksums checked).
2. **Old → new map.** Over the new table's *training* genes, the new level is regressed on the
   base level (``a · level + b``) and the new centred profile on the base centred profile
   (ridge, ``A [T_old, t_new]``, penalty chosen by cross-validation over the training
   genes).
3. **Start = the mapped base model, exactly.** The fine-tuned model is the base model's
   weights plus the map, so before any step it predicts ``map(base prediction)`` (tested).
   Its inputs are the base run's (:func:`~genesplice.training.data.with_targets`): the label
   read-out reads the base table's training genes, never a value of the new table — the new
   table's values are targets only (training genes), early-stopping scores (validation
   genes) or nothing (test genes).
4. **Training** as in ``train`` (:func:`~genesplice.training.loop.train_model`), every part
   learning by default (``freeze`` keeps parts fixed, :data:`FREEZE_GROUPS`), early stopping
   on the validation chromosomes, level and profile separately. When neither the best-level
   nor the best-profile epoch beats the start on the validation genes, the start is kept for
   that part.

Outputs (same as ``train``): ``finetuned.pt`` (loads with ``genesplice predict`` /
``GeneSplice.load``; it names the base run's config, so the base inputs are rebuilt — the base
checkpoint itself is not needed), ``predictions.csv`` + ``predictions.splits.csv``,
``report.md`` (fine-tuned vs ridge vs the mapped base model on the test chromosomes),
``history_finetuned.csv``, ``config.toml`` and ``summary.json``.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from genesplice.graph.hetero import KnowledgeGraph
from genesplice.io.constants import unit_label
from genesplice.io.errors import GeneSpliceInputError
from genesplice.models.device import resolve_device
from genesplice.models.model import GeneSpliceModel
from genesplice.training.checkpoint import (compare_checksums, load_checkpoint,
                                           save_checkpoint)
from genesplice.training.config import (RunConfig, config_from_dict, config_to_dict,
                                        save_config, with_overrides)
from genesplice.training.data import TrainingData, with_targets
from genesplice.training.experiment import (RIDGE_NAME, build_model, evaluate_models, fit_ridge,
                                            load_graph, prepare_for_run, prepare_from_config,
                                            ridge_predict, save_json, write_predictions)
from genesplice.training.loop import TrainResult, predict_rows, train_model, validation_scores
from genesplice.training.report import write_evaluation_report
from genesplice.training.targets import level_profile

log = logging.getLogger(__name__)

#: parts of the model ``freeze`` can keep fixed (parameter-name prefixes)
FREEZE_GROUPS: dict[str, tuple[str, ...]] = {
    "sequence": ("sequence_encoder.", "seq_proj.", "no_sequence", "window_proj.", "no_window"),
    "graph": ("graph_encoder.", "node_embeddings.", "gene_feature_proj.", "gene_input"),
    "fusion": ("fusion.",),
    "heads": ("heads.", "membership_linear.", "label_attention.", "label_gate."),
}
FREEZE_GROUPS["trunk"] = tuple(p for g in ("sequence", "graph", "fusion")
                               for p in FREEZE_GROUPS[g])
MAP_ALPHAS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
MAP_FOLDS = 5
CHECKPOINT_NAME = "finetuned.pt"
MODEL_NAME = "fine-tuned"
MAPPED_NAME = "base model + old→new tissue map (no training)"


@dataclass
class BaseModel:
    """A trained checkpoint, the inputs it was trained with and its predictions of its own
    tissues for every graph gene."""

    path: Path
    config: RunConfig
    args: dict
    state: dict[str, torch.Tensor]        # profile-best weights (the whole model)
    predictions: np.ndarray               # [n_genes, T_old], graph gene order
    graph: KnowledgeGraph
    data: TrainingData                    # the base run's data (its inputs are the model's)
    genes: list[str] | None = None        # its labelled-gene subset, if any (a quick run)

    @property
    def tissues(self) -> list[str]:
        return list(self.data.tissues)

    @property
    def gene_ids(self) -> list[str]:
        return list(self.data.gene_ids)

    @property
    def inputs(self) -> dict:
        """What a fine-tuned checkpoint stores to rebuild these inputs
        (:func:`~genesplice.training.experiment.prepare_for_run`)."""
        return {"config": config_to_dict(self.config), "genes": self.genes}


@dataclass(frozen=True)
class TissueMapFit:
    """The fitted old → new map: ``new level ≈ a · base level + b``; ``new profile ≈
    centre(base profile) @ A + c`` (loaded into the model's
    :class:`~genesplice.models.fusion.TissueMap`, which applies it)."""

    a: float
    b: float
    A: np.ndarray            # [T_old, t_new]
    c: np.ndarray            # [t_new]
    alpha: float


@dataclass
class FinetuneResult:
    model: GeneSpliceModel
    args: dict
    train: TrainResult
    level_state: dict[str, torch.Tensor]
    profile_state: dict[str, torch.Tensor]
    predictions: np.ndarray                 # [n_genes, t_new] every graph gene
    mapped: np.ndarray                      # [n_genes, t_new] the start's prediction
    tissue_map: TissueMapFit
    kept_init: dict[str, bool]              # level / profile: the start beat training
    data: TrainingData                      # base inputs + the new table (what it trained on)


def load_base(checkpoint: str | os.PathLike, *, graph: KnowledgeGraph | None = None,
              genes: list[str] | None = None, device: str | None = None,
              data: TrainingData | None = None, progress: bool = True) -> BaseModel:
    """The base checkpoint, its run's data and its predictions (profile-best weights) for
    every graph gene, from the inputs its run config names (checksums checked). ``genes``:
    the labelled-gene subset the base model was trained on, if any (a quick run); ``data``:
    its training data, when already assembled (checked all the same)."""
    path = Path(checkpoint)
    if not path.is_file():
        raise GeneSpliceInputError("checkpoint not found", path=path)
    ck = load_checkpoint(path)
    if "model_args" not in ck.extra:
        raise GeneSpliceInputError("not a model checkpoint written by `genesplice train` "
                                   "(no model_args; an encoder checkpoint?)", path=path)
    if ck.extra["model_args"].get("n_output_tissues"):
        raise GeneSpliceInputError("this checkpoint is itself fine-tuned: fine-tune from its "
                                   f"base model ({ck.extra.get('base_checkpoint', '?')}) "
                                   "with the tables combined, or train a model on them",
                                   path=path)
    cfg = config_from_dict(RunConfig, ck.config, path=path)
    if graph is None:
        graph = load_graph(cfg.data.graph_path or None, progress=progress)
    if data is None:
        data = prepare_for_run(cfg, graph=graph, genes=genes, progress=progress)
    saved = {k: v for k, v in ck.data_checksums.items() if k in ("graph", "genes", "expression")}
    compare_checksums(saved, {k: data.checksums.get(k) for k in saved}, path=path)
    features = list(ck.extra.get("feature_names", data.feature_names))
    if features != list(data.feature_names):
        raise GeneSpliceInputError("the base model was trained on a labelled-gene subset (its "
                                   "membership features differ from its table's): pass that "
                                   "subset (genes=), or a model trained on its whole table",
                                   path=path)
    args = ck.extra["model_args"]
    state = ck.extra["profile_state"]
    model = build_model(args)
    model.load_state_dict(state)
    pred = predict_rows(model, data, torch.arange(data.n_genes), level_state=state,
                        profile_state=state,
                        device=resolve_device(device or cfg.train.device)).numpy()
    return BaseModel(path, cfg, args, state, pred, graph, data,
                     None if genes is None else [str(g) for g in genes])


# ---------------------------------------------------------------- old → new tissue map

def fit_tissue_map(base_pred: np.ndarray, data: TrainingData, alphas=MAP_ALPHAS,
                   folds: int = MAP_FOLDS, seed: int = 0) -> TissueMapFit:
    """Regress the new table on the base predictions over the training genes (fully observed
    ones). The ridge penalty of the profile map is chosen by ``folds``-fold cross-validation
    over those genes (seeded folds): a few hundred genes choose it far more stably than the
    few validation genes, which stay for early stopping."""
    rows = data.rows["train"].cpu()
    y, m = data.y[rows].numpy().astype(np.float64), data.observed[rows].numpy()
    full = m.all(1)
    x = base_pred[rows.numpy()[full]].astype(np.float64)
    if len(x) < 3:
        raise GeneSpliceInputError(f"only {len(x)} training genes are observed in every "
                                   "tissue of the new table (need at least 3 to initialise "
                                   "the new tissue heads)")
    lp = level_profile(y[full], m[full])
    lx, px = x.mean(1), x - x.mean(1, keepdims=True)
    a, b = np.polyfit(lx, lp.level, 1) if np.ptp(lx) > 0 else (0.0, float(lp.level.mean()))
    k = min(folds, len(px))
    fold = np.empty(len(px), dtype=int)
    fold[np.random.default_rng(seed).permutation(len(px))] = np.arange(len(px)) % k
    errors = []
    for alpha in alphas:
        err = 0.0
        for f in range(k):
            A, c = _ridge(px[fold != f], lp.profile[fold != f], alpha)
            err += float(((px[fold == f] @ A + c - lp.profile[fold == f]) ** 2).sum())
        errors.append(err)
    alpha = float(alphas[int(np.argmin(errors))])
    A, c = _ridge(px, lp.profile, alpha)
    return TissueMapFit(float(a), float(b), A, c, alpha)


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``y ≈ x @ A + c`` with penalty ``alpha · n · |A|²`` (intercept unpenalised)."""
    mx, my = x.mean(0), y.mean(0)
    xc = x - mx
    A = np.linalg.solve(xc.T @ xc + alpha * len(x) * np.eye(x.shape[1]), xc.T @ (y - my))
    return A, my - mx @ A


def finetuned_args(base: BaseModel, n_new_tissues: int) -> dict:
    """The fine-tuned model's :func:`~genesplice.training.experiment.model_args`: the base
    model's, plus the map to ``n_new_tissues``."""
    return dict(base.args, n_output_tissues=int(n_new_tissues))


@torch.no_grad()
def init_from_base(model: GeneSpliceModel, base: BaseModel, tmap: TissueMapFit) -> None:
    """Load every base weight into ``model`` and the fitted map into its ``tissue_map``: the
    model then predicts the base prediction through the map (:func:`mapped_base`)."""
    missing, unexpected = model.load_state_dict(base.state, strict=False)
    left = [k for k in missing if not k.startswith("tissue_map.")]
    if left or unexpected:
        raise ValueError(f"the model does not match the base weights: missing {left}, "
                         f"unexpected {unexpected}")
    model.tissue_map.set_(tmap.a, tmap.b, torch.as_tensor(tmap.A), torch.as_tensor(tmap.c))


@torch.no_grad()
def mapped_base(model: GeneSpliceModel, base: BaseModel) -> np.ndarray:
    """``[n_genes, t_new]``: the base model's predictions through ``model``'s tissue map."""
    pred = torch.as_tensor(base.predictions)
    level = pred.mean(1)
    new_level, profile = model.tissue_map(level, pred - level[:, None])   # a CPU model
    return (new_level[:, None] + profile).numpy()


def freeze(model: GeneSpliceModel, groups) -> int:
    """Stop gradients into the parts named in ``groups`` (:data:`FREEZE_GROUPS`); returns the
    number of frozen parameters (values)."""
    unknown = [g for g in groups if g not in FREEZE_GROUPS]
    if unknown:
        raise GeneSpliceInputError(f"unknown --freeze part(s) {unknown} (expected any of "
                                   f"{list(FREEZE_GROUPS)})")
    prefixes = tuple(p for g in groups for p in FREEZE_GROUPS[g])
    n = 0
    for name, p in model.named_parameters():
        if prefixes and name.startswith(prefixes):
            p.requires_grad_(False)
            n += p.numel()
    return n


# ----------------------------------------------------------------------------- training

def finetune_model(base: BaseModel, data: TrainingData, cfg: RunConfig, *,
                   out_dir: str | os.PathLike, freeze_parts=(), progress: bool = True
                   ) -> FinetuneResult:
    """Fine-tune ``base`` to ``data`` (the new table, assembled on the base model's graph;
    only its tissues, values and split are used) with ``cfg.train``; the checkpoint goes to
    ``out_dir/finetuned.pt``."""
    if base.gene_ids != list(data.gene_ids):
        raise GeneSpliceInputError("the new table's data use another graph than the base "
                                   "model (gene lists differ); pass the base run's graph",
                                   path=base.path)
    if len(data.rows["train"]) == 0:
        raise GeneSpliceInputError("the new table has no training genes (every labelled gene "
                                   "is on a validation / test chromosome)")
    data = with_targets(base.data, data)
    if data.report.get("input_labels_held_out"):
        log.warning("%d validation / test genes of the new table are labelled in the base "
                    "run (its chromosome split differs): their base-table values are "
                    "read-out inputs, so held-out metrics are optimistic",
                    data.report["input_labels_held_out"])
    torch.manual_seed(cfg.train.seed)
    args = finetuned_args(base, data.n_tissues)
    model = build_model(args)
    tmap = fit_tissue_map(base.predictions, data)
    init_from_base(model, base, tmap)
    n_frozen = freeze(model, freeze_parts)
    log.info("frozen: %d values (%s)", n_frozen, ", ".join(freeze_parts) or "none")
    device = resolve_device(cfg.train.device)
    mapped = mapped_base(model, base)
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    init_scores = _val_scores(model, data, init_state, device)
    train_cfg = replace(cfg.train, batch_size=small_table_batch(cfg.train.batch_size,
                                                               len(data.rows["train"])))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / CHECKPOINT_NAME
    result = train_model(model, data, train_cfg, checkpoint_path=ckpt,
                         config_dict=config_to_dict(cfg), model_args=args, progress=progress,
                         desc="finetune", device=device,
                         extra={"inputs": base.inputs, "base_checkpoint": str(base.path),
                                "base_tissues": list(base.tissues)})
    level_state, profile_state = result.level_state, result.profile_state
    kept = {"level": _beaten(init_scores["val_level_pearson"], result.best_level),
            "profile": _beaten(init_scores["val_gene_pearson"], result.best_profile)}
    if kept["level"]:
        level_state = init_state
    if kept["profile"]:
        profile_state = init_state
    if any(kept.values()):
        _store_states(ckpt, level_state, profile_state, kept)
    pred = predict_rows(model, data, torch.arange(data.n_genes), level_state=level_state,
                        profile_state=profile_state, device=device).numpy()
    return FinetuneResult(model, args, result, level_state, profile_state, pred, mapped, tmap,
                          kept, data)


def small_table_batch(batch_size: int, n_train: int) -> int:
    """The batch size for ``n_train`` training genes: ``batch_size`` (0: all), but at most a
    tenth of them, so that a small table still gets ~10 steps per epoch."""
    return max(1, min(batch_size or n_train, math.ceil(n_train / 10)))


def _val_scores(model: GeneSpliceModel, data: TrainingData, state: dict,
                device) -> dict[str, float]:
    """Validation scores of ``model`` holding ``state`` (the initialisation, before any
    step), as training scores its epochs."""
    rows = data.rows["val"]
    if len(rows) == 0:
        return {"val_level_pearson": math.nan, "val_gene_pearson": math.nan}
    pred = predict_rows(model, data, rows, level_state=state, profile_state=state,
                        device=device)
    return validation_scores(pred, data.y[rows.cpu()], data.observed[rows.cpu()])


def _beaten(init: float, trained: float) -> bool:
    """Whether the initialisation's validation score beats the best trained epoch's."""
    return not math.isnan(init) and (math.isnan(trained) or init > trained)


def _store_states(path: Path, level_state: dict, profile_state: dict, kept: dict) -> None:
    """Rewrite the checkpoint's best states (the initialisation kept for a part)."""
    ck = load_checkpoint(path)
    extra = dict(ck.extra, level_state=level_state, profile_state=profile_state,
                 kept_initialisation=kept)
    save_checkpoint(path, model_state=ck.model_state, optimizer_state=ck.optimizer_state,
                    scheduler_state=ck.scheduler_state, config=ck.config, step=ck.step,
                    epoch=ck.epoch, best_metric=ck.best_metric, rng_state=ck.rng_state,
                    data_checksums=ck.data_checksums, extra=extra)


# ------------------------------------------------------------------------ the command

def pick_genes(data: TrainingData, n: int, *, seed: int = 0) -> list[str]:
    """``n`` labelled genes off the test chromosomes (seeded sample of the training +
    validation genes) plus every test-chromosome gene (evaluation only)."""
    pool = torch.cat([data.rows["train"], data.rows["val"]]).numpy()
    if n <= 0 or n >= len(pool):
        chosen = pool
    else:
        chosen = np.random.default_rng(seed).choice(pool, n, replace=False)
    rows = np.concatenate([np.sort(chosen), data.rows["test"].numpy()])
    return [data.gene_ids[i] for i in rows]


def finetune_config(base: BaseModel, expression: str | os.PathLike, out_dir,
                    overrides=()) -> RunConfig:
    """The base run's config with the new table and ``overrides`` (``KEY=VALUE``)."""
    cfg = replace(base.config, name="finetune", out_dir=str(out_dir),
                  data=replace(base.config.data,
                               expression_path=str(Path(expression).resolve())))
    return with_overrides(cfg, list(overrides))


def run_finetune(checkpoint: str | os.PathLike, expression: str | os.PathLike,
                 out_dir: str | os.PathLike, *, freeze_parts=(), genes: int = 0,
                 base_genes: list[str] | None = None, overrides=(),
                 device: str | None = None, progress: bool = True,
                 command: str | None = None) -> dict:
    """``genesplice finetune``: base model → new table → fine-tuned model, predictions for
    every graph gene and a report (see the module docstring). ``genes``: fine-tune on this
    many labelled genes only (:func:`pick_genes`; the list goes to ``labelled_genes.txt``,
    for the record: the fine-tuned model's inputs are its base run's, so loading it needs no
    gene list). ``base_genes``: the labelled-gene subset the
    base model was trained on, if any (a quick run, e.g. notebook 2). Returns the summary."""
    table = Path(expression)
    if not table.is_file():
        raise GeneSpliceInputError("expression table not found", path=table)
    freeze(torch.nn.Linear(1, 1), freeze_parts)            # names checked before any work
    out = Path(out_dir)
    base = load_base(checkpoint, genes=base_genes, device=device, progress=progress)
    graph = base.graph
    cfg = finetune_config(base, table, out, overrides)
    if device is not None:
        cfg = with_overrides(cfg, [f"train.device={device}"])
    data = prepare_from_config(cfg, graph=graph, progress=progress)
    subset = None
    if genes:
        subset = pick_genes(data, genes, seed=cfg.train.seed)
        data = prepare_from_config(cfg, graph=graph, genes=subset, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.toml")
    if subset is not None:
        (out / "labelled_genes.txt").write_text("\n".join(subset) + "\n")
    print(f"base: {checkpoint} ({len(base.tissues)} tissues); new table: {table} "
          f"({data.n_tissues} tissues); {len(data.rows['train']):,} train / "
          f"{len(data.rows['val']):,} val / {len(data.rows['test']):,} test genes")
    ridge = fit_ridge(data, cfg)
    res = finetune_model(base, data, cfg, out_dir=out, freeze_parts=freeze_parts,
                         progress=progress)
    res.train.history.to_csv(out / "history_finetuned.csv", index=False)
    unit = unit_label(cfg.data.unit)
    write_predictions(out / "predictions.csv", data, res.predictions, unit,
                      meta={"model": "fine-tuned", "base_checkpoint": str(checkpoint),
                            "base_tissues": list(base.tissues)})
    predictions = {MODEL_NAME: res.predictions, MAPPED_NAME: res.mapped,
                   RIDGE_NAME: ridge_predict(ridge, data, torch.arange(data.n_genes))}
    split = "test" if len(data.rows["test"]) else "val"
    obs, preds, results = evaluate_models(data, predictions, split=split)
    notes = [f"Base model {checkpoint}: {len(base.tissues)} tissues; new table {table}: "
             f"{data.n_tissues} columns. Split: {split} genes "
             f"({', '.join(getattr(cfg.train, split + '_chromosomes'))}), "
             f"{len(data.rows['train'])} training genes.",
             f"Old → new map: level a = {res.tissue_map.a:.3f}, b = {res.tissue_map.b:.3f}; "
             f"profile ridge alpha {res.tissue_map.alpha:g} ({MAP_FOLDS}-fold "
             f"cross-validation over the training genes).",
             f"Frozen: {', '.join(freeze_parts) or 'nothing'}. Start (the mapped base model) "
             f"kept, because it beat every trained epoch on the validation genes: "
             f"{res.kept_init}.",
             f"Inputs: the base run's (its label read-out reads the base table's training "
             f"genes; {res.data.report.get('input_labels_held_out', 0)} of them are "
             f"validation / test genes here)."]
    if split == "val":
        notes.append("The new table has no genes on the test chromosomes: these are "
                     "validation metrics (early stopping used these genes), not a test.")
    paths = write_evaluation_report(out, results, observed=obs, predictions=preds,
                                    title="GeneSplice: fine-tuned to a new table",
                                    command=command, notes=notes, unit=unit)
    summary = {"unit": unit, "split": split, "base_checkpoint": str(checkpoint),
               "expression": str(table), "tissues": list(data.tissues),
               "checkpoint": str(out / CHECKPOINT_NAME),
               "kept_initialisation": res.kept_init, "freeze": list(freeze_parts),
               "metrics": {n: r.summary for n, r in results.items()},
               "data": data.report, "report": str(paths.markdown)}
    save_json(out / "summary.json", summary)
    return summary


__all__ = ["BaseModel", "FREEZE_GROUPS", "FinetuneResult", "TissueMapFit", "finetune_config",
           "finetune_model", "finetuned_args", "fit_tissue_map", "freeze", "init_from_base",
           "load_base", "mapped_base", "pick_genes", "run_finetune", "small_table_batch"]
