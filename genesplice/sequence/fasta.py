"""Strand-aware windows around TSSs from an indexed genome FASTA (pyfaidx).

* Chromosome names are aliased: ``chr20``, ``20`` and ``CHR20`` are one chromosome, and
  ``chrM`` ↔ ``MT``. A contig named like a region (``chr17:9958130-12017414``, as samtools
  writes sub-sequences) is placed at its offset, so region files take genome coordinates.
* A window is ``[tss - upstream, tss + downstream)`` on the gene's strand: on ``-`` the genomic
  slice ``[tss - downstream + 1, tss + upstream + 1)`` is reverse-complemented, so the TSS sits at
  index ``upstream`` either way. Bases beyond the sequence the FASTA holds become ``N`` with
  mask ``False``; real bases are uppercased and non-ACGT letters become ``N`` (mask ``True``).
* The FASTA is opened read-only: its ``.fai`` (and ``.gzi`` for bgzip) must already exist, so
  nothing is ever written next to it (pyfaidx would otherwise build them).
"""
from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from genesplice.io.chromosomes import alias_key
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.tables import read_bytes, read_table, scan_lines
from genesplice.sequence.encode import N, encode_sequence, reverse_complement_tokens

log = logging.getLogger(__name__)

_REGION = re.compile(r"^(?P<chrom>[^:]+):(?P<start>\d+)-(?P<end>\d+)$")


#: bytes a FASTA sequence line may hold: IUPAC nucleotide codes (any case), gap / stop marks
FASTA_LETTERS = b"ACGTURYKMSWBDHVNacgturykmswbdhvn-.*"
_ALLOWED = np.zeros(256, dtype=bool)
_ALLOWED[np.frombuffer(FASTA_LETTERS + b"\r\n", dtype=np.uint8)] = True
FAI_COLUMNS = ("name", "length", "offset", "line_bases", "line_width")


@dataclass(frozen=True)
class FastaRecord:
    """One FASTA record: the first word of its header, the rest, the sequence, its line."""
    name: str
    description: str
    sequence: str
    line: int


def read_fasta_records(path: str | os.PathLike) -> list[FastaRecord]:
    """Every record of a FASTA (plain, gzip or bgzip), checked on the raw bytes.

    The first non-blank line must be a ``>`` header with a name; names are unique; sequence
    lines hold IUPAC nucleotide letters only (any case, ``-``, ``.``, ``*``); a record without
    sequence is an error. Each problem names the file and line.
    """
    path = Path(path)
    data = read_bytes(path)
    lines = scan_lines(data)
    header = lines.first_byte == ord(">")
    first = int(np.argmax(lines.ends > lines.starts))
    if not header[first]:
        raise GeneSpliceInputError("expected a '>' header line before any sequence",
                                   path=path, line=first + 1)
    arr = np.frombuffer(data, dtype=np.uint8)
    bad_bytes = np.flatnonzero(~_ALLOWED[arr])
    if len(bad_bytes):
        line_of = np.searchsorted(lines.starts, bad_bytes, side="right") - 1
        in_seq = ~header[line_of]
        if in_seq.any():
            k = int(np.argmax(in_seq))
            raise GeneSpliceInputError(
                f"unexpected character {chr(arr[bad_bytes[k]])!r} in sequence (expected IUPAC "
                "nucleotide letters)", path=path, line=int(line_of[k]) + 1)
    heads = np.flatnonzero(header)
    bounds = np.append(lines.starts[heads[1:]], len(data)) if len(heads) else np.zeros(0)
    records: list[FastaRecord] = []
    seen: set[str] = set()
    for h, stop in zip(heads.tolist(), bounds.tolist()):
        text = data[lines.starts[h] + 1:lines.ends[h]].decode("utf-8")
        words = text.split(maxsplit=1)
        if not words or text[:1].isspace():
            raise GeneSpliceInputError("expected a sequence name right after '>'", path=path,
                                       line=h + 1)
        if words[0] in seen:
            raise GeneSpliceInputError(f"duplicate sequence name {words[0]!r}", path=path,
                                       line=h + 1)
        seen.add(words[0])
        body = data[int(lines.starts[h + 1]):int(stop)] if h + 1 < lines.n else b""
        sequence = body.translate(None, b"\r\n").decode("ascii")
        if not sequence:
            raise GeneSpliceInputError(f"record {words[0]!r} has no sequence", path=path,
                                       line=h + 1)
        records.append(FastaRecord(words[0], words[1] if len(words) > 1 else "", sequence,
                                   h + 1))
    return records


def read_fai(path: str | os.PathLike) -> pd.DataFrame:
    """A samtools/pyfaidx ``.fai`` index: ``name, length, offset, line_bases, line_width``.

    Five or more tab-separated fields per line (more: a FASTQ index; ignored), integers
    ``length >= 0``, ``line_bases >= 1``, ``line_width >= line_bases``; unique names.
    """
    path = Path(path)
    table = read_table(path, header=False, min_columns=5, required=(0, 1, 2, 3, 4))
    table = table.iloc[:, :5]
    table.columns = list(FAI_COLUMNS)
    for col in FAI_COLUMNS[1:]:
        ok = table[col].str.fullmatch(r"\d{1,18}").to_numpy(dtype=bool)
        if not ok.all():
            i = int(np.argmax(~ok))
            raise GeneSpliceInputError(f"expected a non-negative integer {col}, found "
                                       f"{table[col].iloc[i]!r}", path=path, line=i + 1)
        table[col] = table[col].astype("int64")
    bad = (table["line_bases"] < 1) | (table["line_width"] < table["line_bases"])
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise GeneSpliceInputError("expected line_bases >= 1 and line_width >= line_bases",
                                   path=path, line=i + 1)
    dup = table["name"].duplicated().to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        raise GeneSpliceInputError(f"duplicate sequence name {table['name'].iloc[i]!r}",
                                   path=path, line=i + 1)
    return table


def check_fasta_index(path: str | os.PathLike) -> list[FastaRecord]:
    """Read an indexed FASTA in full and check its ``.fai`` lists exactly its records, in
    order, with their lengths (a stale or foreign index is an error naming the .fai line)."""
    path = Path(path)
    fai = Path(str(path) + ".fai")
    table = read_fai(fai)
    records = read_fasta_records(path)
    if len(table) != len(records):
        raise GeneSpliceInputError(f"index lists {len(table)} sequences but the FASTA holds "
                                   f"{len(records)}; re-index it (samtools faidx)", path=fai)
    for i, (rec, name, length) in enumerate(zip(records, table["name"], table["length"])):
        if rec.name != name or len(rec.sequence) != length:
            raise GeneSpliceInputError(
                f"index says {name!r} of length {length}, the FASTA has {rec.name!r} of "
                f"length {len(rec.sequence)} (line {rec.line}); re-index it (samtools faidx)",
                path=fai, line=i + 1)
    return records


@dataclass(frozen=True)
class ContigSpan:
    """Where one FASTA record sits on its chromosome (0-based half-open)."""
    name: str        # record name in the FASTA
    chrom: str       # canonical chromosome key
    start0: int      # genome coordinate of the record's first base
    end0: int


@dataclass(frozen=True)
class Window:
    """One strand-oriented window. ``tokens``/``mask`` are ``[l]``; index ``tss_index`` is the TSS."""
    tokens: torch.Tensor
    mask: torch.Tensor
    tss_index: int
    chrom: str
    start0: int      # genomic start of the window (before any reverse complement)
    end0: int
    strand: str

    @property
    def n_padded(self) -> int:
        return int((~self.mask).sum())


@dataclass(frozen=True)
class CoverageReport:
    """Which genes of a TSS table the FASTA can serve (also logged by :meth:`GenomeWindows.coverage`)."""
    n_genes: int
    n_covered: int                 # TSS base lies inside the sequence
    n_full_window: int             # the whole requested window lies inside the sequence
    n_missing_contig: int          # the FASTA has no record for the gene's chromosome
    n_outside_sequence: int        # chromosome present but the TSS lies outside its records
    missing_chroms: tuple[str, ...]
    missing_examples: tuple[str, ...]
    outside_examples: tuple[str, ...]
    covered_gene_ids: tuple[str, ...]


class GenomeWindows:
    """Windows around TSSs from one indexed FASTA (plain or bgzip with ``.fai``/``.gzi``).

    ``aliases`` maps extra chromosome names to FASTA record names, for names the built-in
    aliasing cannot guess (e.g. ``{"NC_000020.10": "20"}``).
    """

    def __init__(self, fasta_path: str | os.PathLike, aliases: dict[str, str] | None = None):
        self.path = Path(fasta_path)
        if not self.path.exists():
            raise GeneSpliceInputError("FASTA file not found", path=self.path)
        fai = Path(str(self.path) + ".fai")
        if not fai.exists():
            raise GeneSpliceInputError(
                f"FASTA index {fai.name} not found (expected next to the FASTA; create it once "
                "with `samtools faidx` or `pyfaidx` where the folder is writable)", path=self.path)
        if self.path.suffix == ".gz" and not Path(str(self.path) + ".gzi").exists():
            raise GeneSpliceInputError(
                "bgzip index .gzi not found (expected next to the FASTA; a .gz FASTA must be "
                "bgzip-compressed and indexed with `samtools faidx`)", path=self.path)
        self._aliases = dict(aliases or {})
        self._fasta = None
        self.spans = self._read_spans(fai)
        self._by_chrom: dict[str, list[ContigSpan]] = {}
        for span in self.spans:
            self._by_chrom.setdefault(span.chrom, []).append(span)
        for name, target in self._aliases.items():
            targets = [s for s in self.spans if s.name == target]
            if not targets:
                raise GeneSpliceInputError(
                    f"alias {name!r} points at {target!r}, which is not a record in the FASTA "
                    f"(records: {[s.name for s in self.spans][:10]})", path=self.path)
            self._by_chrom[alias_key(name)] = targets

    def _read_spans(self, fai: Path) -> list[ContigSpan]:
        table = read_fai(fai)
        spans = []
        for name, length in zip(table["name"], table["length"]):
            m = _REGION.match(name)
            if m and int(m["end"]) - int(m["start"]) + 1 == length:
                start0 = int(m["start"]) - 1
                spans.append(ContigSpan(name, alias_key(m["chrom"]), start0, start0 + length))
            else:
                spans.append(ContigSpan(name, alias_key(name), 0, int(length)))
        return spans

    # pyfaidx handles cannot cross process boundaries: reopen lazily (DataLoader workers)
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_fasta"] = None
        return state

    def _open(self):
        if self._fasta is None:
            import pyfaidx
            with warnings.catch_warnings():
                # mtimes in a checkout say nothing about staleness; never rebuild, never write
                warnings.filterwarnings("ignore", message=".*older than FASTA.*")
                self._fasta = pyfaidx.Fasta(
                    str(self.path), rebuild=False, build_index=False, as_raw=True,
                    sequence_always_upper=True)
        return self._fasta

    def close(self) -> None:
        if self._fasta is not None:
            self._fasta.close()
            self._fasta = None

    @property
    def chroms(self) -> list[str]:
        """Canonical names of the chromosomes this FASTA holds (any part of)."""
        return sorted(self._by_chrom)

    def has_chrom(self, chrom: str) -> bool:
        return alias_key(chrom) in self._by_chrom

    def covers(self, chrom: str, pos0: int) -> bool:
        """Whether base ``pos0`` of ``chrom`` is in the FASTA."""
        return any(s.start0 <= pos0 < s.end0 for s in self._by_chrom.get(alias_key(chrom), ()))

    def fetch(self, chrom: str, start0: int, end0: int, strand: str = "+") -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens and mask of genomic ``[start0, end0)``; reverse complement when ``strand == '-'``.

        Positions the FASTA does not hold (before 0, beyond a record's end, a chromosome it
        lacks entirely) are ``N`` with mask ``False``.
        """
        if end0 < start0:
            raise ValueError(f"end0 {end0} < start0 {start0}")
        if strand not in ("+", "-"):
            raise ValueError(f"strand must be '+' or '-', got {strand!r}")
        length = end0 - start0
        tokens = torch.full((length,), N, dtype=torch.long)
        mask = torch.zeros(length, dtype=torch.bool)
        fasta = None
        for span in self._by_chrom.get(alias_key(chrom), ()):
            lo, hi = max(start0, span.start0), min(end0, span.end0)
            if lo >= hi:
                continue
            fasta = fasta or self._open()
            text = fasta[span.name][lo - span.start0:hi - span.start0]
            tokens[lo - start0:hi - start0] = encode_sequence(str(text))
            mask[lo - start0:hi - start0] = True
        if strand == "-":
            tokens, mask = reverse_complement_tokens(tokens), mask.flip(-1)
        return tokens, mask

    def window(self, chrom: str, tss: int, strand: str, upstream: int, downstream: int) -> Window:
        """``[tss - upstream, tss + downstream)`` on ``strand``; the TSS is at index ``upstream``."""
        if upstream < 0 or downstream < 1:
            raise ValueError(f"need upstream >= 0 and downstream >= 1 (got {upstream}, {downstream})")
        if strand == "-":
            start0, end0 = tss - downstream + 1, tss + upstream + 1
        else:
            start0, end0 = tss - upstream, tss + downstream
        tokens, mask = self.fetch(chrom, start0, end0, strand)
        return Window(tokens, mask, upstream, str(chrom), start0, end0, strand)

    def gene_window(self, tss_table: pd.DataFrame, gene_id: str, upstream: int,
                    downstream: int) -> Window:
        """Window of one gene of a TSS table (see :mod:`genesplice.sequence.tss`).

        A gene absent from the table, or whose TSS the FASTA does not hold, is an error.
        """
        rows = tss_table.loc[tss_table["gene_id"] == gene_id]
        if rows.empty:
            raise GeneSpliceInputError(f"gene {gene_id!r} is not in the TSS table",
                                       path=tss_table.attrs.get("path"))
        row = rows.iloc[0]
        self.require(gene_id, row["chrom"], int(row["tss"]))
        return self.window(row["chrom"], int(row["tss"]), row["strand"], upstream, downstream)

    def require(self, gene_id: str, chrom: str, tss: int) -> None:
        """Raise :class:`GeneSpliceInputError` unless the FASTA holds this gene's TSS."""
        if not self.has_chrom(chrom):
            raise GeneSpliceInputError(
                f"gene {gene_id!r}: its TSS is on chromosome {chrom!r}, which the FASTA does not "
                f"contain (it holds {', '.join(s.name for s in self.spans[:10])})", path=self.path)
        if not self.covers(chrom, tss):
            spans = ", ".join(f"{s.name}[{s.start0}, {s.end0})" for s in self._by_chrom[alias_key(chrom)])
            raise GeneSpliceInputError(
                f"gene {gene_id!r}: TSS {chrom}:{tss} lies outside the sequence the FASTA holds "
                f"for that chromosome ({spans})", path=self.path)

    def coverage(self, tss_table: pd.DataFrame, upstream: int = 0, downstream: int = 1,
                 n_examples: int = 5) -> CoverageReport:
        """Count which genes the FASTA can serve; one log line with counts and examples."""
        chrom = tss_table["chrom"].astype(str)
        keys = chrom.map(alias_key)
        has = keys.isin(list(self._by_chrom))
        tss = tss_table["tss"].to_numpy()
        covered = pd.Series(False, index=tss_table.index)
        full = pd.Series(False, index=tss_table.index)
        neg = (tss_table["strand"] == "-").to_numpy()
        lo = pd.Series(tss - upstream, index=tss_table.index).where(~neg, tss - downstream + 1)
        hi = pd.Series(tss + downstream, index=tss_table.index).where(~neg, tss + upstream + 1)
        for key, spans in self._by_chrom.items():
            on = keys == key
            for s in spans:
                covered |= on & (tss_table["tss"] >= s.start0) & (tss_table["tss"] < s.end0)
                full |= on & (lo >= s.start0) & (hi <= s.end0)
        ids = tss_table["gene_id"].astype(str)
        missing = ~has
        outside = has & ~covered
        report = CoverageReport(
            n_genes=len(tss_table), n_covered=int(covered.sum()), n_full_window=int(full.sum()),
            n_missing_contig=int(missing.sum()), n_outside_sequence=int(outside.sum()),
            missing_chroms=tuple(sorted(chrom[missing].unique())),
            missing_examples=tuple(ids[missing].head(n_examples)),
            outside_examples=tuple(ids[outside].head(n_examples)),
            covered_gene_ids=tuple(ids[covered]))
        if report.n_missing_contig or report.n_outside_sequence:
            log.warning(
                "%s: %d of %d genes have a TSS the FASTA holds; %d lie on chromosomes it lacks "
                "(%s; e.g. %s), %d lie outside the sequence it holds (e.g. %s)", self.path.name,
                report.n_covered, report.n_genes, report.n_missing_contig,
                ", ".join(report.missing_chroms[:8]), ", ".join(report.missing_examples),
                report.n_outside_sequence, ", ".join(report.outside_examples))
        return report
