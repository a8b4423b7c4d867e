"""Window embeddings of genes, computed once and cached on disk (``genesplice embed``).

:func:`embed_windows` places each asked-for gene on the genome, reads its strand-oriented TSS
window ``[tss - upstream, tss + downstream)`` (:func:`~genesplice.sequence.windows.
extract_windows`, N-padded and masked beyond contig ends), and runs the encoder over the genes
the :class:`~genesplice.training.embedding_store.EmbeddingStore` does not hold yet, in batches,
in eval mode without gradients, on :func:`~genesplice.models.device.resolve_device` (bf16
autocast on CUDA only). The stored vector is ``encoder(tokens, mask, tss_index=upstream)``:
the TSS-pooled embedding ``[d]``.

Genes that get no embedding are counted by reason in the report, never dropped silently:

* ``not_in_tss_table`` — the id is neither a ``gene_id`` nor an ``ensembl_id`` of the table;
* ``chromosome_missing`` — no FASTA of the genome has the gene's chromosome (``chr20``/``20``
  aliased);
* ``tss_off_sequence`` — the chromosome is there but the TSS base is not (e.g. chrX beyond the
  bundled 70 Mb);
* ``window_off_sequence`` — no base of the window is in the sequence (only possible with
  ``downstream == 0``).

Windows that reach beyond a contig end are embedded with those bases masked and counted
(``n_partial_window``).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from genesplice.io.chromosomes import alias_key
from genesplice.io.constants import GRCH37_FASTAS, TSS_BED_HG19
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.models.device import autocast_for, module_device, resolve_device
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig
from genesplice.sequence.genome import Genome
from genesplice.sequence.tss import read_tss
from genesplice.sequence.windows import extract_windows
from genesplice.training import distributed
from genesplice.training.embedding_store import (EmbeddingStore, StoreKeys, encoder_checksum,
                                                 genome_checksum)
from genesplice.training.pretrain import load_pretrained_encoder, torch_threads

log = logging.getLogger(__name__)

#: longest window (bases) the encoder is used with
MAX_WINDOW_BP = 1_048_576
#: the default encoder of ``genesplice embed`` without ``--encoder``
DEFAULT_PRESET, DEFAULT_SEED = "long_study", 0
#: bases read from the genome per chunk of genes (tokens + mask: 2 bytes per base)
READ_BASES = 32_000_000
SKIP_REASONS = {
    "not_in_tss_table": "not in the TSS table",
    "chromosome_missing": "chromosome not in the genome",
    "tss_off_sequence": "TSS outside the sequence the genome holds",
    "window_off_sequence": "no base of the window in the genome",
}


@dataclass(frozen=True)
class WindowSpec:
    """``[tss - upstream, tss + downstream)`` on the gene's strand (bases, each ≥ 0, total
    1 … 1,048,576); the TSS sits at index ``upstream``."""
    upstream: int
    downstream: int

    def __post_init__(self) -> None:
        for name in ("upstream", "downstream"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise GeneSpliceInputError(f"window {name} must be an integer >= 0 bases "
                                           f"(got {value!r})")
            object.__setattr__(self, name, int(value))
        if not 1 <= self.length <= MAX_WINDOW_BP:
            raise GeneSpliceInputError(f"window length upstream + downstream must be 1 … "
                                       f"{MAX_WINDOW_BP:,} bases (got {self.length:,})")

    @property
    def length(self) -> int:
        return self.upstream + self.downstream

    def key(self) -> str:
        """The cache key: the window and what is stored from it (bump ``v1`` if that changes)."""
        return (f"tss-window/v1:up={self.upstream}:down={self.downstream}:"
                "gene-strand:tss-pooled")


# ------------------------------------------------------------------------------------ genes

def locus(chrom: str, tss: int, strand: str) -> str:
    """``20:49575067:-``: a gene's place as the store compares it (chromosome alias key)."""
    return f"{alias_key(chrom)}:{int(tss)}:{strand}"


def _lookup(tss: pd.DataFrame) -> dict[str, int]:
    """id → row of ``tss``: ``gene_id`` first, then ``ensembl_id`` (no version)."""
    index: dict[str, int] = {}
    if "ensembl_id" in tss.columns:
        for i, e in enumerate(tss["ensembl_id"]):
            if isinstance(e, str) and e:
                index.setdefault(e, i)
    index.update({str(g): i for i, g in enumerate(tss["gene_id"])})
    return index


def place_genes(genome: Genome, tss: pd.DataFrame, genes: Sequence[str], spec: WindowSpec
                ) -> tuple[pd.DataFrame, dict[str, list[str]], int]:
    """Where each of ``genes`` is read from.

    Returns ``(placed, skipped, n_partial)``: ``placed`` has one row per embeddable gene
    (columns gene_id — as asked —, chrom, tss, strand, genome — the part index —, locus), in
    the order asked; ``skipped`` maps each reason of :data:`SKIP_REASONS` to its genes;
    ``n_partial`` counts placed windows that reach beyond the sequence (masked bases).
    """
    missing_cols = {"gene_id", "chrom", "tss", "strand"} - set(tss.columns)
    if missing_cols:
        raise GeneSpliceInputError(f"TSS table lacks columns {sorted(missing_cols)}",
                                   path=tss.attrs.get("path"))
    lookup = _lookup(tss)
    skipped: dict[str, list[str]] = {k: [] for k in SKIP_REASONS}
    rows: list[dict[str, Any]] = []
    n_partial = 0
    chrom_col, tss_col, strand_col = (tss[c].to_numpy() for c in ("chrom", "tss", "strand"))
    for gene in genes:
        i = lookup.get(gene)
        if i is None:
            i = lookup.get(gene.split(".")[0]) if gene.startswith("ENS") else None
        if i is None:
            skipped["not_in_tss_table"].append(gene)
            continue
        chrom, pos, strand = str(chrom_col[i]), int(tss_col[i]), str(strand_col[i])
        part = genome.part_index(chrom, pos)
        if part < 0:
            has = any(p.has_chrom(chrom) for p in genome)
            skipped["tss_off_sequence" if has else "chromosome_missing"].append(gene)
            continue
        lo = pos - spec.downstream + 1 if strand == "-" else pos - spec.upstream
        hi = lo + spec.length
        spans = [s for s in genome[part].spans if s.chrom == alias_key(chrom)]
        if not any(s.start0 < hi and lo < s.end0 for s in spans):
            skipped["window_off_sequence"].append(gene)
            continue
        n_partial += not any(s.start0 <= lo and hi <= s.end0 for s in spans)
        rows.append({"gene_id": gene, "chrom": chrom, "tss": pos, "strand": strand,
                     "genome": part, "locus": locus(chrom, pos, strand)})
    placed = pd.DataFrame(rows, columns=["gene_id", "chrom", "tss", "strand", "genome", "locus"])
    return placed, skipped, n_partial


# ------------------------------------------------------------------------------------ encoders

def seeded_encoder(preset: str = DEFAULT_PRESET, seed: int = DEFAULT_SEED) -> SequenceEncoder:
    """A randomly initialised encoder of a :meth:`SequenceEncoderConfig.preset`, seeded (the
    global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SequenceEncoder(SequenceEncoderConfig.preset(preset)).eval()


def load_encoder(path: str | os.PathLike) -> SequenceEncoder:
    """The encoder of a ``genesplice pretrain`` checkpoint."""
    config, state = load_pretrained_encoder(path)
    encoder = SequenceEncoder(config)
    encoder.load_state_dict(state)
    return encoder.eval()


def window_encoder(path: str | os.PathLike | None) -> tuple[SequenceEncoder, str]:
    """``(encoder, description)``: the ``genesplice pretrain`` checkpoint at ``path``, or (None)
    the seeded random :data:`DEFAULT_PRESET` encoder — what ``data.window_encoder`` names."""
    if path is None:
        return seeded_encoder(), (f"random {DEFAULT_PRESET} preset, seed {DEFAULT_SEED} (not "
                                  "pretrained: pass an encoder checkpoint from `genesplice "
                                  "pretrain`)")
    return load_encoder(path), f"pretrained, {path}"


# ------------------------------------------------------------------------------------ embedding

def embed_batches(encoder: nn.Module, tokens: torch.Tensor, mask: torch.Tensor, tss: int,
                  batch_size: int, device: torch.device) -> Iterator[tuple[int, torch.Tensor]]:
    """``(first row, embeddings [b, d] float32 on the CPU)`` of windows ``tokens`` / ``mask``
    (TSS at index ``tss``), ``batch_size`` rows at a time, on ``device`` without gradients
    (bf16 autocast on CUDA)."""
    for b in range(0, len(tokens), batch_size):
        t = tokens[b:b + batch_size].to(device).long()
        m = mask[b:b + batch_size].to(device)
        index = torch.full((t.shape[0],), tss, dtype=torch.long, device=device)
        with torch.no_grad(), autocast_for(device):
            emb = encoder(t, m, index).float().cpu()
        yield b, emb


def _compute(encoder: nn.Module, genome: Genome, todo: pd.DataFrame, spec: WindowSpec,
             store: EmbeddingStore, device: torch.device, batch_size: int, progress: bool,
             commit_seconds: float) -> int:
    """Embed the genes of ``todo`` (rows of :func:`place_genes`) into ``store``; how many.

    Genes are read in genome order, ``READ_BASES`` at a time, and embedded ``batch_size`` at
    a time; written rows are committed every ``commit_seconds`` and when this returns or
    raises (so an interrupted run keeps every finished batch).
    """
    todo = todo.assign(_key=todo["chrom"].map(alias_key)).sort_values(
        ["genome", "_key", "tss"], kind="stable")
    per_read = max(batch_size, READ_BASES // spec.length // batch_size * batch_size)
    if distributed.active():
        return _compute_sharded(encoder, genome, todo, spec, store, device, batch_size,
                                per_read, progress)
    bar = tqdm(total=len(todo), desc="embed", unit="gene", disable=not progress, leave=False)
    last, n = time.monotonic(), 0
    try:
        for lo in range(0, len(todo), per_read):
            chunk = todo.iloc[lo:lo + per_read]
            windows = extract_windows(genome, chunk, spec.upstream, spec.downstream)
            for b, emb in embed_batches(encoder, windows.tokens, windows.mask, spec.upstream,
                                        batch_size, device):
                genes = list(windows.gene_ids[b:b + batch_size])
                store.write(genes, emb.numpy())
                n += len(genes)
                bar.update(len(genes))
                if time.monotonic() - last >= commit_seconds:
                    store.commit()
                    last = time.monotonic()
    finally:
        store.commit()
        bar.close()
    return n


def _compute_sharded(encoder: nn.Module, genome: Genome, todo: pd.DataFrame, spec: WindowSpec,
                     store: EmbeddingStore | None, device: torch.device, batch_size: int,
                     per_read: int, progress: bool) -> int:
    """:func:`_compute` under torchrun: the genome-ordered ``todo`` is cut into blocks of
    ``per_read`` genes per rank (fewer when there are few genes); each rank embeds its part
    of each block, rank 0 gathers the block, writes it into ``store`` (rank 0's; None
    elsewhere) and commits — the store has one writer and an interrupted run keeps every
    finished block."""
    n_ranks, me = distributed.world_size(), distributed.rank()
    per_rank = max(1, min(per_read, -(-len(todo) // n_ranks)))      # few genes: split evenly
    bar = tqdm(total=len(todo), desc="embed", unit="gene", disable=not progress, leave=False)
    n = 0
    try:
        for lo in range(0, len(todo), per_rank * n_ranks):
            mine = todo.iloc[lo + me * per_rank:lo + (me + 1) * per_rank]
            genes: list[str] = []
            parts: list[np.ndarray] = []
            if len(mine):
                windows = extract_windows(genome, mine, spec.upstream, spec.downstream)
                for b, emb in embed_batches(encoder, windows.tokens, windows.mask,
                                            spec.upstream, batch_size, device):
                    genes += list(windows.gene_ids[b:b + batch_size])
                    parts.append(emb.numpy())
            for rank_genes, values in distributed.gather_object(
                    (genes, np.concatenate(parts) if parts else None)) or ():
                if rank_genes:
                    store.write(rank_genes, values)
                    n += len(rank_genes)
                    bar.update(len(rank_genes))
            if store is not None:
                store.commit()
    finally:
        if store is not None:
            store.commit()
        bar.close()
    return distributed.broadcast_object(n)


def embed_windows(encoder: nn.Module, genome: Genome, tss: pd.DataFrame,
                  genes: Sequence[str] | None, spec: WindowSpec,
                  store_dir: str | os.PathLike, *, batch_size: int = 4,
                  device: str | torch.device | None = "auto", progress: bool = True,
                  commit_seconds: float = 2.0) -> tuple[np.ndarray, dict[str, Any]]:
    """Window embeddings of ``genes`` (default: every gene of ``tss``), cached in ``store_dir``.

    ``tss``: a :mod:`genesplice.sequence.tss` table; ``genes`` are its ``gene_id`` (or
    ``ensembl_id``) values. Returns ``(embeddings, report)``: float32 ``[g, d]`` in the order
    of ``genes``, NaN rows for genes without an embedding, and a dict with
    ``has_embedding`` (bool ``[g]``), ``embedded_genes``, ``n_requested``, ``n_embedded``
    (computed now), ``n_reused`` (read from the store), ``n_skipped`` and ``skipped`` (reason
    → genes, see the module docstring), ``n_partial_window``, ``status`` / ``changed`` (what
    the store found: new / reused / extended / recomputed, and which keys changed), ``keys``,
    ``gene_list_sha256``, ``store``, ``device``, ``precision`` and ``seconds``.

    The encoder is run in eval mode on ``device`` and put back where and how it was.
    Under torchrun every rank embeds its share of the genes the store lacks and rank 0 alone
    opens and writes the store (:func:`_compute_sharded`); every rank returns the result.
    """
    t0 = time.perf_counter()
    if batch_size < 1:
        raise GeneSpliceInputError(f"batch size must be >= 1 (got {batch_size})")
    genes = [str(g) for g in (tss["gene_id"] if genes is None else genes)]
    if len(set(genes)) != len(genes):
        raise GeneSpliceInputError(f"{len(genes) - len(set(genes))} gene ids are asked for "
                                   "more than once")
    dev = distributed.local_device(resolve_device(device))
    keys = StoreKeys(encoder=encoder_checksum(encoder), genome=genome_checksum(genome.paths),
                     window=spec.key())
    placed, skipped, n_partial = place_genes(genome, tss, genes, spec)
    dim = int(getattr(getattr(encoder, "config", None), "out_dim", 0) or _probe_dim(encoder))
    rank0 = distributed.is_rank0()
    store = EmbeddingStore.open(store_dir, keys, list(placed["gene_id"]), dim=dim,
                                loci=list(placed["locus"])) if rank0 else None
    todo_genes = distributed.broadcast_object(
        set(store.missing(list(placed["gene_id"]))) if rank0 else None)
    n_reused = len(placed) - len(todo_genes)
    home, was_training = module_device(encoder), encoder.training
    try:
        encoder.to(dev).eval()
        n_new = _compute(encoder, genome, placed[placed["gene_id"].isin(todo_genes)], spec,
                         store, dev, batch_size, progress and rank0, commit_seconds)
        embedded = store.read(list(placed["gene_id"])) if rank0 else None
    finally:
        encoder.to(home).train(was_training)
        if store is not None:
            store.close()
    embedded, store = distributed.broadcast_object((embedded, _StoreFacts.of(store)))
    out = np.full((len(genes), dim), np.nan, dtype=np.float32)
    has = np.zeros(len(genes), dtype=bool)
    where = {g: i for i, g in enumerate(genes)}
    rows = np.array([where[g] for g in placed["gene_id"]], dtype=np.int64)
    if len(rows):
        out[rows], has[rows] = embedded, True
    report = {
        "store": str(Path(store_dir)), "status": store.status, "changed": list(store.changed),
        "n_relocated": store.n_relocated, "keys": keys.to_dict(),
        "gene_list_sha256": store.gene_list_sha256, "n_store_genes": len(store.gene_ids),
        "n_requested": len(genes), "n_embedded": n_new, "n_reused": n_reused,
        "n_skipped": sum(len(v) for v in skipped.values()), "skipped": skipped,
        "n_partial_window": n_partial, "has_embedding": has,
        "embedded_genes": [g for g, h in zip(genes, has) if h], "dim": dim,
        "window": spec.key(), "device": str(dev),
        "precision": "bf16 autocast" if dev.type == "cuda" else "float32",
        "seconds": time.perf_counter() - t0}
    if report["n_skipped"]:
        log.warning("embed: %s", "; ".join(f"{len(v)} {SKIP_REASONS[k]}"
                                           for k, v in skipped.items() if v))
    return out, report


@dataclass(frozen=True)
class _StoreFacts:
    """What the report says about the store (rank 0's, sent to the other ranks)."""
    status: str
    changed: tuple[str, ...]
    n_relocated: int
    gene_list_sha256: str
    gene_ids: tuple[str, ...]

    @classmethod
    def of(cls, store: EmbeddingStore | None) -> "_StoreFacts | None":
        return None if store is None else cls(store.status, tuple(store.changed),
                                              store.n_relocated, store.gene_list_sha256,
                                              tuple(store.gene_ids))


class WindowEmbedder:
    """A few genes' windows, read and embedded on demand, the way :func:`embed_windows` does
    it for the store — for scoring edited windows (variant effects) without holding every
    long window in memory.

    ``placed``: rows of :func:`place_genes` (``gene_id, chrom, tss, strand, genome``).
    """

    def __init__(self, encoder: nn.Module, genome: Genome, placed: pd.DataFrame,
                 spec: WindowSpec, *, device: str | torch.device | None = "auto",
                 batch_size: int = 4) -> None:
        self.encoder = encoder.eval()
        self.genome, self.spec, self.batch_size = genome, spec, batch_size
        self.placed = placed.drop_duplicates("gene_id").set_index("gene_id", drop=False)
        self.device = resolve_device(device)
        self.encoder.to(self.device)

    def read(self, gene_ids: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens [p, L] uint8, mask [p, L])``: the strand-oriented windows of
        ``gene_ids`` (repeats allowed), TSS at index ``spec.upstream``."""
        rows = self.placed.loc[list(gene_ids)].reset_index(drop=True)
        w = extract_windows(self.genome, rows, self.spec.upstream, self.spec.downstream)
        return w.tokens, w.mask

    def embed(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[p, d]`` float32 (CPU) TSS-pooled embeddings of windows ``tokens`` / ``mask``,
        ``batch_size`` at a time."""
        out = [emb for _, emb in embed_batches(self.encoder, tokens, mask, self.spec.upstream,
                                               self.batch_size, self.device)]
        return torch.cat(out) if out else torch.zeros((0, 0))


def _probe_dim(encoder: nn.Module) -> int:
    """Output width of an encoder without a ``config.out_dim`` (one 128-base forward)."""
    dev = module_device(encoder)
    tokens = torch.zeros((1, 128), dtype=torch.long, device=dev)
    with torch.no_grad():
        return int(encoder(tokens, torch.ones_like(tokens, dtype=torch.bool),
                           torch.zeros(1, dtype=torch.long, device=dev)).shape[-1])


# ------------------------------------------------------------------------------------ files

def embed_files(fasta_paths: Sequence[str | os.PathLike] | None,
                tss_path: str | os.PathLike | None, spec: WindowSpec,
                out_dir: str | os.PathLike, *, encoder_path: str | os.PathLike | None = None,
                genes: Sequence[str] | None = None, batch_size: int = 4,
                device: str | None = "auto", num_threads: int | None = None,
                progress: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`embed_windows` from files (what ``genesplice embed`` runs).

    Defaults: the bundled GRCh37 chr20 + chrX FASTAs, the bundled hg19 TSS BED, and a random
    :data:`DEFAULT_PRESET` encoder seeded with :data:`DEFAULT_SEED` (said in
    ``report["encoder"]``). Every path is checked before any long work: a missing one is a
    :class:`GeneSpliceInputError` naming it.
    """
    fastas = [Path(p) for p in fasta_paths] if fasta_paths else [
        knowledge_path(p) for p in GRCH37_FASTAS]
    tss_file = Path(tss_path) if tss_path is not None else knowledge_path(TSS_BED_HG19)
    checks = [("genome FASTA", p) for p in fastas] + [("TSS table", tss_file)]
    if encoder_path is not None:
        checks.append(("encoder checkpoint", Path(encoder_path)))
    for what, path in checks:
        if not path.is_file():
            raise GeneSpliceInputError(f"{what} not found", path=path)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise GeneSpliceInputError("--out must be a folder (the embedding store)", path=out)
    encoder, what = window_encoder(encoder_path)
    with Genome(fastas) as genome:
        table = read_tss(tss_file)
        with torch_threads(num_threads):
            emb, report = embed_windows(encoder, genome, table, genes, spec, out,
                                        batch_size=batch_size, device=device,
                                        progress=progress)
    n_params = sum(p.numel() for p in encoder.parameters())
    report.update(encoder=f"{what}; {n_params / 1e6:.2f} M parameters",
                  genome=[str(p) for p in fastas], tss=str(tss_file))
    return emb, report


def summary_lines(report: dict[str, Any], n_examples: int = 3) -> list[str]:
    """What ``genesplice embed`` prints: encoder, genes embedded / reused / skipped and why,
    the store."""
    lines = []
    if "encoder" in report:
        lines.append(f"encoder: {report['encoder']}")
    lines.append(f"window: {report['window']}; device {report['device']} "
                 f"({report['precision']})")
    lines.append(f"genes: {report['n_requested']:,} asked; {report['n_embedded']:,} embedded "
                 f"now, {report['n_reused']:,} reused from the store, {report['n_skipped']:,} "
                 f"skipped; {report['n_partial_window']:,} windows reach beyond a contig end "
                 "(masked)")
    for key, genes in report["skipped"].items():
        if genes:
            lines.append(f"  skipped {len(genes):,}: {SKIP_REASONS[key]} (e.g. "
                         f"{', '.join(genes[:n_examples])})")
    status = report["status"]
    if report["changed"]:
        status += f" (changed: {', '.join(report['changed'])})"
    lines.append(f"store: {report['store']}: {report['n_store_genes']:,} genes x "
                 f"{report['dim']} float32; {status}; {report['seconds']:.1f} s")
    return lines


__all__ = [
    "DEFAULT_PRESET",
    "DEFAULT_SEED",
    "MAX_WINDOW_BP",
    "SKIP_REASONS",
    "EmbeddingStore",
    "StoreKeys",
    "WindowEmbedder",
    "WindowSpec",
    "autocast_for",
    "embed_batches",
    "embed_files",
    "embed_windows",
    "load_encoder",
    "locus",
    "place_genes",
    "seeded_encoder",
    "summary_lines",
    "window_encoder",
]
