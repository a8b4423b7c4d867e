"""``genesplice validate FILE``: check one input file with the pipeline's own reader.

There is no second validator: each kind of file is read by the very function the pipeline reads
it with (GO/GAF/GMT/Reactome/TRRUST/DoRothEA parsers, TSS tables, the expression table, BED,
GTF, FASTA with its ``.fai``, variants, graph recipes, run configs), so a file that validates is
a file the pipeline accepts, and every problem is the loader's own one-line
:class:`GeneSpliceInputError` naming the file, the line and what was expected.

The kind of file is guessed from its name *and* its first line (a ``.tsv`` whose header has
``chrom``, ``tss`` and ``strand`` is a TSS table; one with ``gene_symbol`` and numeric columns is
an expression table; a ``.toml`` with ``[go]`` is a graph recipe, with ``[train]`` a run config),
or given as ``--format``. Adding a format: one reader call in :data:`VALIDATORS`.
"""
from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

from genesplice.annotations.expression import read_expression_table
from genesplice.annotations.gene_structure import read_gene_structure
from genesplice.annotations.go import read_gaf, read_go_obo
from genesplice.annotations.ids import GeneResolver
from genesplice.annotations.reactome import (read_gmt, read_reactome_mapping,
                                             read_reactome_names, read_reactome_relations)
from genesplice.annotations.regulatory import read_dorothea, read_trrust
from genesplice.graph.recipes import PATH_KEYS, Recipe, load_recipe
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.text import check_readable, open_text
from genesplice.sequence.fasta import GenomeWindows, check_fasta_index, read_fai
from genesplice.sequence.promoters import read_promoter_fasta
from genesplice.sequence.tss import read_tss_bed, read_tss_gtf, read_tss_tsv
from genesplice.sequence.variants import iter_variants
from genesplice.training.config import RunConfig, load_config


# ---------------------------------------------------------------------------- one reader per kind
def _obo(path: Path) -> str:
    go = read_go_obo(path)
    ns = go.terms["namespace"].value_counts().to_dict()
    return (f"{len(go.terms):,} terms ({', '.join(f'{k}: {v:,}' for k, v in sorted(ns.items()))}), "
            f"{len(go.edges):,} relations")


def _gaf(path: Path) -> str:
    ann, rep = read_gaf(path, resolver=False)
    return (f"{rep.rows_read:,} annotations, {ann['gene'].nunique():,} genes, "
            f"{ann['go_id'].nunique():,} terms")


def _gmt(path: Path) -> str:
    df, _ = read_gmt(path, resolver=False)
    return f"{df['pathway_id'].nunique():,} gene sets, {len(df):,} memberships"


def _reactome_mapping(path: Path) -> str:
    df, rep = read_reactome_mapping(path, resolver=False, species=None)
    return (f"{rep.rows_read:,} rows, {df['gene'].nunique():,} UniProt accessions, "
            f"{df['pathway_id'].nunique():,} pathways")


def _reactome_hierarchy(path: Path) -> str:
    rel = read_reactome_relations(path)
    return f"{len(rel):,} parent-child pairs"


def _reactome_names(path: Path) -> str:
    names = read_reactome_names(path, species=None)
    return f"{len(names):,} pathways"


def _trrust(path: Path) -> str:
    df, rep = read_trrust(path, resolver=False)
    return f"{rep.rows_read:,} rows, {len(df):,} TF-target pairs"


def _dorothea(path: Path) -> str:
    df, rep = read_dorothea(path, resolver=False, max_confidence="E")
    return f"{rep.rows_read:,} rows, {len(df):,} TF-target pairs (confidence A-E)"


def _tss_summary(df) -> str:
    return f"{len(df):,} genes on {df['chrom'].nunique():,} chromosomes"


def _tss(path: Path) -> str:
    return "TSS table: " + _tss_summary(read_tss_tsv(path))


def _bed(path: Path) -> str:
    return "TSS BED: " + _tss_summary(read_tss_bed(path))


def _gtf(path: Path) -> str:
    return "GTF gene records: " + _tss_summary(read_tss_gtf(path))


def _gene_structure(path: Path) -> str:
    df, _ = read_gene_structure(path, resolver=False)
    return f"{len(df):,} canonical transcripts"


def _expression(path: Path) -> str:
    table = read_expression_table(path)
    return f"{table.n_genes:,} genes x {table.n_tissues:,} tissues"


def _fasta(path: Path) -> str:
    if Path(str(path) + ".fai").exists():
        GenomeWindows(path).close()          # .fai / .gzi present and readable
        records = check_fasta_index(path)    # the sequence, and the index agrees with it
        n_bases = sum(len(r.sequence) for r in records)
        return f"indexed genome FASTA: {len(records):,} sequences, {n_bases:,} bases"
    df = read_promoter_fasta(path)
    return (f"{len(df):,} sequences, {int(df['sequence'].str.len().sum()):,} bases "
            "(no .fai: readable as a promoter FASTA, not as a genome)")


def _fai(path: Path) -> str:
    table = read_fai(path)
    return f"FASTA index: {len(table):,} sequences, {int(table['length'].sum()):,} bases"


def _variants(path: Path) -> str:
    n, chroms = 0, set()
    for chunk in iter_variants(path):
        n += len(chunk)
        chroms.update(chunk["chrom"].unique().tolist())
    return f"{n:,} variants (one per ALT allele) on {len(chroms):,} chromosomes"


def _gene_ids(path: Path) -> str:
    resolver = GeneResolver.from_table(path)
    return f"{len(resolver.symbols):,} official symbols"


def _recipe(path: Path) -> str:
    recipe = load_recipe(path)
    inputs = check_recipe_inputs(recipe)
    return f"graph recipe {recipe.name!r}; {len(inputs)} input files present"


def _config(path: Path) -> str:
    cfg = load_config(path)
    inputs = check_config_inputs(cfg, path)
    return f"run config {cfg.name!r}; {len(inputs)} input paths present"


#: format -> reader call returning the summary after ``OK (<format>)``
VALIDATORS: dict[str, Callable[[Path], str]] = {
    "obo": _obo, "gaf": _gaf, "gmt": _gmt,
    "reactome-mapping": _reactome_mapping, "reactome-hierarchy": _reactome_hierarchy,
    "reactome-names": _reactome_names, "trrust": _trrust, "dorothea": _dorothea,
    "tss": _tss, "bed": _bed, "gtf": _gtf, "gene-structure": _gene_structure,
    "expression": _expression, "fasta": _fasta, "fai": _fai, "vcf": _variants,
    "variants": _variants, "gene-ids": _gene_ids, "recipe": _recipe, "config": _config,
}
FORMATS = tuple(VALIDATORS)


# ---------------------------------------------------------------------------- input paths
def check_recipe_inputs(recipe: Recipe) -> dict[str, Path]:
    """Every input file of the recipe's enabled sections exists (key -> path); else the error
    names the recipe and the key."""
    out: dict[str, Path] = {}
    for section, keys in PATH_KEYS.items():
        sec = getattr(recipe, section)
        if not getattr(sec, "enabled", True):
            continue
        for key in keys:
            if section == "regulatory" and not getattr(sec, f"use_{key}", True):
                continue
            path = recipe.path(getattr(sec, key))
            try:
                check_readable(path)
            except GeneSpliceInputError as err:
                raise GeneSpliceInputError(f"key '{section}.{key}': {err}",
                                           path=recipe.source or None) from err
            out[f"{section}.{key}"] = path
    return out


def check_config_inputs(cfg: RunConfig, source: str | os.PathLike | None = None
                        ) -> dict[str, Path]:
    """Every input path a run config names (``[data]``; ``""`` = bundled) exists; the graph
    folder may be absent (it is built). Returns key -> path of those given."""
    data = cfg.data
    out: dict[str, Path] = {}
    given = [(f"data.{k}", getattr(data, k)) for k in
             ("expression_path", "tss_path", "promoters_path", "gene_structure_path",
              "window_tss_path", "window_encoder")]
    given += [(f"data.genome_paths[{i}]", p) for i, p in enumerate(data.genome_paths)]
    for key, value in given:
        if not value:
            continue
        try:
            out[key] = check_readable(value)
        except GeneSpliceInputError as err:
            raise GeneSpliceInputError(f"key '{key}': {err}", path=source) from err
    return out


# ---------------------------------------------------------------------------- guessing the kind
_BY_SUFFIX = {"obo": "obo", "gaf": "gaf", "gmt": "gmt", "bed": "bed", "gtf": "gtf",
              "gff": "gtf", "gff2": "gtf", "fa": "fasta", "fasta": "fasta", "fna": "fasta",
              "fai": "fai", "vcf": "vcf", "csv": "expression", "parquet": "expression",
              "h5ad": "expression"}
_TABLE_SUFFIXES = ("tsv", "txt", "tab")
_RECIPE_KEYS = {"genes", "go", "reactome", "regulatory", "graph", "knowledge_dir",
                "description"}
_CONFIG_KEYS = {"data", "model", "train", "pretrain", "ridge", "out_dir"}
_NUMBER = re.compile(r"^\s*-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*(nan|NaN|NA)?\s*$")


def _first_lines(path: Path, n: int = 2) -> list[str]:
    """The first ``n`` lines that are not VCF/GAF meta lines (``##``, ``!``)."""
    out: list[str] = []
    with open_text(path) as fh:
        for line in fh:
            if line.startswith(("##", "!")) and not out:
                if line.startswith("##fileformat=VCF"):
                    return ["#VCF"]
                continue
            out.append(line.rstrip("\r\n"))
            if len(out) == n:
                break
    return out


def _guess_table(path: Path) -> str | None:
    lines = _first_lines(path)
    if not lines:
        return None
    if lines[0] == "#VCF" or lines[0].startswith("#CHROM"):
        return "vcf"
    head = lines[0].split("\t")
    cols = {c.strip().lower() for c in head}
    if {"tf", "target", "mode"} <= cols:
        return "trrust"
    if {"tf", "confidence", "target", "mor"} <= cols:
        return "dorothea"
    if {"tx_start_0based", "tx_end", "n_exons"} <= cols:
        return "gene-structure"
    if {"chrom", "tss", "strand"} <= cols:
        return "tss"
    if {"chrom", "pos", "ref", "alt"} <= cols:
        return "variants"
    if {"symbol", "ensembl_ids", "uniprot_ids", "aliases"} <= cols:
        return "gene-ids"
    if cols & {"gene_symbol", "ensembl_id", "gene_id"} and len(lines) > 1:
        row = lines[1].split("\t")
        ids = [i for i, c in enumerate(head) if c.strip().lower() in
               ("gene_symbol", "ensembl_id", "gene_id")]
        values = [v for i, v in enumerate(row) if i not in ids]
        if values and all(_NUMBER.match(v) for v in values):
            return "expression"
    if head[0].startswith("R-") and len(head) == 2:
        return "reactome-hierarchy"
    if head[0].startswith("R-") and len(head) == 3:
        return "reactome-names"
    if len(head) >= 6 and head[1].startswith("R-") and head[2].startswith("http"):
        return "reactome-mapping"
    return None


def _guess_toml(path: Path) -> str | None:
    parent = Path(path).resolve().parent.name
    try:
        keys = set(tomllib.loads(Path(path).read_bytes().decode("utf-8")))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
        keys = set()
    if keys & _RECIPE_KEYS and not keys & _CONFIG_KEYS:
        return "recipe"
    if keys & _CONFIG_KEYS and not keys & _RECIPE_KEYS:
        return "config"
    return {"graphs": "recipe", "configs": "config"}.get(parent)


def guess_format(path: str | os.PathLike) -> str:
    """The kind of input ``path`` is, from its name and (for tables and TOML) its first line."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    fmt = _BY_SUFFIX.get(ext)
    if fmt is None and ext in _TABLE_SUFFIXES:
        fmt = _guess_table(check_readable(path))
    elif fmt is None and ext == "toml":
        fmt = _guess_toml(check_readable(path))
    if fmt is None:
        raise GeneSpliceInputError(
            "cannot tell the kind of file from its name and first line; pass --format, one of "
            f"{', '.join(FORMATS)}", path=path, line=1 if ext in _TABLE_SUFFIXES else None)
    return fmt


def validate_file(path: str | os.PathLike, fmt: str | None = None) -> str:
    """Check one input file with the pipeline's reader; a one-line summary, or raise
    :class:`GeneSpliceInputError` (one line: file, line, what was expected)."""
    path = Path(path)
    if fmt is not None and fmt not in VALIDATORS:
        raise GeneSpliceInputError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    check_readable(path)
    fmt = fmt or guess_format(path)
    return f"{path}: OK ({fmt}) {VALIDATORS[fmt](path)}"


__all__ = ["FORMATS", "VALIDATORS", "check_config_inputs", "check_recipe_inputs",
           "guess_format", "validate_file"]
