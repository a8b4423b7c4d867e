"""TSS table readers on the real bundled tables (GTF: a format conversion of real GENCODE rows)."""
import gzip
from pathlib import Path

import pandas as pd
import pytest

from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.sequence.tss import TSS_COLUMNS, read_tss, read_tss_bed, read_tss_gtf, read_tss_tsv

from .conftest import HG19_WINDOWS, HG38_TSS


def test_hg19_xpresso_windows_tss_is_start_plus_10000(hg19_tss):
    assert list(hg19_tss.columns) == TSS_COLUMNS
    assert len(hg19_tss) == 18362
    dpm1 = hg19_tss.set_index("gene_id").loc["ENSG00000000419"]  # BED: chr20 49565068 49585068 -
    assert (dpm1["chrom"], dpm1["tss"], dpm1["strand"]) == ("chr20", 49575068, "-")
    assert dpm1["ensembl_id"] == "ENSG00000000419" and pd.isna(dpm1["gene_symbol"])
    assert (hg19_tss["chrom"] == "chr20").sum() == 517
    assert hg19_tss["tss"].dtype == "int64"


def test_five_prime_mode_uses_strand():
    df = read_tss_bed(knowledge_path(HG19_WINDOWS), tss_at="five_prime").set_index("gene_id")
    assert df.loc["ENSG00000000419", "tss"] == 49585068 - 1      # minus strand: end - 1
    assert df.loc["ENSG00000000005", "tss"] == 99829932          # plus strand: start


def test_hg38_tsv(hg38_tss):
    assert len(hg38_tss) == 20573
    or4f5 = hg38_tss.set_index("gene_id").loc["OR4F5"]
    assert (or4f5["chrom"], or4f5["tss"], or4f5["strand"], or4f5["ensembl_id"]) == \
        ("chr1", 69090, "+", "ENSG00000186092")
    # rows without a symbol never get an empty id
    assert hg38_tss["gene_id"].str.len().min() > 0


def _write_gtf(path: Path, n: int = 200) -> pd.DataFrame:
    """GTF `gene` records converted from real GENCODE v24 canonical transcripts (1-based)."""
    src = pd.read_csv(knowledge_path("coords/spliceai_gencode_v24_canonical_tss_hg38.tsv.gz"),
                      sep="\t").head(n)
    lines = ["#!genome-build GRCh38 (converted from spliceai grch38.txt)"]
    for r in src.itertuples():
        lines.append("\t".join([r.chrom, "GENCODE", "gene", str(r.tx_start_0based + 1), str(r.tx_end),
                                ".", r.strand, ".",
                                f'gene_id "ID_{r.Index}.1"; gene_name "{r.gene_symbol}";']))
        lines.append("\t".join([r.chrom, "GENCODE", "exon", str(r.tx_start_0based + 1),
                                str(r.tx_start_0based + 10), ".", r.strand, ".",
                                f'gene_id "ID_{r.Index}.1"; gene_name "{r.gene_symbol}";']))
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return src


@pytest.mark.parametrize("name", ["genes.gtf", "genes.gtf.gz"])
@pytest.mark.parametrize("as_str", [False, True])
def test_gtf_gene_records_give_the_5prime_end(tmp_path, name, as_str):
    path = tmp_path / name
    src = _write_gtf(path)
    df = read_tss_gtf(str(path) if as_str else path)
    assert len(df) == len(src)
    assert df["tss"].tolist() == src["tss"].tolist()
    assert df["gene_id"].tolist() == src["gene_symbol"].tolist()
    assert df["ensembl_id"].iloc[0] == "ID_0"          # version stripped
    assert read_tss(path)["tss"].tolist() == src["tss"].tolist()


def test_read_tss_dispatches_on_suffix():
    assert len(read_tss(knowledge_path(HG19_WINDOWS))) == 18362
    assert len(read_tss(knowledge_path(HG38_TSS))) == 20573


def test_bad_strand_names_file_and_line(tmp_path):
    rows = gzip.open(knowledge_path(HG19_WINDOWS), "rt").read().splitlines()[:5]
    rows[3] = rows[3].rsplit("\t", 1)[0] + "\t."
    path = tmp_path / "bad.bed"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(GeneSpliceInputError) as err:
        read_tss_bed(path)
    assert err.value.line == 4 and "strand" in str(err.value) and "bad.bed:4" in str(err.value)


def test_duplicate_ids_are_counted(tmp_path, caplog):
    rows = gzip.open(knowledge_path(HG19_WINDOWS), "rt").read().splitlines()[:5]
    path = tmp_path / "dup.bed"
    path.write_text("\n".join(rows + rows[:2]) + "\n")
    df = read_tss_bed(path)
    assert len(df) == 5 and df.attrs["n_duplicates"] == 2
    assert "2 rows repeat" in caplog.text


def test_tsv_missing_columns(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("gene\tpos\nA\t1\n")
    with pytest.raises(GeneSpliceInputError, match="missing column"):
        read_tss_tsv(path)
    with pytest.raises(GeneSpliceInputError, match="file not found"):
        read_tss_tsv(tmp_path / "absent.tsv")
