"""genesplice.api.lookup: genes and tissues by symbol, alias, id; close matches."""
from __future__ import annotations

import pytest

from genesplice.io.errors import GeneSpliceInputError


def test_unknown_gene_lists_close_matches(gs):
    with pytest.raises(GeneSpliceInputError, match=r"unknown gene: 'TP35' \(close matches:.*TP53"):
        gs.predict(["TP35"], progress=False)
    with pytest.raises(GeneSpliceInputError, match="unknown tissue"):
        gs.predict(["TP53"], tissues=["livr"], progress=False)


def test_lookup_resolves_symbols_ids_and_case(gs):
    table = gs.lookup(["ENSG00000141510", "myc", "ALB"])
    assert list(table["gene_symbol"]) == ["TP53", "MYC", "ALB"]
    assert table["has_sequence"].all() and table["has_expression"].all()
    alb = table.set_index("gene_symbol").loc["ALB"]
    n_go = int((gs.annotations("ALB")["relation"] == "GO term").sum())
    assert alb["n_go_terms"] == n_go > 0 and alb["n_regulators"] > 0
    with pytest.raises(GeneSpliceInputError, match="unknown genes: 'TP35'.*; 'NOPE_1'"):
        gs.lookup(["TP35", "NOPE_1"])
