"""GENCODE canonical transcripts -> gene structure, on the real bundled file and small bad files."""
import pandas as pd
import pytest

from genesplice.annotations.gene_structure import read_gene_structure
from genesplice.io.constants import GENCODE_CANONICAL
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from tests.textfiles import write_text

HEADER = "gene_symbol\tchrom\ttss\tstrand\ttx_start_0based\ttx_end\tn_exons\n"
#: real rows of the bundled file (GENCODE V24)
TP53 = "TP53\tchr17\t7687537\t-\t7668401\t7687538\t11\n"
SAMD11 = "SAMD11\tchr1\t925737\t+\t925737\t944575\t14\n"


def test_real_file(resolver):
    table, rep = read_gene_structure(resolver=resolver)
    raw = pd.read_csv(knowledge_path(GENCODE_CANONICAL), sep="\t")
    assert rep.rows_read == len(raw) == 19_305
    assert rep.rows_kept == len(table) == rep.rows_read - sum(rep.skipped.values())
    assert list(table.columns) == ["span_bp", "n_exons", "chrom", "strand"]
    assert table.index.is_unique and table.index.name == "gene_symbol"
    tp53 = table.loc["TP53"]
    assert (tp53["span_bp"], tp53["n_exons"]) == (7687538 - 7668401, 11) == (19_137, 11)
    assert (tp53["chrom"], tp53["strand"]) == ("chr17", "-")
    assert set(table["strand"]) == {"+", "-"} and table["n_exons"].min() >= 1
    # GENCODE V24 (2016) symbols renamed since are resolved to today's official symbol
    assert rep.notes["renamed_to_official_symbol"] > 0
    assert "C1QTNF12" in table.index and "FAM132A" not in table.index


def test_small_file_plain_and_gzip(tmp_path):
    text = HEADER + TP53 + SAMD11 + "TP53\tchr17\t1\t+\t0\t5\t1\n" + "\tchr1\t1\t+\t0\t5\t1\n"
    for gz in (False, True):
        p = write_text(tmp_path / ("t.tsv.gz" if gz else "t.tsv"), text, gz=gz)
        table, rep = read_gene_structure(p, resolver=False)
        assert table.index.tolist() == ["TP53", "SAMD11"]
        assert table.loc["TP53", "span_bp"] == 19_137  # the first TP53 row is kept
        assert table.loc["SAMD11"].tolist() == [944575 - 925737, 14, "chr1", "+"]
        assert rep.rows_read == 4 and rep.rows_kept == 2
        assert rep.skipped == {"duplicate gene symbol (first kept)": 1, "no gene symbol": 1}


def test_official_symbol_wins_over_a_renamed_duplicate(tmp_path, resolver):
    # FAM132A is an old name of C1QTNF12: the row already named C1QTNF12 is kept
    p = write_text(tmp_path / "t.tsv", HEADER + "FAM132A\tchr1\t1\t-\t0\t100\t2\n"
                   + "C1QTNF12\tchr1\t1\t-\t0\t500\t8\nNOT_A_GENE_X\tchr1\t1\t+\t0\t5\t1\n")
    table, rep = read_gene_structure(p, resolver=resolver)
    assert table.index.tolist() == ["C1QTNF12"] and table.loc["C1QTNF12", "n_exons"] == 8
    assert rep.skipped == {"duplicate gene symbol (first kept)": 1, "gene symbol not mapped": 1}
    assert rep.unmapped_examples == ["NOT_A_GENE_X"]


@pytest.mark.parametrize("rows,where", [
    (SAMD11 + "TP53\tchr17\t7687537\t-\t7668401.5\t7687538\t11\n",
     ":3: expected a non-negative integer in column 'tx_start_0based', found '7668401.5'"),
    ("TP53\tchr17\t7687537\t-\t7668401\tend\t11\n",
     ":2: expected a non-negative integer in column 'tx_end', found 'end'"),
    (SAMD11 + SAMD11 + "TP53\tchr17\t7687537\t-\t-5\t7687538\t11\n",
     ":4: expected a non-negative integer in column 'tx_start_0based', found '-5'"),
    (SAMD11 + "TP53\tchr17\t7687537\t-\t7687538\t7668401\t11\n",
     ":3: expected tx_start_0based <= tx_end, found 7687538 > 7668401"),
    ("TP53\tchr17\t7687537\t-\t7668401\t7687538\t0\n", ":2: expected n_exons >= 1"),
    (SAMD11 + "TP53\tchr17\t7687537\t.\t7668401\t7687538\t11\n",
     ":3: expected strand + or - in column 'strand', found '.'"),
    (SAMD11 + "TP53\tchr17\t7687537\t-\t7668401\t7687538\n", ":3: expected at least 7"),
    (SAMD11 + "TP53\t\t7687537\t-\t7668401\t7687538\t11\n",
     ":3: empty value in required column 'chrom'"),
])
def test_bad_rows_name_the_line(tmp_path, rows, where):
    p = write_text(tmp_path / "bad.tsv", HEADER + rows)
    with pytest.raises(GeneSpliceInputError) as exc:
        read_gene_structure(p, resolver=False)
    assert str(exc.value).startswith(str(p) + where), str(exc.value)


def test_missing_column_and_empty_file(tmp_path):
    p = write_text(tmp_path / "nocol.tsv", HEADER.replace("n_exons", "exons") + TP53)
    with pytest.raises(GeneSpliceInputError,
                       match=r"nocol.tsv:1: missing column\(s\) \['n_exons'\]"):
        read_gene_structure(p, resolver=False)
    p = write_text(tmp_path / "head.tsv", HEADER)
    with pytest.raises(GeneSpliceInputError, match=r"head.tsv:1: no data rows"):
        read_gene_structure(p, resolver=False)
    with pytest.raises(GeneSpliceInputError, match="file is empty"):
        read_gene_structure(write_text(tmp_path / "empty.tsv", ""), resolver=False)
