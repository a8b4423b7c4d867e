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
  (:func:`long_study_encoder_config`: the small config's widths with a 128-bases-per-token
  stem; one set of weights for every length; the TSS-pooled embedding concatenated with the
  mean of the token states), from a randomly initialised encoder and from one pretrained with
  masked-nucleotide modelling on crops of the *training* genes' windows only.
* **Model**: ridge regression, separately for the gene's level (mean over tissues) and its
  centred tissue profile, each with its alpha chosen by inner k-fold CV on the training genes.
  Whole-chromosome split: train on chrX genes, test on chr20 genes. The 60 bp view is also fit
  with the main training set's promoters added (EPDnew genes off chr8/chr9/chr20).
* **Metrics** (:func:`genesplice.training.metrics.evaluate_predictions`) on the chr20 genes:
  per-tissue Pearson/Spearman across genes, per-gene Pearson of centred profiles, pooled r²,
  plus the Pearson of the level across genes and bootstrap standard errors over test genes.

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

from genesplice.io.constants import EPDNEW_PROMOTERS, GRCH37_FASTAS, TSS_BED_HG19
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.atomic import atomic_write_text
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig
from genesplice.sequence.encode import N_BASES, PAD_INDEX, encode_sequence, reverse_complement_tokens
from genesplice.io.chromosomes import alias_key, normalize_chromosome
from genesplice.sequence.fasta import GenomeWindows
from genesplice.training.metrics import evaluate_predictions

log = logging.getLogger(__name__)

DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-1, 5, 13))
PROMOTER_UPSTREAM, PROMOTER_DOWNSTREAM = 49, 11          # EPDnew −49..+10: TSS at index 49


def long_study_encoder_config(**overrides) -> SequenceEncoderConfig:
    """The study's encoder: :meth:`SequenceEncoderConfig.small` widths and depth (~0.64 M
    parameters) with the base config's 128-bases-per-token stem (strides 8·4·4).

    Measured on the shared 2-core machine (1 thread, 100 kb, no_grad): 0.30 s per window with
    the small config's 32× stem against 0.05 s with this one, which is what keeps the study
    (844 genes × 60 bp + 20 kb + 100 kb, two encoders) within a few minutes.
    """
    return SequenceEncoderConfig.small(**{"stem_strides": (8, 4, 4), **overrides})


# ------------------------------------------------------------------------------------ cohort

@dataclass(frozen=True)
class CohortReport:
    """How the cohort was cut from the TSS table (every dropped gene is counted here)."""
    n_tss_records: int
    n_on_sequence: int              # TSS inside the bundled sequence
    n_partial_window: int           # TSS inside, but the ±core window is not all real sequence
    n_unmapped: int                 # Ensembl id not in the expression table
    n_duplicate_symbol: int         # a second TSS record for a symbol already in the cohort
    n_other_chromosome: int         # on the sequence but neither a train nor a test chromosome
    n_cohort: int
    n_train: int
    n_test: int
    unmapped_examples: tuple[str, ...]
    train_chromosomes: tuple[str, ...]
    test_chromosomes: tuple[str, ...]

    def summary(self) -> str:
        return (f"{self.n_tss_records:,} TSS records; {self.n_on_sequence:,} on the bundled "
                f"sequence; dropped {self.n_partial_window} without a full core window, "
                f"{self.n_unmapped} not in the expression table (e.g. "
                f"{', '.join(self.unmapped_examples) or '-'}), {self.n_duplicate_symbol} "
                f"repeated symbols, {self.n_other_chromosome} on other chromosomes -> cohort "
                f"{self.n_cohort:,}: train {self.n_train} ({','.join(self.train_chromosomes)}), "
                f"test {self.n_test} ({','.join(self.test_chromosomes)})")


@dataclass(frozen=True)
class LongSequenceCohort:
    """``genes``: one row per gene: gene_id (symbol), ensembl_id, chrom (as in the TSS table),
    tss (0-based), strand, genome (index into the genome list), split (``train``/``test``)."""
    genes: pd.DataFrame
    report: CohortReport

    def head(self, n_train: int, n_test: int) -> "LongSequenceCohort":
        """The first ``n_train`` training and ``n_test`` test genes (small slices for tests)."""
        g = self.genes
        keep = pd.concat([g[g["split"] == "train"].head(n_train), g[g["split"] == "test"].head(n_test)])
        return LongSequenceCohort(keep.reset_index(drop=True), self.report)


def open_genomes(fasta_paths: Sequence[str | os.PathLike] | None = None) -> list[GenomeWindows]:
    from genesplice.io.knowledge import knowledge_path
    paths = fasta_paths or [knowledge_path(p) for p in GRCH37_FASTAS]
    return [GenomeWindows(p) for p in paths]


def build_cohort(expression, tss: pd.DataFrame, genomes: Sequence[GenomeWindows], *,
                 core_flank_bp: int = 10_000, train_chromosomes: Sequence[str] = ("chrX",),
                 test_chromosomes: Sequence[str] = ("chr20",)) -> LongSequenceCohort:
    """Genes of ``tss`` (a :func:`~genesplice.sequence.tss.read_tss_bed` table keyed by Ensembl
    id) whose ±``core_flank_bp`` window lies entirely in one of ``genomes`` and whose Ensembl id
    is in ``expression`` (an :class:`~genesplice.annotations.expression.ExpressionTable`)."""
    train_c = {normalize_chromosome(c) for c in train_chromosomes}
    test_c = {normalize_chromosome(c) for c in test_chromosomes}
    if not train_c or not test_c or train_c & test_c:
        raise GeneSpliceInputError(f"train chromosomes {sorted(train_c)} and test chromosomes "
                                   f"{sorted(test_c)} must be non-empty and disjoint")
    genome_of = pd.Series(-1, index=tss.index)
    full = pd.Series(False, index=tss.index)
    minus = (tss["strand"] == "-").to_numpy()
    first = np.where(minus, tss["tss"] - core_flank_bp + 1, tss["tss"] - core_flank_bp)
    last = first + 2 * core_flank_bp - 1          # last base of the ±flank window
    for i, genome in enumerate(genomes):
        for j in np.flatnonzero((genome_of < 0).to_numpy()):
            chrom, pos = tss.at[tss.index[j], "chrom"], int(tss["tss"].iat[j])
            if genome.has_chrom(chrom) and genome.covers(chrom, pos):
                genome_of.iat[j] = i
                full.iat[j] = genome.covers(chrom, int(first[j])) and genome.covers(chrom, int(last[j]))
    on_seq = genome_of >= 0
    ens_to_symbol = pd.Series(expression.ensembl_ids.index.to_numpy(),
                              index=expression.ensembl_ids.to_numpy())
    ens_to_symbol = ens_to_symbol[~ens_to_symbol.index.duplicated(keep="first")]
    symbol = tss["ensembl_id"].fillna(tss["gene_id"]).map(ens_to_symbol)
    chrom = tss["chrom"].map(normalize_chromosome)
    split = pd.Series(np.where(chrom.isin(train_c), "train",
                               np.where(chrom.isin(test_c), "test", "")), index=tss.index)
    partial = on_seq & ~full
    unmapped = on_seq & full & symbol.isna()
    other = on_seq & full & symbol.notna() & (split == "")
    keep = on_seq & full & symbol.notna() & (split != "")
    genes = pd.DataFrame({
        "gene_id": symbol[keep], "ensembl_id": tss.loc[keep, "ensembl_id"],
        "chrom": tss.loc[keep, "chrom"], "tss": tss.loc[keep, "tss"].astype("int64"),
        "strand": tss.loc[keep, "strand"], "genome": genome_of[keep].astype(int),
        "split": split[keep]})
    dup = genes["gene_id"].duplicated(keep="first")
    genes = genes[~dup].reset_index(drop=True)
    report = CohortReport(
        n_tss_records=len(tss), n_on_sequence=int(on_seq.sum()),
        n_partial_window=int(partial.sum()), n_unmapped=int(unmapped.sum()),
        n_duplicate_symbol=int(dup.sum()), n_other_chromosome=int(other.sum()),
        n_cohort=len(genes), n_train=int((genes["split"] == "train").sum()),
        n_test=int((genes["split"] == "test").sum()),
        unmapped_examples=tuple(tss.loc[unmapped, "gene_id"].head(5)),
        train_chromosomes=tuple(sorted(train_c)), test_chromosomes=tuple(sorted(test_c)))
    if not report.n_train or not report.n_test:
        raise GeneSpliceInputError(f"cohort has {report.n_train} training and {report.n_test} "
                                   "test genes (expected both > 0): " + report.summary())
    log.info("long-sequence cohort: %s", report.summary())
    return LongSequenceCohort(genes, report)


# ------------------------------------------------------------------------------------ windows

@dataclass(frozen=True)
class WindowSet:
    """Strand-oriented windows ``[tss - upstream, tss + downstream)`` of a gene list.

    ``tokens`` is uint8 ``[g, l]`` (token ids, see :mod:`genesplice.sequence.encode`; widened to
    long per batch), ``mask`` bool ``[g, l]`` (``False`` beyond contig ends); the TSS is at
    index ``upstream`` of every row.
    """
    gene_ids: tuple[str, ...]
    tokens: torch.Tensor
    mask: torch.Tensor
    upstream: int
    downstream: int
    name: str = ""

    @property
    def length(self) -> int:
        return self.upstream + self.downstream

    def centre(self, upstream: int, downstream: int, name: str = "") -> "WindowSet":
        """The sub-window ``[tss - upstream, tss + downstream)`` (no re-reading)."""
        if upstream > self.upstream or downstream > self.downstream:
            raise ValueError(f"sub-window ±({upstream}, {downstream}) exceeds the window "
                             f"({self.upstream}, {self.downstream})")
        lo = self.upstream - upstream
        return WindowSet(self.gene_ids, self.tokens[:, lo:lo + upstream + downstream],
                         self.mask[:, lo:lo + upstream + downstream], upstream, downstream, name)

    def rows(self, genes: Sequence[str]) -> "WindowSet":
        index = {g: i for i, g in enumerate(self.gene_ids)}
        idx = torch.tensor([index[g] for g in genes], dtype=torch.long)
        return WindowSet(tuple(genes), self.tokens[idx], self.mask[idx], self.upstream,
                         self.downstream, self.name)


def extract_windows(genomes: Sequence[GenomeWindows], genes: pd.DataFrame, upstream: int,
                    downstream: int, *, chunk_bp: int = 4_000_000, name: str = "") -> WindowSet:
    """Windows of every row of ``genes`` (columns gene_id, chrom, tss, strand, genome).

    Same result as :meth:`GenomeWindows.window` per gene, but neighbouring genes share one
    read of up to ``chunk_bp`` bases: a bgzip read costs ~60 ms however short, so 850 reads
    of 100 kb take ~60 s while ~40 chunk reads take a few seconds.
    """
    g = len(genes)
    length = upstream + downstream
    tokens = torch.full((g, length), PAD_INDEX, dtype=torch.uint8)
    mask = torch.zeros((g, length), dtype=torch.bool)
    minus = (genes["strand"] == "-").to_numpy()
    tss = genes["tss"].to_numpy(np.int64)
    start0 = np.where(minus, tss - downstream + 1, tss - upstream)
    end0 = start0 + length
    table = pd.DataFrame({"row": np.arange(g), "genome": genes["genome"].to_numpy(),
                          "chrom": genes["chrom"].map(alias_key).to_numpy(),
                          "chrom_name": genes["chrom"].to_numpy(),
                          "start0": start0, "end0": end0}).sort_values(["genome", "chrom", "start0"])
    for (gi, _), part in table.groupby(["genome", "chrom"], sort=False):
        genome = genomes[int(gi)]
        rows = part.to_dict("records")
        i = 0
        while i < len(rows):
            j, lo, hi = i, rows[i]["start0"], rows[i]["end0"]
            while j + 1 < len(rows) and max(hi, rows[j + 1]["end0"]) - lo <= chunk_bp:
                j += 1
                hi = max(hi, rows[j]["end0"])
            chunk_t, chunk_m = genome.fetch(rows[i]["chrom_name"], int(lo), int(hi), "+")
            for r in rows[i:j + 1]:
                a, b = r["start0"] - lo, r["end0"] - lo
                t, m = chunk_t[a:b], chunk_m[a:b]
                if minus[r["row"]]:
                    t, m = reverse_complement_tokens(t), m.flip(-1)
                tokens[r["row"]] = t.to(torch.uint8)
                mask[r["row"]] = m
            i = j + 1
    return WindowSet(tuple(genes["gene_id"]), tokens, mask, upstream, downstream, name)


def promoter_windows(genes: Sequence[str], promoters: pd.DataFrame,
                     genome_windows: WindowSet | None = None, *, name: str = "60 bp"
                     ) -> tuple[WindowSet, int]:
    """60 bp EPDnew core promoters (first record per symbol) of ``genes``, TSS at index 49.

    Genes without an EPDnew record take the same −49..+10 cut from ``genome_windows`` (a window
    set holding them); returns the window set and how many genes were filled that way.
    Without ``genome_windows`` such genes are an error.
    """
    first = promoters.drop_duplicates("gene_symbol", keep="first").set_index("gene_symbol")
    length = PROMOTER_UPSTREAM + PROMOTER_DOWNSTREAM
    tokens = torch.full((len(genes), length), PAD_INDEX, dtype=torch.uint8)
    mask = torch.zeros((len(genes), length), dtype=torch.bool)
    missing = [i for i, g in enumerate(genes) if g not in first.index]
    if missing and genome_windows is None:
        raise GeneSpliceInputError(f"{len(missing)} genes have no EPDnew promoter (e.g. "
                                   f"{[genes[i] for i in missing[:5]]})")
    for i, g in enumerate(genes):
        if g in first.index:
            t = encode_sequence(first.at[g, "sequence"])[:length]
            tokens[i, :len(t)] = t.to(torch.uint8)
            mask[i, :len(t)] = True
    if missing:
        cut = genome_windows.centre(PROMOTER_UPSTREAM, PROMOTER_DOWNSTREAM).rows(
            [genes[i] for i in missing])
        tokens[missing] = cut.tokens
        mask[missing] = cut.mask
    return WindowSet(tuple(genes), tokens, mask, PROMOTER_UPSTREAM, PROMOTER_DOWNSTREAM,
                     name), len(missing)


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


# ------------------------------------------------------------------------------------ ridge

def _level_profile(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(level [g], centred profile [g, t] with 0 where missing, observed mask [g, t])."""
    mask = ~np.isnan(values)
    n = mask.sum(1)
    level = np.where(mask, values, 0.0).sum(1) / np.maximum(n, 1)
    return level, np.where(mask, values - level[:, None], 0.0), mask


def _ridge_path(x: np.ndarray, y: np.ndarray, alphas: Sequence[float]):
    """Coefficient function of alpha for centred ``x [n, p]``, ``y [n, k]``: one
    eigendecomposition of the smaller Gram matrix (``XᵀX`` when n ≥ p, else ``XXᵀ``).

    The algebra runs in torch (float64) so that ``torch.set_num_threads`` governs it: numpy's
    OpenBLAS threads spin against each other on a busy 2-core machine (54 s vs 1.3 s measured
    for the study's ridge fits).
    """
    xt, yt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)), \
        torch.from_numpy(np.ascontiguousarray(y, dtype=np.float64))
    n, p = xt.shape
    if n >= p:
        lam, v = torch.linalg.eigh(xt.T @ xt)                  # p p
        vty = v.T @ (xt.T @ yt)

        def coef(alpha: float) -> np.ndarray:
            return (v @ (vty / (lam.clamp(min=0) + alpha)[:, None])).numpy()
    else:
        lam, u = torch.linalg.eigh(xt @ xt.T)                  # n n
        uty = u.T @ yt

        def coef(alpha: float) -> np.ndarray:                  # Xᵀ (XXᵀ + αI)⁻¹ y
            return (xt.T @ (u @ (uty / (lam.clamp(min=0) + alpha)[:, None]))).numpy()
    return coef


@dataclass(frozen=True)
class RidgeModel:
    """Level and centred-profile ridge on standardised features (alphas chosen by CV)."""
    mean: np.ndarray
    scale: np.ndarray
    coef_level: np.ndarray      # [p]
    coef_profile: np.ndarray    # [p, t]
    intercept_level: float
    intercept_profile: np.ndarray
    alpha_level: float
    alpha_profile: float
    cv_mse_level: float
    cv_mse_profile: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``[g, t]`` predictions: level + centred profile."""
        z = (x - self.mean) / self.scale
        level = z @ self.coef_level + self.intercept_level
        profile = z @ self.coef_profile + self.intercept_profile
        profile = profile - profile.mean(1, keepdims=True)
        return level[:, None] + profile


def fit_level_profile_ridge(x: np.ndarray, values: np.ndarray, *,
                            alphas: Sequence[float] = DEFAULT_ALPHAS, n_folds: int = 5,
                            seed: int = 0) -> RidgeModel:
    """Ridge for the level and for the centred profile of ``values [n, t]`` (NaN = missing),
    each alpha picked by ``n_folds``-fold CV (MSE over observed cells) on these genes."""
    if x.shape[0] != values.shape[0] or x.shape[0] < n_folds:
        raise ValueError(f"need as many feature rows as genes and >= {n_folds} genes "
                         f"(got {x.shape[0]} and {values.shape[0]})")
    level, profile, obs = _level_profile(values)
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(level)) % n_folds
    err_l = np.zeros(len(alphas))
    err_p = np.zeros(len(alphas))
    for f in range(n_folds):
        tr, te = fold != f, fold == f
        mu, sd = x[tr].mean(0), x[tr].std(0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        ztr, zte = (x[tr] - mu) / sd, (x[te] - mu) / sd
        y = np.concatenate([level[tr, None], profile[tr]], axis=1)
        ymu = y.mean(0)
        coef = _ridge_path(ztr, y - ymu, alphas)
        for a_i, alpha in enumerate(alphas):
            pred = zte @ coef(alpha) + ymu
            err_l[a_i] += ((pred[:, 0] - level[te]) ** 2).sum()
            err_p[a_i] += (((pred[:, 1:] - profile[te]) ** 2) * obs[te]).sum()
    i_l, i_p = int(err_l.argmin()), int(err_p.argmin())
    mu, sd = x.mean(0), x.std(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    z = (x - mu) / sd
    y = np.concatenate([level[:, None], profile], axis=1)
    ymu = y.mean(0)
    coef = _ridge_path(z, y - ymu, alphas)
    c_l, c_p = coef(alphas[i_l]), coef(alphas[i_p])
    return RidgeModel(mean=mu, scale=sd, coef_level=c_l[:, 0], coef_profile=c_p[:, 1:],
                      intercept_level=float(ymu[0]), intercept_profile=ymu[1:],
                      alpha_level=float(alphas[i_l]), alpha_profile=float(alphas[i_p]),
                      cv_mse_level=float(err_l[i_l] / len(level)),
                      cv_mse_profile=float(err_p[i_p] / max(obs.sum(), 1)))


# ------------------------------------------------------------------------------------ scoring

def _bootstrap_se(observed: np.ndarray, predicted: np.ndarray, n_boot: int, seed: int
                  ) -> tuple[float, float]:
    """Bootstrap (over test genes) standard errors of mean per-tissue Pearson and mean
    per-gene centred Pearson."""
    mask = ~np.isnan(observed)
    rng = np.random.default_rng(seed)
    g = observed.shape[0]
    # per-gene centred Pearson does not depend on the other genes: resample its values
    lvl_o, prof_o, _ = _level_profile(observed)
    pc = np.where(mask, predicted - np.where(mask, predicted, 0).sum(1, keepdims=True)
                  / np.maximum(mask.sum(1, keepdims=True), 1), 0.0)
    num = (prof_o * pc * mask).sum(1)
    den = np.sqrt((prof_o ** 2 * mask).sum(1) * (pc ** 2 * mask).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        per_gene = np.where(den > 0, num / den, np.nan)
    tissue_means, gene_means = [], []
    o = np.where(mask, observed, 0.0)
    p = np.where(mask, predicted, 0.0)
    for _ in range(n_boot):
        idx = rng.integers(0, g, g)
        mo, oo, pp = mask[idx], o[idx], p[idx]
        n = mo.sum(0)
        om = oo.sum(0) / np.maximum(n, 1)
        pm = pp.sum(0) / np.maximum(n, 1)
        do, dp = (oo - om) * mo, (pp - pm) * mo
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (do * dp).sum(0) / np.sqrt((do ** 2).sum(0) * (dp ** 2).sum(0))
        tissue_means.append(np.nanmean(r) if np.isfinite(r).any() else np.nan)
        gene_means.append(np.nanmean(per_gene[idx]))
    se_t = float(np.nanstd(tissue_means)) if np.isfinite(tissue_means).any() else float("nan")
    return se_t, float(np.nanstd(gene_means))


def score_predictions(observed: pd.DataFrame, predicted: np.ndarray, *, model: str,
                      n_boot: int = 200, seed: int = 0) -> dict:
    """Summary metrics of :func:`evaluate_predictions` plus level Pearson and bootstrap SEs."""
    pred = pd.DataFrame(predicted, index=observed.index, columns=observed.columns)
    summary = dict(evaluate_predictions(observed, pred, model=model).summary)
    obs = observed.to_numpy(float)
    lvl_o, _, _ = _level_profile(obs)
    lvl_p = np.where(~np.isnan(obs), predicted, 0).sum(1) / np.maximum((~np.isnan(obs)).sum(1), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        summary["pearson_level"] = (float(np.corrcoef(lvl_o, lvl_p)[0, 1])
                                    if np.std(lvl_p) > 0 else float("nan"))
    se_t, se_g = _bootstrap_se(obs, predicted, n_boot, seed) if n_boot else (np.nan, np.nan)
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


def _write_atomic(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def _flank_label(flank_bp: int) -> str:
    return f"±{flank_bp // 1000} kb" if flank_bp % 1000 == 0 else f"±{flank_bp:,} bp"


def run_long_sequence_study(out_dir: str | os.PathLike | None = "runs/long_sequence", *,
                            expression_path: str | os.PathLike | None = None,
                            tss_path: str | os.PathLike | None = None,
                            fasta_paths: Sequence[str | os.PathLike] | None = None,
                            promoters_path: str | os.PathLike | None = None,
                            chrom_table_path: str | os.PathLike | None = None,
                            flanks_bp: Sequence[int] = (10_000, 50_000),
                            train_chromosomes: Sequence[str] = ("chrX",),
                            test_chromosomes: Sequence[str] = ("chr20",),
                            main_exclude_chromosomes: Sequence[str] = ("chr8", "chr9"),
                            encoders: Sequence[str] = ("random", "pretrained"),
                            pretrain_steps: int = 300, pretrain_crop_bp: int = 4_096,
                            main_training_promoters: bool = True,
                            n_train_genes: int | None = None, n_test_genes: int | None = None,
                            alphas: Sequence[float] = DEFAULT_ALPHAS, n_boot: int = 200,
                            seed: int = 0, num_threads: int | None = None,
                            progress: bool = False) -> LongSequenceResult:
    """Run the study and (with ``out_dir``) write ``long_sequence.md`` and ``long_sequence.csv``.

    ``flanks_bp``: the genome windows ±flank (the first is the core window every cohort gene
    must have in full; longer ones are edge-padded with mask ``False`` where a contig ends).
    ``encoders``: any of ``random`` (untrained weights, seeded) and ``pretrained`` (masked-
    nucleotide pretraining for ``pretrain_steps`` on random ``pretrain_crop_bp`` crops of the
    training genes' longest windows; scored on crops of the test genes' windows).
    ``n_train_genes`` / ``n_test_genes`` take the first genes of each side (small slices).
    ``main_training_promoters`` adds a 60 bp row trained on the chrX cohort plus the EPDnew
    promoters of expression-table genes off ``main_exclude_chromosomes`` and the test
    chromosomes (``chrom_table_path``: symbol → chromosome, default the bundled hg38 TSS table).
    """
    from genesplice.annotations.expression import read_expression_table
    from genesplice.io.knowledge import knowledge_path
    from genesplice.sequence.promoters import read_promoter_fasta
    from genesplice.sequence.tss import read_tss_bed
    from genesplice.training.pretrain import pretrain_encoder, torch_threads

    unknown = sorted(set(encoders) - {"random", "pretrained"})
    if unknown:
        raise GeneSpliceInputError(f"unknown encoders {unknown} (expected 'random' and/or "
                                   "'pretrained')")
    flanks = sorted(int(f) for f in flanks_bp)
    if not flanks or flanks[0] < 100:
        raise GeneSpliceInputError(f"flanks_bp must be >= 100 bp (got {list(flanks_bp)})")
    seconds: dict[str, float] = {}
    notes: list[str] = []
    t0 = time.perf_counter()
    with torch_threads(num_threads):
        expr = read_expression_table(expression_path)
        tss = read_tss_bed(tss_path or knowledge_path(TSS_BED_HG19))
        genomes = open_genomes(fasta_paths)
        cohort = build_cohort(expr, tss, genomes, core_flank_bp=flanks[0],
                              train_chromosomes=train_chromosomes,
                              test_chromosomes=test_chromosomes)
        if n_train_genes is not None or n_test_genes is not None:
            g = cohort.genes
            cohort = cohort.head(n_train_genes or int((g["split"] == "train").sum()),
                                 n_test_genes or int((g["split"] == "test").sum()))
        genes = cohort.genes
        gene_ids = list(genes["gene_id"])
        longest = extract_windows(genomes, genes, flanks[-1], flanks[-1],
                                  name=_flank_label(flanks[-1]))
        for gw in genomes:
            gw.close()
        promoters = read_promoter_fasta(promoters_path or knowledge_path(EPDNEW_PROMOTERS))
        prom, n_fill = promoter_windows(gene_ids, promoters, longest, name="60 bp")
        views = [prom] + [longest.centre(f, f, _flank_label(f)) for f in flanks]
        n_padded = int((~longest.mask).any(1).sum())
        notes.append(f"60 bp = EPDnew core promoter (−49..+10) for {len(gene_ids) - n_fill} "
                     f"genes; {n_fill} without an EPDnew record use the same cut of the genome "
                     "at the Xpresso TSS.")
        notes.append(f"{n_padded} genes have bases beyond a contig end in the "
                     f"{_flank_label(flanks[-1])} window (padding, mask False).")
        seconds["read"] = time.perf_counter() - t0

        train_idx = np.flatnonzero((genes["split"] == "train").to_numpy())
        test_idx = np.flatnonzero((genes["split"] == "test").to_numpy())
        values = expr.values.loc[gene_ids].to_numpy(float)
        observed_test = expr.values.loc[[gene_ids[i] for i in test_idx]]

        # feature sets: name -> list of [g, p] arrays, one per view
        t = time.perf_counter()
        families: dict[str, list[np.ndarray]] = {"k-mer (3+4-mer, GC, CpG)":
                                                 [kmer_features(v)[0] for v in views]}
        seconds["k-mer features"] = time.perf_counter() - t
        enc_cfg = long_study_encoder_config()
        encoder_models: dict[str, SequenceEncoder] = {}
        pretraining: dict = {}
        if "random" in encoders:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                encoder_models["encoder, random init"] = SequenceEncoder(enc_cfg)
        if "pretrained" in encoders:
            t = time.perf_counter()
            tr = longest.rows([gene_ids[i] for i in train_idx])
            te = longest.rows([gene_ids[i] for i in test_idx])
            result = pretrain_encoder(
                enc_cfg, (tr.tokens.long(), tr.mask), steps=pretrain_steps,
                warmup=max(1, pretrain_steps // 10), batch_size=16, lr=2e-3, seed=seed,
                crop_bp=pretrain_crop_bp, held_out=(te.tokens.long(), te.mask),
                progress=progress)
            enc = SequenceEncoder(enc_cfg)
            enc.load_state_dict(result.encoder_state)
            encoder_models["encoder, pretrained (MLM on train windows)"] = enc
            a = result.held_out_after
            pretraining = {"steps": pretrain_steps, "crop_bp": pretrain_crop_bp,
                           "held_out_loss": a.loss, "unigram_entropy": a.unigram_entropy,
                           "untrained_loss": result.held_out_before.loss,
                           "seconds": result.seconds}
            notes.append(f"Pretraining: {pretrain_steps} steps of masked-nucleotide modelling on "
                         f"{pretrain_crop_bp:,} bp crops of the training genes' windows; "
                         f"held-out (test-gene crops) masked loss {a.loss:.4f} nats vs "
                         f"unigram entropy {a.unigram_entropy:.4f} (untrained "
                         f"{result.held_out_before.loss:.4f}).")
            seconds["pretraining"] = time.perf_counter() - t
        for name, enc in encoder_models.items():
            t = time.perf_counter()
            families[name] = [encoder_features(enc, v) for v in views]
            seconds[f"embed ({name.split(',')[1].strip()})"] = time.perf_counter() - t

        # ridge per (family, view) and the nested concatenation
        t = time.perf_counter()
        rows = []
        train_vals, test_vals = values[train_idx], values[test_idx]
        mean_pred = np.tile(np.nanmean(train_vals, axis=0), (len(test_idx), 1))
        rows.append({"features": "training-gene mean (reference)", "window": "–",
                     "n_train": len(train_idx), "n_test": len(test_idx), "n_features": 0,
                     "alpha_level": np.nan, "alpha_profile": np.nan,
                     **score_predictions(observed_test, mean_pred, model="mean", n_boot=n_boot,
                                         seed=seed)})
        view_names = [v.name for v in views]
        for fam, feats in families.items():
            sets = list(zip(view_names, feats))
            sets.append((" + ".join(view_names), np.concatenate(feats, axis=1)))
            for window, x in sets:
                model = fit_level_profile_ridge(x[train_idx], train_vals, alphas=alphas,
                                                seed=seed)
                rows.append({"features": fam, "window": window, "n_train": len(train_idx),
                             "n_test": len(test_idx), "n_features": x.shape[1],
                             "alpha_level": model.alpha_level,
                             "alpha_profile": model.alpha_profile,
                             **score_predictions(observed_test, model.predict(x[test_idx]),
                                                 model=f"{fam} {window}", n_boot=n_boot,
                                                 seed=seed)})
        seconds["ridge"] = time.perf_counter() - t

        if main_training_promoters:
            t = time.perf_counter()
            extra_rows, note = _main_promoter_rows(
                expr, promoters, families, encoder_models, prom, train_idx, test_idx,
                gene_ids, observed_test, chrom_table_path=chrom_table_path,
                exclude=tuple(main_exclude_chromosomes) + tuple(test_chromosomes) +
                tuple(train_chromosomes), alphas=alphas, n_boot=n_boot, seed=seed)
            rows += extra_rows
            notes.append(note)
            seconds["60 bp + main promoters"] = time.perf_counter() - t
    table = pd.DataFrame(rows)
    table = table[TABLE_COLUMNS + [c for c in table.columns if c not in TABLE_COLUMNS]]
    seconds["total"] = time.perf_counter() - t0
    result = LongSequenceResult(table=table, cohort=cohort.report, seconds=seconds,
                                notes=tuple(notes), pretraining=pretraining)
    if out_dir is not None:
        out = Path(out_dir)
        md, csv = out / "long_sequence.md", out / "long_sequence.csv"
        _write_atomic(md, result.markdown())
        _write_atomic(csv, table.to_csv(index=False))
        result = LongSequenceResult(table=table, cohort=cohort.report, seconds=seconds,
                                    notes=tuple(notes), markdown_path=md, csv_path=csv,
                                    pretraining=pretraining)
    return result


def _main_promoter_rows(expr, promoters, families, encoder_models, prom, train_idx, test_idx,
                        gene_ids, observed_test, *, chrom_table_path, exclude, alphas, n_boot,
                        seed) -> tuple[list[dict], str]:
    """60 bp rows trained on the cohort's training genes plus the main training promoters."""
    from genesplice.training.splits import gene_chromosomes

    chrom_of = gene_chromosomes(chrom_table_path)
    excluded = {normalize_chromosome(c) for c in exclude}
    cohort = set(gene_ids)
    first = promoters.drop_duplicates("gene_symbol", keep="first")
    cand = [g for g in first["gene_symbol"] if g in expr.values.index and g not in cohort]
    chrom = pd.Series(cand, dtype=object).map(chrom_of)
    extra_genes = [g for g, c in zip(cand, chrom) if isinstance(c, str) and c not in excluded]
    n_unknown = int(chrom.isna().sum())
    extra, _ = promoter_windows(extra_genes, promoters, name="60 bp")
    train_genes = [gene_ids[i] for i in train_idx]
    values = np.concatenate([expr.values.loc[train_genes].to_numpy(float),
                             expr.values.loc[extra_genes].to_numpy(float)])
    rows = []
    label = f"60 bp, train + {len(extra_genes):,} main-set promoters"
    for fam in families:
        if fam.startswith("k-mer"):
            x_extra = kmer_features(extra)[0]
        else:
            x_extra = encoder_features(encoder_models[fam], extra)
        x_cohort = families[fam][0]
        model = fit_level_profile_ridge(np.concatenate([x_cohort[train_idx], x_extra]), values,
                                        alphas=alphas, seed=seed)
        rows.append({"features": fam, "window": label,
                     "n_train": len(train_idx) + len(extra_genes), "n_test": len(test_idx),
                     "n_features": x_cohort.shape[1], "alpha_level": model.alpha_level,
                     "alpha_profile": model.alpha_profile,
                     **score_predictions(observed_test, model.predict(x_cohort[test_idx]),
                                         model=f"{fam} {label}", n_boot=n_boot, seed=seed)})
    note = (f"Main-set rows: EPDnew promoters of {len(extra_genes):,} expression-table genes "
            f"off {', '.join(sorted(excluded))} (and not in the cohort) added to the training "
            f"genes; {n_unknown} candidate genes without a known chromosome left out.")
    return rows, note


__all__ = [
    "CohortReport", "LongSequenceCohort", "LongSequenceResult", "RidgeModel", "WindowSet",
    "build_cohort", "encoder_features", "extract_windows", "fit_level_profile_ridge",
    "kmer_features", "long_study_encoder_config", "open_genomes", "promoter_windows",
    "run_long_sequence_study", "score_predictions", "to_markdown",
]
