"""Property-based fuzzing of every input parser (hypothesis).

Each parser gets a small seed file of real lines from the bundled ``knowledge/`` files, mutated
at random (truncated, binary junk inserted, lines dropped / repeated / swapped, fields shuffled
or replaced, bytes flipped) and optionally gzip-compressed -- with the compressed stream itself
truncated or corrupted, or a name that lies about the compression. Whatever the bytes, the parser
either returns or raises :class:`GeneSpliceInputError` naming the file (and the line where there
is one); any other exception, or a parse running past ``_LIMIT_S``, fails the test.

Runs are derandomised (the same examples every run) with ``_EXAMPLES`` examples per parser; set
``GENESPLICE_FUZZ_EXAMPLES=2000`` for a longer, randomised hunt.
"""
from __future__ import annotations

import gzip
import io
import os
import signal
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesplice.annotations.expression import read_expression_table
from genesplice.annotations.gene_structure import read_gene_structure
from genesplice.annotations.go import read_gaf, read_go_obo
from genesplice.annotations.reactome import (read_gmt, read_reactome_mapping,
                                             read_reactome_names, read_reactome_relations)
from genesplice.annotations.regulatory import read_dorothea, read_trrust
from genesplice.graph.recipes import load_recipe
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.io.tables import read_table
from genesplice.sequence.fasta import read_fai, read_fasta_records
from genesplice.sequence.promoters import read_promoter_fasta
from genesplice.sequence.tss import read_tss_bed, read_tss_gtf, read_tss_tsv
from genesplice.sequence.variants import iter_variants
from genesplice.training.checkpoint import load_checkpoint, save_checkpoint
from genesplice.training.config import load_config

_RANDOM = "GENESPLICE_FUZZ_EXAMPLES" in os.environ
_EXAMPLES = int(os.environ.get("GENESPLICE_FUZZ_EXAMPLES", "300"))
_LIMIT_S = 20          # one parse of a few hundred bytes taking longer than this is a hang


# ---------------------------------------------------------------------------- real seed lines
def _lines(rel: str, n: int, skip: str | None = None) -> list[str]:
    out = []
    with gzip.open(knowledge_path(rel), "rt", encoding="utf-8") as fh:
        for line in fh:
            if skip and line.startswith(skip):
                continue
            out.append(line.rstrip("\n"))
            if len(out) == n:
                break
    return out


@cache
def _obo_seed() -> str:
    """Header + the first term stanzas of the bundled go.obo and the biological_process root,
    with relations to terms outside the slice removed (so the slice is a valid ontology)."""
    with gzip.open(knowledge_path("annotations/go.obo.gz"), "rt", encoding="utf-8") as fh:
        text = fh.read()
    blocks = text.split("\n\n")
    head = [ln for ln in blocks[0].splitlines() if ln.startswith(("format-version",
                                                                   "data-version", "ontology"))]
    terms = [b for b in blocks[1:7] if b.startswith("[Term]")]
    terms += [b for b in blocks if b.startswith("[Term]\nid: GO:0008150\n")]
    ids = {b.splitlines()[1][4:] for b in terms}
    kept = []
    for b in terms:
        lines = [ln for ln in b.splitlines()
                 if not ln.startswith(("is_a:", "relationship:"))
                 or ln.split(" ! ")[0].split()[-1] in ids]
        kept.append("\n".join(ln[:160] for ln in lines))
    return "\n".join(head) + "\n\n" + "\n\n".join(kept) + "\n"


def _vcf_seed() -> str:
    """A VCF of real hg38 chr17 bases (positions from the bundled FASTA's record)."""
    return ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
            "chr17\t9958200\trs1\tA\tG\t.\tPASS\t.\nchr17\t9958210\t.\tC\tT,<DEL>\t.\t.\t.\n"
            "chr17\t9958230\t.\tAC\tA\t.\t.\t.\n")


@cache
def _seeds() -> dict[str, str]:
    gtf = _lines("coords/spliceai_gencode_v24_canonical_tss_hg38.tsv.gz", 5)[1:]
    gtf_lines = ["#!genome-build GRCh38"]
    for row in gtf:  # real GENCODE V24 canonical transcripts written as GTF gene records
        sym, chrom, _, strand, start0, end, _ = row.split("\t")
        gtf_lines.append("\t".join([chrom, "GENCODE", "gene", str(int(start0) + 1), end, ".",
                                    strand, ".", f'gene_id "{sym}.1"; gene_name "{sym}"; '
                                                 "level 2;"]))
    fasta = _lines("coords/epdnew_hs_core_promoters_m49_p10.fa.gz", 8)
    return {
        "obo": _obo_seed(),
        "gaf": "!gaf-version: 2.1\n" + "\n".join(_lines("annotations/goa_human.gaf.gz", 5,
                                                        skip="!")) + "\n",
        "gmt": "\n".join(ln[:300] for ln in _lines(
            "annotations/ReactomePathways_2021-02.gmt.gz", 4)) + "\n",
        "mapping": "\n".join(_lines("annotations/reactome_uniprot2reactome_human.tsv.gz", 5)) + "\n",
        "relations": "\n".join(_lines("annotations/reactome_pathways_relation_human.tsv.gz", 6))
        + "\n",
        "names": "\n".join(_lines("annotations/reactome_pathways_human.tsv.gz", 5)) + "\n",
        "trrust": "\n".join(_lines("annotations/trrust_human.tsv.gz", 6)) + "\n",
        "dorothea": "\n".join(_lines("annotations/dorothea_human.tsv.gz", 6)) + "\n",
        "tss": "\n".join(_lines("coords/tss_hg38.tsv.gz", 6)) + "\n",
        "structure": "\n".join(_lines("coords/spliceai_gencode_v24_canonical_tss_hg38.tsv.gz",
                                      6)) + "\n",
        "bed": "\n".join(_lines("coords/xpresso_hg38_promoters_cage_corrected_pm10kb.bed.gz", 5))
        + "\n",
        "gtf": "\n".join(gtf_lines) + "\n",
        "expression": "\n".join("\t".join(ln.split("\t")[:6]) for ln in
                                _lines("expression/hpa_gtex_tissue_nTPM_wide.tsv.gz", 6)) + "\n",
        "fasta": "\n".join(fasta) + "\n",
        "fai": (knowledge_path("sequence/GRCh38_chr17_9958130-12017414.fa.gz.fai")
                .read_text(encoding="utf-8")),
        "ids": "\n".join(_lines("annotations/gene_ids_human_orgHs_2022.tsv.gz", 5)) + "\n",
        "vcf": _vcf_seed(),
        "recipe": (knowledge_path("").parent / "graphs/human_default.toml").read_text()[:1500],
        "config": (knowledge_path("").parent / "configs/default.toml").read_text()[:1500],
    }


# ---------------------------------------------------------------------------- mutations
_FIELDS = ["", "-1", "*", ".", "x", "1e5", "99999999999999999999", "NaN", "GO:0000000",
           "R-HSA-1", " ", '"', "A;B", "+", "-", "chr1", "0", "\x00", "é", "[Term]", "=", ">"]
_TEXT = st.text(alphabet=st.sampled_from(list("ACGTacgt01-9+*.#>!\t\n \"';=[]:,\\é\x00\r")),
                max_size=12)


def _split(data: bytes) -> list[bytes]:
    return data.split(b"\n")


@st.composite
def _mutation(draw, data: bytes) -> bytes:
    op = draw(st.sampled_from(["truncate", "junk", "text", "drop", "dup", "swap", "shuffle",
                               "field", "flip", "crlf"]))
    lines = _split(data)
    i = draw(st.integers(0, max(0, len(lines) - 1)))
    if op == "truncate":
        return data[:draw(st.integers(0, len(data)))]
    if op in ("junk", "text"):
        at = draw(st.integers(0, len(data)))
        junk = draw(st.binary(min_size=1, max_size=12)) if op == "junk" else \
            draw(_TEXT).encode("utf-8")
        return data[:at] + junk + data[at:]
    if op == "drop":
        return b"\n".join(lines[:i] + lines[i + 1:])
    if op == "dup":
        return b"\n".join(lines[:i + 1] + lines[i:])
    if op == "swap":
        j = draw(st.integers(0, max(0, len(lines) - 1)))
        lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines)
    if op == "shuffle":
        fields = lines[i].split(b"\t")
        lines[i] = b"\t".join(draw(st.permutations(fields)))
        return b"\n".join(lines)
    if op == "field":
        sep = b"\t" if b"\t" in lines[i] else b" "
        fields = lines[i].split(sep)
        k = draw(st.integers(0, len(fields) - 1))
        fields[k] = draw(st.one_of(st.sampled_from(_FIELDS), _TEXT)).encode("utf-8")
        lines[i] = sep.join(fields)
        return b"\n".join(lines)
    if op == "crlf":
        return data.replace(b"\n", b"\r\n")
    if not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]


@st.composite
def _content(draw, seed: str) -> tuple[bytes, str]:
    """(file bytes, how they are stored: 'plain', 'gz', 'gz-named-plain', 'plain-named-gz')."""
    data = seed.encode("utf-8")
    for _ in range(draw(st.integers(0, 3))):
        data = draw(_mutation(data))
    how = draw(st.sampled_from(["plain"] * 6 + ["gz"] * 3 + ["gz-named-plain",
                                                            "plain-named-gz"]))
    if how in ("gz", "gz-named-plain"):
        data = gzip.compress(data, mtime=0)
        damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
        if damage == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif damage == "flip" and len(data) > 10:
            at = draw(st.integers(10, len(data) - 1))
            data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
    return data, how


# ---------------------------------------------------------------------------- the property
@contextmanager
def _time_limit(seconds: int):
    def fail(*_):
        raise TimeoutError(f"parser ran past {seconds} s (a hang)")
    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _consume(result) -> None:
    """Drain generators (iter_variants) so every chunk is parsed."""
    if hasattr(result, "__next__"):
        for _ in result:
            pass


def _check(parse: Callable[[Path], object], folder: Path, suffix: str, content) -> None:
    data, how = content
    name = "input" + suffix + (".gz" if how in ("gz", "plain-named-gz") else "")
    path = folder / name
    path.write_bytes(data)
    try:
        with _time_limit(_LIMIT_S):
            _consume(parse(path))
    except GeneSpliceInputError as err:
        assert err.path is not None and Path(err.path).name.startswith("input"), str(err)
        assert "\n" not in str(err), str(err)
        assert err.line is None or err.line >= 1, str(err)
    finally:
        path.unlink()


PARSERS: dict[str, tuple[str, str, Callable[[Path], object]]] = {
    # name: (seed, suffix, parse)
    "obo": ("obo", ".obo", read_go_obo),
    "gaf": ("gaf", ".gaf", lambda p: read_gaf(p, resolver=False)),
    "gmt": ("gmt", ".gmt", lambda p: read_gmt(p, resolver=False)),
    "reactome_mapping": ("mapping", ".txt", lambda p: read_reactome_mapping(
        p, resolver=False, species=None)),
    "reactome_relations": ("relations", ".txt", read_reactome_relations),
    "reactome_names": ("names", ".txt", read_reactome_names),
    "trrust": ("trrust", ".tsv", lambda p: read_trrust(p, resolver=False)),
    "dorothea": ("dorothea", ".tsv", lambda p: read_dorothea(p, resolver=False)),
    "tss_tsv": ("tss", ".tsv", read_tss_tsv),
    "gene_structure": ("structure", ".tsv", lambda p: read_gene_structure(p, resolver=False)),
    "bed": ("bed", ".bed", read_tss_bed),
    "gtf": ("gtf", ".gtf", read_tss_gtf),
    "expression": ("expression", ".tsv", read_expression_table),
    "fasta": ("fasta", ".fa", read_fasta_records),
    "promoter_fasta": ("fasta", ".fa", read_promoter_fasta),
    "fai": ("fai", ".fai", read_fai),
    "id_table": ("ids", ".tsv", lambda p: read_table(p, columns=("symbol", "ensembl_ids"),
                                                     required=("symbol",))),
    "vcf": ("vcf", ".vcf", iter_variants),
    "recipe": ("recipe", ".toml", load_recipe),
    "config": ("config", ".toml", load_config),
}


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="genesplice-fuzz-") as d:
        yield Path(d)


@pytest.mark.parametrize("name", list(PARSERS))
def test_parser_never_crashes(name, folder):
    seed_key, suffix, parse = PARSERS[name]
    seed = _seeds()[seed_key]
    _check(parse, folder, suffix, (seed.encode("utf-8"), "plain"))   # the seed itself parses

    @settings(max_examples=_EXAMPLES, deadline=None, derandomize=not _RANDOM, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(content=_content(seed))
    def run(content):
        _check(parse, folder, suffix, content)

    run()


@st.composite
def _damaged_checkpoint(draw, data: bytes) -> bytes:
    op = draw(st.sampled_from(["truncate", "flip", "junk"]))
    if op == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    at = draw(st.integers(0, len(data) - 1))
    if op == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]


def test_checkpoint_loading_never_crashes(folder):
    buf = io.BytesIO()
    good = save_checkpoint(folder / "seed.pt", model_state={"w": torch.arange(16.0)},
                           config={"name": "fuzz"})
    buf.write(good.read_bytes())
    seed = buf.getvalue()
    n = 0

    @settings(max_examples=max(20, _EXAMPLES // 3), deadline=None, derandomize=not _RANDOM,
              database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=_damaged_checkpoint(seed))
    def run(data):
        nonlocal n
        path = folder / "input.pt"
        path.write_bytes(data)
        try:
            with _time_limit(_LIMIT_S):
                load_checkpoint(path)
        except GeneSpliceInputError as err:
            n += 1
            assert err.path == str(path) and "\n" not in str(err)

    run()
    assert n > 0   # damage is noticed (a flipped byte inside a tensor payload may not be)
