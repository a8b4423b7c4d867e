"""Variant effects: Δ predicted expression (alternative − reference) per tissue for every gene
whose sequence window a variant touches.

Promoter windows are placed on a genome FASTA (:func:`genesplice.sequence.variants.locate_promoters`),
variants are streamed in chunks (:func:`~genesplice.sequence.variants.iter_variants`) and
scored in batches of (variant, gene) pairs, so memory stays flat however many variants there
are: at most ``batch_size`` pairs plus one chunk's hits are held as tensors at a time.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from genesplice.annotations.ids import default_resolver
from genesplice.api.lookup import LookupMixin
from genesplice.io.constants import HG38_REGIONS, PROMOTER_TSS_INDEX, TSS_HG38
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.models.inference import copy_genes
from genesplice.sequence.encode import decode_tokens
from genesplice.sequence.tss import read_tss
from genesplice.sequence.variants import (
    VARIANT_COLUMNS,
    Genome,
    VariantReport,
    VariantWindows,
    WindowIndex,
    iter_variants,
    locate_promoters,
    variant_windows,
)
from genesplice.training.data import to_graph_ids

log = logging.getLogger(__name__)


class PairScorer:
    """Scores batches of (variant, gene) pairs: each gene is evaluated as a copy carrying the
    reference window and as one carrying the alternative (its graph neighbours still see the
    reference), so a ref→ref "variant" gives exactly 0.

    ``columns``: the tissue columns kept; ``symbol``: gene id → display symbol.
    """

    def __init__(self, model, graph, seq, row: dict[str, int], tissues: list[str],
                 columns: list[str], symbol: Callable[[str], str]) -> None:
        self.model, self.graph, self.seq, self.row = model, graph, seq, row
        self.columns = columns
        self.cols_idx = [tissues.index(c) for c in columns]
        self.symbol = symbol

    def __call__(self, batch: list[VariantWindows]) -> pd.DataFrame:
        """One row per pair of ``batch``: the variant columns, ``gene_symbol``, ``strand``,
        ``offset_to_tss`` and one Δ column per tissue."""
        pairs = pd.concat([b.variants for b in batch], ignore_index=True)
        ref = torch.cat([b.ref_tokens for b in batch])
        alt = torch.cat([b.alt_tokens for b in batch])
        rows = torch.tensor([self.row[x] for x in pairs["gene_id"]], dtype=torch.long)
        preds = []
        for tokens in (ref, alt):
            gi, si, copies = copy_genes(self.graph, self.seq, rows, tokens=tokens,
                                        mask=torch.ones_like(tokens, dtype=torch.bool))
            preds.append(self.model.predict(gi, si, copies, batch_size=len(rows))[0].cpu())
        delta = (preds[1] - preds[0])[:, self.cols_idx].numpy().astype(np.float64)
        pairs.insert(5, "gene_symbol", [self.symbol(x) for x in pairs.pop("gene_id")])
        return pd.concat([pairs, pd.DataFrame(delta, columns=self.columns)], axis=1)

    def empty(self) -> pd.DataFrame:
        return pd.DataFrame(columns=[*VARIANT_COLUMNS, "gene_symbol", "strand",
                                     "offset_to_tss", *self.columns])


def stream_variant_effects(variants, scorer: PairScorer, index: WindowIndex,
                           sequences: dict[str, torch.Tensor], genome: Genome,
                           report: VariantReport, *, chunk_size: int, batch_size: int,
                           progress: bool) -> pd.DataFrame:
    """Read ``variants`` ``chunk_size`` rows at a time, pair them with the windows they
    overlap and score the pairs whenever at least ``batch_size`` are pending."""
    path = None if isinstance(variants, pd.DataFrame) else variants
    out: list[pd.DataFrame] = []
    pending: list[VariantWindows] = []
    n_pending = 0
    bar = tqdm(desc="variants", unit=" variants", disable=not progress, leave=False)
    for chunk in iter_variants(variants, chunk_size):
        vw = variant_windows(chunk, index, sequences, genome, report, path=path)
        bar.update(len(chunk))
        if vw is None:
            continue
        pending.append(vw)
        n_pending += len(vw.variants)
        if n_pending >= batch_size:
            out.append(scorer(pending))
            pending, n_pending = [], 0
    if pending:
        out.append(scorer(pending))
    bar.close()
    return pd.concat(out, ignore_index=True) if out else scorer.empty()


class VariantEffectMixin(LookupMixin):
    """Promoter windows on a genome and the variants that touch them."""

    def promoter_windows(self, genome: Sequence[str | os.PathLike] | None = None,
                         tss: str | os.PathLike | None = None, search_bp: int = 10_000
                         ) -> pd.DataFrame:
        """Where each gene's sequence input lies on the genome (see
        :func:`genesplice.sequence.variants.locate_promoters`): ``gene_id, gene_symbol, chrom, start0,
        end0, strand, tss0, shift_bp``; ``attrs["report"]`` counts what could not be placed."""
        windows, report, _ = self._windows(genome, tss, search_bp)
        df = windows.copy()
        df.insert(1, "gene_symbol", [self._symbol(g) for g in df["gene_id"]])
        df.attrs["report"] = report.summary()
        return df

    def _windows(self, genome, tss, search_bp):
        """``(windows, LocateReport, Genome)``, cached per (genome, TSS table, search_bp)."""
        genome = genome or self.genome_paths or [knowledge_path(p) for p in HG38_REGIONS]
        genome = [genome] if isinstance(genome, (str, os.PathLike)) else list(genome)
        tss = tss or self.tss_path or knowledge_path(TSS_HG38)
        key = (tuple(os.fspath(p) for p in genome), os.fspath(tss), search_bp)
        if key not in self._located:
            if self._seq is None or self._seq.tokens is None:
                raise GeneSpliceInputError("this model has no sequence inputs to place on a "
                                           "genome")
            table = read_tss(tss)
            mapping = to_graph_ids(pd.unique(table["gene_id"]), self._row, default_resolver())
            table = table.assign(gene_id=table["gene_id"].map(mapping)).dropna(subset=["gene_id"])
            promoters = pd.Series(
                {self._gene_ids[int(r)]: decode_tokens(self._tokens(j))
                 for j, r in enumerate(self._seq.gene_rows.tolist())})
            g = Genome(genome)
            windows, report = locate_promoters(promoters, table, g,
                                               tss_index=PROMOTER_TSS_INDEX,
                                               search_bp=search_bp)
            self._located[key] = (windows, report, g)
        return self._located[key]

    def variant_effect(self, variants: pd.DataFrame | str | os.PathLike, *,
                       genome: Sequence[str | os.PathLike] | None = None,
                       tss: str | os.PathLike | None = None,
                       tissues: Iterable[str] | str | None = None, chunk_size: int = 10_000,
                       batch_size: int = 256, search_bp: int = 10_000,
                       progress: bool = True) -> pd.DataFrame:
        """Δ predicted expression per tissue (alternative − reference) for every gene whose
        sequence window covers a variant.

        ``variants``: a DataFrame or a VCF / TSV path with ``chrom, pos, ref, alt`` (``pos``
        1-based as in VCF; optional ``id``), streamed ``chunk_size`` rows at a time. Promoter
        windows are placed on ``genome`` (FASTA path(s); default the bundled hg38 chr2 /
        chr17 regions) via the ``tss`` table (default the bundled hg38 TSSs); each overlapping
        variant's ``ref`` is checked against the FASTA (mismatch → error naming the variant).
        SNVs and equal-length substitutions are scored; indels and symbolic alleles are
        counted and skipped. The gene is scored as a copy whose sequence carries the allele
        (its graph neighbours still see the reference), reference and alternative copies
        evaluated the same way, so a ref→ref "variant" gives exactly 0.

        One row per (variant, gene): ``variant_id, chrom, pos, ref, alt, gene_symbol, strand,
        offset_to_tss`` (of the variant's 5'-most base in the window, on the gene's strand),
        then one column per tissue. ``attrs``: ``unit``, ``report`` (counts), ``located``.
        """
        columns = self._tissue_columns(tissues)
        windows, located, g = self._windows(genome, tss, search_bp)
        row_of_seq = {int(r): j for j, r in enumerate(self._seq.gene_rows.tolist())}
        sequences = {gene_id: self._tokens(row_of_seq[self._row[gene_id]])
                     for gene_id in windows["gene_id"]}
        scorer = PairScorer(self._model, self._inputs, self._seq, self._row, self.tissues,
                            columns, self._symbol)
        report = VariantReport()
        df = stream_variant_effects(variants, scorer, WindowIndex(windows), sequences, g,
                                    report, chunk_size=chunk_size, batch_size=batch_size,
                                    progress=progress)
        df.attrs.update({"unit": f"Δ {self.unit}", "report": report.summary(),
                         "located": located.summary()})
        log.info("%s", report.summary())
        return df
