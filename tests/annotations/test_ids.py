"""GeneResolver on the real org.Hs.eg.db 2022 table."""
import pandas as pd
import pytest

from genesplice.annotations.ids import GeneResolver, ResolveReport, strip_isoform, strip_version
from genesplice.io.errors import GeneSpliceInputError


def test_symbol_ensembl_uniprot_alias_all_give_tp53(resolver):
    ids = ["TP53", "ENSG00000141510", "ENSG00000141510.17", "P04637", "P04637-2", "p53"]
    mapping, unmapped = resolver.resolve(ids)
    assert unmapped == []
    assert set(mapping.values()) == {"TP53"}


def test_unmapped_ids_are_returned_in_order(resolver):
    mapping, unmapped = resolver.resolve(["BRCA1", "NOT_A_GENE_1", "NOT_A_GENE_2", "BRCA1"])
    assert mapping == {"BRCA1": "BRCA1"}
    assert unmapped == ["NOT_A_GENE_1", "NOT_A_GENE_2"]


def test_official_symbol_beats_alias_of_another_gene(resolver):
    # "CAP1" is the official symbol of adenylate cyclase-associated protein 1 (and also an
    # alias of other genes in the table): the exact symbol wins.
    mapping, _ = resolver.resolve(["CAP1"])
    assert mapping == {"CAP1": "CAP1"}


def test_ambiguous_alias_is_skipped_and_counted(resolver):
    amb = next(iter(resolver._alias_amb))  # an alias shared by several genes in the table
    rep = ResolveReport()
    mapping, unmapped = resolver.resolve([amb], rep)
    assert amb in unmapped and amb not in mapping
    assert rep.ambiguous == [amb] and rep.by_kind == {"ambiguous": 1}


def test_ambiguous_first_policy_is_deterministic():
    table = pd.DataFrame({"symbol": ["AAA1", "BBB2"], "ensembl_ids": [None, None],
                          "uniprot_ids": [None, None], "aliases": ["X1", "X1"]})
    r = GeneResolver(table, ambiguous="first")
    assert r.resolve(["X1"])[0] == {"X1": "AAA1"}
    assert GeneResolver(table).resolve(["X1"]) == ({}, ["X1"])


def test_case_insensitive_fallback(resolver):
    # DoRothEA writes C13ORF15; the table has the old symbol C13orf15 as an alias of RGCC
    assert resolver.resolve(["C13ORF15"])[0] == {"C13ORF15": "RGCC"}


def test_resolve_series_keeps_positions(resolver):
    s = pd.Series(["TP53", "NOT_A_GENE_3", "P38398"])
    out = resolver.resolve_series(s)
    assert out.tolist()[0] == "TP53" and pd.isna(out.iloc[1]) and out.iloc[2] == "BRCA1"


def test_strip_helpers():
    assert strip_isoform("P04637-2") == "P04637"
    assert strip_isoform("P04637") == "P04637"
    assert strip_version("ENSG00000141510.17") == "ENSG00000141510"


def test_table_without_required_column(tmp_path):
    p = tmp_path / "ids.tsv"
    p.write_text("symbol\tensembl_ids\nTP53\tENSG00000141510\n")
    with pytest.raises(GeneSpliceInputError, match=r"ids.tsv:1: missing column"):
        GeneResolver.from_table(p)
