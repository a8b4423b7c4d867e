"""An on-disk, memory-mapped store of gene embeddings, keyed by what produced them.

A store is one folder::

    index.json            the keys, the gene list (row order), which rows are done
    embeddings-0001.npy   float32 [n_genes, d], memory-mapped (np.lib.format.open_memmap)

**Keys.** Rows are valid only for the :class:`StoreKeys` written in ``index.json``:

* ``encoder`` — :func:`encoder_checksum`: sha256 over the encoder's ``state_dict`` tensors in
  sorted key order (each key's name, dtype, shape and raw bytes), plus the encoder's config
  (``encoder.config.to_dict()`` where it has one: settings such as heads or window size change
  the output without changing any tensor shape);
* ``genome`` — :func:`genome_checksum`: per FASTA, in the order given, its file name (not the
  folder: a moved genome stays valid), its size in bytes and the full text of its ``.fai``
  (record names, lengths, byte layout). Cheap (no sequence is read) and honest about what it
  misses: an in-place edit of bases that keeps the file size and the index goes unnoticed;
* ``window`` — the window spec's key string (``WindowSpec.key()`` in :mod:`.embed`);
* the **gene list** — ``gene_list_sha256`` in the index: sha256 over each row's gene id and
  locus (``chrom-key:tss:strand``) in row order. A gene asked for again with another locus is
  re-embedded; new genes are appended.

:meth:`EmbeddingStore.open` reuses the store when every key matches, starts a fresh one when a
key changes (``status == "recomputed"``, ``changed`` names the keys), and appends rows for
genes it does not hold yet (``"extended"``).

**Safe to interrupt.** Rows are written into the memory map, flushed (``msync``), and only then
marked done in ``index.json``, which is replaced atomically (:mod:`genesplice.io.atomic`). A
new layout (fresh store, appended genes) is written to a new data file that ``index.json``
names only once it is complete, so at every moment the index and the file it names agree: a
killed run loses at most the rows since the last :meth:`~EmbeddingStore.commit`, and data files
the index does not name (left by a kill mid-relayout) are removed on the next open. Rows that
are not done read as NaN. One writer per folder at a time.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genesplice.io.atomic import atomic_write_text
from genesplice.io.errors import GeneSpliceInputError

log = logging.getLogger(__name__)

STORE_FORMAT = "genesplice-embedding-store/1"
INDEX_NAME = "index.json"
_DATA_FILE = re.compile(r"^embeddings-(\d+)\.npy$")


# ------------------------------------------------------------------------------------ keys

def encoder_checksum(encoder: nn.Module | Mapping[str, torch.Tensor]) -> str:
    """sha256 of an encoder's weights (see the module docstring); a module or a state_dict."""
    h = hashlib.sha256(b"genesplice-encoder-weights/1\n")
    config = getattr(encoder, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        h.update(json.dumps(config.to_dict(), sort_keys=True).encode() + b"\n")
    state = encoder.state_dict() if isinstance(encoder, nn.Module) else encoder
    for key in sorted(state):
        t = state[key].detach().to("cpu").contiguous()
        h.update(f"{key}\t{t.dtype}\t{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def genome_checksum(fasta_paths: Sequence[str | os.PathLike]) -> str:
    """sha256 over each FASTA's file name, size and ``.fai`` text, in order (module docstring)."""
    h = hashlib.sha256(b"genesplice-genome/1\n")
    for path in map(Path, fasta_paths):
        fai = Path(str(path) + ".fai")
        if not path.is_file() or not fai.is_file():
            raise GeneSpliceInputError("genome FASTA or its .fai not found", path=path)
        h.update(f"{path.name}\t{path.stat().st_size}\n".encode())
        h.update(fai.read_bytes() + b"\n")
    return h.hexdigest()


def gene_list_checksum(gene_ids: Sequence[str], loci: Sequence[str]) -> str:
    """sha256 over ``gene<TAB>locus`` lines in row order."""
    text = "".join(f"{g}\t{l}\n" for g, l in zip(gene_ids, loci, strict=True))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class StoreKeys:
    """What the store's rows were computed with: encoder / genome checksums, window key."""
    encoder: str
    genome: str
    window: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def differences(self, other: "StoreKeys") -> list[str]:
        """Names of the keys that differ from ``other``."""
        return [k for k, v in self.to_dict().items() if other.to_dict()[k] != v]


# ------------------------------------------------------------------------------------ rows

def _ranges(done: np.ndarray) -> list[list[int]]:
    """``[start, end)`` runs of True in a bool vector."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], done.astype(np.int8), [0]])))
    return [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2])]


def _from_ranges(ranges: Sequence[Sequence[int]], n: int) -> np.ndarray:
    done = np.zeros(n, dtype=bool)
    for a, b in ranges:
        if not 0 <= a <= b <= n:
            raise ValueError(f"done range [{a}, {b}) outside [0, {n})")
        done[a:b] = True
    return done


class _Unreadable(Exception):
    """The folder's index or data file cannot be used (the store is started afresh)."""


@dataclass
class _Layout:
    """What ``index.json`` says: row order, loci, done flags and the data file."""
    keys: StoreKeys
    dim: int
    gene_ids: list[str]
    loci: list[str]
    done: np.ndarray
    data_file: str | None
    generation: int


class EmbeddingStore:
    """Gene embeddings ``[n_genes, dim]`` in ``folder`` (module docstring); open with :meth:`open`.

    ``status`` says what :meth:`open` found: ``new``, ``reused``, ``extended`` or
    ``recomputed`` (then ``changed`` names the keys that differed, or why the old store was
    unreadable); ``n_relocated`` genes were asked for with another locus and are re-embedded.
    """

    def __init__(self, folder: Path, layout: _Layout, status: str, changed: list[str],
                 n_relocated: int) -> None:
        self.folder = folder
        self._layout = layout
        self.status = status
        self.changed = changed
        self.n_relocated = n_relocated
        self._row = {g: i for i, g in enumerate(layout.gene_ids)}
        self._data = self._map(layout, "r+")
        self._pending: list[np.ndarray] = []

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(cls, folder: str | os.PathLike, keys: StoreKeys, gene_ids: Sequence[str], *,
             dim: int, loci: Sequence[str] | None = None) -> "EmbeddingStore":
        """Open (or create) the store in ``folder`` for ``gene_ids`` under ``keys``.

        Reuses the store when ``keys`` and ``dim`` match what it holds, starting afresh when
        they do not, and appends rows for genes it lacks. ``loci`` (one per gene, e.g.
        ``20:49575067:-``; default all ``""``) are compared with the stored ones: a gene with
        another locus is marked not done. Genes already stored but not asked for are kept.
        """
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise GeneSpliceInputError("embedding store must be a folder, found a file",
                                       path=folder)
        if dim < 1:
            raise ValueError(f"dim must be >= 1 (got {dim})")
        gene_ids = [str(g) for g in gene_ids]
        loci = [""] * len(gene_ids) if loci is None else [str(l) for l in loci]
        if len(loci) != len(gene_ids):
            raise ValueError(f"{len(loci)} loci for {len(gene_ids)} genes")
        if len(set(gene_ids)) != len(gene_ids):
            raise GeneSpliceInputError("gene ids repeat in the list asked for (e.g. "
                                       f"{_repeats(gene_ids)[:5]})")
        folder.mkdir(parents=True, exist_ok=True)
        old, why = None, []
        try:
            old = cls._read_layout(folder)
        except _Unreadable as err:
            why = [f"unreadable store ({err})"]
            log.warning("%s: %s; starting a fresh store", folder, why[0])
        _remove_orphans(folder, None if old is None else old.data_file)
        if old is not None:
            changed = StoreKeys.differences(keys, old.keys) + (
                [f"dim {old.dim} -> {dim}"] if old.dim != dim else [])
            if not changed:
                return cls._reuse(folder, old, gene_ids, loci)
            why = changed
        generation = 0 if old is None else old.generation
        layout = _Layout(keys, dim, gene_ids, loci, np.zeros(len(gene_ids), bool), None,
                         generation)
        _write_layout(folder, layout, copy_from=None, old_file=None if old is None
                      else old.data_file)
        if why:
            log.info("%s: keys changed (%s); embeddings are recomputed", folder, ", ".join(why))
        return cls(folder, layout, "recomputed" if why else "new", why, 0)

    @classmethod
    def _reuse(cls, folder: Path, old: _Layout, gene_ids: list[str], loci: list[str]
               ) -> "EmbeddingStore":
        row = {g: i for i, g in enumerate(old.gene_ids)}
        new = [(g, l) for g, l in zip(gene_ids, loci) if g not in row]
        moved = [(row[g], l) for g, l in zip(gene_ids, loci) if g in row and old.loci[row[g]] != l]
        status = "extended" if new else "reused"
        if not new and not moved:
            return cls(folder, old, status, [], 0)
        layout = _Layout(old.keys, old.dim, old.gene_ids + [g for g, _ in new],
                         old.loci + [l for _, l in new],
                         np.concatenate([old.done, np.zeros(len(new), bool)]), old.data_file,
                         old.generation)
        for i, locus in moved:
            layout.loci[i] = locus
            layout.done[i] = False
        if new:          # a longer data file: copy the done rows, then point the index at it
            _write_layout(folder, layout, copy_from=old, old_file=old.data_file)
        else:            # same file: the cleared flags and new loci go in one index write
            _write_index(folder, layout)
        return cls(folder, layout, status, [], len(moved))

    @staticmethod
    def _read_layout(folder: Path) -> _Layout | None:
        path = folder / INDEX_NAME
        if not path.exists():
            return None
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            if index.get("format") != STORE_FORMAT:
                raise _Unreadable(f"format {index.get('format')!r}, expected {STORE_FORMAT!r}")
            genes, loci = list(index["genes"]), list(index["loci"])
            if gene_list_checksum(genes, loci) != index["gene_list_sha256"]:
                raise _Unreadable("gene list does not match its checksum")
            layout = _Layout(StoreKeys(**index["keys"]), int(index["dim"]), genes, loci,
                             _from_ranges(index["done_ranges"], len(genes)),
                             index["data_file"], int(index["generation"]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise _Unreadable(f"{type(err).__name__}: {err}") from None
        if layout.data_file is not None:
            data = folder / layout.data_file
            try:
                arr = np.load(data, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise _Unreadable(f"{layout.data_file}: {err}") from None
            if arr.shape != (len(genes), layout.dim) or arr.dtype != np.float32:
                raise _Unreadable(f"{layout.data_file} holds {arr.dtype} {arr.shape}, expected "
                                  f"float32 {(len(genes), layout.dim)}")
            del arr
        elif genes:
            raise _Unreadable("no data file for a non-empty gene list")
        return layout

    def _map(self, layout: _Layout, mode: str) -> np.memmap | None:
        if layout.data_file is None:
            return None
        return np.lib.format.open_memmap(self.folder / layout.data_file, mode=mode)

    # ---------------------------------------------------------------- access
    @property
    def keys(self) -> StoreKeys:
        return self._layout.keys

    @property
    def dim(self) -> int:
        return self._layout.dim

    @property
    def gene_ids(self) -> tuple[str, ...]:
        """Every gene the store has a row for, in row order."""
        return tuple(self._layout.gene_ids)

    @property
    def n_done(self) -> int:
        return int(self._layout.done.sum())

    @property
    def gene_list_sha256(self) -> str:
        return gene_list_checksum(self._layout.gene_ids, self._layout.loci)

    @property
    def data_path(self) -> Path | None:
        f = self._layout.data_file
        return None if f is None else self.folder / f

    def rows(self, genes: Sequence[str]) -> np.ndarray:
        """Row index ``[g]`` (int64) of each gene; a gene the store lacks is a KeyError."""
        return np.array([self._row[g] for g in genes], dtype=np.int64)

    def is_done(self, genes: Sequence[str]) -> np.ndarray:
        """``[g]`` bool: whether each gene's row holds a committed embedding."""
        return self._layout.done[self.rows(genes)] if len(genes) else np.zeros(0, bool)

    def missing(self, genes: Sequence[str]) -> list[str]:
        """The genes of ``genes`` without a committed embedding (in the order given)."""
        done = self.is_done(genes)
        return [g for g, d in zip(genes, done) if not d]

    def read(self, genes: Sequence[str]) -> np.ndarray:
        """float32 ``[g, dim]`` copy of the rows of ``genes`` (NaN where not done)."""
        if not len(genes):
            return np.zeros((0, self.dim), np.float32)
        out = np.asarray(self._data[self.rows(genes)], dtype=np.float32)
        out[~self.is_done(genes)] = np.nan
        return out

    # ---------------------------------------------------------------- writing
    def write(self, genes: Sequence[str], values: np.ndarray) -> None:
        """Put ``values [g, dim]`` into the rows of ``genes``; done after :meth:`commit`."""
        values = np.asarray(values, dtype=np.float32)
        if values.shape != (len(genes), self.dim):
            raise ValueError(f"values {values.shape} for {len(genes)} genes of dim {self.dim}")
        rows = self.rows(genes)
        self._data[rows] = values
        self._pending.append(rows)

    def commit(self) -> int:
        """Flush the written rows to disk, then mark them done in ``index.json``; how many."""
        if not self._pending:
            return 0
        rows = np.concatenate(self._pending)
        self._data.flush()
        self._layout.done[rows] = True
        _write_index(self.folder, self._layout)
        self._pending = []
        return len(rows)

    def close(self) -> None:
        """Commit what was written and drop the memory map."""
        self.commit()
        self._data = None

    def __enter__(self) -> "EmbeddingStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"EmbeddingStore({str(self.folder)!r}, {self.n_done}/{len(self._layout.gene_ids)}"
                f" done, dim {self.dim}, {self.status})")


# ------------------------------------------------------------------------------------ files

def _repeats(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return [x for x in items if x in seen or seen.add(x)]


def _write_index(folder: Path, layout: _Layout) -> None:
    index: dict[str, Any] = {
        "format": STORE_FORMAT,
        "keys": layout.keys.to_dict(),
        "dim": layout.dim,
        "dtype": "float32",
        "data_file": layout.data_file,
        "generation": layout.generation,
        "n_genes": len(layout.gene_ids),
        "n_done": int(layout.done.sum()),
        "gene_list_sha256": gene_list_checksum(layout.gene_ids, layout.loci),
        "done_ranges": _ranges(layout.done),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "genes": layout.gene_ids,
        "loci": layout.loci,
    }
    atomic_write_text(folder / INDEX_NAME, json.dumps(index, indent=1) + "\n")


def _write_layout(folder: Path, layout: _Layout, *, copy_from: _Layout | None,
                  old_file: str | None) -> None:
    """Write a new data file for ``layout`` (NaN rows; the done rows of ``copy_from`` copied
    by gene id), then the index naming it, then remove ``old_file``. Sets
    ``layout.data_file`` / ``generation``; with no genes there is no data file."""
    layout.generation += 1
    layout.data_file = None
    if layout.gene_ids:
        name = f"embeddings-{layout.generation:04d}.npy"
        data = np.lib.format.open_memmap(folder / name, mode="w+", dtype=np.float32,
                                         shape=(len(layout.gene_ids), layout.dim))
        data[:] = np.nan
        if copy_from is not None and copy_from.data_file is not None:
            old = np.load(folder / copy_from.data_file, mmap_mode="r")
            src = np.flatnonzero(copy_from.done)
            where = {g: i for i, g in enumerate(layout.gene_ids)}
            dst = np.array([where[copy_from.gene_ids[i]] for i in src], dtype=np.int64)
            if len(src):
                data[dst] = old[src]
            del old
        data.flush()
        del data
        layout.data_file = name
    _write_index(folder, layout)
    if old_file is not None and old_file != layout.data_file:
        (folder / old_file).unlink(missing_ok=True)


def _remove_orphans(folder: Path, keep: str | None) -> None:
    """Remove data files the index does not name (left by a run killed mid-relayout)."""
    for path in folder.iterdir():
        if _DATA_FILE.match(path.name) and path.name != keep:
            log.info("%s: removing %s, which the index does not name", folder, path.name)
            path.unlink(missing_ok=True)


__all__ = [
    "INDEX_NAME",
    "STORE_FORMAT",
    "EmbeddingStore",
    "StoreKeys",
    "encoder_checksum",
    "gene_list_checksum",
    "genome_checksum",
]
