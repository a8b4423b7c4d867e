"""read_expression_table on the bundled HPA 21.1 / GTEx v8 nTPM table (issue 5)."""
import gzip
import math

import pytest

from genesplice.annotations.expression import read_expression_table
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from tests.textfiles import write_text

SRC = "expression/hpa_gtex_tissue_nTPM_wide.tsv.gz"


@pytest.fixture(scope="module")
def table():
    return read_expression_table()


@pytest.fixture(scope="module")
def raw_lines():
    with gzip.open(knowledge_path(SRC), "rt") as fh:
        return fh.read().splitlines()


def test_shape_and_tissues_come_from_the_header(table, raw_lines):
    header = raw_lines[0].split("\t")
    assert table.tissues == header[2:]
    assert table.n_tissues == 37
    assert table.values.index.name == "gene_id" and table.values.columns.name == "tissue"
    assert table.report.n_rows == 20090
    assert table.n_genes == 20082 == table.values.index.nunique()
    assert table.unit == "log10_ntpm1"


def test_known_values_log10(table):
    # TSPAN6 row: adipose tissue 29.6, testis 74.9 nTPM; TNMD adrenal gland 0.0
    assert table.values.at["TSPAN6", "adipose tissue"] == pytest.approx(math.log10(30.6))
    assert table.values.at["TSPAN6", "testis"] == pytest.approx(math.log10(75.9))
    assert table.values.at["TNMD", "adrenal gland"] == 0.0
    assert table.ensembl_ids["TSPAN6"] == "ENSG00000000003"


def test_duplicate_symbols_collapsed_deterministically(table):
    rep = table.report
    assert rep.n_duplicate_rows_dropped == 8
    assert rep.duplicate_symbols == ("ACTL10", "HERC3", "MATR3", "PDE11A", "PINX1",
                                     "POLR2J3", "TBCE", "TMSB15B")
    # the fully observed, higher-expressed row wins
    assert table.ensembl_ids["MATR3"] == "ENSG00000015479"
    assert table.values.at["MATR3", "amygdala"] == pytest.approx(math.log10(169.1))
    assert "ENSG00000280987" in rep.dropped_ensembl_ids
    # both TBCE rows have missing cells; the choice is still fixed
    assert table.ensembl_ids["TBCE"] == "ENSG00000284770"
    assert read_expression_table().ensembl_ids.equals(table.ensembl_ids)


def test_missing_cells_stay_nan_and_are_counted(table, raw_lines):
    assert table.report.n_missing_cells == int(table.values.isna().sum().sum()) == 11556
    assert table.report.n_all_missing_rows == 0
    assert table.mask.to_numpy().sum() == table.n_genes * 37 - 11556
    # a row whose file line has empty cells: those cells are NaN, not 0
    line = next(l for l in raw_lines[1:] if l.startswith("ENSG00000288649\t"))
    assert "\t\t" in line  # ACTL10 duplicate with missing cells in the file
    ens_with_gap = next(l.split("\t") for l in raw_lines[1:]
                        if "\t\t" in l and l.split("\t")[0] in set(table.ensembl_ids))
    sym = ens_with_gap[1]
    empty_cols = [t for t, v in zip(table.tissues, ens_with_gap[2:]) if v == ""]
    assert table.values.loc[sym, empty_cols].isna().all()


@pytest.mark.parametrize("unit,fn", [("ntpm", lambda x: x), ("log1p_ntpm", math.log1p)])
def test_other_units(unit, fn):
    t = read_expression_table(unit=unit)
    assert t.values.at["TSPAN6", "testis"] == pytest.approx(fn(74.9))


def _write(tmp_path, text, gz=False):
    return write_text(tmp_path / ("e.tsv.gz" if gz else "e.tsv"), text, gz)


@pytest.mark.parametrize("gz", [False, True])
def test_small_real_slice_plain_and_gz(tmp_path, raw_lines, gz):
    text = "\n".join(raw_lines[:4]) + "\n"
    t = read_expression_table(_write(tmp_path, text, gz))
    assert t.gene_ids == ["TSPAN6", "TNMD", "DPM1"]
    assert t.n_tissues == 37


def test_missing_columns_error_names_file_line_and_expected(tmp_path, raw_lines):
    header = raw_lines[0].split("\t")
    bad = "\t".join(["ensembl"] + header[1:]) + "\n" + raw_lines[1] + "\n"
    p = _write(tmp_path, bad)
    with pytest.raises(GeneSpliceInputError) as e:
        read_expression_table(p)
    assert e.value.line == 1 and e.value.path == str(p)
    assert "ensembl_id" in str(e.value) and "gene_symbol" in str(e.value)


def test_non_numeric_cell_error_names_line(tmp_path, raw_lines):
    rows = [r.split("\t") for r in raw_lines[:4]]
    rows[3][5] = "high"
    p = _write(tmp_path, "\n".join("\t".join(r) for r in rows) + "\n")
    with pytest.raises(GeneSpliceInputError) as e:
        read_expression_table(p)
    assert e.value.line == 4 and "'high'" in str(e.value) and repr(rows[0][5]) in str(e.value)


def test_negative_and_empty_and_unknown_unit(tmp_path, raw_lines):
    rows = [r.split("\t") for r in raw_lines[:3]]
    rows[2][3] = "-1.0"
    with pytest.raises(GeneSpliceInputError, match="negative"):
        read_expression_table(_write(tmp_path, "\n".join("\t".join(r) for r in rows) + "\n"))
    with pytest.raises(GeneSpliceInputError, match="empty"):
        read_expression_table(_write(tmp_path, ""))
    with pytest.raises(GeneSpliceInputError, match="no data rows"):
        read_expression_table(_write(tmp_path, raw_lines[0] + "\n"))
    with pytest.raises(GeneSpliceInputError, match="unit"):
        read_expression_table(unit="tpm")


def test_parser_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys, genesplice.annotations.expression; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
