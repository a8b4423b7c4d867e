"""Fine-tune a trained model to a new expression table (new tissues / cell types / conditions).

``genesplice finetune --checkpoint CK --expression TABLE --out DIR`` keeps what the base model
learned about genes — the promoter encoder, the GAT over the knowledge graph, the fusion, the
gene-feature and function heads — and replaces everything that is per tissue:

1. **Base predictions.** The base model predicts its own tissues for every graph gene, reading
   its own training genes' labels (its run config names the table it was trained on).
2. **Old → new map.** Over the new table's *training* genes, the new level is regressed on the
   base level (``a · level + b``) and the new centred profile on the base centred profile
   (ridge, ``A [T_old, t_new]``, penalty chosen on the validation genes).
3. **New heads, initialised through the map.** The profile head's last layer, the membership
   linear path (by feature name) and the level head are the base ones composed with the map,
   so before any step the model predicts ``map(base prediction)``; the label read-out's
   per-column queries, similarity powers and gates start from the base tissues' weighted by
   ``|A|``. The read-out reads the **new** table's training-gene values only (validation and
   test labels are never inputs; :func:`~genesplice.training.data.prepare_training_data`).
4. **Training** as in ``train`` (:func:`~genesplice.training.loop.train_model`): early stopping on
   the validation chromosomes, level and profile separately; ``freeze`` keeps parts fixed
   (:data:`FREEZE_GROUPS`). When neither the best-level nor the best-profile epoch beats the
   initialisation on the validation genes, the initialisation is kept for that part.

Outputs (same as ``train``): ``finetuned.pt`` (loads with ``genesplice predict`` /
``GeneSplice.load``), ``predictions.csv`` + ``predictions.splits.csv``, ``report.md`` (fine-tuned
vs ridge vs the mapped base model on the test chromosomes), ``history_finetuned.csv``,
``config.toml`` and ``summary.json``.
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
from genesplice.models.model import FusedModelConfig, GeneSpliceModel
from genesplice.models.sequence_encoder import SequenceEncoderConfig
from genesplice.training.checkpoint import load_checkpoint, save_checkpoint
from genesplice.training.config import (RunConfig, config_from_dict, config_to_dict,
                                        save_config, with_overrides)
from genesplice.training.data import TrainingData
from genesplice.training.experiment import (RIDGE_NAME, build_model, evaluate_models, fit_ridge,
                                            load_graph, model_args, prepare_from_config,
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
}
FREEZE_GROUPS["trunk"] = tuple(p for g in ("sequence", "graph", "fusion")
                               for p in FREEZE_GROUPS[g])
#: the model's per-tissue parameters: replaced (through the old → new map), never copied
PER_TISSUE = ("heads.profile.3.", "membership_linear.", "label_attention.src.",
              "label_attention.query", "label_attention.sim_power", "label_gate.proj.")
MAP_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)
CHECKPOINT_NAME = "finetuned.pt"
MODEL_NAME = "fine-tuned"
MAPPED_NAME = "base model + old→new tissue map (no training)"


@dataclass
class BaseModel:
    """A trained checkpoint and its predictions of its own tissues for every graph gene."""

    path: Path
    config: RunConfig
    args: dict
    state: dict[str, torch.Tensor]        # profile-best weights (the whole model)
    tissues: list[str]
    feature_names: list[str]
    predictions: np.ndarray               # [n_genes, T_old], graph gene order
    gene_ids: list[str]
    graph: KnowledgeGraph


@dataclass(frozen=True)
class TissueMap:
    """``new level ≈ a · base level + b``; ``new profile ≈ centre(base profile) @ A + c``."""

    a: float
    b: float
    A: np.ndarray            # [T_old, t_new]
    c: np.ndarray            # [t_new]
    alpha: float

    def apply(self, base: np.ndarray) -> np.ndarray:
        level = base.mean(1)
        profile = (base - level[:, None]) @ self.A + self.c
        profile = profile - profile.mean(1, keepdims=True)
        return (self.a * level + self.b)[:, None] + profile


@dataclass
class FinetuneResult:
    model: GeneSpliceModel
    args: dict
    train: TrainResult
    level_state: dict[str, torch.Tensor]
    profile_state: dict[str, torch.Tensor]
    predictions: np.ndarray                 # [n_genes, t_new] every graph gene
    mapped: np.ndarray                      # [n_genes, t_new] the initialisation's prediction
    tissue_map: TissueMap
    kept_init: dict[str, bool]              # level / profile: initialisation beat training


def load_base(checkpoint: str | os.PathLike, *, graph: KnowledgeGraph | None = None,
              genes: list[str] | None = None, device: str | None = None,
              data: TrainingData | None = None, progress: bool = True) -> BaseModel:
    """The base checkpoint and its predictions (profile-best weights) for every graph gene,
    from the training data its run config names (checksums checked). ``genes``: the
    labelled-gene subset the base model was trained on, if any (a quick run); ``data``: its
    training data, when already assembled (checked all the same)."""
    path = Path(checkpoint)
    if not path.is_file():
        raise GeneSpliceInputError("checkpoint not found", path=path)
    ck = load_checkpoint(path)
    if "model_args" not in ck.extra:
        raise GeneSpliceInputError("not a model checkpoint written by `genesplice train` "
                                   "(no model_args; an encoder checkpoint?)", path=path)
    cfg = config_from_dict(RunConfig, ck.config, path=path)
    if graph is None:
        graph = load_graph(cfg.data.graph_path or None, progress=progress)
    if data is None:
        data = prepare_from_config(cfg, graph=graph, genes=genes, progress=progress)
    _same_inputs(ck.data_checksums, data.checksums, ("graph", "genes", "expression"), path)
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
    return BaseModel(path, cfg, args, state, list(data.tissues), features, pred,
                     list(data.gene_ids), graph)


def _same_inputs(saved: dict, current: dict, keys, path) -> None:
    diffs = [k for k in keys if k in saved and saved[k] != current.get(k)]
    if diffs:
        raise GeneSpliceInputError(f"inputs differ from those the checkpoint was trained on "
                                   f"({', '.join(diffs)}); pass the base run's files",
                                   path=path)


# ---------------------------------------------------------------- old → new tissue map

def fit_tissue_map(base_pred: np.ndarray, data: TrainingData,
                   alphas=MAP_ALPHAS) -> TissueMap:
    """Regress the new table on the base predictions over the training genes (fully observed
    ones); the ridge penalty of the profile map is chosen on the validation genes."""
    def split(rows):
        r = rows.cpu().numpy()
        y, m = data.y[rows.cpu()].numpy().astype(np.float64), \
            data.observed[rows.cpu()].numpy()
        full = m.all(1)
        x = base_pred[r[full]].astype(np.float64)
        lp = level_profile(y[full], m[full])
        return x.mean(1), x - x.mean(1, keepdims=True), lp.level, lp.profile
    lx, px, ly, py = split(data.rows["train"])
    if len(lx) < 3:
        raise GeneSpliceInputError(f"only {len(lx)} training genes are observed in every "
                                   "tissue of the new table (need at least 3 to initialise "
                                   "the new tissue heads)")
    a, b = np.polyfit(lx, ly, 1) if np.ptp(lx) > 0 else (0.0, float(ly.mean()))
    mx, my = px.mean(0), py.mean(0)
    xc, yc = px - mx, py - my
    gram, cross = xc.T @ xc, xc.T @ yc
    val = split(data.rows["val"])
    best = None
    for alpha in alphas:
        A = np.linalg.solve(gram + alpha * len(xc) * np.eye(len(gram)), cross)
        tm = TissueMap(float(a), float(b), A, my - mx @ A, float(alpha))
        if len(val[0]) == 0:
            best = best or (0.0, tm)
            continue
        err = float(np.mean(((val[1] @ A + tm.c) - val[3]) ** 2))
        if best is None or err < best[0]:
            best = (err, tm)
    return best[1]


@torch.no_grad()
def init_from_base(model: GeneSpliceModel, base: BaseModel, tmap: TissueMap,
                   feature_names: list[str]) -> list[str]:
    """Load the base weights into ``model`` (shape-matching, per-tissue parts through the
    map, see the module docstring). Returns the names of the parameters left at their fresh
    initialisation."""
    old = base.state
    new = model.state_dict()
    fresh = []
    for key, value in new.items():
        if key.startswith(PER_TISSUE):
            continue
        if key in old and old[key].shape == value.shape:
            value.copy_(old[key])
        else:
            fresh.append(key)
    A = torch.as_tensor(tmap.A, dtype=torch.float32)                        # [T, t]
    T = A.shape[0]
    centre = torch.eye(T) - 1.0 / T                                          # [T, T]
    a, b, c = tmap.a, tmap.b, torch.as_tensor(tmap.c, dtype=torch.float32)
    # the neural heads: level · a + b, profile through the centred map
    new["heads.level.3.weight"].copy_(old["heads.level.3.weight"] * a)
    new["heads.level.3.bias"].copy_(old["heads.level.3.bias"] * a + b)
    new["heads.profile.3.weight"].copy_(A.T @ centre @ old["heads.profile.3.weight"])
    new["heads.profile.3.bias"].copy_(A.T @ centre @ old["heads.profile.3.bias"] + c)
    if "membership_linear.weight" in new and "membership_linear.weight" in old:
        w_old, b_old = old["membership_linear.weight"], old["membership_linear.bias"]
        index = {f: i for i, f in enumerate(base.feature_names)}
        w = new["membership_linear.weight"]
        w.zero_()
        rows_new = [j for j, f in enumerate(feature_names) if f in index]
        rows_old = [index[feature_names[j]] for j in rows_new]
        mapped = torch.cat([w_old[:, :1] * a, w_old[:, 1:] @ centre @ A], dim=1)
        w[rows_new] = mapped[rows_old]
        new["membership_linear.bias"].copy_(torch.cat([b_old[:1] * a,
                                                       b_old[1:] @ centre @ A]))
    if "label_gate.proj.weight" in new and "label_gate.proj.weight" in old:
        weights = A.abs() / A.abs().sum(0, keepdim=True).clamp(min=1e-12)       # [T, t]
        cols = torch.block_diag(torch.ones(1, 1), weights)                     # [1+T, 1+t]
        new["label_gate.proj.weight"].copy_(cols.T @ old["label_gate.proj.weight"])
        new["label_gate.proj.bias"].copy_(cols.T @ old["label_gate.proj.bias"])
        new["label_attention.query"].copy_(cols.T @ old["label_attention.query"])
        new["label_attention.sim_power"].copy_(cols.T @ old["label_attention.sim_power"])
        src_old, src = old["label_attention.src.weight"], new["label_attention.src.weight"]
        d = src_old.shape[1] - (T + 1) - 1
        src.copy_(torch.cat([src_old[:, :d], src_old[:, d:d + T + 1] @ cols,
                             src_old[:, -1:]], dim=1))
    model.load_state_dict(new)
    return fresh


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

def _check_compatible(base: BaseModel, args: dict, data: TrainingData) -> None:
    if base.gene_ids != list(data.gene_ids):
        raise GeneSpliceInputError("the new table's data use another graph than the base "
                                   "model (gene lists differ); pass the base run's graph",
                                   path=base.path)
    for key in ("num_nodes", "edge_types", "edge_dims", "n_function_labels", "label_edge_dim",
                "n_gene_features", "window_dim"):
        if base.args.get(key) != args.get(key):
            raise GeneSpliceInputError(f"the base model's {key} differs from what the new "
                                       "data need (another graph, sequence view or model "
                                       "settings?)", path=base.path)


def finetune_model(base: BaseModel, data: TrainingData, cfg: RunConfig, *,
                   out_dir: str | os.PathLike, freeze_parts=(), progress: bool = True
                   ) -> FinetuneResult:
    """Fine-tune ``base`` to ``data`` (the new table, assembled on the base model's graph)
    with ``cfg.train``; the checkpoint goes to ``out_dir/finetuned.pt``."""
    if len(data.rows["train"]) == 0:
        raise GeneSpliceInputError("the new table has no training genes (every labelled gene "
                                   "is on a validation / test chromosome)")
    torch.manual_seed(cfg.train.seed)
    args = model_args(data, _model_config(base.args), _seq_config(base.args))
    _check_compatible(base, args, data)
    model = build_model(args)
    tmap = fit_tissue_map(base.predictions, data)
    fresh = init_from_base(model, base, tmap, list(data.feature_names))
    if fresh:
        log.info("left at their fresh initialisation: %s", fresh)
    n_frozen = freeze(model, freeze_parts)
    log.info("frozen: %d values (%s)", n_frozen, ", ".join(freeze_parts) or "none")
    device = resolve_device(cfg.train.device)
    mapped = tmap.apply(base.predictions).astype(np.float32)
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    init_scores = _val_scores(model, data, init_state, device)
    n_train = len(data.rows["train"])
    train_cfg = replace(cfg.train, batch_size=max(1, min(cfg.train.batch_size or n_train,
                                                         math.ceil(n_train / 10))))
    if model.proj_seq is None:
        train_cfg = replace(train_cfg, contrastive_weight=0.0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / CHECKPOINT_NAME
    result = train_model(model, data, train_cfg, checkpoint_path=ckpt,
                         config_dict=config_to_dict(cfg), model_args=args, progress=progress,
                         desc="finetune", device=device)
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
                          kept)


def _model_config(args: dict) -> FusedModelConfig:
    return FusedModelConfig.from_dict(args["model"])


def _seq_config(args: dict) -> SequenceEncoderConfig | None:
    seq = args.get("sequence_encoder")
    return None if seq is None else SequenceEncoderConfig.from_dict(seq)


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
    which ``predict --labelled-genes`` needs). ``base_genes``: the labelled-gene subset the
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
             f"profile ridge alpha {res.tissue_map.alpha:g} (validation genes).",
             f"Frozen: {', '.join(freeze_parts) or 'nothing'}. Initialisation kept (beat "
             f"every trained epoch on the validation genes): {res.kept_init}."]
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


__all__ = ["BaseModel", "FREEZE_GROUPS", "FinetuneResult", "TissueMap", "finetune_config",
           "finetune_model", "fit_tissue_map", "freeze", "init_from_base", "load_base",
           "pick_genes", "run_finetune"]
