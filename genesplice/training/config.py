"""Run configuration — the single truth for ``genesplice train``, ``demo`` and the notebook API.

A :class:`RunConfig` is composed of sections, each a flat frozen dataclass of str / int / float /
bool / tuple fields: ``[data]`` (input files), ``[model]`` (architecture), ``[train]``
(optimisation; its defaults are the settings the demo runs with), ``[pretrain]``
(masked-nucleotide pretraining before training) and ``[ridge]`` (the baseline).
``configs/default.toml`` is these defaults written out.

The dataclass ⇄ TOML machinery is generic and lives in :mod:`genesplice.io.toml`; this module
re-exports it and :func:`load_config` defaults to ``RunConfig``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TypeVar

from genesplice.annotations.expression import INPUT_UNITS as EXPRESSION_INPUT_UNITS
from genesplice.io.chromosomes import normalize_chromosome
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.toml import (
    config_from_dict,
    config_to_dict,
    save_config,
    to_toml,
    with_overrides,
)
from genesplice.io.toml import load_config as _load_toml
from genesplice.models.device import DEVICES
from genesplice.models.graph_encoder import GraphEncoderConfig
from genesplice.models.model import FusedModelConfig
from genesplice.models.sequence_encoder import ENCODER_PRESETS, SequenceEncoderConfig
from genesplice.training.pretrain import CONTRASTIVE_VIEWS
from genesplice.training.losses import GENE_WEIGHTS, LOSSES
from genesplice.training.sampling import GRAPH_BATCHES, fan_out_problems

__all__ = ["DataConfig", "ModelConfig", "TrainConfig", "PretrainConfig", "RidgeConfig",
           "RunConfig", "DEVICES", "config_from_dict", "config_to_dict", "load_config",
           "save_config", "to_toml", "with_overrides"]

T = TypeVar("T")

#: what DNA each gene is represented by (``[data] sequence_view``)
SEQUENCE_VIEWS = ("promoter", "window", "both")


@dataclass(frozen=True)
class DataConfig:
    """Input files ("" = the bundled default under ``knowledge/``) and the target unit.

    ``tss_path``: gene symbol → chromosome table (the hold-out split); ``promoters_path``:
    promoter FASTA (default the bundled EPDnew core promoters); ``graph_path``: built-graph
    folder (built there when empty; default ``graphs/built/human_default``);
    ``gene_structure_path``: canonical transcripts (gene span, exon count) for the gene-level
    features (default the bundled GENCODE V24 table).

    Each gene's DNA (``sequence_view``): ``promoter`` — the promoter FASTA's 60 bp core
    promoters; ``window`` — ``[tss - window_upstream, tss + window_downstream)`` cut from the
    genome (``genome_paths``: indexed FASTA files, plain or bgzip, any naming; default the
    bundled GRCh37 chr20 + chrX 1–70 Mb) at the TSS of ``window_tss_path`` (BED / GTF / TSV;
    default the bundled hg19 CAGE TSS), embedded once by ``window_encoder`` (a ``genesplice
    pretrain`` checkpoint; default a seeded random ``long_study`` encoder) into the cache
    ``embedding_cache`` (default ``<out_dir>/embeddings``); ``both`` — the two views together.
    Genes the genome lacks keep the promoter (or the model's "no sequence" vector); they are
    counted in the report.

    The expression table (``expression_path``: TSV, CSV, parquet or AnnData ``.h5ad``; see
    :mod:`genesplice.annotations.expression`): ``expression_unit`` is what the file holds
    (``ntpm``, ``tpm``, ``counts`` — library-size normalised — or ``log``, already on the log
    scale of ``unit``); ``expression_id_column`` its gene-id column (default: detected;
    symbol, Ensembl or Entrez ids); ``expression_layer`` an AnnData layer instead of ``X``;
    ``replicates_path`` a two-column TSV ``column<TAB>tissue`` averaging replicate columns.
    """

    expression_path: str = ""
    tss_path: str = ""
    promoters_path: str = ""
    graph_path: str = ""
    gene_structure_path: str = ""
    unit: str = "log10_ntpm1"
    sequence_view: str = "promoter"
    genome_paths: tuple[str, ...] = ()
    window_tss_path: str = ""
    window_upstream: int = 50_000
    window_downstream: int = 50_000
    window_encoder: str = ""
    embedding_cache: str = ""
    expression_unit: str = "ntpm"
    expression_id_column: str = ""
    expression_layer: str = ""
    replicates_path: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "genome_paths", tuple(str(p) for p in self.genome_paths))
        units = ("log10_ntpm1", "log1p_ntpm", "ntpm")
        if self.unit not in units:
            raise GeneSpliceInputError(f"data.unit = {self.unit!r} (expected one of {units})")
        if self.expression_unit not in EXPRESSION_INPUT_UNITS:
            raise GeneSpliceInputError(f"data.expression_unit = {self.expression_unit!r} "
                                       f"(expected one of {list(EXPRESSION_INPUT_UNITS)})")
        if self.expression_layer and not self.expression_path.lower().endswith(".h5ad"):
            raise GeneSpliceInputError(f"data.expression_layer = {self.expression_layer!r} "
                                       "needs an AnnData data.expression_path (.h5ad)")
        if self.sequence_view not in SEQUENCE_VIEWS:
            raise GeneSpliceInputError(f"data.sequence_view = {self.sequence_view!r} (expected "
                                       f"one of {list(SEQUENCE_VIEWS)})")
        length = self.window_upstream + self.window_downstream
        if self.window_upstream < 0 or self.window_downstream < 0 or not \
                1 <= length <= 1_048_576:
            raise GeneSpliceInputError(
                f"data.window_upstream/window_downstream = {self.window_upstream}/"
                f"{self.window_downstream} (expected >= 0 each, 1 … 1,048,576 bp in all)")

    @property
    def uses_window(self) -> bool:
        return self.sequence_view in ("window", "both")

    @property
    def uses_promoter(self) -> bool:
        return self.sequence_view in ("promoter", "both")


@dataclass(frozen=True)
class ModelConfig:
    """The fused model's architecture: GATv2 width / heads / layers / dropout (``hidden`` is
    also the fusion width), the promoter encoder (a :meth:`SequenceEncoderConfig.preset`) and
    the label read-out: ``label_attention`` reads the observed profiles of each gene's
    ``similar_genes`` most similar training genes (annotation TF-IDF cosine) with one
    attention query per tissue (graph variants only; 0 / false: off)."""

    hidden: int = 32
    heads: int = 4
    n_layers: int = 2
    dropout: float = 0.2
    promoter_encoder: str = "promoter"
    label_attention: bool = True
    similar_genes: int = 50

    def __post_init__(self) -> None:
        problems = []
        if self.hidden < 1 or self.heads < 1 or self.n_layers < 1:
            problems.append("model.hidden, model.heads and model.n_layers must be >= 1")
        elif self.hidden % self.heads:
            problems.append(f"model.hidden = {self.hidden} is not divisible by model.heads = "
                            f"{self.heads}")
        if not 0 <= self.dropout < 1:
            problems.append(f"model.dropout = {self.dropout} (expected 0 <= dropout < 1)")
        if self.similar_genes < 0:
            problems.append(f"model.similar_genes = {self.similar_genes} (expected >= 0)")
        if self.promoter_encoder not in ENCODER_PRESETS:
            problems.append(f"model.promoter_encoder = {self.promoter_encoder!r} (expected one "
                            f"of {list(ENCODER_PRESETS)})")
        if problems:
            raise GeneSpliceInputError("; ".join(problems))

    @property
    def reads_labels(self) -> bool:
        return self.label_attention and self.similar_genes > 0

    def fused(self, variant: str, **overrides) -> FusedModelConfig:
        """The :class:`FusedModelConfig` of one variant (``fused``, ``graph_only``, …);
        ``overrides``: its other fields (``use_gat``, ``use_membership``, …)."""
        overrides.setdefault("label_attention", self.reads_labels and variant != "sequence_only")
        return FusedModelConfig(variant=variant, hidden=self.hidden,
                                graph=GraphEncoderConfig(hidden=self.hidden, heads=self.heads,
                                                         n_layers=self.n_layers,
                                                         dropout=self.dropout), **overrides)

    def sequence_encoder(self) -> SequenceEncoderConfig:
        """The promoter encoder's config (the named preset)."""
        return SequenceEncoderConfig.preset(self.promoter_encoder)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, early stopping, split, loss weights and device.

    The defaults are the settings the demo runs with (5 epochs of 1,024-gene batches).
    """

    seed: int = 0
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.01
    warmup_steps: int = 50
    schedule: str = "cosine"          # "cosine" | "cyclic"
    cycle_steps: int = 0              # cyclic only; 0 = one cycle over the whole run
    epochs: int = 5
    batch_size: int = 1024            # genes per batch; 0 = full batch
    patience: int = 4                 # epochs without validation improvement before stopping
    stop_level_and_profile_separately: bool = True  # stop when both (else either) stalled
    clip_norm: float = 1.0            # 0 = no clipping
    test_chromosomes: tuple[str, ...] = ("chr8",)
    val_chromosomes: tuple[str, ...] = ("chr9",)
    level_weight: float = 1.0         # MSE on the per-gene mean over tissues
    profile_weight: float = 3.0       # MSE on the centred per-tissue profile
    contrastive_weight: float = 0.05  # InfoNCE between sequence and graph views
    contrastive_temperature: float = 0.1
    aux_weight: float = 0.1           # auxiliary gene-function head
    label_smoothing: float = 0.1
    edge_dropout: float = 0.1         # second graph view for the contrastive loss
    linear_lr_scale: float = 0.1      # lr multiplier of the ridge-initialised linear path
    loss: str = "mse"                 # "mse" | "huber" (robust to outlier labels)
    huber_delta: float = 1.0          # huber only: where the loss turns from squared to linear
    gene_weights: str = "none"        # "none" | "observed" (weight genes by observed tissues)
    graph_batches: str = "exact"      # "exact": each batch gene's whole receptive field |
                                      # "sampled": neighbour sampling (training/sampling.py) for
                                      # graphs too large for exact batches; validation stays exact
    num_neighbors: tuple[int, ...] = (10, 10)  # sampled: edges drawn per node per hop (one hop
                                      # per GAT layer), every edge type; -1 = all
    edge_num_neighbors: tuple[str, ...] = ()   # sampled: per edge type, "src__rel__dst=f1,f2"
    eval_every: int = 1
    device: str = "auto"              # "auto" | "cpu" | "cuda" | "cuda:N" | "mps"; auto = CUDA if
                                      # available, else MPS, else CPU (training and inference)
    seeds: int = 3                    # each neural model is trained with seeds seed .. seed+n-1
                                      # (reports: mean ± sd; checkpoints/predictions: seed)
    variants: tuple[str, ...] = ()    # models `genesplice train` trains (--variants wins);
                                      # () = fused

    def __post_init__(self) -> None:
        object.__setattr__(self, "test_chromosomes",
                           tuple(normalize_chromosome(c) for c in self.test_chromosomes))
        object.__setattr__(self, "val_chromosomes",
                           tuple(normalize_chromosome(c) for c in self.val_chromosomes))
        object.__setattr__(self, "variants", tuple(self.variants))
        object.__setattr__(self, "num_neighbors", tuple(int(k) for k in self.num_neighbors))
        object.__setattr__(self, "edge_num_neighbors", tuple(self.edge_num_neighbors))
        problems = _train_problems(self)
        if problems:
            raise GeneSpliceInputError("; ".join(problems))


def _train_problems(cfg: TrainConfig) -> list[str]:
    problems = []
    if cfg.schedule not in ("cosine", "cyclic"):
        problems.append(f"train.schedule = {cfg.schedule!r} (expected 'cosine' or 'cyclic')")
    if not cfg.lr > 0 or not 0 <= cfg.min_lr <= cfg.lr:
        problems.append(f"train.lr/min_lr = {cfg.lr}/{cfg.min_lr} (expected "
                        "0 <= min_lr <= lr, lr > 0)")
    for name in ("warmup_steps", "cycle_steps", "batch_size", "patience", "weight_decay",
                 "clip_norm", "level_weight", "profile_weight", "contrastive_weight",
                 "aux_weight", "linear_lr_scale"):
        if getattr(cfg, name) < 0:
            problems.append(f"train.{name} = {getattr(cfg, name)} (expected >= 0)")
    if cfg.loss not in LOSSES:
        problems.append(f"train.loss = {cfg.loss!r} (expected one of {list(LOSSES)})")
    if not cfg.huber_delta > 0:
        problems.append(f"train.huber_delta = {cfg.huber_delta} (expected > 0)")
    if cfg.gene_weights not in GENE_WEIGHTS:
        problems.append(f"train.gene_weights = {cfg.gene_weights!r} (expected one of "
                        f"{list(GENE_WEIGHTS)})")
    if cfg.epochs < 1 or cfg.eval_every < 1 or cfg.seeds < 1:
        problems.append("train.epochs, train.eval_every and train.seeds must be >= 1")
    if not cfg.contrastive_temperature > 0:
        problems.append("train.contrastive_temperature must be > 0")
    if not 0 <= cfg.label_smoothing < 1 or not 0 <= cfg.edge_dropout < 1:
        problems.append("train.label_smoothing and train.edge_dropout must be in [0, 1)")
    if cfg.device not in DEVICES and not re.fullmatch(r"cuda:\d+", cfg.device):
        problems.append(f"train.device = {cfg.device!r} (expected one of {list(DEVICES)}, "
                        "or cuda:N)")
    if cfg.graph_batches not in GRAPH_BATCHES:
        problems.append(f"train.graph_batches = {cfg.graph_batches!r} (expected one of "
                        f"{list(GRAPH_BATCHES)})")
    problems += fan_out_problems(cfg.num_neighbors, cfg.edge_num_neighbors)
    if not cfg.test_chromosomes:
        problems.append("train.test_chromosomes is empty (expected e.g. ['chr8'])")
    both = sorted(set(cfg.test_chromosomes) & set(cfg.val_chromosomes))
    if both:
        problems.append(f"chromosomes {both} are in both train.test_chromosomes and "
                        "train.val_chromosomes")
    return problems


@dataclass(frozen=True)
class PretrainConfig:
    """Masked-nucleotide pretraining of the promoter encoder on training-chromosome promoters,
    run by :func:`~genesplice.training.experiment.run_experiment` before the models are
    trained (skipped when an encoder checkpoint is passed instead).

    ``steps``: 0 = no pretraining. ``compare``: also train the fused model from a random
    encoder (reported as ``fused (no pretraining)``).

    The contrastive view (``genesplice pretrain`` defaults; see
    :mod:`genesplice.training.pretrain`): ``contrastive_weight`` × InfoNCE between each crop
    and its second view — ``contrastive_views``: ``rc`` (reverse complement), ``shift`` (the
    same locus shifted by up to ``max_shift_bp`` bases) or ``both``; 0 = masked nucleotides only.
    0.03 measured best on the EPDnew promoters (400 steps, 2 seeds): held-out masked loss
    within seed noise of weight 0 (+0.003 nats), RC-consistency margin 0.29–0.42 (vs 0.01–0.02);
    0.1 already costs 0.04 nats. Not yet used by ``train``'s own pretraining (masked only).
    """

    steps: int = 250
    compare: bool = True
    contrastive_weight: float = 0.03
    contrastive_views: str = "rc"
    max_shift_bp: int = 0
    contrastive_temperature: float = 0.1

    def __post_init__(self) -> None:
        problems = []
        if self.steps < 0:
            problems.append(f"pretrain.steps = {self.steps} (expected >= 0)")
        if not self.contrastive_weight >= 0:
            problems.append(f"pretrain.contrastive_weight = {self.contrastive_weight} "
                            "(expected >= 0)")
        if self.contrastive_views not in CONTRASTIVE_VIEWS:
            problems.append(f"pretrain.contrastive_views = {self.contrastive_views!r} "
                            f"(expected one of {list(CONTRASTIVE_VIEWS)})")
        elif self.max_shift_bp < 0 or (self.contrastive_views != "rc" and self.max_shift_bp < 1):
            problems.append(f"pretrain.max_shift_bp = {self.max_shift_bp} (expected >= 0, and "
                            f">= 1 with contrastive_views = {self.contrastive_views!r})")
        if not self.contrastive_temperature > 0:
            problems.append(f"pretrain.contrastive_temperature = "
                            f"{self.contrastive_temperature} (expected > 0)")
        if problems:
            raise GeneSpliceInputError("; ".join(problems))


@dataclass(frozen=True)
class RidgeConfig:
    """The ridge baseline on gene -> term/pathway/TF membership features.

    ``min_genes_per_feature``: a membership feature is kept (for the ridge baseline and the
    model's linear path alike) when at least this many labelled genes have it.
    """

    alphas: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
    min_genes_per_feature: int = 5

    def __post_init__(self) -> None:
        object.__setattr__(self, "alphas", tuple(float(a) for a in self.alphas))
        if not self.alphas or any(not a > 0 for a in self.alphas):
            raise GeneSpliceInputError(f"ridge.alphas = {list(self.alphas)} (expected a "
                                       "non-empty list of numbers > 0)")
        if self.min_genes_per_feature < 1:
            raise GeneSpliceInputError("ridge.min_genes_per_feature must be >= 1")


@dataclass(frozen=True)
class RunConfig:
    """One run: top-level ``name`` / ``out_dir`` plus one field per TOML section."""

    name: str = "demo"
    out_dir: str = "runs/demo"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    ridge: RidgeConfig = field(default_factory=RidgeConfig)


def load_config(path: str | os.PathLike, cls: type[T] = RunConfig) -> T:  # type: ignore[assignment]
    """Read a TOML run config (:func:`genesplice.io.toml.load_config`); missing keys take
    their defaults."""
    return _load_toml(path, cls)
