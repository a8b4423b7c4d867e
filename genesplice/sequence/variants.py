"""Variants → the genes whose sequence window they touch, with reference and alternative windows.

The model's sequence input for a gene is its EPDnew core promoter (−49..+10 around the TSS,
60 bp, gene strand). The promoter FASTA carries no coordinates, so each promoter is *located*
in a genome FASTA: starting from the gene's TSS in a TSS table (hg38 for the bundled files),
the promoter's exact 60-mer is searched on the gene's strand within ``search_bp`` of that TSS
and the hit closest to it is taken (EPDnew and GENCODE/FANTOM TSSs differ by up to a few kb).
Genes whose TSS the genome does not hold, or whose promoter is not found, are counted in the
:class:`LocateReport`, never silently dropped.

Variants come as a DataFrame or a VCF / TSV file (``chrom, pos, ref, alt``, 1-based ``pos`` as
in VCF; optional ``id``) and are read in chunks, so memory stays flat however many there are.
Each variant that overlaps a located window is checked against the genome FASTA (a reference
mismatch is an error naming the variant) and gives a pair of token windows (reference,
alternative) for that gene. Substitutions of any length (SNVs, MNPs) are scored; indels and
symbolic alleles are counted and skipped.

Coordinates are 0-based half-open internally; the 1-based ``pos`` is converted where read.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from genesplice.io.text import open_text
from genesplice.io.constants import PROMOTER_TSS_INDEX
from genesplice.io.errors import GeneSpliceInputError
from genesplice.sequence.encode import decode_tokens, encode_sequence, reverse_complement
from genesplice.io.chromosomes import alias_key
from genesplice.sequence.genome import Genome

log = logging.getLogger(__name__)

VARIANT_COLUMNS = ["variant_id", "chrom", "pos", "ref", "alt"]
_BASES = set("ACGTN")
#: an ALT allele: bases, '.' / '*' (no allele), a symbolic <ID> or a breakend (skipped later)
_ALT = re.compile(r"[ACGTN]+|[.*]|<[^<>]+>|.*[\[\]].*")


# ----------------------------------------------------------------------------- promoter windows

@dataclass(frozen=True)
class LocateReport:
    """How many promoter windows were placed on the genome (and why the others were not)."""

    n_genes: int                     # genes with a promoter sequence
    n_located: int
    n_at_tss: int                    # found exactly at the TSS table's position
    n_no_tss: int                    # gene absent from the TSS table
    n_tss_outside_genome: int        # the genome FASTA does not hold the TSS
    n_not_found: int                 # promoter 60-mer not within search_bp of the TSS
    not_found_examples: tuple[str, ...] = ()

    def summary(self) -> str:
        return (f"{self.n_located} of {self.n_genes} promoter windows located on the genome "
                f"({self.n_at_tss} exactly at the TSS table's TSS); not located: "
                f"{self.n_no_tss} without a TSS, {self.n_tss_outside_genome} with a TSS the "
                f"genome FASTA does not hold, {self.n_not_found} not found near their TSS"
                + (f" (e.g. {', '.join(self.not_found_examples)})"
                   if self.not_found_examples else ""))


def locate_promoters(promoters: pd.Series, tss: pd.DataFrame, genome: Genome, *,
                     tss_index: int = PROMOTER_TSS_INDEX, search_bp: int = 10_000
                     ) -> tuple[pd.DataFrame, LocateReport]:
    """Place promoter sequences on the genome.

    ``promoters``: gene id → sequence on the gene's strand (TSS at ``tss_index``).
    ``tss``: a TSS table (:mod:`genesplice.sequence.tss` layout) whose ``gene_id`` uses the
    same ids. Returns one row per located window — ``gene_id, chrom, start0, end0, strand,
    tss0`` (genomic, 0-based) and ``shift_bp`` (promoter TSS minus table TSS, along the gene's
    strand) — and a :class:`LocateReport` (also logged).
    """
    tss = tss.drop_duplicates("gene_id").set_index("gene_id")
    rows, n_no_tss, n_outside, not_found, n_at = [], 0, 0, [], 0
    for gene, sequence in promoters.items():
        if gene not in tss.index:
            n_no_tss += 1
            continue
        rec = tss.loc[gene]
        chrom, t, strand = str(rec["chrom"]), int(rec["tss"]), str(rec["strand"])
        part = genome.part_for(chrom, t)
        if part is None:
            n_outside += 1
            continue
        length = len(sequence)
        up = search_bp + tss_index
        down = search_bp + length - tss_index
        win = part.window(chrom, t, strand, up, down)
        text = decode_tokens(win.tokens)
        hits, start = [], text.find(sequence)
        while start >= 0:
            hits.append(start)
            start = text.find(sequence, start + 1)
        if not hits:
            not_found.append(gene)
            continue
        j = min(hits, key=lambda h: abs(h + tss_index - up))
        shift = j + tss_index - up                       # along the gene's strand
        n_at += shift == 0
        if strand == "+":
            tss0 = t + shift
            start0 = tss0 - tss_index
        else:
            tss0 = t - shift
            start0 = tss0 - (length - tss_index) + 1
        rows.append((gene, alias_key(chrom), start0, start0 + length, strand, tss0, shift))
    table = pd.DataFrame(rows, columns=["gene_id", "chrom", "start0", "end0", "strand", "tss0",
                                        "shift_bp"])
    report = LocateReport(n_genes=len(promoters), n_located=len(table), n_at_tss=int(n_at),
                          n_no_tss=n_no_tss, n_tss_outside_genome=n_outside,
                          n_not_found=len(not_found), not_found_examples=tuple(not_found[:5]))
    log.info("%s", report.summary())
    return table, report


class WindowIndex:
    """Overlap queries of variants against located windows, per chromosome (sorted starts)."""

    def __init__(self, windows: pd.DataFrame) -> None:
        self.windows = windows.reset_index(drop=True)
        self.max_len = int((windows["end0"] - windows["start0"]).max()) if len(windows) else 0
        self._by_chrom: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for chrom, sub in self.windows.groupby("chrom", sort=False):
            order = np.argsort(sub["start0"].to_numpy(), kind="stable")
            self._by_chrom[chrom] = (sub["start0"].to_numpy()[order],
                                     sub["end0"].to_numpy()[order], sub.index.to_numpy()[order])

    def overlaps(self, chrom: np.ndarray, start0: np.ndarray, end0: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """``(variant positions, window rows)`` of every overlapping (variant, window) pair."""
        var_idx, win_idx = [], []
        keys = pd.Series(chrom).map(alias_key).to_numpy()
        for key, (starts, ends, rows) in self._by_chrom.items():
            on = np.flatnonzero(keys == key)
            if not len(on):
                continue
            lo = np.searchsorted(starts, start0[on] - self.max_len + 1, side="left")
            hi = np.searchsorted(starts, end0[on], side="left")
            for i in np.flatnonzero(hi > lo):
                v = on[i]
                for k in range(lo[i], hi[i]):
                    if ends[k] > start0[v] and starts[k] < end0[v]:
                        var_idx.append(v)
                        win_idx.append(rows[k])
        return np.asarray(var_idx, dtype=np.int64), np.asarray(win_idx, dtype=np.int64)


# ----------------------------------------------------------------------------- reading variants

@dataclass
class VariantReport:
    """Counts over every variant read (filled while streaming)."""

    n_variants: int = 0              # rows read (multi-allelic ALT split into one per allele)
    n_in_windows: int = 0            # variants overlapping at least one located window
    n_pairs: int = 0                 # (variant, gene) pairs scored
    n_skipped_indel: int = 0         # ref and alt of different lengths
    n_skipped_symbolic: int = 0      # alt '.', '*' or '<...>'
    skipped_examples: list[str] = field(default_factory=list)

    @property
    def n_outside(self) -> int:
        """Substitutions read that overlap no window (not scored)."""
        return (self.n_variants - self.n_skipped_indel - self.n_skipped_symbolic
                - self.n_in_windows)

    def summary(self, window: str = "promoter") -> str:
        """One line of counts; ``window`` names the kind of window (``promoter``, ``long``)."""
        return (f"{self.n_variants:,} variants read; {self.n_in_windows:,} overlap a located "
                f"{window} window ({self.n_pairs:,} variant-gene pairs scored); "
                f"{self.n_outside:,} outside every {window} window; skipped "
                f"{self.n_skipped_indel:,} indels and {self.n_skipped_symbolic:,} symbolic "
                f"alleles (not scored)")


def _header_line(path: Path) -> int:
    """0-based line number of the column header (after a VCF's ``##`` meta lines)."""
    with open_text(path) as fh:
        for i, line in enumerate(fh):
            if not line.startswith("##"):
                return i
    raise GeneSpliceInputError("no header line (expected '#CHROM POS ID REF ALT' or a TSV "
                               "header with chrom, pos, ref, alt)", path=path)


def _normalise(chunk: pd.DataFrame, *, path: Path | None, first_line: int | None
               ) -> pd.DataFrame:
    cols = {c: c.lstrip("#").strip().lower() for c in chunk.columns}
    chunk = chunk.rename(columns=cols)
    missing = [c for c in ("chrom", "pos", "ref", "alt") if c not in chunk.columns]
    if missing:
        raise GeneSpliceInputError(f"variant table lacks column(s) {missing} (expected chrom, "
                                   f"pos (1-based), ref, alt; found {list(chunk.columns)})",
                                   path=path, line=first_line)
    line = (np.arange(len(chunk)) + first_line + 1) if first_line is not None else \
        np.full(len(chunk), -1)
    short = np.zeros(len(chunk), dtype=bool)
    for col in ("chrom", "pos", "ref", "alt"):
        short |= (chunk[col].isna() | (chunk[col] == "")).to_numpy()
    if short.any():
        i = int(np.flatnonzero(short)[0])
        raise GeneSpliceInputError("empty or missing chrom, pos, ref or alt (expected a value "
                                   "in each, as many fields as the header)", path=path,
                                   line=int(line[i]) if line[i] > 0 else None)
    pos = pd.to_numeric(chunk["pos"], errors="coerce")
    bad = pos.isna() | (pos < 1)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise GeneSpliceInputError(f"pos must be a 1-based integer (found "
                                   f"{chunk['pos'].iloc[i]!r})", path=path,
                                   line=int(line[i]) if line[i] > 0 else None)
    out = pd.DataFrame({
        "chrom": chunk["chrom"].astype(str).to_numpy(),
        "pos": pos.astype("int64").to_numpy(),
        "ref": chunk["ref"].astype(str).str.upper().to_numpy(),
        "alt": chunk["alt"].astype(str).str.upper().to_numpy(),
        "line": line,
    })
    given = (chunk["id"].astype(str).to_numpy() if "id" in chunk.columns
             else np.full(len(chunk), "."))
    out["given_id"] = np.where(pd.Series(given).isin([".", "", "nan"]), None, given)
    if out["alt"].str.contains(",").any():          # multi-allelic: one row per allele
        out = out.assign(alt=out["alt"].str.split(",")).explode("alt", ignore_index=True)
    default = out["chrom"] + ":" + out["pos"].astype(str) + ":" + out["ref"] + ">" + out["alt"]
    out.insert(0, "variant_id", out.pop("given_id").fillna(default))
    bad_ref = ~out["ref"].map(lambda s: bool(s) and set(s) <= _BASES)
    if bad_ref.any():
        i = int(np.flatnonzero(bad_ref.to_numpy())[0])
        raise GeneSpliceInputError(f"variant {out['variant_id'].iloc[i]}: ref must be bases "
                                   f"A/C/G/T/N (found {out['ref'].iloc[i]!r})", path=path,
                                   line=int(out["line"].iloc[i]) if out["line"].iloc[i] > 0
                                   else None)
    bad_alt = np.array([_ALT.fullmatch(a) is None for a in out["alt"].tolist()], dtype=bool)
    if bad_alt.any():
        i = int(np.flatnonzero(bad_alt)[0])
        raise GeneSpliceInputError(f"variant {out['variant_id'].iloc[i]}: alt must be bases "
                                   f"A/C/G/T/N, '.', '*' or <ID> (found {out['alt'].iloc[i]!r})",
                                   path=path, line=int(out["line"].iloc[i])
                                   if out["line"].iloc[i] > 0 else None)
    return out


def iter_variants(variants: pd.DataFrame | str | os.PathLike, chunk_size: int = 10_000
                  ) -> Iterator[pd.DataFrame]:
    """Chunks of at most ``chunk_size`` variants with columns ``variant_id, chrom, pos, ref,
    alt, line`` (``pos`` 1-based; ``line`` the file line, -1 for a DataFrame).

    A path is read lazily: a VCF (``##`` meta lines, then ``#CHROM POS ID REF ALT ...``) or a
    tab-separated table with ``chrom, pos, ref, alt`` (and optionally ``id``) columns, plain or
    ``.gz``.
    """
    if isinstance(variants, pd.DataFrame):
        for i in range(0, len(variants), chunk_size):
            yield _normalise(variants.iloc[i:i + chunk_size], path=None, first_line=None)
        return
    path = Path(variants)
    if not path.exists():
        raise GeneSpliceInputError("variant file not found", path=path)
    header = _header_line(path)
    usecols = (lambda c: c.lstrip("#").lower() in ("chrom", "pos", "id", "ref", "alt"))
    line = header + 1                               # 1-based line of the header
    with open_text(path) as fh:
        try:
            reader = pd.read_csv(fh, sep="\t", skiprows=header, dtype=str, index_col=False,
                                 chunksize=chunk_size, usecols=usecols, keep_default_na=False)
            chunks = iter(reader)
            while (chunk := next(chunks, None)) is not None:
                yield _normalise(chunk, path=path, first_line=line)
                line += len(chunk)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            found = re.search(r"line (\d+)", str(exc))
            raise GeneSpliceInputError(
                "malformed variant table (expected tab-separated CHROM POS ID REF ALT ... with "
                f"as many fields as the header: {str(exc).splitlines()[-1]})", path=path,
                line=header + int(found.group(1)) if found else None) from exc


@dataclass(frozen=True)
class VariantWindows:
    """Reference and alternative token windows of (variant, gene) pairs of one chunk."""

    variants: pd.DataFrame          # one row per pair: variant columns + gene_id + offsets
    ref_tokens: torch.Tensor        # [p, l] the gene's sequence input
    alt_tokens: torch.Tensor        # [p, l] with the alternative allele


def pair_variants(chunk: pd.DataFrame, index: WindowIndex, genome: Genome,
                  report: VariantReport, *, path: str | os.PathLike | None = None
                  ) -> pd.DataFrame | None:
    """Pairs of ``chunk``'s variants with the windows of ``index`` they overlap (``None`` when
    there are none).

    One row per (variant, gene): ``variant_id, chrom, pos, ref, alt, gene_id, strand,
    offset_to_tss`` (of the variant's 5'-most base in the window, on the gene's strand,
    relative to the window's ``tss0``) and the variant's genomic ``start0`` / ``end0``. Each
    overlapping variant's reference allele is checked against ``genome`` — a mismatch raises
    :class:`GeneSpliceInputError` naming the variant. Indels and symbolic alleles are counted
    and skipped. Updates ``report``.
    """
    report.n_variants += len(chunk)
    symbolic = chunk["alt"].isin([".", "*", ""]) | chunk["alt"].str.startswith("<")
    indel = ~symbolic & (chunk["ref"].str.len() != chunk["alt"].str.len())
    report.n_skipped_symbolic += int(symbolic.sum())
    report.n_skipped_indel += int(indel.sum())
    if (symbolic | indel).any() and len(report.skipped_examples) < 5:
        report.skipped_examples += list(chunk.loc[symbolic | indel, "variant_id"]
                                        .head(5 - len(report.skipped_examples)))
    usable = chunk[~(symbolic | indel)].reset_index(drop=True)
    start0 = usable["pos"].to_numpy() - 1
    end0 = start0 + usable["ref"].str.len().to_numpy()
    var_idx, win_idx = index.overlaps(usable["chrom"].to_numpy(), start0, end0)
    if not len(var_idx):
        return None
    report.n_in_windows += len(np.unique(var_idx))
    report.n_pairs += len(var_idx)
    for v in np.unique(var_idx).tolist():
        var = usable.iloc[v]
        found = genome.fetch_text(var["chrom"], int(start0[v]), int(end0[v]))
        if found != var["ref"]:
            raise GeneSpliceInputError(
                f"variant {var['variant_id']} ({var['chrom']}:{var['pos']} "
                f"{var['ref']}>{var['alt']}): reference allele {var['ref']} does not match "
                f"the genome FASTA, which has {found} there "
                f"({', '.join(p.name for p in genome.paths)})",
                path=path, line=int(var["line"]) if var["line"] > 0 else None)
    windows = index.windows
    pairs = usable.iloc[var_idx][["variant_id", "chrom", "pos", "ref", "alt"]].reset_index(
        drop=True)
    pairs["gene_id"] = windows["gene_id"].to_numpy()[win_idx]
    strand = windows["strand"].to_numpy()[win_idx]
    pairs["strand"] = strand
    w_start = windows["start0"].to_numpy()[win_idx]
    w_end = windows["end0"].to_numpy()[win_idx]
    tss0 = windows["tss0"].to_numpy()[win_idx]
    lo = np.maximum(start0[var_idx], w_start)
    hi = np.minimum(end0[var_idx], w_end)
    pairs["offset_to_tss"] = np.where(strand == "+", lo - tss0, tss0 - (hi - 1)).astype(np.int64)
    pairs["start0"] = start0[var_idx]
    pairs["end0"] = end0[var_idx]
    return pairs


def substitute(pairs: pd.DataFrame, windows: pd.DataFrame, tokens: torch.Tensor
               ) -> torch.Tensor:
    """The alternative of each pair's token window: ``tokens [p, l]`` (row i: gene
    ``pairs.gene_id[i]``'s window, on its strand, as placed in ``windows`` — ``gene_id,
    start0, end0, strand``) with the pair's ``alt`` allele written where it overlaps the
    window (reverse-complemented on the minus strand). Pairs whose variant misses their
    gene's window in ``windows`` (e.g. a long-window variant outside the 60 bp promoter)
    keep the reference."""
    alt = tokens.clone()
    placed = windows.drop_duplicates("gene_id").set_index("gene_id")
    for i, (gene, a, s0, e0) in enumerate(zip(pairs["gene_id"], pairs["alt"], pairs["start0"],
                                             pairs["end0"])):
        if gene not in placed.index:
            continue
        w = placed.loc[gene]
        w0, w1 = int(w["start0"]), int(w["end0"])
        lo, hi = max(int(s0), w0), min(int(e0), w1)
        if lo >= hi:
            continue
        if w["strand"] == "+":
            bases = encode_sequence(a)
            for p in range(lo, hi):
                alt[i, p - w0] = bases[p - int(s0)]
        else:
            # genomic p sits at index end0-1-p of the minus-strand window, and at index
            # (end0_var-1-p) of the reverse-complemented allele
            bases = encode_sequence(reverse_complement(a))
            for p in range(lo, hi):
                alt[i, w1 - 1 - p] = bases[int(e0) - 1 - p]
    return alt


def variant_windows(chunk: pd.DataFrame, index: WindowIndex, sequences: dict[str, torch.Tensor],
                    genome: Genome, report: VariantReport, *, path: str | os.PathLike | None = None
                    ) -> VariantWindows | None:
    """Pairs of ``chunk``'s variants with the located windows they overlap
    (:func:`pair_variants`), with each pair's reference and alternative token window.

    ``sequences``: gene id → the model's token window of that gene (what was located).
    """
    pairs = pair_variants(chunk, index, genome, report, path=path)
    if pairs is None:
        return None
    ref = torch.stack([sequences[g] for g in pairs["gene_id"]])
    alt = substitute(pairs, index.windows, ref)
    return VariantWindows(pairs.drop(columns=["start0", "end0"]), ref, alt)


__all__ = [
    "Genome", "LocateReport", "VariantReport", "VariantWindows", "WindowIndex", "iter_variants",
    "locate_promoters", "pair_variants", "substitute", "variant_windows",
]
