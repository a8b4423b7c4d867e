"""Regulatory networks: TRRUST v2 and DoRothEA -> signed, scored TF->target edges.

- TRRUST (``tf, target, mode, pmids``): one row per (TF, target, mode); mode Activation -> +1,
  Repression -> -1, Unknown -> 0. Rows of one pair are collapsed: PMIDs merged (``;``), sign
  +1/-1 when the known modes agree, 0 when they conflict or are all Unknown.
- DoRothEA (``tf, confidence, target, mor``): confidence letters A (most) .. E (least);
  ``max_confidence="C"`` keeps A, B and C. ``mor`` sign is the edge sign.
- :func:`merge_regulatory` unions both into one edge list with ``confidence`` in [0, 1].

TF and target symbols go through the one :class:`~genesplice.annotations.ids.GeneResolver`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from genesplice.annotations.ids import GeneResolver, default_resolver
from genesplice.annotations.report import ParseReport
from genesplice.io.constants import DOROTHEA, TRRUST
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.io.tables import read_table

MODE_SIGN = {"Activation": 1, "Repression": -1, "Unknown": 0}
CONFIDENCE_LEVELS = ("A", "B", "C", "D", "E")
#: letter -> score in [0, 1] (A = 1.0 ... E = 0.2)
CONFIDENCE_SCORE = {c: 1.0 - 0.2 * i for i, c in enumerate(CONFIDENCE_LEVELS)}


def _resolve_pairs(df: pd.DataFrame, resolver: GeneResolver | None | bool,
                   report: ParseReport) -> pd.DataFrame:
    if resolver is False:
        return df
    resolver = resolver or default_resolver()
    tf = resolver.resolve_series(df["tf"])
    target = resolver.resolve_series(df["target"])
    miss = tf.isna() | target.isna()
    report.skip("TF or target id not mapped", int(miss.sum()))
    bad = pd.unique(pd.concat([df.loc[tf.isna(), "tf"], df.loc[target.isna(), "target"]]))
    report.add_unmapped(list(bad))
    report.n_unmapped = len(bad)
    return df.assign(tf=tf, target=target)[~miss]


def _combine_signs(signs: pd.Series, keys: list[pd.Series]) -> pd.Series:
    """Per group: +1 / -1 when all non-zero signs agree, else 0."""
    g = pd.DataFrame({"pos": signs > 0, "neg": signs < 0})
    agg = g.groupby(keys, sort=False).any()
    return (agg["pos"].astype(int) - agg["neg"].astype(int)) * ~(agg["pos"] & agg["neg"])


def read_trrust(path: str | os.PathLike | None = None, *,
                resolver: GeneResolver | None | bool = None
                ) -> tuple[pd.DataFrame, ParseReport]:
    """TRRUST TSV -> unique (tf, target) with ``sign``, ``modes``, ``pmids``, ``n_rows``."""
    path = Path(path) if path is not None else knowledge_path(TRRUST)
    report = ParseReport(source=str(path))
    df = read_table(path, columns=("tf", "target", "mode", "pmids"),
                    required=("tf", "target", "mode"), exact_columns=True)
    report.rows_read = len(df)
    bad = ~df["mode"].isin(list(MODE_SIGN))
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise GeneSpliceInputError(
            f"expected mode Activation, Repression or Unknown, found {df['mode'].iloc[i]!r}",
            path=path, line=i + 2)
    report.notes["unique_pairs_as_written"] = int(len(df[["tf", "target"]].drop_duplicates()))
    df = _resolve_pairs(df, resolver, report)
    df = df.assign(sign=df["mode"].map(MODE_SIGN), pmids=df["pmids"].fillna(""))
    keys = [df["tf"], df["target"]]
    sign = _combine_signs(df["sign"], keys)
    d = df.sort_values(["tf", "target", "mode"])
    modes = d.groupby(["tf", "target"], sort=False)["mode"].agg(
        lambda s: "|".join(dict.fromkeys(s)))
    pm = (d.assign(pmid=d["pmids"].str.split(";")).explode("pmid")
            .query("pmid != ''").drop_duplicates(["tf", "target", "pmid"]))
    pm = pm.assign(num=pd.to_numeric(pm["pmid"], errors="coerce")).sort_values(
        ["tf", "target", "num", "pmid"])
    pmids = pm.groupby(["tf", "target"], sort=False)["pmid"].agg(";".join)
    n_rows = df.groupby(["tf", "target"], sort=False).size()
    out = pd.DataFrame({"sign": sign, "n_rows": n_rows})
    out = out.join(modes.rename("modes")).join(pmids.rename("pmids"))
    out = out.reset_index().sort_values(["tf", "target"]).reset_index(drop=True)
    out["pmids"] = out["pmids"].fillna("")
    out = out[["tf", "target", "sign", "modes", "pmids", "n_rows"]]
    report.skip("duplicate (tf, target) rows collapsed", len(df) - len(out))
    report.rows_kept = len(out)
    return out, report.log()


def read_dorothea(path: str | os.PathLike | None = None, *,
                  max_confidence: str = "C",
                  resolver: GeneResolver | None | bool = None
                  ) -> tuple[pd.DataFrame, ParseReport]:
    """DoRothEA TSV -> unique (tf, target) with ``sign``, ``confidence`` (letter) and
    ``confidence_score``; rows less confident than ``max_confidence`` are skipped (counted)."""
    if max_confidence not in CONFIDENCE_LEVELS:
        raise GeneSpliceInputError(
            f"max_confidence must be one of {', '.join(CONFIDENCE_LEVELS)}, got {max_confidence!r}")
    path = Path(path) if path is not None else knowledge_path(DOROTHEA)
    report = ParseReport(source=str(path))
    df = read_table(path, columns=("tf", "confidence", "target", "mor"),
                    required=("tf", "confidence", "target", "mor"))
    report.rows_read = len(df)
    bad = ~df["confidence"].isin(CONFIDENCE_LEVELS)
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise GeneSpliceInputError(
            f"expected confidence letter A-E, found {df['confidence'].iloc[i]!r}",
            path=path, line=i + 2)
    mor = pd.to_numeric(df["mor"], errors="coerce")
    if mor.isna().any():
        i = int(np.argmax(mor.isna().to_numpy()))
        raise GeneSpliceInputError(f"expected a numeric mor, found {df['mor'].iloc[i]!r}",
                                   path=path, line=i + 2)
    df = df.assign(sign=np.sign(mor).astype(int))
    keep = df["confidence"] <= max_confidence
    report.skip(f"confidence below {max_confidence}", int((~keep).sum()))
    df = df[keep]
    df = _resolve_pairs(df, resolver, report)
    keys = [df["tf"], df["target"]]
    sign = _combine_signs(df["sign"], keys)
    rank = df["confidence"].map({c: i for i, c in enumerate(CONFIDENCE_LEVELS)})
    conf = rank.groupby(keys, sort=False).min().map(dict(enumerate(CONFIDENCE_LEVELS)))
    out = pd.DataFrame({"sign": sign, "confidence": conf}).reset_index()
    out.columns = ["tf", "target", "sign", "confidence"]
    out["confidence_score"] = out["confidence"].map(CONFIDENCE_SCORE)
    out = out.sort_values(["tf", "target"]).reset_index(drop=True)
    report.skip("duplicate (tf, target) rows collapsed", len(df) - len(out))
    report.rows_kept = len(out)
    return out, report.log()


def merge_regulatory(trrust: pd.DataFrame | None, dorothea: pd.DataFrame | None, *,
                     trrust_confidence: str = "A") -> pd.DataFrame:
    """Union TRRUST and DoRothEA edges into ``tf, target, sign, confidence, sources, pmids``.

    TRRUST edges (literature-curated, no score of their own) get the letter
    ``trrust_confidence``; a pair in both keeps the better confidence; signs combine as in
    :func:`read_trrust` (agreeing non-zero signs win, conflicts give 0).
    """
    parts = []
    if trrust is not None and len(trrust):
        parts.append(pd.DataFrame({"tf": trrust["tf"], "target": trrust["target"],
                                   "sign": trrust["sign"], "letter": trrust_confidence,
                                   "source": "TRRUST", "pmids": trrust["pmids"]}))
    if dorothea is not None and len(dorothea):
        parts.append(pd.DataFrame({"tf": dorothea["tf"], "target": dorothea["target"],
                                   "sign": dorothea["sign"], "letter": dorothea["confidence"],
                                   "source": "DoRothEA", "pmids": ""}))
    if not parts:
        return pd.DataFrame(columns=["tf", "target", "sign", "confidence", "sources", "pmids"])
    df = pd.concat(parts, ignore_index=True)
    keys = [df["tf"], df["target"]]
    sign = _combine_signs(df["sign"], keys)
    rank = df["letter"].map({c: i for i, c in enumerate(CONFIDENCE_LEVELS)})
    letter = rank.groupby(keys, sort=False).min().map(dict(enumerate(CONFIDENCE_LEVELS)))
    # sources: bit flags -> "DoRothEA", "TRRUST" or "DoRothEA|TRRUST" (no per-group lambdas)
    flags = pd.DataFrame({"d": df["source"] == "DoRothEA", "t": df["source"] == "TRRUST"}
                         ).groupby(keys, sort=False).any()
    sources = pd.Series(np.select([flags["d"] & flags["t"], flags["d"]],
                                  ["DoRothEA|TRRUST", "DoRothEA"], "TRRUST"), index=flags.index)
    pm = df.loc[df["pmids"] != "", ["tf", "target", "pmids"]].set_index(["tf", "target"])
    pmids = pm["pmids"]
    if pmids.index.has_duplicates:
        pmids = pmids.groupby(level=[0, 1]).agg(";".join)
    out = pd.DataFrame({"sign": sign, "letter": letter, "sources": sources})
    out = out.join(pmids.rename("pmids"))
    out["pmids"] = out["pmids"].fillna("")
    out.index.names = ["tf", "target"]
    out = out.reset_index().sort_values(["tf", "target"]).reset_index(drop=True)
    out["confidence"] = out["letter"].map(CONFIDENCE_SCORE).astype(float)
    return out[["tf", "target", "sign", "confidence", "letter", "sources", "pmids"]]
