"""genesplice.api.variant_effects: promoter windows on the genome, streamed variant effects."""
from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genesplice.api import variant_effects
from genesplice.io.errors import GeneSpliceInputError
from genesplice.sequence.encode import decode_tokens
from tests.api.helpers import fasta


def test_variant_effect_ref_to_ref_is_exactly_zero_and_snvs_match_ism(gs):
    """Every base of ACP1's (+) and MYH4's (−) promoter windows, as ref→ref and as an SNV."""
    windows = gs.promoter_windows().set_index("gene_symbol")
    assert {"ACP1", "MYH4", "SCO1"} <= set(windows.index)
    rows = []
    for gene in ("ACP1", "MYH4"):
        w = windows.loc[gene]
        chrom = "chr" + w["chrom"]
        tokens, _ = fasta(chrom).fetch(chrom, int(w["start0"]), int(w["end0"]))
        for i, base in enumerate(decode_tokens(tokens)):
            pos = int(w["start0"]) + i + 1
            rows.append((chrom, pos, base, base))
            rows.append((chrom, pos, base, "G" if base != "G" else "T"))
    variants = pd.DataFrame(rows, columns=["chrom", "pos", "ref", "alt"])
    effects = gs.variant_effect(variants, progress=False)
    assert len(effects) == 240 and effects.attrs["unit"] == "Δ log10(nTPM + 1)"
    tissues = gs.tissues
    same = effects[effects["ref"] == effects["alt"]]
    assert len(same) == 120
    assert (same[tissues].to_numpy() == 0.0).all()                  # exactly zero
    snv = effects[effects["ref"] != effects["alt"]]
    assert (snv[tissues].abs().to_numpy().max(axis=1) > 0).all()
    # an SNV's Δ is the ISM Δ of the same base change on the gene's strand
    attr = gs.attributions("MYH4", "skeletal muscle").set_index("offset_to_tss")
    complement = dict(zip("ACGT", "TGCA"))
    myh4 = snv[snv["gene_symbol"] == "MYH4"]
    for _, v in myh4.head(10).iterrows():
        ism = attr.loc[v["offset_to_tss"], f"ism_{complement[v['alt']]}"]
        assert attr.loc[v["offset_to_tss"], "base"] == complement[v["ref"]]
        np.testing.assert_allclose(v["skeletal muscle"], ism, atol=1e-6)


def test_variant_ref_mismatch_names_the_variant(gs):
    w = gs.promoter_windows().set_index("gene_symbol").loc["SCO1"]
    tokens, _ = fasta("chr17").fetch("chr17", int(w["start0"]), int(w["start0"]) + 1)
    wrong = "A" if decode_tokens(tokens) != "A" else "C"
    bad = pd.DataFrame({"chrom": ["chr17"], "pos": [int(w["start0"]) + 1], "id": ["rsBAD"],
                        "ref": [wrong], "alt": ["T"]})
    with pytest.raises(GeneSpliceInputError, match=r"variant rsBAD .*does not match the genome"):
        gs.variant_effect(bad, progress=False)


def _write_vcf(path: Path, n: int, seed: int) -> None:
    """n random SNVs with correct reference bases in the bundled hg38 chr2 / chr17 regions."""
    rng = np.random.default_rng(seed)
    regions = {"chr2": (10_000, 2_333_275), "chr17": (9_958_130, 12_017_414)}
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for chrom, (lo, hi) in regions.items():
        k = n // 2
        pos = np.sort(rng.integers(lo, hi, size=k))
        tokens, _ = fasta(chrom).fetch(chrom, lo - 1, hi)
        seq = np.array(list(decode_tokens(tokens)))
        refs = seq[pos - lo]
        alts = np.where(refs == "A", "C", "A")
        lines += [f"{chrom}\t{p}\t.\t{r}\t{a}\t.\t.\t." for p, r, a in zip(pos, refs, alts)]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


BATCH = 2           # pairs per scoring batch in the streaming test (the files give ~20 pairs)
CHUNK = 1_000       # variants read at a time


def test_variant_streaming_memory_is_flat(gs, tmp_path, monkeypatch):
    """10k and 100k variants: Python/numpy/pandas memory (tracemalloc) stays flat, and the
    torch side, which tracemalloc does not see, is bounded by construction: the scorer's
    tensors are sized by the pairs of one batch, and a batch never holds more than
    ``BATCH - 1`` pending pairs plus one chunk's hits — however many variants are read."""
    small, large = tmp_path / "10k.vcf.gz", tmp_path / "100k.vcf.gz"
    _write_vcf(small, 10_000, seed=1)
    _write_vcf(large, 100_000, seed=2)
    gs.variant_effect(pd.DataFrame({"chrom": ["chr2"], "pos": [5], "ref": ["N"],
                                    "alt": ["A"]}), progress=False)   # locate windows once
    scored: list[tuple[int, int]] = []      # (pairs, tokens.numel()) per copy_genes call
    chunk_hits: list[int] = []              # pairs found per chunk read
    copy_genes, variant_windows = variant_effects.copy_genes, variant_effects.variant_windows

    def counting_copy(graph, seq, rows, *, tokens, mask, **kwargs):
        scored.append((len(rows), tokens.numel()))
        return copy_genes(graph, seq, rows, tokens=tokens, mask=mask, **kwargs)

    def counting_windows(chunk, *args, **kwargs):
        vw = variant_windows(chunk, *args, **kwargs)
        chunk_hits.append(0 if vw is None else len(vw.variants))
        return vw

    monkeypatch.setattr(variant_effects, "copy_genes", counting_copy)
    monkeypatch.setattr(variant_effects, "variant_windows", counting_windows)
    peaks, results = [], []
    for path, n in ((small, 10_000), (large, 100_000)):
        scored.clear()
        chunk_hits.clear()
        tracemalloc.start()
        results.append(gs.variant_effect(path, chunk_size=CHUNK, batch_size=BATCH,
                                         progress=False))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        pairs = [p for p, _ in scored]
        assert len(chunk_hits) == n // CHUNK                    # streamed chunk by chunk
        assert sum(pairs) == 2 * len(results[-1]) == 2 * sum(chunk_hits)  # ref and alt
        assert max(pairs) <= BATCH - 1 + max(chunk_hits), (pairs, chunk_hits)
        assert max(n for _, n in scored) == 60 * max(pairs)     # tokens [pairs, 60]
    assert "100,000 variants read" in results[1].attrs["report"]
    assert len(results[1]) > len(results[0]) > 0                    # hits scale with input
    assert len(results[1]) >= 4 * BATCH, len(results[1])            # several batches
    # 90,000 more variants add a fixed ~1 MB of reader buffers (pandas' C parser, gzip), not
    # memory per variant: a held table of 100k variants alone would take ~30 MB here
    assert peaks[1] <= peaks[0] + 2_000_000, peaks
