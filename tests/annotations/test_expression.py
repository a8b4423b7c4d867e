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


def test_two_id_like_columns_error_names_file_line_and_both(tmp_path, raw_lines):
    header = raw_lines[0].split("\t")
    bad = "\t".join(["ensembl"] + header[1:]) + "\n" + raw_lines[1] + "\n"
    p = _write(tmp_path, bad)
    with pytest.raises(GeneSpliceInputError) as e:
        read_expression_table(p)
    assert e.value.line == 1 and e.value.path == str(p)
    assert "'ensembl'" in str(e.value) and "gene_symbol" in str(e.value)
    assert "id_column" in str(e.value)
    # naming the column resolves it; the other id column is then a text cell, named
    with pytest.raises(GeneSpliceInputError) as e:
        read_expression_table(p, id_column="gene_symbol")
    assert e.value.line == 2 and "'ensembl'" in str(e.value)


def test_no_id_column_is_an_error_at_line_1(tmp_path, raw_lines):
    rows = [r.split("\t")[2:] for r in raw_lines[:3]]
    p = _write(tmp_path, "\n".join("\t".join(r) for r in rows) + "\n")
    with pytest.raises(GeneSpliceInputError, match="no gene-id column") as e:
        read_expression_table(p)
    assert e.value.line == 1


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
    with pytest.raises(GeneSpliceInputError, match="input unit"):
        read_expression_table(input_unit="fpkm")


def test_parser_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys, genesplice.annotations.expression; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---------------------------------------------------------------- tables in other forms (issue 13)
# Every table below is cut from real rows of the bundled HPA file (values as written there);
# only the layout (separator, id column, format, units) changes.
N = 12            # first real genes of the file: TSPAN6, TNMD, DPM1, ...
T = 5             # first real tissues


def _rows(raw_lines, n=N, t=T):
    """(header, rows) of the first ``n`` genes and ``t`` tissues, as split strings."""
    rows = [r.split("\t") for r in raw_lines[: n + 1]]
    return rows[0][: 2 + t], [r[: 2 + t] for r in rows[1:]]


def _expected(header, rows, fn=lambda x: math.log10(x + 1.0)):
    """symbol -> tissue -> value, computed from the file's strings."""
    return {r[1]: {h: fn(float(v)) for h, v in zip(header[2:], r[2:])} for r in rows}


def _check(table, expected):
    for sym, per in expected.items():
        for tissue, v in per.items():
            assert table.values.at[sym, tissue] == pytest.approx(v, rel=1e-12, abs=1e-12)


@pytest.fixture(scope="module")
def entrez_of():
    import pandas as pd
    ids = pd.read_csv(knowledge_path("annotations/gene_ids_human_orgHs_2022.tsv.gz"), sep="\t",
                      dtype=str, usecols=["entrez_id", "symbol"])
    return dict(zip(ids["symbol"], ids["entrez_id"]))


def test_csv_with_a_symbol_column_only(tmp_path, raw_lines):
    header, rows = _rows(raw_lines)
    text = "\n".join(",".join([r[1]] + r[2:]) for r in [header] + rows) + "\n"
    t = read_expression_table(write_text(tmp_path / "mine.csv", text))
    assert t.gene_ids == [r[1] for r in rows] and t.tissues == header[2:]
    assert t.report.format == "csv" and t.report.id_kind == "symbol"
    assert t.report.id_column == "gene_symbol" and t.report.n_unresolved_ids == 0
    assert (t.ensembl_ids == "").all()
    _check(t, _expected(header, rows))


def test_ensembl_versioned_ids_resolve_and_unresolvable_ids_are_counted(tmp_path, raw_lines):
    header, rows = _rows(raw_lines)
    # a real HPA row whose Ensembl id (ENSG00000111780, AL021546.1) is not in the id table
    extra = next(r.split("\t") for r in raw_lines if r.startswith("ENSG00000111780\t"))
    body = [[f"{r[0]}.{i + 3}"] + r[2:] for i, r in enumerate(rows + [extra[: 2 + T]])]
    text = "\n".join("\t".join(r) for r in [["gene_id"] + header[2:]] + body) + "\n"
    t = read_expression_table(write_text(tmp_path / "ens.tsv.gz", text, gz=True))
    assert t.report.id_kind == "ensembl"
    assert t.gene_ids == [r[1] for r in rows]                 # resolved to official symbols
    assert list(t.ensembl_ids) == [r[0] for r in rows]         # version stripped
    assert t.report.n_unresolved_ids == 1
    assert t.report.unresolved_examples == (f"ENSG00000111780.{len(rows) + 3}",)
    assert "1 ensembl ids" in t.report.summary()
    _check(t, _expected(header, rows))


def test_entrez_ids(tmp_path, raw_lines, entrez_of):
    header, rows = _rows(raw_lines)
    rows = [r for r in rows if r[1] in entrez_of]
    text = "\n".join(",".join(r) for r in [["entrez_id"] + header[2:]] +
                     [[entrez_of[r[1]]] + r[2:] for r in rows]) + "\n"
    t = read_expression_table(write_text(tmp_path / "entrez.csv", text))
    assert t.report.id_kind == "entrez" and t.gene_ids == [r[1] for r in rows]
    assert entrez_of["TSPAN6"] == "7105"
    _check(t, _expected(header, rows))


def test_parquet_table(tmp_path, raw_lines):
    import pandas as pd
    header, rows = _rows(raw_lines)
    df = pd.DataFrame({"ensembl_id": [r[0] for r in rows],
                       **{h: [float(r[2 + j]) for r in rows] for j, h in enumerate(header[2:])}})
    df.to_parquet(tmp_path / "t.parquet", index=False)
    t = read_expression_table(tmp_path / "t.parquet")
    assert t.report.format == "parquet" and t.gene_ids == [r[1] for r in rows]
    _check(t, _expected(header, rows))
    # a text cell in parquet: the row, gene and column are named
    df[header[3]] = df[header[3]].astype(str)       # a text column, as from a spreadsheet
    df.loc[2, header[3]] = "high"
    df.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(GeneSpliceInputError) as e:
        read_expression_table(tmp_path / "bad.parquet")
    msg = str(e.value)
    assert "'high'" in msg and repr(header[3]) in msg and "row 3" in msg and rows[2][0] in msg


def test_h5ad_obs_tissues_var_genes_and_layer(tmp_path, raw_lines):
    import anndata
    import numpy as np
    import pandas as pd
    header, rows = _rows(raw_lines)
    ntpm = np.array([[float(v) for v in r[2:]] for r in rows])           # genes x tissues
    ad = anndata.AnnData(X=np.log10(ntpm.T + 1.0),                      # obs = tissues
                         obs=pd.DataFrame(index=header[2:]),
                         var=pd.DataFrame({"symbol": [r[1] for r in rows]},
                                          index=[r[0] for r in rows]),
                         layers={"ntpm": ntpm.T})
    ad.write_h5ad(tmp_path / "t.h5ad")
    expected = _expected(header, rows)
    t = read_expression_table(tmp_path / "t.h5ad", layer="ntpm")           # var_names: Ensembl
    assert t.report.format == "h5ad" and t.report.id_kind == "ensembl"
    assert t.tissues == header[2:] and t.gene_ids == [r[1] for r in rows]
    _check(t, expected)
    t = read_expression_table(tmp_path / "t.h5ad", input_unit="log", id_column="symbol")
    assert t.report.id_kind == "symbol"
    _check(t, expected)                                                   # X used as it is
    with pytest.raises(GeneSpliceInputError, match="no layer 'counts'"):
        read_expression_table(tmp_path / "t.h5ad", layer="counts")
    with pytest.raises(GeneSpliceInputError, match="layers exist only"):
        read_expression_table(_write(tmp_path, "\n".join(raw_lines[:3]) + "\n"), layer="x")


def test_units_tpm_counts_log(tmp_path, raw_lines, caplog):
    header, rows = _rows(raw_lines)
    text = "\n".join("\t".join(r) for r in [header] + rows) + "\n"
    p = _write(tmp_path, text)
    assert read_expression_table(p, input_unit="tpm").values.equals(
        read_expression_table(p).values)
    # counts: each column library-size normalised (counts per million) before the log
    counts = [[r[0], r[1]] + [str(round(float(v) * 10)) for v in r[2:]] for r in rows]
    c = write_text(tmp_path / "counts.tsv",
                   "\n".join("\t".join(r) for r in [header] + counts) + "\n")
    t = read_expression_table(c, input_unit="counts")
    totals = {h: sum(float(r[2 + j]) for r in counts) for j, h in enumerate(header[2:])}
    r0 = counts[0]
    for j, h in enumerate(header[2:]):
        cpm = float(r0[2 + j]) / totals[h] * 1e6
        assert t.values.at[r0[1], h] == pytest.approx(math.log10(cpm + 1.0))
    # integer-only values called TPM: a warning, logged and in the report
    with caplog.at_level("WARNING"):
        t = read_expression_table(c, input_unit="tpm")
    assert t.report.warnings and "counts" in t.report.warnings[0]
    assert "every value is an integer" in caplog.text
    # already-log values are used as they are (negatives allowed); linear ones called log warn
    logged = [[r[0], r[1]] + [repr(math.log10(float(v) + 1.0) - 1.0) for v in r[2:]]
              for r in rows]
    t = read_expression_table(write_text(tmp_path / "log.tsv", "\n".join(
        "\t".join(r) for r in [header] + logged) + "\n"), input_unit="log")
    assert t.values.at[rows[0][1], header[2]] == pytest.approx(float(logged[0][2]))
    assert (t.values.min().min() < 0) and not t.report.warnings
    assert read_expression_table(p, input_unit="log").report.warnings  # 74.9 nTPM called log


def test_negative_value_in_a_linear_unit_names_line_and_column(tmp_path, raw_lines):
    header, rows = _rows(raw_lines)
    rows[4][3] = "-" + rows[4][3]
    text = "\n".join(",".join([r[1]] + r[2:]) for r in [header] + rows) + "\n"
    p = write_text(tmp_path / "neg.csv", text)
    for unit in ("tpm", "counts"):
        with pytest.raises(GeneSpliceInputError) as e:
            read_expression_table(p, input_unit=unit)
        assert e.value.line == 6 and e.value.path == str(p)
        assert "negative" in str(e.value) and repr(header[3]) in str(e.value)
    assert read_expression_table(p, input_unit="log").n_genes == N


def test_text_cell_in_csv_names_file_line_and_column(tmp_path, raw_lines):
    header, rows = _rows(raw_lines)
    rows[6][5] = "n/a (low)"
    text = "\n".join(",".join([r[1]] + r[2:]) for r in [header] + rows) + "\n"
    p = write_text(tmp_path / "bad.csv", text)
    with pytest.raises(GeneSpliceInputError) as e:
        read_expression_table(p)
    assert str(e.value).startswith(f"{p}:8: non-numeric value 'n/a (low)' in column "
                                   f"{header[5]!r}")


def test_replicate_columns_averaged_by_a_mapping(tmp_path, raw_lines):
    header, rows = _rows(raw_lines)
    text = "\n".join(",".join([r[1]] + r[2:]) for r in [header] + rows) + "\n"
    p = write_text(tmp_path / "reps.csv", text)
    a, b = header[4], header[6]          # two real brain regions as "replicates" of one tissue
    mapping = {a: "brain", b: "brain"}
    t = read_expression_table(p, replicates=mapping)
    assert t.tissues == [header[2], header[3], "brain", header[5]]
    assert t.report.n_replicate_columns_merged == 1
    for r in rows:
        mean = (float(r[4]) + float(r[6])) / 2
        assert t.values.at[r[1], "brain"] == pytest.approx(math.log10(mean + 1.0))
        assert t.values.at[r[1], header[2]] == pytest.approx(math.log10(float(r[2]) + 1.0))
    m = write_text(tmp_path / "reps.tsv", f"column\ttissue\n{a}\tbrain\n{b}\tbrain\n")
    assert read_expression_table(p, replicates=m).values.equals(t.values)
    bad = write_text(tmp_path / "bad_reps.tsv", f"{a}\tbrain\nliver\tbrain\n")
    with pytest.raises(GeneSpliceInputError, match="'liver'") as e:
        read_expression_table(p, replicates=bad)
    assert e.value.path == str(bad)
