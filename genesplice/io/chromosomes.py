"""Chromosome names, decided in one place.

Two spellings are used, each for one purpose:

* :func:`normalize_chromosome` — the UCSC-style name the package reports and splits on
  (``8``/``chr8``/``CHR8`` → ``chr8``, ``x`` → ``chrX``, ``MT``/``M`` → ``chrM``);
* :func:`alias_key` — the key under which FASTA record names are matched, so ``chr20`` and
  ``20`` find the same record (no ``chr`` prefix, ``M`` → ``MT``).
"""
from __future__ import annotations

import re

_CHROM = re.compile(r"^(?:chr)?([0-9]+|[XYM]|MT)$", re.IGNORECASE)


def normalize_chromosome(name: str) -> str:
    """``8``/``chr8``/``CHR8`` -> ``chr8``; ``x`` -> ``chrX``; ``MT``/``M`` -> ``chrM``.

    Names that are not a numbered, X, Y or mitochondrial chromosome (e.g. ``chr1_KI270706v1``)
    are returned unchanged apart from surrounding whitespace.
    """
    s = str(name).strip()
    m = _CHROM.match(s)
    if not m:
        return s
    core = m.group(1).upper()
    if core == "MT":
        core = "M"
    if core.isdigit():
        core = str(int(core))
    return f"chr{core}"


def alias_key(name: str) -> str:
    """Alias key of a chromosome name: no ``chr`` prefix, ``M`` → ``MT`` (``chr20`` → ``20``)."""
    key = str(name)
    if key[:3].lower() == "chr":
        key = key[3:]
    key = key.upper() if len(key) <= 2 else key
    return "MT" if key == "M" else key
