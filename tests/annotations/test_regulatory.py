"""TRRUST and DoRothEA on the real bundled files."""
import pandas as pd
import pytest

from genesplice.annotations.regulatory import (merge_regulatory, read_dorothea, read_trrust)
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path


@pytest.fixture(scope="module")
def trrust_raw():
    return read_trrust(resolver=False)


def test_trrust_rows_and_unique_pairs(trrust_raw):
    df, rep = trrust_raw
    raw = pd.read_csv(knowledge_path("annotations/trrust_human.tsv.gz"), sep="\t")
    assert rep.rows_read == len(raw) == 9_396
    assert len(df) == len(raw[["tf", "target"]].drop_duplicates()) == 8_427
    assert rep.skipped == {"duplicate (tf, target) rows collapsed": 969}
    assert df["n_rows"].sum() == 9_396


def test_trrust_signs_and_merged_pmids(trrust_raw):
    df, _ = trrust_raw
    raw = pd.read_csv(knowledge_path("annotations/trrust_human.tsv.gz"), sep="\t", dtype=str)
    row = df[(df["tf"] == "AATF") & (df["target"] == "BAX")].iloc[0]
    assert row["sign"] == -1 and row["modes"] == "Repression"
    # a pair listed with both Activation and Repression gets sign 0 and all its PMIDs
    modes = raw.groupby(["tf", "target"])["mode"].agg(set)
    both = modes[modes.map(lambda s: {"Activation", "Repression"} <= s)].index[0]
    r = df[(df["tf"] == both[0]) & (df["target"] == both[1])].iloc[0]
    assert r["sign"] == 0
    want = set(";".join(raw[(raw["tf"] == both[0]) & (raw["target"] == both[1])]["pmids"])
               .split(";"))
    assert set(r["pmids"].split(";")) == want
    assert set(df["sign"]) == {-1, 0, 1}


def test_trrust_resolved_reports_unmapped(resolver):
    df, rep = read_trrust(resolver=resolver)
    assert rep.n_unmapped > 0 and rep.skipped["TF or target id not mapped"] > 0
    assert len(df) <= 8_427


def test_dorothea_confidence_filter(resolver):
    raw = pd.read_csv(knowledge_path("annotations/dorothea_human.tsv.gz"), sep="\t")
    df, rep = read_dorothea(max_confidence="C", resolver=False)
    assert rep.rows_read == len(raw) == 454_504
    assert len(df) == (raw["confidence"] <= "C").sum() == 13_223
    assert set(df["confidence"]) == {"A", "B", "C"}
    assert rep.skipped["confidence below C"] == 454_504 - 13_223
    assert set(df["sign"]) == {-1, 1}
    a, _ = read_dorothea(max_confidence="A", resolver=False)
    assert len(a) == (raw["confidence"] == "A").sum()
    with pytest.raises(GeneSpliceInputError, match="max_confidence"):
        read_dorothea(max_confidence="Z")


def test_merge(trrust_raw):
    tr, _ = trrust_raw
    do, _ = read_dorothea(resolver=False)
    m = merge_regulatory(tr, do, trrust_confidence="B")
    assert not m.duplicated(["tf", "target"]).any()
    assert set(m["sources"]) == {"TRRUST", "DoRothEA", "DoRothEA|TRRUST"}
    assert m["confidence"].between(0, 1).all()
    both = m[m["sources"] == "DoRothEA|TRRUST"]
    assert len(both) > 0
    assert len(m) == len(set(zip(tr["tf"], tr["target"])) | set(zip(do["tf"], do["target"])))


def test_bad_mode_and_missing_column(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("tf\ttarget\tmode\tpmids\nAATF\tBAX\tActivation\t1\nAATF\tMYC\tUp\t2\n")
    with pytest.raises(GeneSpliceInputError, match=r"t.tsv:3: expected mode"):
        read_trrust(p, resolver=False)
    q = tmp_path / "d.tsv"
    q.write_text("tf\ttarget\tmor\nAATF\tBAX\t1\n")
    with pytest.raises(GeneSpliceInputError, match=r"d.tsv:1: missing column\(s\) \['confidence'\]"):
        read_dorothea(q, resolver=False)
