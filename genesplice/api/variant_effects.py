"""Variant effects: Δ predicted expression (alternative − reference) per tissue for every gene
whose sequence window a variant touches.

Which window a variant must touch depends on what the model reads:

* a **promoter** model (60 bp EPDnew core promoters): the promoters are placed on a genome
  FASTA (:func:`genesplice.sequence.variants.locate_promoters`) and a variant changes the
  promoter tokens;
* a **long-window** model (``data.sequence_view`` ``window`` / ``both``): each gene's
  ``[TSS − upstream, TSS + downstream)`` window of the genome the model was trained with (or
  the one given), placed by the same TSS table as in training; a variant anywhere in it
  changes the window embedding (re-computed by the model's own window encoder from the edited
  window, read from the FASTA on demand — long windows are never all held in memory), and,
  with both views, the promoter tokens too when it falls in the located promoter.

Variants are streamed in chunks (:func:`~genesplice.sequence.variants.iter_variants`) and
scored in batches of (variant, gene) pairs, so memory stays flat however many variants there
are: at most ``batch_size`` pairs plus one chunk's hits are held as tensors at a time.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from genesplice.annotations.ids import default_resolver
from genesplice.api.lookup import LookupMixin
from genesplice.io.atomic import atomic_write
from genesplice.io.chromosomes import alias_key
from genesplice.io.constants import (GRCH37_FASTAS, HG38_REGIONS, PROMOTER_TSS_INDEX,
                                     TSS_BED_HG19, TSS_HG38)
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.models.inference import copy_genes
from genesplice.sequence.encode import decode_tokens
from genesplice.sequence.tss import read_tss
from genesplice.sequence.variants import (
    VARIANT_COLUMNS,
    Genome,
    VariantReport,
    WindowIndex,
    iter_variants,
    locate_promoters,
    pair_variants,
    substitute,
    variant_windows,
)
from genesplice.training.data import to_graph_ids
from genesplice.training.embed import WindowEmbedder, WindowSpec, place_genes, window_encoder
from genesplice.training.experiment import expression_from_config, window_keys

log = logging.getLogger(__name__)


@dataclass
class PairBatch:
    """(variant, gene) pairs ready to score: what each gene's copy reads as reference and as
    alternative. ``pairs``: variant columns + ``gene_id, strand, offset_to_tss``.
    ``ref_tokens`` / ``alt_tokens [p', l]``: promoter tokens of the pairs whose gene has one
    (``has_promoter [p]``; all when None); ``ref_window`` / ``alt_window [p, d]``: window
    embeddings (long-window models only)."""

    pairs: pd.DataFrame
    ref_tokens: torch.Tensor | None
    alt_tokens: torch.Tensor | None
    has_promoter: torch.Tensor | None = None
    ref_window: torch.Tensor | None = None
    alt_window: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.pairs)


def _cat(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if any(p is None for p in parts) else torch.cat(parts)


class PairScorer:
    """Scores batches of (variant, gene) pairs: each gene is evaluated as a copy carrying the
    reference sequence inputs and as one carrying the alternative (its graph neighbours still
    see the reference), so a ref→ref "variant" gives exactly 0.

    ``columns``: the tissue columns kept; ``symbol``: gene id → display symbol.
    """

    def __init__(self, model, graph, seq, row: dict[str, int], tissues: list[str],
                 columns: list[str], symbol: Callable[[str], str]) -> None:
        self.model, self.graph, self.seq, self.row = model, graph, seq, row
        self.columns = columns
        self.cols_idx = [tissues.index(c) for c in columns]
        self.symbol = symbol

    def __call__(self, batch: list[PairBatch]) -> pd.DataFrame:
        """One row per pair of ``batch``: the variant columns, ``gene_symbol``, ``strand``,
        ``offset_to_tss`` and one Δ column per tissue."""
        pairs = pd.concat([b.pairs for b in batch], ignore_index=True)
        rows = torch.tensor([self.row[x] for x in pairs["gene_id"]], dtype=torch.long)
        has = (None if all(b.has_promoter is None for b in batch) else
               torch.cat([torch.ones(len(b), dtype=torch.bool) if b.has_promoter is None
                          else b.has_promoter for b in batch]))
        preds = []
        for which in ("ref", "alt"):
            tokens = _cat([getattr(b, f"{which}_tokens") for b in batch])
            window = _cat([getattr(b, f"{which}_window") for b in batch])
            node_inputs = (None if window is None else
                           {"window_features": window,
                            "has_window": torch.ones(len(window), dtype=torch.bool)})
            gi, si, copies = copy_genes(
                self.graph, self.seq, rows, tokens=tokens,
                mask=None if tokens is None else torch.ones_like(tokens, dtype=torch.bool),
                has_sequence=has, node_inputs=node_inputs)
            preds.append(self.model.predict(gi, si, copies, batch_size=len(rows))[0].cpu())
        delta = (preds[1] - preds[0])[:, self.cols_idx].numpy().astype(np.float64)
        pairs.insert(5, "gene_symbol", [self.symbol(x) for x in pairs.pop("gene_id")])
        return pd.concat([pairs, pd.DataFrame(delta, columns=self.columns)], axis=1)

    def empty(self) -> pd.DataFrame:
        return pd.DataFrame(columns=[*VARIANT_COLUMNS, "gene_symbol", "strand",
                                     "offset_to_tss", *self.columns])


PairSource = Callable[[pd.DataFrame], Iterator[PairBatch]]


def promoter_pairs(index: WindowIndex, sequences: dict[str, torch.Tensor], genome: Genome,
                   report: VariantReport, path) -> PairSource:
    """Pairs of a chunk's variants with the located promoter windows they overlap."""
    def pairs_of(chunk: pd.DataFrame) -> Iterator[PairBatch]:
        vw = variant_windows(chunk, index, sequences, genome, report, path=path)
        if vw is not None:
            yield PairBatch(vw.variants, vw.ref_tokens, vw.alt_tokens)
    return pairs_of


@dataclass
class LongWindowView:
    """What a long-window model's variant scoring needs: where each gene's window lies
    (``windows``: ``gene_id`` — graph id —, chrom, start0, end0, strand, tss0), an embedder
    reading and encoding them on demand (keyed by the TSS table's id: ``key_of``), and the
    located promoters (``promoters``, ``sequences``; None for a window-only model)."""

    windows: pd.DataFrame
    embedder: WindowEmbedder
    key_of: dict[str, str]
    promoters: pd.DataFrame | None
    sequences: dict[str, torch.Tensor] | None
    skipped: dict[str, int]


def window_pairs(view: LongWindowView, genome: Genome, report: VariantReport, path, *,
                 batch_size: int) -> PairSource:
    """Pairs of a chunk's variants with the long windows they overlap, ``batch_size`` pairs
    at a time: each pair's gene window is read, edited and embedded (the reference embedding
    of a gene is computed once per chunk; an alternative identical to it reuses it, so
    ref→ref is exactly 0); with a promoter view, the located promoter is edited too where
    the variant falls in it."""
    index = WindowIndex(view.windows)

    def pairs_of(chunk: pd.DataFrame) -> Iterator[PairBatch]:
        pairs = pair_variants(chunk, index, genome, report, path=path)
        if pairs is None:
            return
        refs: dict[str, torch.Tensor] = {}
        for lo in range(0, len(pairs), batch_size):
            part = pairs.iloc[lo:lo + batch_size].reset_index(drop=True)
            keys = [view.key_of[g] for g in part["gene_id"]]
            tokens, mask = view.embedder.read(keys)
            edited = substitute(part, view.windows, tokens)
            new = sorted({g for g in part["gene_id"] if g not in refs})
            if new:
                first = [list(part["gene_id"]).index(g) for g in new]
                emb = view.embedder.embed(tokens[first], mask[first])
                refs.update(zip(new, emb))
            ref_w = torch.stack([refs[g] for g in part["gene_id"]])
            changed = (edited != tokens).any(dim=1)
            alt_w = ref_w.clone()
            if changed.any():
                alt_w[changed] = view.embedder.embed(edited[changed], mask[changed])
            ref_t = alt_t = has = None
            if view.sequences is not None:
                has = torch.tensor([g in view.sequences for g in part["gene_id"]])
                with_p = part[has.numpy()].reset_index(drop=True)
                if len(with_p):
                    ref_t = torch.stack([view.sequences[g] for g in with_p["gene_id"]])
                    alt_t = substitute(with_p, view.promoters, ref_t)
                else:
                    ref_t = alt_t = torch.zeros((0, 1), dtype=torch.long)
            yield PairBatch(part.drop(columns=["start0", "end0"]), ref_t, alt_t, has,
                            ref_w, alt_w)
    return pairs_of


def stream_variant_effects(variants, pairs_of: PairSource, scorer: PairScorer, *,
                           chunk_size: int, batch_size: int, progress: bool) -> pd.DataFrame:
    """Read ``variants`` ``chunk_size`` rows at a time, pair them with the windows they
    overlap (``pairs_of``) and score the pairs whenever at least ``batch_size`` are pending."""
    out: list[pd.DataFrame] = []
    pending: list[PairBatch] = []
    n_pending = 0
    bar = tqdm(desc="variants", unit=" variants", disable=not progress, leave=False)
    for chunk in iter_variants(variants, chunk_size):
        for batch in pairs_of(chunk):
            pending.append(batch)
            n_pending += len(batch)
            if n_pending >= batch_size:
                out.append(scorer(pending))
                pending, n_pending = [], 0
        bar.update(len(chunk))
    if pending:
        out.append(scorer(pending))
    bar.close()
    return pd.concat(out, ignore_index=True) if out else scorer.empty()


def _paths(given) -> list:
    return [given] if isinstance(given, (str, os.PathLike)) else list(given)


class VariantEffectMixin(LookupMixin):
    """Sequence windows on a genome and the variants that touch them."""

    @property
    def reads_windows(self) -> bool:
        """Whether the model reads long genome windows (``data.sequence_view`` window / both)."""
        return (self._inputs.window_features is not None
                and any(getattr(m, "window_proj", None) is not None
                        for _, m in self._model.models()))

    def promoter_windows(self, genome: Sequence[str | os.PathLike] | None = None,
                         tss: str | os.PathLike | None = None, search_bp: int = 10_000
                         ) -> pd.DataFrame:
        """Where each gene's promoter input lies on the genome (see
        :func:`genesplice.sequence.variants.locate_promoters`): ``gene_id, gene_symbol, chrom,
        start0, end0, strand, tss0, shift_bp``; ``attrs["report"]`` counts what could not be
        placed. Defaults: the model's window genome and TSS table for a long-window model, else
        the bundled hg38 regions and TSSs."""
        genome, tss = self._genome_and_tss(genome, tss)
        windows, report, _ = self._windows(genome, tss, search_bp)
        df = windows.copy()
        df.insert(1, "gene_symbol", [self._symbol(g) for g in df["gene_id"]])
        df.attrs["report"] = report.summary()
        return df

    def long_windows(self, genome: Sequence[str | os.PathLike] | None = None,
                     tss: str | os.PathLike | None = None) -> pd.DataFrame:
        """Where each gene's long window lies (long-window models): ``gene_id, gene_symbol,
        chrom, start0, end0, strand, tss0`` (0-based, genomic); ``attrs["skipped"]`` counts
        the genes with a window in training that this genome / TSS table cannot place."""
        view = self._long_view(*self._genome_and_tss(genome, tss))
        df = view.windows.copy()
        df.insert(1, "gene_symbol", [self._symbol(g) for g in df["gene_id"]])
        df.attrs["skipped"] = dict(view.skipped)
        return df

    def _genome_and_tss(self, genome, tss) -> tuple[list, os.PathLike | str]:
        """The genome FASTA(s) and TSS table variants are placed with: given, else what the
        model was trained with (long-window models: ``data.genome_paths`` /
        ``data.window_tss_path``, default the bundled GRCh37 + hg19 TSSs), else the bundled
        hg38 regions and TSSs (promoter models)."""
        genome = genome or self.genome_paths
        tss = tss or self.tss_path
        if self.reads_windows:
            d = self.config.data
            genome = genome or list(d.genome_paths) or [knowledge_path(p) for p in GRCH37_FASTAS]
            tss = tss or d.window_tss_path or knowledge_path(TSS_BED_HG19)
        genome = genome or [knowledge_path(p) for p in HG38_REGIONS]
        return _paths(genome), tss or knowledge_path(TSS_HG38)

    def _windows(self, genome, tss, search_bp):
        """``(windows, LocateReport, Genome)``, cached per (genome, TSS table, search_bp)."""
        key = (tuple(os.fspath(p) for p in genome), os.fspath(tss), search_bp)
        if key not in self._located:
            if self._seq is None or self._seq.tokens is None:
                raise GeneSpliceInputError("this model has no promoter inputs to place on a "
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

    def _promoter_tokens(self, gene_ids: Iterable[str]) -> dict[str, torch.Tensor]:
        row_of_seq = {int(r): j for j, r in enumerate(self._seq.gene_rows.tolist())}
        return {g: self._tokens(row_of_seq[self._row[g]]) for g in gene_ids}

    def _long_view(self, genome, tss, search_bp: int = 10_000, device=None) -> LongWindowView:
        """The long windows of every gene that had one in training, placed on ``genome`` by
        ``tss`` with the model's window spec, with the model's window encoder (cached)."""
        key = ("long", tuple(os.fspath(p) for p in genome), os.fspath(tss))
        if key in self._located:
            return self._located[key]
        d = self.config.data
        spec = WindowSpec(d.window_upstream, d.window_downstream)
        has = self._inputs.has_window.cpu().numpy()
        genes = [g for g, h in zip(self._gene_ids, has) if h]
        expr = expression_from_config(self.config)
        keys = dict(zip(self._gene_ids, window_keys(self._gene_ids, expr)))
        g = Genome(genome)
        table = read_tss(tss)
        placed, skipped, _ = place_genes(g, table, [keys[x] for x in genes], spec)
        graph_id = {keys[x]: x for x in genes}
        minus = (placed["strand"] == "-").to_numpy()
        tss0 = placed["tss"].to_numpy(np.int64)
        start0 = np.where(minus, tss0 - spec.downstream + 1, tss0 - spec.upstream)
        windows = pd.DataFrame({
            "gene_id": [graph_id[k] for k in placed["gene_id"]],
            "chrom": placed["chrom"].map(alias_key).to_numpy(),
            "start0": start0, "end0": start0 + spec.length,
            "strand": placed["strand"].to_numpy(), "tss0": tss0})
        encoder, what = window_encoder(d.window_encoder or None)
        log.info("variant effects: window encoder %s", what)
        embedder = WindowEmbedder(encoder, g, placed, spec, device=self.device)
        promoters = sequences = None
        if self._seq is not None and self._seq.tokens is not None and self._model.config.use_promoter:
            promoters, _, _ = self._windows(genome, tss, search_bp)
            sequences = self._promoter_tokens(promoters["gene_id"])
        view = LongWindowView(windows, embedder, {graph_id[k]: k for k in placed["gene_id"]},
                              promoters, sequences,
                              {k: len(v) for k, v in skipped.items() if v})
        self._located[key] = view
        return view

    def variant_effect(self, variants: pd.DataFrame | str | os.PathLike, *,
                       genome: Sequence[str | os.PathLike] | None = None,
                       tss: str | os.PathLike | None = None,
                       tissues: Iterable[str] | str | None = None, chunk_size: int = 10_000,
                       batch_size: int | None = None, search_bp: int = 10_000,
                       progress: bool = True) -> pd.DataFrame:
        """Δ predicted expression per tissue (alternative − reference) for every gene whose
        sequence window covers a variant.

        ``variants``: a DataFrame or a VCF / TSV path with ``chrom, pos, ref, alt`` (``pos``
        1-based as in VCF; optional ``id``), streamed ``chunk_size`` rows at a time;
        chromosome names are matched with aliases (``20`` = ``chr20``). The windows are the
        model's own (module docstring): placed on ``genome`` (FASTA path(s); default the genome
        the model was trained with — the bundled hg38 regions for promoter models) via the
        ``tss`` table (default the model's). Each overlapping variant's ``ref`` is checked
        against the FASTA (mismatch → error naming the variant). SNVs and equal-length
        substitutions (MNPs) are scored on either strand; indels and symbolic alleles are
        counted and skipped. The gene is scored as a copy whose sequence inputs carry the
        allele (its graph neighbours still see the reference), reference and alternative
        copies evaluated the same way, so a ref→ref "variant" gives exactly 0.
        ``batch_size``: pairs scored at once (default 256 for promoters, 8 for long windows).

        One row per (variant, gene): ``variant_id, chrom, pos, ref, alt, gene_symbol, strand,
        offset_to_tss`` (of the variant's 5'-most base in the window, on the gene's strand),
        then one column per tissue. ``attrs``: ``unit``, ``report`` (counts, including the
        variants outside every window), ``located`` and ``view`` (promoter / long window).
        """
        columns = self._tissue_columns(tissues)
        genome, tss = self._genome_and_tss(genome, tss)
        report = VariantReport()
        path = None if isinstance(variants, pd.DataFrame) else variants
        scorer = PairScorer(self._model, self._inputs, self._seq, self._row, self.tissues,
                            columns, self._symbol)
        if self.reads_windows:
            batch_size = batch_size or 8
            view = self._long_view(genome, tss, search_bp)
            pairs_of = window_pairs(view, view.embedder.genome, report, path,
                                    batch_size=batch_size)
            spec = self.config.data
            located = (f"{len(view.windows):,} genes' windows "
                       f"(TSS −{spec.window_upstream:,} … +{spec.window_downstream:,} bp) "
                       f"placed on the genome"
                       + (f"; not placed: {view.skipped}" if view.skipped else ""))
            what = "long window"
        else:
            batch_size = batch_size or 256
            windows, located_report, g = self._windows(genome, tss, search_bp)
            sequences = self._promoter_tokens(windows["gene_id"])
            pairs_of = promoter_pairs(WindowIndex(windows), sequences, g, report, path)
            located, what = located_report.summary(), "promoter"
        df = stream_variant_effects(variants, pairs_of, scorer, chunk_size=chunk_size,
                                    batch_size=batch_size, progress=progress)
        counts = report.summary("long" if self.reads_windows else "promoter")
        df.attrs.update({"unit": f"Δ {self.unit}", "report": counts, "located": located,
                         "view": what})
        log.info("%s", counts)
        return df

    def write_variant_effects(self, variants: pd.DataFrame | str | os.PathLike,
                              out: str | os.PathLike, **kwargs) -> tuple[os.PathLike, dict]:
        """:meth:`variant_effect` over every tissue, written (atomically) to the CSV ``out``:
        a first ``#`` line naming the unit, then ``variant_id, chrom, pos, ref, alt,
        gene_symbol, strand, offset_to_tss``, one ``delta_<tissue>`` column per tissue and
        ``delta_mean`` (their mean). Returns ``(path, attrs)`` (the counts of
        :meth:`variant_effect`). What ``genesplice variant-effect`` runs."""
        kwargs.pop("tissues", None)
        df = self.variant_effect(variants, **kwargs)
        attrs = dict(df.attrs)
        tissues = self.tissues
        table = df.rename(columns={t: f"delta_{t}" for t in tissues})
        table["delta_mean"] = df[tissues].mean(axis=1) if len(df) else []
        head = (f"# genesplice variant-effect: delta = predicted alt - ref expression, unit "
                f"{self.unit} (log scale), {attrs['view']} view; {attrs['report']}\n")

        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(head)
                table.to_csv(fh, index=False, float_format="%.6g")
        return atomic_write(out, write), attrs
