"""Reactome mapping / hierarchy / names and the GMT reader on the real bundled files."""
import gzip

import networkx as nx
import pandas as pd
import pytest

from genesplice.annotations.reactome import (read_gmt, read_reactome_hierarchy,
                                             read_reactome_mapping)
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path


@pytest.fixture(scope="module")
def hierarchy():
    return read_reactome_hierarchy()


@pytest.fixture(scope="module")
def mapping(resolver):
    return read_reactome_mapping(resolver=resolver)


def test_hierarchy_roots_and_acyclic(hierarchy):
    assert len(hierarchy.names) == 2_751
    assert len(hierarchy.edges) == 2_769
    assert nx.is_directed_acyclic_graph(hierarchy.graph)
    roots = hierarchy.roots
    assert len(roots) == 29
    assert "Signal Transduction" in set(hierarchy.names[roots])
    assert hierarchy.names["R-HSA-162582"] == "Signal Transduction"


def test_mapping_counts_and_unmapped(mapping):
    df, rep = mapping
    raw = pd.read_csv(knowledge_path("annotations/reactome_uniprot2reactome_human.tsv.gz"),
                      sep="\t", header=None)
    assert rep.rows_read == len(raw) == 51_056
    assert rep.notes["isoform_ids"] == raw[0].str.contains("-").sum() == 1_526
    assert rep.n_unmapped > 0 and rep.skipped["UniProt id not mapped"] > 0
    assert len(rep.unmapped_examples) > 0
    assert not df.duplicated(["gene", "pathway_id"]).any()
    assert rep.rows_kept == len(df)


def test_tp53_in_a_known_pathway(mapping, hierarchy):
    df, _ = mapping
    tp53 = set(df.loc[df["gene"] == "TP53", "pathway_id"])
    assert tp53, "TP53 has Reactome pathways"
    names = set(hierarchy.names[list(tp53)])
    assert any("TP53" in n for n in names)


def test_gmt_counts_and_names(resolver):
    df, rep = read_gmt(resolver=resolver)
    assert rep.notes["gene_sets"] == 2_444  # one set per line in the bundled GMT
    sig = df[df["pathway_id"] == "R-HSA-162582"]
    assert sig["name"].iat[0] == "Signal Transduction" and len(sig) > 1000
    raw, raw_rep = read_gmt(resolver=False)
    assert raw_rep.rows_read == rep.rows_read == 117_771
    assert len(df) + sum(rep.skipped.values()) == rep.rows_read


def test_gmt_line_without_genes_names_line(tmp_path):
    with gzip.open(knowledge_path("annotations/ReactomePathways_2021-02.gmt.gz"), "rt") as fh:
        lines = [next(fh) for _ in range(3)]
    p = tmp_path / "bad.gmt"
    p.write_text(lines[0] + "Empty set\tR-HSA-1\n" + lines[2])
    with pytest.raises(GeneSpliceInputError, match=r"bad.gmt:2: gene set 'Empty set' has no genes"):
        read_gmt(p, resolver=False)


def test_hierarchy_cycle_is_an_error(tmp_path):
    names = tmp_path / "names.tsv"
    names.write_text("R-HSA-1\tA\tHomo sapiens\nR-HSA-2\tB\tHomo sapiens\n")
    rel = tmp_path / "rel.tsv"
    rel.write_text("R-HSA-1\tR-HSA-2\nR-HSA-2\tR-HSA-1\n")
    with pytest.raises(GeneSpliceInputError, match="cycle"):
        read_reactome_hierarchy(rel, names)


def test_mapping_wrong_column_count(tmp_path):
    p = tmp_path / "map.tsv"
    p.write_text("P04637\tR-HSA-1\turl\tname\tTAS\tHomo sapiens\nP04637\tR-HSA-2\n")
    with pytest.raises(GeneSpliceInputError, match=r"map.tsv:2: expected 6 tab-separated"):
        read_reactome_mapping(p)
