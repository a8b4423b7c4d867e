"""Variant effects with a long-window model (``data.sequence_view = "both"``), on the real
bundled GRCh37 chr20: variants anywhere in the ±2 kb TSS windows of the session's small window
run (tests/conftest.py ``window_run``), on both strands, with chromosome aliases, reference
checks, counts of variants outside every window, and the ``variant-effect`` command."""
from __future__ import annotations

import pandas as pd
import pytest

from genesplice.api import GeneSplice
from genesplice.cli import main
from genesplice.io.constants import GRCH37_FASTAS
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.sequence.genome import Genome

UPSTREAM = 1_500        # bases 5' of the TSS: outside the 60 bp promoter, inside ±2 kb


@pytest.fixture(scope="module")
def wgs(window_run):
    return GeneSplice.load(window_run["out"] / "run" / "fused.pt", graph=window_run["kg"],
                           genes=window_run["genes"], device="cpu", progress=False)


@pytest.fixture(scope="module")
def genome():
    with Genome([knowledge_path(p) for p in GRCH37_FASTAS]) as g:
        yield g


@pytest.fixture(scope="module")
def chr20(wgs):
    """One + and one − strand chr20 gene with a window."""
    w = wgs.long_windows()
    w = w[w["chrom"] == "20"]
    return w[w["strand"] == "+"].iloc[0], w[w["strand"] == "-"].iloc[0]


def _upstream_snv(gene, genome, chrom_name: str) -> dict:
    """An SNV ``UPSTREAM`` bases 5' of the gene's TSS (on its strand), with the true ref."""
    pos0 = (int(gene["tss0"]) - UPSTREAM if gene["strand"] == "+"
            else int(gene["tss0"]) + UPSTREAM)
    ref = genome.fetch_text("20", pos0, pos0 + 1)
    return {"chrom": chrom_name, "pos": pos0 + 1, "ref": ref,
            "alt": "G" if ref != "G" else "T", "id": f"up_{gene['gene_symbol']}"}


def test_model_reads_long_windows(wgs, chr20):
    assert wgs.reads_windows
    plus, minus = chr20
    assert int(plus["end0"]) - int(plus["start0"]) == 4_000
    assert int(plus["tss0"]) - int(plus["start0"]) == 2_000          # TSS − 2 kb … + 2 kb
    assert int(minus["end0"]) - 1 - int(minus["tss0"]) == 2_000      # on the − strand


def test_upstream_variants_on_both_strands_with_aliases(wgs, chr20, genome):
    plus, minus = chr20
    snvs = [_upstream_snv(plus, genome, "20"), _upstream_snv(minus, genome, "chr20")]
    same = [{**v, "alt": v["ref"], "id": v["id"] + "_same"} for v in snvs]
    far = {"chrom": "chr20", "pos": 1, "ref": "N", "alt": "A", "id": "far"}   # no window
    effects = wgs.variant_effect(pd.DataFrame(snvs + same + [far]), progress=False)
    assert effects.attrs["view"] == "long window"
    assert "1 outside every long window;" in effects.attrs["report"]
    by = effects.set_index(["variant_id", "gene_symbol"])
    tissues = wgs.tissues
    for gene, v in zip((plus, minus), snvs):
        row = by.loc[(v["id"], gene["gene_symbol"])]
        assert row["offset_to_tss"] == -UPSTREAM and row["strand"] == gene["strand"]
        assert row[tissues].abs().max() > 0                   # the window embedding moved
        assert (by.loc[(v["id"] + "_same", gene["gene_symbol"]), tissues] == 0.0).all()


def test_reference_mismatch_names_the_variant(wgs, chr20, genome):
    v = _upstream_snv(chr20[0], genome, "chr20")
    wrong = {**v, "ref": "A" if v["ref"] != "A" else "C", "id": "rsWRONG"}
    with pytest.raises(GeneSpliceInputError, match=r"variant rsWRONG .*does not match"):
        wgs.variant_effect(pd.DataFrame([wrong]), progress=False)


def test_variant_effect_command_writes_delta_columns(window_run, saved, chr20, genome, tmp_path,
                                                     capsys):
    v = _upstream_snv(chr20[1], genome, "20")
    vcf = tmp_path / "v.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"{v['chrom']}\t{v['pos']}\t{v['id']}\t{v['ref']}\t{v['alt']}\t.\t.\t.\n")
    genes = tmp_path / "genes.txt"
    genes.write_text("\n".join(window_run["genes"]) + "\n")
    out = tmp_path / "effects.csv"
    rc = main(["variant-effect", "--checkpoint", str(window_run["out"] / "run" / "fused.pt"),
               "--variants", str(vcf), "--out", str(out), "--graph", str(saved),
               "--labelled-genes", str(genes), "--device", "cpu", "--quiet"])
    assert rc == 0 and "wrote" in capsys.readouterr().out
    first = out.read_text().splitlines()[0]
    assert first.startswith("# ") and "log10(nTPM + 1)" in first
    table = pd.read_csv(out, comment="#")
    assert list(table.columns[:6]) == ["variant_id", "chrom", "pos", "ref", "alt",
                                       "gene_symbol"]
    tissue_cols = [c for c in table.columns if c.startswith("delta_") and c != "delta_mean"]
    assert len(tissue_cols) == 37 and "delta_mean" in table.columns
    row = table.set_index("gene_symbol").loc[chr20[1]["gene_symbol"]]
    assert row["delta_mean"] == pytest.approx(row[tissue_cols].mean(), abs=1e-5)


def test_variant_effect_command_rejects_a_missing_file(tmp_path, capsys):
    rc = main(["variant-effect", "--checkpoint", str(tmp_path / "x.pt"), "--variants",
               str(tmp_path / "none.vcf"), "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "variant file not found" in err and len(err.strip().splitlines()) == 1
