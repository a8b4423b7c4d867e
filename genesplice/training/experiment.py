"""One experiment end to end: data → ridge baseline → (pretraining) → fused model + ablations
→ evaluation → report.

Used by ``genesplice train`` / ``evaluate`` / ``demo`` and by the notebook API. Everything comes
from the :class:`~genesplice.training.config.RunConfig`: input paths (``[data]``, "" = the
bundled default), the architecture (``[model]``), optimisation and device (``[train]``),
pretraining (``[pretrain]``) and the baseline (``[ridge]``).
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from genesplice.annotations.expression import read_expression_table
from genesplice.annotations.gene_structure import read_gene_structure
from genesplice.annotations.ids import default_resolver
from genesplice.graph.build import build_graph
from genesplice.graph.features import MembershipFeatures
from genesplice.graph.hetero import KnowledgeGraph
from genesplice.io.atomic import atomic_write, atomic_write_text
from genesplice.io.constants import EPDNEW_PROMOTERS, unit_label
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.models.device import resolve_device
from genesplice.models.model import FusedModelConfig, GeneSpliceModel
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig
from genesplice.sequence.promoters import read_promoter_fasta
from genesplice.training.checkpoint import load_checkpoint
from genesplice.training import distributed
from genesplice.training.config import (
    RunConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from genesplice.training.data import TrainingData, prepare_training_data, with_targets
from genesplice.training.embed import WindowSpec, embed_files, summary_lines
from genesplice.training.loop import TrainResult, predict_rows, train_model
from genesplice.training.metrics import evaluate_predictions
from genesplice.training.pretrain import (
    load_pretrained_encoder,
    pretrain_encoder,
    promoter_pretraining_sequences,
)
from genesplice.training.report import write_evaluation_report
from genesplice.training.ridge import RidgeBaseline, fit_ridge_baseline
from genesplice.training.splits import gene_chromosomes

log = logging.getLogger(__name__)

#: the built graph ``load_graph`` uses when no folder is given
DEFAULT_GRAPH_DIR = "graphs/built/human_default"
#: the name of the ridge baseline in reports and summaries
RIDGE_NAME = "ridge (GO+Reactome+TF membership)"

#: The neural models a run can train (``--variants``): name → (variant, overrides of its
#: :class:`FusedModelConfig`). Together with ridge they say what each part adds.
ABLATIONS: dict[str, tuple[str, dict]] = {
    "fused": ("fused", {}),                           # promoter + GAT + labels + linear path
    "graph_only": ("graph_only", {}),                 # no sequence
    "gat_only": ("graph_only", {"use_membership": False}),          # no linear path
    "graph_only_no_labels": ("graph_only", {"label_attention": False}),
    "linear_only": ("graph_only", {"use_gat": False, "label_attention": False,
                                   "use_gene_features": False}),    # the linear path alone
    "sequence_only": ("sequence_only", {}),           # no graph, no labels, no linear path
    # with a window view (data.sequence_view = "both"): which DNA the model reads
    "promoter_graph": ("fused", {"use_window": False}),              # promoter + graph
    "window_graph": ("fused", {"use_promoter": False}),              # window + graph
    "window_only": ("sequence_only", {"use_promoter": False}),       # the window alone
}
#: what ``genesplice demo`` trains (each with ``train.seeds`` seeds)
DEMO_VARIANTS = ("fused", "graph_only", "gat_only", "graph_only_no_labels", "linear_only",
                 "sequence_only")


def model_args(data: TrainingData, model_cfg: FusedModelConfig,
               seq_cfg: SequenceEncoderConfig | None) -> dict:
    """Everything needed to rebuild the model, as plain data (stored in checkpoints)."""
    gi = data.graph_inputs
    return {"model": model_cfg.to_dict(),
            "sequence_encoder": None if seq_cfg is None else seq_cfg.to_dict(),
            "n_tissues": data.n_tissues, "n_function_labels": len(data.function_names),
            "num_nodes": dict(gi.num_nodes),
            "edge_types": [list(et) for et in gi.edge_index_dict],
            "edge_dims": [[list(et), d] for et, d in data.edge_dims.items()],
            "n_membership_features": int(data.membership.shape[1]),
            "label_edge_dim": (1 if gi.label_edge_attr is None
                               else int(gi.label_edge_attr.shape[1])),
            "n_gene_features": (0 if gi.gene_features is None
                                else int(gi.gene_features.shape[1])),
            "window_dim": 0 if gi.window_features is None else int(gi.window_features.shape[1])}


def build_model(args: dict) -> GeneSpliceModel:
    """Rebuild a :class:`GeneSpliceModel` from :func:`model_args` output (on the CPU)."""
    cfg = FusedModelConfig.from_dict(args["model"])
    seq = args.get("sequence_encoder")
    encoder, dim = None, None
    if seq is not None and cfg.uses_sequence:
        seq_cfg = SequenceEncoderConfig.from_dict(seq)
        encoder, dim = SequenceEncoder(seq_cfg), seq_cfg.out_dim
    return GeneSpliceModel(
        cfg, n_tissues=args["n_tissues"], n_function_labels=args["n_function_labels"],
        num_nodes=args["num_nodes"], edge_types=[tuple(e) for e in args["edge_types"]],
        edge_dims={tuple(e): d for e, d in args["edge_dims"]},
        n_membership_features=args["n_membership_features"], sequence_encoder=encoder,
        sequence_dim=dim, label_edge_dim=args.get("label_edge_dim", 1),
        n_gene_features=args.get("n_gene_features", 0), window_dim=args.get("window_dim", 0),
        n_output_tissues=args.get("n_output_tissues", 0))


def _membership(data: TrainingData) -> MembershipFeatures:
    return MembershipFeatures(matrix=data.membership_csr, gene_ids=tuple(data.gene_ids),
                              feature_ids=tuple(data.feature_names))


def fit_ridge(data: TrainingData, cfg: RunConfig) -> RidgeBaseline:
    """The ridge baseline on exactly the model's membership features (already filtered by
    ``ridge.min_genes_per_feature`` when the data were assembled)."""
    labelled = torch.cat([data.rows["train"], data.rows["val"]])
    expr = data.observed_frame(labelled)
    return fit_ridge_baseline(_membership(data), expr,
                              train_genes=[data.gene_ids[i] for i in data.rows["train"]],
                              val_genes=[data.gene_ids[i] for i in data.rows["val"]],
                              alphas=cfg.ridge.alphas, min_genes_per_feature=1)


def ridge_predict(ridge: RidgeBaseline, data: TrainingData, rows: torch.Tensor) -> np.ndarray:
    """Ridge predictions ``[len(rows), t]``."""
    return ridge.predict(_membership(data), [data.gene_ids[i] for i in rows]).to_numpy()


def warm_start_from_ridge(model: GeneSpliceModel, ridge: RidgeBaseline,
                          data: TrainingData) -> None:
    """Linear path ← ridge solution (features aligned by id); neural heads start at zero."""
    if model.membership_linear is None:
        return
    index = {f: i for i, f in enumerate(data.feature_names)}
    coef = torch.zeros_like(model.membership_linear.weight)
    rows = torch.tensor([index[f] for f in ridge.feature_ids])
    coef[rows] = torch.as_tensor(ridge.coef, dtype=coef.dtype)
    model.membership_linear.warm_start_(coef, torch.as_tensor(ridge.intercept, dtype=coef.dtype))
    model.heads.zero_output_()


@dataclass
class VariantResult:
    variant: str
    train: TrainResult
    model: GeneSpliceModel
    args: dict
    predictions: np.ndarray          # [n_genes, t] for every graph gene (level/profile-best)


def train_variant(variant: str, data: TrainingData, cfg: RunConfig, *, ridge: RidgeBaseline,
                  out_dir: Path, model_cfg: FusedModelConfig | None = None,
                  seq_cfg: SequenceEncoderConfig | None = None,
                  encoder_state: dict | None = None, resume: bool = False,
                  progress: bool = True, stop_after_epoch: int | None = None,
                  tag: str | None = None) -> VariantResult:
    """Train one model variant (architecture from ``cfg.model`` unless ``model_cfg`` /
    ``seq_cfg`` are given) on ``cfg.train.device``; its checkpoint goes to
    ``out_dir/<tag or variant>.pt``."""
    torch.manual_seed(cfg.train.seed)
    if variant not in ABLATIONS:
        raise GeneSpliceInputError(f"unknown model {variant!r} (expected one of "
                                   f"{list(ABLATIONS)})")
    variant, overrides = ABLATIONS[variant]
    model_cfg = model_cfg or cfg.model.fused(variant, **overrides)
    seq_cfg = seq_cfg or cfg.model.sequence_encoder()
    args = model_args(data, model_cfg, seq_cfg)
    model = build_model(args)
    if encoder_state is not None and model.sequence_encoder is not None:
        model.sequence_encoder.load_state_dict(encoder_state)
    warm_start_from_ridge(model, ridge, data)
    tag = tag or variant
    train_cfg = cfg.train
    if variant != "fused":  # the contrastive views exist only in the fused model
        train_cfg = replace(train_cfg, contrastive_weight=0.0)
    device = resolve_device(cfg.train.device)
    train_data = _rows_it_can_read(data, model_cfg)
    if train_data is not data:          # a few hundred genes: at least 10 steps per epoch
        n_train = len(train_data.rows["train"])
        train_cfg = replace(train_cfg, batch_size=max(1, min(train_cfg.batch_size or n_train,
                                                             math.ceil(n_train / 10))))
    result = train_model(model, train_data, train_cfg, checkpoint_path=out_dir / f"{tag}.pt",
                         resume=resume, config_dict=config_to_dict(cfg), model_args=args,
                         progress=progress, stop_after_epoch=stop_after_epoch, desc=tag,
                         device=device)
    all_rows = torch.arange(data.n_genes)
    pred = predict_rows(model, data, all_rows, level_state=result.level_state,
                        profile_state=result.profile_state,
                        device=device).numpy()
    return VariantResult(variant, result, model, args, pred)


def _rows_it_can_read(data: TrainingData, model_cfg: FusedModelConfig) -> TrainingData:
    """A model whose only input is the window view learns from (and is early-stopped on) the
    genes that have a window; every other model on every labelled gene."""
    only_window = (model_cfg.variant == "sequence_only" and not model_cfg.use_promoter
                   and data.graph_inputs.has_window is not None)
    if not only_window:
        return data
    has = data.graph_inputs.has_window
    rows = {k: v[has[v]] for k, v in data.rows.items()}
    log.info("window-only model: %s genes with a window", {k: len(v) for k, v in rows.items()})
    return replace(data, rows=rows)


def load_trained(checkpoint: str | os.PathLike) -> tuple[GeneSpliceModel, dict, dict, dict]:
    """Model (profile-best weights), its level-best and profile-best states, and the extra
    record of a checkpoint written by :func:`train_variant`."""
    ck = load_checkpoint(checkpoint)
    args = ck.extra["model_args"]
    model = build_model(args)
    model.load_state_dict(ck.extra["profile_state"])
    return model, ck.extra["level_state"], ck.extra["profile_state"], ck


#: the split names of ``predictions.splits.csv`` (TrainingData.split_of names → these)
SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test", "none": "unlabelled"}


def prediction_splits(data: TrainingData) -> pd.DataFrame:
    """One row per graph gene: ``gene_symbol`` (as in the expression table, else the graph
    id), ``graph_gene_id``, ``split`` (``train`` / ``validation`` / ``test`` / ``unlabelled``
    — unlabelled: not a label of this run, e.g. a gene the table does not measure) and
    ``n_observed_tissues`` (tissues the table measures for it)."""
    return pd.DataFrame({
        "gene_symbol": [data.display_symbols.get(g, g) for g in data.gene_ids],
        "graph_gene_id": list(data.gene_ids),
        "split": data.split_of().map(SPLIT_NAMES).to_numpy(),
        "n_observed_tissues": data.observed.sum(1).cpu().numpy().astype(int)})


def write_predictions(path: str | os.PathLike, data: TrainingData, pred: np.ndarray,
                      unit: str, *, meta: dict | None = None) -> Path:
    """Predictions of **every gene of the graph** (``pred [n_genes, t]`` in graph gene order)
    as a genes × tissues CSV (first column ``gene_symbol``, as named in the expression table,
    else the graph's symbol), written atomically, with two side files:
    ``<stem>.splits.csv`` (:func:`prediction_splits`: which genes were train / validation /
    test / unlabelled) and ``<stem>.meta.json`` (unit, counts, tissues, whether there was a
    test set, plus ``meta``). Used by ``train``, ``finetune`` and the api."""
    pred = np.asarray(pred)
    if pred.shape != (data.n_genes, data.n_tissues):
        raise GeneSpliceInputError(f"predictions of shape {pred.shape} (expected one row per "
                                   f"graph gene and tissue: {(data.n_genes, data.n_tissues)})")
    splits = prediction_splits(data)
    df = pd.DataFrame(pred, columns=data.tissues)
    df.insert(0, "gene_symbol", splits["gene_symbol"].to_numpy())
    path = Path(path)
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, float_format="%.5f"))
    atomic_write(path.with_name(f"{path.stem}.splits.csv"),
                 lambda tmp: splits.to_csv(tmp, index=False))
    counts = splits["split"].value_counts()
    save_json(path.with_name(f"{path.stem}.meta.json"),
              {"unit": unit, "n_genes": int(len(df)),
               "n_labelled": int((splits["split"] != "unlabelled").sum()),
               "splits": {k: int(counts.get(k, 0)) for k in SPLIT_NAMES.values()},
               "has_test_set": bool(len(data.rows["test"])),
               "tissues": list(data.tissues),
               "columns": "gene_symbol (as in the expression table, else the graph's symbol), "
                          "then one per tissue; every gene of the graph",
               **(meta or {})})
    return path


def save_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=float))


class timed:
    """``with timed(seconds, key):`` stores the block's wall time in ``seconds[key]``."""

    def __init__(self, seconds: dict, key: str) -> None:
        self.seconds, self.key = seconds, key

    def __enter__(self) -> None:
        self.t = time.time()

    def __exit__(self, *exc) -> None:
        self.seconds[self.key] = time.time() - self.t


def load_graph(graph_path: str | os.PathLike | None, *, recipe: str | os.PathLike | None = None,
               progress: bool = True) -> KnowledgeGraph:
    """A built graph from ``graph_path``; built (and saved there) when the folder is empty.

    A saved graph whose inputs changed since it was built is rebuilt rather than used stale.
    """
    path = Path(graph_path) if graph_path else Path(DEFAULT_GRAPH_DIR)
    if (path / "graph.json").exists():
        kg = KnowledgeGraph.load(path)
        stale = kg.stale_inputs()
        if not stale:
            return kg
        log.warning("graph at %s is stale (%s); rebuilding", path, ", ".join(stale[:3]))
    kg = build_graph(recipe, progress=progress)
    kg.save(path)
    return kg


def expression_from_config(cfg: RunConfig):
    """The expression table named by ``cfg.data`` (path, file unit, id column, AnnData
    layer, replicate mapping; "" = the bundled HPA table / detected / none)."""
    d = cfg.data
    return read_expression_table(d.expression_path or None, unit=d.unit,
                                 input_unit=d.expression_unit,
                                 id_column=d.expression_id_column or None,
                                 layer=d.expression_layer or None,
                                 replicates=d.replicates_path or None)


def prepare_from_config(cfg: RunConfig, *, graph=None, genes: list[str] | None = None,
                        progress: bool = True) -> TrainingData:
    """Read every input named by ``cfg.data`` ("" = bundled default) and assemble the
    :class:`TrainingData` (graph from ``cfg.data.graph_path``, built if absent)."""
    if graph is None:
        graph = load_graph(cfg.data.graph_path or None, progress=progress)
    expr = expression_from_config(cfg)
    chrom = gene_chromosomes(cfg.data.tss_path or None)
    promoters = (read_promoter_fasta(cfg.data.promoters_path or knowledge_path(EPDNEW_PROMOTERS))
                 if cfg.data.uses_promoter else None)
    structure, _ = read_gene_structure(cfg.data.gene_structure_path or None)
    windows = (window_embeddings(cfg, list(graph.node_ids["gene"]), expr, progress=progress)
               if cfg.data.uses_window else None)
    return prepare_training_data(graph, expr, gene_chromosomes=chrom, promoters=promoters,
                                 test_chromosomes=cfg.train.test_chromosomes,
                                 val_chromosomes=cfg.train.val_chromosomes,
                                 min_genes_per_feature=cfg.ridge.min_genes_per_feature,
                                 genes=genes, resolver=default_resolver(),
                                 similar_genes=(cfg.model.similar_genes
                                                if cfg.model.reads_labels else 0),
                                 gene_structure=structure, window_embeddings=windows)


def prepare_for_run(cfg: RunConfig, *, graph=None, genes: list[str] | None = None,
                    inputs: dict | None = None, progress: bool = True) -> TrainingData:
    """:func:`prepare_from_config`, and for a fine-tuned model the model inputs of its base
    run with ``cfg``'s table (:func:`~genesplice.training.data.with_targets`).

    ``inputs``: a fine-tuned checkpoint's ``extra["inputs"]`` — ``{"config": the base run
    config (dict), "genes": the base run's labelled-gene subset or None, "inputs": the base's
    own inputs when it was itself fine-tuned}``; ``genes`` restricts this table's labelled
    genes only."""
    if graph is None:
        graph = load_graph(cfg.data.graph_path or None, progress=progress)
    data = prepare_from_config(cfg, graph=graph, genes=genes, progress=progress)
    if not inputs:
        return data
    base_cfg = config_from_dict(RunConfig, inputs["config"])
    base = prepare_for_run(base_cfg, graph=graph, genes=inputs.get("genes"),
                           inputs=inputs.get("inputs"), progress=progress)
    return with_targets(base, data)


def window_keys(gene_ids: list[str], expression) -> list[str]:
    """The id each graph gene is looked up by in the window TSS table: the expression
    table's Ensembl id (the first gene to claim it), else the graph id (symbol)."""
    ids, seen = [], set()
    for g in gene_ids:
        e = expression.ensembl_ids.get(g)
        key = e if isinstance(e, str) and e and e not in seen else g
        seen.add(key)
        ids.append(key)
    return ids


def window_embeddings(cfg: RunConfig, gene_ids: list[str], expression, *,
                      progress: bool = True) -> np.ndarray:
    """``[n_genes, d]`` cached embeddings of each graph gene's genome window (NaN rows where
    the genome or the TSS table lacks it), from ``cfg.data``'s genome, TSS table, window and
    encoder (:func:`~genesplice.training.embed.embed_windows`; the store is reused while its
    keys match). Genes are looked up in the TSS table by the expression table's Ensembl id,
    else by symbol; what was skipped is printed."""
    d = cfg.data
    ids = window_keys(gene_ids, expression)
    emb, report = embed_files(d.genome_paths or None, d.window_tss_path or None,
                              WindowSpec(d.window_upstream, d.window_downstream),
                              d.embedding_cache or Path(cfg.out_dir) / "embeddings",
                              encoder_path=d.window_encoder or None, genes=ids,
                              device=cfg.train.device, progress=progress)
    print("\n".join(summary_lines(report)))
    return emb


def _frame(data: TrainingData, rows: torch.Tensor, values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(values, index=[data.gene_ids[i] for i in rows.numpy()],
                        columns=data.tissues)


def evaluation_split(data: TrainingData) -> str:
    """``test``, or ``val`` when the labelled genes reach no test chromosome (a partial
    table): the run then reports validation metrics, with :func:`no_test_set_note`."""
    return "test" if len(data.rows["test"]) else "val"


def no_test_set_note(cfg: RunConfig) -> str:
    """What a report and the printout say when there is no test set."""
    return (f"No test set: the expression table has no genes on the test chromosomes "
            f"({', '.join(cfg.train.test_chromosomes)}), so the metrics are on the validation "
            f"chromosomes ({', '.join(cfg.train.val_chromosomes)}) — the genes that also chose "
            "the ridge alpha and the early-stopping epoch, so they are optimistic. For a "
            "held-out estimate, move train.test_chromosomes to a chromosome the table covers "
            "(--set train.test_chromosomes=[...]).")


def evaluate_models(data: TrainingData, predictions: dict[str, np.ndarray], *,
                    split: str = "test"):
    """Metrics of each model's full prediction matrix ``[n_genes, t]`` on one split."""
    rows = data.rows[split]
    if not len(rows):
        raise GeneSpliceInputError(f"no {split} genes to evaluate on (the expression table "
                                   f"has no labelled genes on the {split} chromosomes)")
    obs = data.observed_frame(rows)
    preds = {name: _frame(data, rows, p[rows.numpy()]) for name, p in predictions.items()}
    results = {name: evaluate_predictions(obs, df, model=name) for name, df in preds.items()}
    return obs, preds, results


def _print_data(data: TrainingData, cfg: RunConfig) -> None:
    print(f"data: {data.report['n_train']:,} train / {data.report['n_val']:,} val "
          f"({','.join(cfg.train.val_chromosomes)}) / {data.report['n_test']:,} test "
          f"({','.join(cfg.train.test_chromosomes)}) genes; {len(data.feature_names):,} "
          f"membership features; {data.report['genes_with_sequence']:,} genes with a promoter")


def _encoder_state(cfg: RunConfig, out: Path, *, pretrained_encoder, progress: bool,
                   seconds: dict) -> tuple[dict | None, str | None]:
    """The promoter encoder's starting weights and a one-line summary: from
    ``pretrained_encoder`` if given, else ``cfg.pretrain.steps`` of pretraining (none if 0)."""
    if pretrained_encoder is not None:
        state = load_pretrained_encoder(pretrained_encoder).state_dict
        return state, f"encoder initialised from {pretrained_encoder}"
    if cfg.pretrain.steps <= 0:
        return None, None
    with timed(seconds, "pretrain"):
        pdata = promoter_pretraining_sequences(
            exclude_chromosomes=cfg.train.test_chromosomes + cfg.train.val_chromosomes,
            held_out_chromosomes=cfg.train.val_chromosomes)
        pre = pretrain_encoder(cfg.model.sequence_encoder(), pdata.train,
                               steps=cfg.pretrain.steps, held_out=pdata.held_out,
                               progress=progress, checkpoint_path=out / "pretrained_encoder.pt")
    summary = pre.summary()
    print(summary)
    return pre.encoder_state, summary


def _tag(name: str) -> str:
    return name.replace(" ", "_").replace("(", "").replace(")", "")


@dataclass
class SeedRuns:
    """Every seed of one model: seed 0 (``train.seed``) is the run's checkpoint
    ``<tag>.pt``; the others go to ``seeds/<tag>_seed<i>.pt``."""

    main: VariantResult
    others: list[VariantResult]

    @property
    def all(self) -> list[VariantResult]:
        return [self.main, *self.others]


def _train_variants(cfg: RunConfig, data: TrainingData, ridge: RidgeBaseline, out: Path, *,
                    variants: tuple[str, ...], encoder_state: dict | None, progress: bool,
                    resume: bool, seconds: dict) -> dict[str, SeedRuns]:
    """Each model of ``variants`` (:data:`ABLATIONS`; graph-only ones without the encoder
    state) with ``cfg.train.seeds`` seeds, plus ``fused (no pretraining)`` (one seed) when
    there is an encoder state and ``cfg.pretrain.compare``; writes ``history_<tag>.csv``."""
    runs: list[tuple[str, str, dict | None, int]] = [
        (v, v, encoder_state if ABLATIONS.get(v, (v,))[0] != "graph_only" else None,
         cfg.train.seeds) for v in variants]
    if encoder_state is not None and cfg.pretrain.compare and "fused" in variants:
        runs.append(("fused (no pretraining)", "fused", None, 1))
    trained: dict[str, SeedRuns] = {}
    for name, variant, state, n_seeds in runs:
        results = []
        with timed(seconds, name):
            for i in range(n_seeds):
                tag = _tag(name) if i == 0 else f"{_tag(name)}_seed{i}"
                folder = out if i == 0 else out / "seeds"
                folder.mkdir(exist_ok=True)
                seeded = replace(cfg, train=replace(cfg.train, seed=cfg.train.seed + i))
                results.append(train_variant(
                    variant, data, seeded, ridge=ridge, out_dir=folder, encoder_state=state,
                    progress=progress, tag=tag,
                    resume=resume and (folder / f"{tag}.pt").exists()))
        trained[name] = SeedRuns(results[0], results[1:])
        r = results[0].train
        print(f"{name}: best val level r {r.best_level:.3f} (epoch {r.best_level_epoch}), "
              f"profile r {r.best_profile:.3f} (epoch {r.best_profile_epoch}); "
              f"{n_seeds} seed{'s' if n_seeds > 1 else ''} in {seconds[name]:.0f} s")
        if distributed.is_rank0():
            r.history.to_csv(out / f"history_{_tag(name)}.csv", index=False)
    return trained


SEED_METRICS = ("pearson_tissue", "pearson_gene", "r2_tissue", "spearman_tissue",
                "pearson_median")


def seed_table(data: TrainingData, trained: dict[str, SeedRuns], ridge_pred: np.ndarray,
               split: str = "test") -> pd.DataFrame:
    """Mean and sd over seeds of each model's metrics on ``split``: one row per model
    (ridge: deterministic, sd 0), columns ``<metric>_mean`` / ``<metric>_sd`` / ``seeds``."""
    rows = []
    preds = {RIDGE_NAME: [ridge_pred]}
    preds.update({name: [vr.predictions for vr in runs.all] for name, runs in trained.items()})
    for name, per_seed in preds.items():
        _, _, res = evaluate_models(data, {str(i): p for i, p in enumerate(per_seed)},
                                    split=split)
        values = pd.DataFrame([r.summary for r in res.values()])
        row = {"model": name, "seeds": len(per_seed)}
        for m in SEED_METRICS:
            row[f"{m}_mean"] = float(values[m].mean())
            row[f"{m}_sd"] = float(values[m].std(ddof=1)) if len(values) > 1 else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def seed_section(table: pd.DataFrame, split_name: str) -> list[str]:
    """The report's Markdown section for :func:`seed_table`."""
    lines = [f"## Models and ablations on the {split_name} genes (mean ± sd over seeds)", "",
             "| model | seeds | per-tissue Pearson | per-gene Pearson (tissue specificity) | "
             "r² (per tissue) | median-expression Pearson |", "|---|---:|---:|---:|---:|---:|"]
    for r in table.itertuples(index=False):
        cell = lambda m: f"{getattr(r, m + '_mean'):.3f} ± {getattr(r, m + '_sd'):.3f}"
        lines.append(f"| {r.model} | {r.seeds} | {cell('pearson_tissue')} | "
                     f"{cell('pearson_gene')} | {cell('r2_tissue')} | "
                     f"{cell('pearson_median')} |")
    lines += ["", "fused: promoter encoder + GATv2 + label attention + linear path; graph_only: "
              "no sequence; gat_only: graph_only without the linear path; "
              "graph_only_no_labels: graph_only without the label read-out; linear_only: the "
              "ridge-initialised linear path alone, fine-tuned; sequence_only: the promoter "
              "alone; promoter_graph / window_graph / window_only: which DNA view a model reads "
              "when the data have both. The other tables below are the seed-0 models (the "
              "saved checkpoints).",
              ""]
    return lines


def _report_notes(cfg: RunConfig, data: TrainingData, unit: str,
                  pretrain_summary: str | None) -> list[str]:
    notes = [f"Split: test {', '.join(cfg.train.test_chromosomes)} "
             f"({len(data.rows['test'])} genes), validation "
             f"{', '.join(cfg.train.val_chromosomes)} ({len(data.rows['val'])} genes; all "
             f"selection — ridge alpha, early stopping — uses validation only), training "
             f"{len(data.rows['train'])} genes.",
             "fused = promoter sequence encoder + GATv2 over GO/Reactome/TF graph + gated "
             "fusion + ridge-initialised membership linear path + tissue-conditional label "
             "attention over each gene's most similar training genes (their observed "
             "profiles; validation and test labels are never inputs) + gene-level features "
             "(transcript span, exon count, TF-ness, annotation counts); graph_only drops the "
             "sequence; sequence_only drops the graph, the labels and the membership path.",
             f"Per-gene metrics are Pearson across tissues after centring each gene "
             f"(tissue specificity). Unit: {unit}."]
    notes.append(f"{data.report['expression_genes_not_in_graph']} expression-table genes have a "
                 "symbol the gene-id table cannot resolve, so they are not graph nodes and get "
                 f"no prediction (e.g. {', '.join(data.report['expression_genes_not_in_graph_examples'])});"
                 f" {data.report['expression_rows_collapsed_onto_one_graph_gene']} table rows "
                 "resolve to a gene another row already gave and are collapsed.")
    if pretrain_summary:
        notes.append("Pretraining: " + pretrain_summary.replace("\n", "; "))
    return notes


def run_experiment(cfg: RunConfig, out_dir: str | os.PathLike, *,
                   variants: tuple[str, ...] = DEMO_VARIANTS,
                   pretrained_encoder: str | os.PathLike | None = None, graph=None,
                   genes: list[str] | None = None, progress: bool = True,
                   command: str | None = None, resume: bool = False,
                   report_sections: list[str] | None = None) -> dict:
    """Data → ridge → (pretraining, ``cfg.pretrain``) → each variant → test-chromosome
    evaluation → report.

    Writes into ``out_dir``: ``config.toml``, one checkpoint per model (``fused.pt``, …),
    ``predictions.csv`` (the fused model, every gene of the expression table), the Markdown
    ``report.md`` with plots and metric tables, ``history_<model>.csv`` and ``summary.json``.
    ``pretrained_encoder``: an encoder checkpoint to start from instead of pretraining;
    ``report_sections``: Markdown lines for the report, right after its title.
    Returns the summary dict.

    Under torchrun (:mod:`~genesplice.training.distributed`) every rank assembles the data and
    trains its shard of each batch; rank 0 alone builds a missing graph, pretrains, writes
    files and evaluates, and every rank returns its summary. After a torchrun restart
    (``--max-restarts``) the run resumes from its checkpoints.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = replace(cfg, out_dir=str(out))        # the run folder is where it writes
    rank0 = distributed.is_rank0()
    progress = progress and rank0
    resume = resume or distributed.restart_count() > 0
    if rank0:
        save_config(cfg, out / "config.toml")
    seconds: dict[str, float] = {}
    with timed(seconds, "data"):
        if graph is None and distributed.active():
            with distributed.rank0_first():          # rank 0 builds and saves it if absent
                graph = load_graph(cfg.data.graph_path or None, progress=progress)
        data = prepare_from_config(cfg, graph=graph, genes=genes, progress=progress)
    _print_data(data, cfg)
    if evaluation_split(data) != "test":
        print("note: " + no_test_set_note(cfg))
    with timed(seconds, "ridge"):
        ridge = fit_ridge(data, cfg)
    print(f"ridge: alpha level {ridge.level_alpha:g} / profile {ridge.profile_alpha:g} "
          f"({seconds['ridge']:.0f} s)")
    encoder_state, pretrain_summary = distributed.broadcast_object(
        _encoder_state(cfg, out, pretrained_encoder=pretrained_encoder, progress=progress,
                       seconds=seconds) if rank0 else None)
    trained = _train_variants(cfg, data, ridge, out, variants=variants,
                              encoder_state=encoder_state, progress=progress, resume=resume,
                              seconds=seconds)
    if not rank0:                                    # rank 0 evaluates and writes
        return distributed.broadcast_object(None)
    predictions = {RIDGE_NAME: ridge_predict(ridge, data, torch.arange(data.n_genes))}
    predictions.update({name: runs.main.predictions for name, runs in trained.items()})
    split = evaluation_split(data)
    obs, preds, results = evaluate_models(data, predictions, split=split)
    seeds = seed_table(data, trained, predictions[RIDGE_NAME], split=split)
    atomic_write(out / "summary_seeds.csv", lambda tmp: seeds.to_csv(tmp, index=False))
    unit = unit_label(cfg.data.unit)
    notes = _report_notes(cfg, data, unit, pretrain_summary)
    if split != "test":
        notes.insert(0, no_test_set_note(cfg))
    paths = write_evaluation_report(
        out, results, observed=obs, predictions=preds,
        title=("GeneSplice: held-out chromosome evaluation" if split == "test" else
               "GeneSplice: validation-chromosome evaluation (no test set)"),
        command=command, notes=notes,
        sections=[*(report_sections or ()),
                  *seed_section(seeds, "test" if split == "test" else "validation")],
        unit=unit)
    main = trained["fused"] if "fused" in trained else next(iter(trained.values()))
    write_predictions(out / "predictions.csv", data, main.main.predictions, unit)
    summary = {"unit": unit, "seconds": seconds, "data": data.report,
               "evaluation_split": "test" if split == "test" else "validation",
               "metrics": {name: res.summary for name, res in results.items()},
               "seed_metrics": seeds.set_index("model").to_dict(orient="index"),
               "report": str(paths.markdown), "plots": [str(p) for p in paths.plots]}
    save_json(out / "summary.json", summary)
    return distributed.broadcast_object(summary)


def _checkpoint_predictions(run: Path, data: TrainingData, device: torch.device
                            ) -> dict[str, np.ndarray]:
    """Predictions ``[n_genes, t]`` of every model checkpoint in ``run`` (by model name)."""
    predictions = {}
    for ckpt in sorted(run.glob("*.pt")):
        ck = load_checkpoint(ckpt)
        if "model_args" not in ck.extra:
            continue                      # e.g. a pretrained encoder
        stale = [k for k, v in ck.data_checksums.items() if data.checksums.get(k) != v]
        if stale:
            raise GeneSpliceInputError(f"inputs changed since training ({', '.join(stale)}); "
                                       "retrain or point the config at the original files",
                                       path=ckpt)
        model = build_model(ck.extra["model_args"])
        pred = predict_rows(model, data, torch.arange(data.n_genes),
                            level_state=ck.extra["level_state"],
                            profile_state=ck.extra["profile_state"], device=device).numpy()
        predictions[ckpt.stem.replace("_no_pretraining", " (no pretraining)")] = pred
    return predictions


def evaluate_run(run_dir: str | os.PathLike, *, split: str = "test",
                 device: str | None = None) -> dict:
    """Re-evaluate every model checkpoint of a run folder (plus a refitted ridge baseline) on
    one split, from the run's own ``config.toml``; rewrites ``report.md`` (``split='test'``)
    or writes ``eval_<split>/``. ``device``: default the run's ``train.device``."""
    run = Path(run_dir)
    if not (run / "config.toml").exists():
        raise GeneSpliceInputError("not a training run folder (expected config.toml)",
                                   path=run)
    cfg = load_config(run / "config.toml")
    data = prepare_from_config(cfg, progress=False)
    predictions = {RIDGE_NAME: ridge_predict(fit_ridge(data, cfg), data,
                                             torch.arange(data.n_genes))}
    predictions.update(_checkpoint_predictions(run, data,
                                               resolve_device(device or cfg.train.device)))
    out = run if split == "test" else run / f"eval_{split}"
    notes = []
    if split == "test" and evaluation_split(data) != "test":   # a partial table
        split, notes = "val", [no_test_set_note(cfg)]
        print("note: " + notes[0])
    obs, preds, results = evaluate_models(data, predictions, split=split)
    unit = unit_label(cfg.data.unit)
    paths = write_evaluation_report(out, results, observed=obs, predictions=preds,
                                    title=f"GeneSplice: evaluation on {split} genes",
                                    command=f"genesplice evaluate --run {run_dir} --split "
                                            f"{'test' if notes else split}",
                                    notes=notes, unit=unit)
    return {"metrics": {n: r.summary for n, r in results.items()},
            "report": str(paths.markdown)}
