"""GO OBO and GAF parsing on the real bundled files (GO 2019-01-27, goa_human 2019-01-14)."""
import gzip

import networkx as nx
import pandas as pd
import pytest

from genesplice.annotations.go import (GAF_COLUMNS, propagate_annotations, read_gaf,
                                       read_go_obo)
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path


def test_term_count_matches_obonet(go):
    assert len(go.terms) == 45_013
    assert not go.terms["obsolete"].any()
    assert go.version == "releases/2019-01-27"
    assert set(go.terms["namespace"]) == {"biological_process", "molecular_function",
                                          "cellular_component"}


def test_known_term_and_edges(go):
    assert go.name("GO:0006915") == "apoptotic process"
    assert go.terms.at["GO:0006915", "namespace"] == "biological_process"
    e = go.edges
    assert ((e["child"] == "GO:0006915") & (e["relation"] == "is_a")
            & (e["parent"] == "GO:0012501")).any()
    # regulation of apoptotic process regulates apoptotic process
    assert ((e["child"] == "GO:0042981") & (e["relation"] == "regulates")
            & (e["parent"] == "GO:0006915")).any()


def test_relations_has_part_excluded_by_default(go):
    assert set(go.edges["relation"]) == {"is_a", "part_of", "regulates",
                                         "positively_regulates", "negatively_regulates"}
    # obonet returns 95,863 typed edges; has_part (726), occurs_in (192), happens_during (7)
    # and ends_during (1) are the 926 not requested
    assert go.report.rows_read == 95_863
    assert len(go.edges) == 94_937
    assert go.report.skipped == {"relation type not requested": 926}


def test_is_a_part_of_dag_is_acyclic(go):
    assert nx.is_directed_acyclic_graph(go.dag(tuple(set(go.edges["relation"]))))


def test_alt_ids(go):
    assert go.alt_ids["GO:0006917"] == "GO:0006915"


def test_gaf_counts_match_pandas(gaf):
    ann, rep = gaf
    raw = pd.read_csv(knowledge_path("annotations/goa_human.gaf.gz"), sep="\t", comment="!",
                      header=None, dtype=str)
    assert rep.rows_read == len(raw) == 475_402
    n_not = raw[3].fillna("").str.contains("NOT").sum()
    assert rep.skipped["NOT qualifier"] == n_not == 1_187
    assert len(ann) + sum(rep.skipped.values()) == rep.rows_read
    assert not ann["qualifier"].fillna("").str.contains("NOT").any()


def test_tp53_apoptotic_process_after_propagation(go, gaf):
    ann, _ = gaf
    direct = set(ann.loc[ann["gene"] == "TP53", "go_id"])
    prop = propagate_annotations(ann[ann["gene"].isin(["TP53", "BRCA1"])], go)
    tp53 = prop[prop["gene"] == "TP53"]
    assert "GO:0006915" in set(tp53["go_id"])          # apoptotic process
    assert "GO:0008150" in set(tp53["go_id"])          # biological_process root
    assert set(tp53.loc[tp53["direct"], "go_id"]) == direct
    assert len(tp53) > len(direct)
    # every propagated term is an ancestor of a direct one
    anc = go.ancestors()
    closure = {a for t in direct for a in anc.of(t)}
    assert set(tp53["go_id"]) == closure


def test_gaf_filters(go, resolver):
    ann, rep = read_gaf(ontology=go, resolver=resolver, evidence=["EXP", "IDA"],
                        namespaces=["biological_process"], exclude_not=False)
    assert set(ann["evidence"]) == {"EXP", "IDA"}
    assert set(ann["aspect"]) == {"P"}
    assert rep.skipped["evidence code not selected"] > 0
    assert rep.skipped["namespace not selected"] > 0
    assert ann["qualifier"].fillna("").str.contains("NOT").sum() > 0


def test_gaf_exclude_evidence_on_real_lines(tmp_path):
    p = tmp_path / "slice.gaf"
    p.write_text("".join(_gaf_lines(300)))
    ann, rep = read_gaf(p, resolver=False, exclude_evidence=["IEA"])
    assert len(ann) > 0 and "IEA" not in set(ann["evidence"])
    assert rep.skipped["evidence code excluded"] > 0
    assert len(ann) + sum(rep.skipped.values()) == rep.rows_read == 300


def _gaf_lines(n=5):
    with gzip.open(knowledge_path("annotations/goa_human.gaf.gz"), "rt") as fh:
        lines = [line for line in fh if not line.startswith("!")][:n]
    return lines


def test_gaf_wrong_column_count_names_line(tmp_path):
    lines = _gaf_lines()
    bad = lines[:3] + ["\t".join(lines[3].split("\t")[:15]) + "\n"] + lines[4:]
    p = tmp_path / "bad.gaf"
    p.write_text("!gaf-version: 2.1\n" + "".join(bad))
    with pytest.raises(GeneSpliceInputError, match=r"bad.gaf:5: expected 17 .*found 15"):
        read_gaf(p, resolver=False)


def test_gaf_bad_aspect_and_empty(tmp_path):
    lines = _gaf_lines(2)
    f = lines[1].split("\t")
    f[8] = "Q"
    p = tmp_path / "aspect.gaf"
    p.write_text(lines[0] + "\t".join(f))
    with pytest.raises(GeneSpliceInputError, match=r"aspect.gaf:2: expected aspect P, F or C"):
        read_gaf(p, resolver=False)
    empty = tmp_path / "empty.gaf"
    empty.write_text("")
    with pytest.raises(GeneSpliceInputError, match="empty"):
        read_gaf(empty, resolver=False)
    header_only = tmp_path / "h.gaf.gz"
    with gzip.open(header_only, "wt") as fh:
        fh.write("!gaf-version: 2.1\n")
    with pytest.raises(GeneSpliceInputError, match="no annotation lines"):
        read_gaf(header_only, resolver=False)


def test_malformed_obo_names_line(tmp_path):
    p = tmp_path / "bad.obo"
    p.write_text("format-version: 1.2\n\n[Term]\nid: GO:0000001\nname: x\n"
                 "namespace: biological_process\nthis line has no colon\n")
    with pytest.raises(GeneSpliceInputError, match=r"bad.obo:7: expected 'tag: value'"):
        read_go_obo(p)
    p2 = tmp_path / "rel.obo"
    p2.write_text("format-version: 1.2\n\n[Term]\nid: GO:0000001\nname: x\n"
                  "namespace: biological_process\nrelationship: part_of\n")
    with pytest.raises(GeneSpliceInputError, match=r"rel.obo:7: expected 'relationship:"):
        read_go_obo(p2)
    p3 = tmp_path / "noterm.obo"
    p3.write_text("format-version: 1.2\n")
    with pytest.raises(GeneSpliceInputError, match="no \\[Term\\] stanzas"):
        read_go_obo(p3)
    p4 = tmp_path / "nons.obo"
    p4.write_text("format-version: 1.2\n\n[Term]\nid: GO:0000001\nname: x\n")
    with pytest.raises(GeneSpliceInputError, match=r"nons.obo:4: term GO:0000001 has no "
                                                   r"'namespace:'"):
        read_go_obo(p4)


def test_include_obsolete(tmp_path):
    # malformed-input style toy file: two terms, one obsolete
    p = tmp_path / "obs.obo"
    p.write_text("format-version: 1.2\n\n[Term]\nid: GO:0000001\nname: a\n"
                 "namespace: biological_process\n\n[Term]\nid: GO:0000002\nname: b\n"
                 "namespace: biological_process\nis_obsolete: true\n")
    assert list(read_go_obo(p).terms.index) == ["GO:0000001"]
    t = read_go_obo(p, include_obsolete=True).terms
    assert t["obsolete"].tolist() == [False, True]


def test_gaf_columns_constant():
    assert len(GAF_COLUMNS) == 17
