"""Does long sequence help? Gene embeddings from 60 bp, ±10 kb and ±50 kb of real DNA, compared.

The study (issue 5, "Does long sequence help?"), on real data only:

* **Cohort**: genes whose TSS (hg19 Xpresso CAGE-corrected windows, TSS = start + 10000) lies in
  the bundled GRCh37 sequence (all of chr20, chrX 1-70 Mb) with a full ±10 kb window, whose
  Ensembl id maps to a symbol of the expression table. Targets: log10(nTPM + 1) per tissue.
* **Views** per gene, all oriented on the gene's strand with the TSS at the centre: the 60 bp
  EPDnew core promoter (−49..+10; where EPDnew has none for the gene, the same 60 bp cut from
  the genome at the Xpresso TSS — counted), ±10 kb and ±50 kb windows (longer flanks are a
  parameter; bases beyond a contig end are padding with mask ``False``), and all views
  concatenated ("nested").
* **Feature sets** per view: k-mer composition (3-mer and 4-mer frequencies, GC fraction, CpG
  observed/expected, fraction of real A/C/G/T bases) and SequenceEncoder embeddings
  (:meth:`SequenceEncoderConfig.long_study`: the small config's widths with a
  128-bases-per-token stem; one set of weights for every length; the TSS-pooled embedding concatenated with the
  mean of the token states), from a randomly initialised encoder and from one pretrained with
  masked-nucleotide modelling on crops of the *training* genes' windows only.
* **Model**: ridge regression (:func:`genesplice.training.ridge.fit_level_profile_ridge`),
  separately for the gene's level (mean over tissues) and its centred tissue profile, each with
  its alpha chosen by inner k-fold CV on the training genes.
  Whole-chromosome split: train on chrX genes, test on chr20 genes. The 60 bp view is also fit
  with the main training set's promoters added (EPDnew genes off chr8/chr9/chr20).
* **Metrics** (:func:`genesplice.training.metrics.evaluate_predictions`) on the chr20 genes:
  per-tissue Pearson/Spearman across genes, per-gene Pearson of centred profiles, pooled r²,
  plus the Pearson of the level across genes and bootstrap standard errors over test genes.

The cohort, the windows and the genome reader live in :mod:`genesplice.sequence`
(:mod:`~genesplice.sequence.cohort`, :mod:`~genesplice.sequence.windows`,
:mod:`~genesplice.sequence.genome`); everything is set by one :class:`LongSequenceStudyConfig`.

A reference row predicts every test gene as the training genes' mean (level and profile): its
per-tissue correlation is undefined, but its per-gene value says how much of tissue
specificity is just "the average gene's profile".
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from genesplice.annotations.expression import ExpressionTable, read_expression_table
from genesplice.io.atomic import atomic_write_text
from genesplice.io.chromosomes import normalize_chromosome
from genesplice.io.constants import EPDNEW_PROMOTERS, TSS_BED_HG19
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig
from genesplice.sequence.cohort import CohortReport, LongSequenceCohort, build_cohort
from genesplice.sequence.encode import N_BASES
from genesplice.sequence.genome import Genome
from genesplice.sequence.promoters import read_promoter_fasta
from genesplice.sequence.tss import read_tss_bed
from genesplice.sequence.windows import WindowSet, extract_windows, promoter_windows
from genesplice.training.metrics import evaluate_predictions, masked_pearson
from genesplice.training.pretrain import pretrain_encoder, torch_threads
from genesplice.training.ridge import CV_ALPHAS, fit_level_profile_ridge
from genesplice.training.splits import gene_chromosomes
from genesplice.training.targets import level_profile

log = logging.getLogger(__name__)

ENCODER_CHOICES = ("random", "pretrained")
KMER_FAMILY = "k-mer (3+4-mer, GC, CpG)"
RANDOM_FAMILY = "encoder, random init"
PRETRAINED_FAMILY = "encoder, pretrained (MLM on train windows)"


# ------------------------------------------------------------------------------------ config

@dataclass(frozen=True)
class LongSequenceStudyConfig:
    """Every setting of :func:`run_long_sequence_study` (defaults: the study as reported).

    ``flanks_bp``: the genome windows ±flank (the smallest is the core window every cohort gene
    must have in full; longer ones are edge-padded with mask ``False`` where a contig ends).
    ``encoders``: any of ``random`` (untrained weights, seeded) and ``pretrained`` (masked-
    nucleotide pretraining for ``pretrain_steps`` on random ``pretrain_crop_bp`` crops of the
    training genes' longest windows; scored on crops of the test genes' windows).
    ``n_train_genes`` / ``n_test_genes`` take the first genes of each side (small slices).
    ``main_training_promoters`` adds a 60 bp row trained on the training cohort plus the EPDnew
    promoters of expression-table genes off ``main_exclude_chromosomes`` and the study's
    chromosomes (``chrom_table_path``: symbol → chromosome, default the bundled hg38 TSS table).
    Paths default to the bundled files.
    """
    expression_path: str | os.PathLike | None = None
    tss_path: str | os.PathLike | None = None
    fasta_paths: tuple[str | os.PathLike, ...] | None = None
    promoters_path: str | os.PathLike | None = None
    chrom_table_path: str | os.PathLike | None = None
    flanks_bp: tuple[int, ...] = (10_000, 50_000)
    train_chromosomes: tuple[str, ...] = ("chrX",)
    test_chromosomes: tuple[str, ...] = ("chr20",)
    main_exclude_chromosomes: tuple[str, ...] = ("chr8", "chr9")
    encoders: tuple[str, ...] = ENCODER_CHOICES
    pretrain_steps: int = 300
    pretrain_crop_bp: int = 4_096
    main_training_promoters: bool = True
    n_train_genes: int | None = None
    n_test_genes: int | None = None
    alphas: tuple[float, ...] = CV_ALPHAS
    n_boot: int = 200
    seed: int = 0
    num_threads: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        for name in ("fasta_paths", "flanks_bp", "train_chromosomes", "test_chromosomes",
                     "main_exclude_chromosomes", "encoders", "alphas"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        unknown = sorted(set(self.encoders) - set(ENCODER_CHOICES))
        if unknown:
            raise GeneSpliceInputError(f"unknown encoders {unknown} (expected 'random' and/or "
                                       "'pretrained')")
        flanks = sorted(int(f) for f in self.flanks_bp)
        if not flanks or flanks[0] < 100:
            raise GeneSpliceInputError(f"flanks_bp must be >= 100 bp (got {list(self.flanks_bp)})")
        object.__setattr__(self, "flanks_bp", tuple(flanks))


# ------------------------------------------------------------------------------------ features

def kmer_features(windows: WindowSet, ks: Sequence[int] = (3, 4), *,
                  batch_genes: int = 32) -> tuple[np.ndarray, list[str]]:
    """``[g, Σ 4^k + 3]`` composition features and their names.

    Per k: frequencies of the k-mers made only of real A/C/G/T bases (oriented on the gene's
    strand). Then GC fraction, CpG observed/expected (``n_CG · L / (n_C · n_G)``) and the
    fraction of the window that is real A/C/G/T.
    """
    names = [f"{k}mer:" + "".join("ACGT"[(code >> (2 * (k - 1 - p))) & 3] for p in range(k))
             for k in ks for code in range(4 ** k)]
    names += ["gc_fraction", "cpg_obs_exp", "acgt_fraction"]
    out = np.zeros((len(windows.gene_ids), len(names)), dtype=np.float64)
    for lo in range(0, len(windows.gene_ids), batch_genes):
        t = windows.tokens[lo:lo + batch_genes].long()
        m = windows.mask[lo:lo + batch_genes]
        base = m & (t < N_BASES)                                  # b l
        t = torch.where(base, t, torch.zeros_like(t))
        b, length = t.shape
        col = 0
        for k in ks:
            n = length - k + 1
            if n <= 0:
                col += 4 ** k
                continue
            code = torch.zeros((b, n), dtype=torch.long)
            valid = torch.ones((b, n), dtype=torch.bool)
            for p in range(k):
                code = code * 4 + t[:, p:p + n]
                valid &= base[:, p:p + n]
            counts = torch.zeros((b, 4 ** k), dtype=torch.float64)
            counts.scatter_add_(1, code, valid.to(torch.float64))
            out[lo:lo + b, col:col + 4 ** k] = (counts / counts.sum(1, keepdim=True).clamp(min=1)).numpy()
            col += 4 ** k
        n_base = base.sum(1).to(torch.float64)
        n_c = ((t == 1) & base).sum(1).to(torch.float64)
        n_g = ((t == 2) & base).sum(1).to(torch.float64)
        n_cg = ((t[:, :-1] == 1) & (t[:, 1:] == 2) & base[:, :-1] & base[:, 1:]).sum(1).to(torch.float64)
        out[lo:lo + b, col] = ((n_c + n_g) / n_base.clamp(min=1)).numpy()
        out[lo:lo + b, col + 1] = (n_cg * n_base / (n_c * n_g).clamp(min=1)).numpy()
        out[lo:lo + b, col + 2] = (n_base / max(length, 1)).numpy()
    return out, names


@torch.no_grad()
def encoder_features(encoder: SequenceEncoder, windows: WindowSet, *,
                     max_bases_per_batch: int = 1_600_000) -> np.ndarray:
    """``[g, 2·d]``: the encoder's TSS-pooled embedding and the mean of its token states.

    Runs in eval mode under ``no_grad``, in batches of at most ``max_bases_per_batch`` bases.
    """
    encoder.eval()
    g = len(windows.gene_ids)
    per_batch = max(1, max_bases_per_batch // max(windows.length, 1))
    tss_index = torch.full((per_batch,), windows.upstream, dtype=torch.long)
    out = []
    for lo in range(0, g, per_batch):
        tokens = windows.tokens[lo:lo + per_batch].long()
        mask = windows.mask[lo:lo + per_batch]
        states, state_mask = encoder.token_states(tokens, mask)
        pooled = encoder.pool(states, state_mask, tss_index[:tokens.shape[0]])
        keep = state_mask.unsqueeze(-1).to(states.dtype)
        mean = (states * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        out.append(torch.cat([pooled, mean], dim=-1))
    return torch.cat(out).double().numpy()


# ------------------------------------------------------------------------------------ scoring

def _bootstrap_se(observed: np.ndarray, predicted: np.ndarray, per_gene: np.ndarray,
                  n_boot: int, seed: int) -> tuple[float, float]:
    """Bootstrap (over test genes) standard errors of the mean per-tissue Pearson and of the
    mean per-gene centred Pearson (``per_gene [g]``, which does not depend on the other genes,
    so its values are resampled)."""
    mask = ~np.isnan(observed)
    rng = np.random.default_rng(seed)
    g = observed.shape[0]
    tissue_means, gene_means = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, g, g)
        r = masked_pearson(observed[idx], predicted[idx], mask[idx], axis=0)
        tissue_means.append(np.nanmean(r) if np.isfinite(r).any() else np.nan)
        gene_means.append(np.nanmean(per_gene[idx]) if np.isfinite(per_gene[idx]).any()
                          else np.nan)
    se_t = float(np.nanstd(tissue_means)) if np.isfinite(tissue_means).any() else float("nan")
    se_g = float(np.nanstd(gene_means)) if np.isfinite(gene_means).any() else float("nan")
    return se_t, se_g


def score_predictions(observed: pd.DataFrame, predicted: np.ndarray, *, model: str,
                      n_boot: int = 200, seed: int = 0) -> dict:
    """Summary metrics of :func:`evaluate_predictions` plus the Pearson of the level across
    genes (``pearson_level``) and bootstrap SEs (``se_pearson_tissue``, ``se_pearson_gene``).

    ``observed``: genes x tissues (NaN = missing); ``predicted``: ``[g, t]`` in its order.
    """
    pred = pd.DataFrame(predicted, index=observed.index, columns=observed.columns)
    result = evaluate_predictions(observed, pred, model=model)
    summary = dict(result.summary)
    obs = observed.to_numpy(float)
    lp_obs = level_profile(obs)
    lp_pred = level_profile(np.asarray(predicted, dtype=np.float64), lp_obs.mask)
    has = (lp_obs.n_observed > 0)[:, None]
    summary["pearson_level"] = float(masked_pearson(lp_obs.level[:, None],
                                                    lp_pred.level[:, None], has, axis=0)[0])
    per_gene = result.per_gene["pearson_centred"].to_numpy(float)
    se_t, se_g = (_bootstrap_se(obs, predicted, per_gene, n_boot, seed) if n_boot
                  else (np.nan, np.nan))
    summary["se_pearson_tissue"], summary["se_pearson_gene"] = se_t, se_g
    return summary


# ------------------------------------------------------------------------------------ study

@dataclass(frozen=True)
class LongSequenceResult:
    table: pd.DataFrame                 # one row per (features, window)
    cohort: CohortReport
    seconds: dict[str, float]
    notes: tuple[str, ...]
    markdown_path: Path | None = None
    csv_path: Path | None = None
    pretraining: dict = field(default_factory=dict)

    def markdown(self) -> str:
        return to_markdown(self.table, self.cohort, self.notes, self.seconds)


TABLE_COLUMNS = ["features", "window", "n_train", "n_test", "n_features", "alpha_level",
                 "alpha_profile", "pearson_tissue", "se_pearson_tissue", "spearman_tissue",
                 "pearson_gene", "se_pearson_gene", "pearson_level", "r2_pooled", "mse"]


def to_markdown(table: pd.DataFrame, cohort: CohortReport, notes: Sequence[str],
                seconds: dict[str, float]) -> str:
    def fmt(v, digits=3):
        if isinstance(v, str):
            return v
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return "–"
        if isinstance(v, (int, np.integer)):
            return f"{int(v):,}"
        return f"{v:.{digits}f}"

    def pm(v, se):
        return fmt(v) if not np.isfinite(v) or not np.isfinite(se) else f"{v:.3f} ± {se:.3f}"

    lines = ["# Does long sequence help?", "",
             f"Cohort: {cohort.summary()}.", "",
             "Ridge (level and centred profile, alphas by 5-fold CV on the training genes); "
             "metrics on the held-out test chromosome's genes (± = bootstrap SE over genes).", "",
             "| features | window | n train | n feat | per-tissue Pearson | per-tissue Spearman "
             "| per-gene Pearson (centred) | level Pearson | r² pooled | α level | α profile |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in table.itertuples():
        lines.append(
            f"| {r.features} | {r.window} | {fmt(r.n_train)} | {fmt(r.n_features)} | "
            f"{pm(r.pearson_tissue, r.se_pearson_tissue)} | {fmt(r.spearman_tissue)} | "
            f"{pm(r.pearson_gene, r.se_pearson_gene)} | {fmt(r.pearson_level)} | "
            f"{fmt(r.r2_pooled)} | {fmt(r.alpha_level, 1)} | {fmt(r.alpha_profile, 1)} |")
    lines += ["", *[f"- {n}" for n in notes],
              "- Time: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()), ""]
    return "\n".join(lines)


def _flank_label(flank_bp: int) -> str:
    return f"±{flank_bp // 1000} kb" if flank_bp % 1000 == 0 else f"±{flank_bp:,} bp"


@dataclass(frozen=True)
class StudyData:
    """What the study reads: the cohort, its windows (``views``: 60 bp, then ±each flank) and
    the targets. ``train_idx`` / ``test_idx`` index ``gene_ids`` (and every view's rows)."""
    expression: ExpressionTable
    promoters: pd.DataFrame
    cohort: LongSequenceCohort
    gene_ids: list[str]
    longest: WindowSet
    views: list[WindowSet]
    train_idx: np.ndarray
    test_idx: np.ndarray

    @property
    def observed_test(self) -> pd.DataFrame:
        return self.expression.values.loc[[self.gene_ids[i] for i in self.test_idx]]

    def values(self, rows: np.ndarray) -> np.ndarray:
        """``[len(rows), t]`` expression of the cohort genes ``rows`` (NaN = missing)."""
        return self.expression.values.loc[[self.gene_ids[i] for i in rows]].to_numpy(float)


def read_study_data(cfg: LongSequenceStudyConfig, notes: list[str]) -> StudyData:
    """Cohort, windows of every view and targets (appends what was filled or padded to
    ``notes``)."""
    flanks = cfg.flanks_bp
    expr = read_expression_table(cfg.expression_path)
    tss = read_tss_bed(cfg.tss_path or knowledge_path(TSS_BED_HG19))
    with Genome.grch37(cfg.fasta_paths) as genome:
        cohort = build_cohort(expr, tss, genome, core_flank_bp=flanks[0],
                              train_chromosomes=cfg.train_chromosomes,
                              test_chromosomes=cfg.test_chromosomes)
        if cfg.n_train_genes is not None or cfg.n_test_genes is not None:
            split = cohort.genes["split"]
            cohort = cohort.head(cfg.n_train_genes or int((split == "train").sum()),
                                 cfg.n_test_genes or int((split == "test").sum()))
        longest = extract_windows(genome, cohort.genes, flanks[-1], flanks[-1],
                                  name=_flank_label(flanks[-1]))
    gene_ids = list(cohort.genes["gene_id"])
    promoters = read_promoter_fasta(cfg.promoters_path or knowledge_path(EPDNEW_PROMOTERS))
    prom, n_fill = promoter_windows(gene_ids, promoters, longest, name="60 bp")
    n_padded = int((~longest.mask).any(1).sum())
    notes.append(f"60 bp = EPDnew core promoter (−49..+10) for {len(gene_ids) - n_fill} "
                 f"genes; {n_fill} without an EPDnew record use the same cut of the genome "
                 "at the Xpresso TSS.")
    notes.append(f"{n_padded} genes have bases beyond a contig end in the "
                 f"{_flank_label(flanks[-1])} window (padding, mask False).")
    split = cohort.genes["split"].to_numpy()
    return StudyData(expression=expr, promoters=promoters, cohort=cohort, gene_ids=gene_ids,
                     longest=longest,
                     views=[prom] + [longest.centre(f, f, _flank_label(f)) for f in flanks],
                     train_idx=np.flatnonzero(split == "train"),
                     test_idx=np.flatnonzero(split == "test"))


def _pretrained_encoder(cfg: LongSequenceStudyConfig, data: StudyData,
                        enc_cfg: SequenceEncoderConfig) -> tuple[SequenceEncoder, dict, str]:
    """Masked-nucleotide pretraining on crops of the training genes' longest windows (held
    out: the test genes'); the encoder, a summary dict and a note."""
    tr = data.longest.rows([data.gene_ids[i] for i in data.train_idx])
    te = data.longest.rows([data.gene_ids[i] for i in data.test_idx])
    steps, crop = cfg.pretrain_steps, cfg.pretrain_crop_bp
    result = pretrain_encoder(enc_cfg, (tr.tokens.long(), tr.mask), steps=steps,
                              warmup=max(1, steps // 10), batch_size=16, lr=2e-3,
                              seed=cfg.seed, crop_bp=crop,
                              held_out=(te.tokens.long(), te.mask), progress=cfg.progress)
    enc = SequenceEncoder(enc_cfg)
    enc.load_state_dict(result.encoder_state)
    a, b = result.held_out_after, result.held_out_before
    summary = {"steps": steps, "crop_bp": crop, "held_out_loss": a.loss,
               "unigram_entropy": a.unigram_entropy, "untrained_loss": b.loss,
               "seconds": result.seconds}
    note = (f"Pretraining: {steps} steps of masked-nucleotide modelling on {crop:,} bp crops "
            f"of the training genes' windows; held-out (test-gene crops) masked loss "
            f"{a.loss:.4f} nats vs unigram entropy {a.unigram_entropy:.4f} (untrained "
            f"{b.loss:.4f}).")
    return enc, summary, note


def feature_families(cfg: LongSequenceStudyConfig, data: StudyData, notes: list[str],
                     seconds: dict[str, float]
                     ) -> tuple[dict[str, list[np.ndarray]], dict[str, SequenceEncoder], dict]:
    """Feature set name → one ``[g, p]`` array per view; the encoders by family name; the
    pretraining summary (empty without the pretrained encoder)."""
    t = time.perf_counter()
    families: dict[str, list[np.ndarray]] = {KMER_FAMILY: [kmer_features(v)[0]
                                                           for v in data.views]}
    seconds["k-mer features"] = time.perf_counter() - t
    enc_cfg = SequenceEncoderConfig.long_study()
    encoders: dict[str, SequenceEncoder] = {}
    pretraining: dict = {}
    if "random" in cfg.encoders:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            encoders[RANDOM_FAMILY] = SequenceEncoder(enc_cfg)
    if "pretrained" in cfg.encoders:
        t = time.perf_counter()
        encoders[PRETRAINED_FAMILY], pretraining, note = _pretrained_encoder(cfg, data, enc_cfg)
        notes.append(note)
        seconds["pretraining"] = time.perf_counter() - t
    for name, enc in encoders.items():
        t = time.perf_counter()
        families[name] = [encoder_features(enc, v) for v in data.views]
        seconds[f"embed ({name.split(',')[1].strip()})"] = time.perf_counter() - t
    return families, encoders, pretraining


def _score_row(cfg: LongSequenceStudyConfig, observed_test: pd.DataFrame, pred: np.ndarray, *,
               features: str, window: str, n_train: int, n_features: int,
               model=None) -> dict:
    return {"features": features, "window": window, "n_train": n_train,
            "n_test": len(observed_test), "n_features": n_features,
            "alpha_level": np.nan if model is None else model.alpha_level,
            "alpha_profile": np.nan if model is None else model.alpha_profile,
            **score_predictions(observed_test, pred,
                                model="mean" if model is None else f"{features} {window}",
                                n_boot=cfg.n_boot, seed=cfg.seed)}


def ridge_rows(cfg: LongSequenceStudyConfig, data: StudyData,
               families: dict[str, list[np.ndarray]]) -> list[dict]:
    """The reference row (training-gene mean), then one ridge row per (family, view) and per
    family for all views concatenated."""
    train_vals = data.values(data.train_idx)
    observed_test = data.observed_test
    n_train = len(data.train_idx)
    mean_pred = np.tile(np.nanmean(train_vals, axis=0), (len(data.test_idx), 1))
    rows = [_score_row(cfg, observed_test, mean_pred, features="training-gene mean (reference)",
                       window="–", n_train=n_train, n_features=0)]
    view_names = [v.name for v in data.views]
    for fam, feats in families.items():
        sets = list(zip(view_names, feats))
        sets.append((" + ".join(view_names), np.concatenate(feats, axis=1)))
        for window, x in sets:
            model = fit_level_profile_ridge(x[data.train_idx], train_vals, alphas=cfg.alphas,
                                            seed=cfg.seed)
            rows.append(_score_row(cfg, observed_test, model.predict(x[data.test_idx]),
                                   features=fam, window=window, n_train=n_train,
                                   n_features=x.shape[1], model=model))
    return rows


def _main_set_genes(cfg: LongSequenceStudyConfig, data: StudyData
                    ) -> tuple[list[str], set[str], int]:
    """Expression-table genes with an EPDnew promoter, off the excluded chromosomes and not in
    the cohort; the excluded chromosomes; how many candidates have no known chromosome."""
    chrom_of = gene_chromosomes(cfg.chrom_table_path)
    excluded = {normalize_chromosome(c) for c in cfg.main_exclude_chromosomes
                + cfg.test_chromosomes + cfg.train_chromosomes}
    cohort = set(data.gene_ids)
    first = data.promoters.drop_duplicates("gene_symbol", keep="first")
    values = data.expression.values
    cand = [g for g in first["gene_symbol"] if g in values.index and g not in cohort]
    chrom = pd.Series(cand, dtype=object).map(chrom_of)
    extra = [g for g, c in zip(cand, chrom) if isinstance(c, str) and c not in excluded]
    return extra, excluded, int(chrom.isna().sum())


def main_promoter_rows(cfg: LongSequenceStudyConfig, data: StudyData,
                       families: dict[str, list[np.ndarray]],
                       encoders: dict[str, SequenceEncoder]) -> tuple[list[dict], str]:
    """60 bp rows trained on the cohort's training genes plus the main training promoters."""
    extra_genes, excluded, n_unknown = _main_set_genes(cfg, data)
    extra, _ = promoter_windows(extra_genes, data.promoters, name="60 bp")
    values = np.concatenate([data.values(data.train_idx),
                             data.expression.values.loc[extra_genes].to_numpy(float)])
    observed_test = data.observed_test
    rows = []
    label = f"60 bp, train + {len(extra_genes):,} main-set promoters"
    for fam in families:
        x_extra = (kmer_features(extra)[0] if fam == KMER_FAMILY
                   else encoder_features(encoders[fam], extra))
        x_cohort = families[fam][0]
        model = fit_level_profile_ridge(np.concatenate([x_cohort[data.train_idx], x_extra]),
                                        values, alphas=cfg.alphas, seed=cfg.seed)
        rows.append(_score_row(cfg, observed_test, model.predict(x_cohort[data.test_idx]),
                               features=fam, window=label,
                               n_train=len(data.train_idx) + len(extra_genes),
                               n_features=x_cohort.shape[1], model=model))
    note = (f"Main-set rows: EPDnew promoters of {len(extra_genes):,} expression-table genes "
            f"off {', '.join(sorted(excluded))} (and not in the cohort) added to the training "
            f"genes; {n_unknown} candidate genes without a known chromosome left out.")
    return rows, note


def run_long_sequence_study(config: LongSequenceStudyConfig | None = None, *,
                            out_dir: str | os.PathLike | None = "runs/long_sequence"
                            ) -> LongSequenceResult:
    """Run the study (:class:`LongSequenceStudyConfig`; default: as reported) and, with
    ``out_dir``, write ``long_sequence.md`` and ``long_sequence.csv`` there (atomically)."""
    cfg = config or LongSequenceStudyConfig()
    seconds: dict[str, float] = {}
    notes: list[str] = []
    t0 = time.perf_counter()
    with torch_threads(cfg.num_threads):
        data = read_study_data(cfg, notes)
        seconds["read"] = time.perf_counter() - t0
        families, encoders, pretraining = feature_families(cfg, data, notes, seconds)
        t = time.perf_counter()
        rows = ridge_rows(cfg, data, families)
        seconds["ridge"] = time.perf_counter() - t
        if cfg.main_training_promoters:
            t = time.perf_counter()
            extra_rows, note = main_promoter_rows(cfg, data, families, encoders)
            rows += extra_rows
            notes.append(note)
            seconds["60 bp + main promoters"] = time.perf_counter() - t
    table = pd.DataFrame(rows)
    table = table[TABLE_COLUMNS + [c for c in table.columns if c not in TABLE_COLUMNS]]
    seconds["total"] = time.perf_counter() - t0
    result = LongSequenceResult(table=table, cohort=data.cohort.report, seconds=seconds,
                                notes=tuple(notes), pretraining=pretraining)
    if out_dir is None:
        return result
    md, csv = Path(out_dir) / "long_sequence.md", Path(out_dir) / "long_sequence.csv"
    atomic_write_text(md, result.markdown())
    atomic_write_text(csv, table.to_csv(index=False))
    return LongSequenceResult(table=table, cohort=data.cohort.report, seconds=seconds,
                              notes=tuple(notes), markdown_path=md, csv_path=csv,
                              pretraining=pretraining)


__all__ = [
    "LongSequenceResult", "LongSequenceStudyConfig", "StudyData", "encoder_features",
    "feature_families", "kmer_features", "main_promoter_rows", "read_study_data", "ridge_rows",
    "run_long_sequence_study", "score_predictions", "to_markdown",
]
