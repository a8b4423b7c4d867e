"""genesplice.api.inductive: genes the graph lacks become new gene nodes."""
from __future__ import annotations

import numpy as np
import pytest

from genesplice.io.errors import GeneSpliceInputError


def test_new_gene_without_sequence_or_known_annotation_is_an_error(gs):
    with pytest.raises(GeneSpliceInputError, match="'NOVEL1' is not in the graph and has "
                                                   "neither a sequence nor an annotation"):
        gs.predict(["NOVEL1"], annotations={"NOVEL1": ["GO:9999999"]}, progress=False)
    with pytest.raises(GeneSpliceInputError, match="already in the graph"):
        gs.predict(["TP53"], sequences={"TP53": "ACGT" * 15}, progress=False)


def test_inductive_prediction_of_a_gene_removed_from_the_graph(gs):
    """ALB (not a TF) is removed from the graph, then predicted from its promoter and its
    annotations alone: the model has no per-gene parameters, so it gets the same answer."""
    full = gs.predict(["ALB"], progress=False)
    annotations, promoter = gs.annotations("ALB"), gs.promoter("ALB")
    assert len(promoter) == 60 and set(annotations["relation"]) == {"GO term", "pathway",
                                                                   "regulator"}
    without = gs.without_genes(["ALB"])
    assert "ALB" not in without.genes
    with pytest.raises(GeneSpliceInputError, match="unknown gene"):
        without.predict(["ALB"], progress=False)
    back = without.predict(["ALB"], sequences={"ALB": promoter},
                           annotations={"ALB": annotations}, progress=False)
    assert back.attrs["views"] == {"ALB": "sequence+graph"}
    n_go = int((annotations["relation"] == "GO term").sum())
    assert f"{n_go} GO terms" in back.attrs["inductive"]["ALB"]
    np.testing.assert_allclose(back.to_numpy(), full.to_numpy(), atol=2e-5)
    # fewer views, other answers: sequence only, and plain annotation ids (default attributes)
    seq_only = without.predict(["ALB"], sequences={"ALB": promoter}, progress=False)
    ids_only = without.predict(["ALB"], annotations={"ALB": list(annotations["neighbour_id"])},
                               progress=False)
    assert seq_only.attrs["views"] == {"ALB": "sequence"}
    assert ids_only.attrs["views"] == {"ALB": "graph"}
    liver = full.columns.get_loc("liver")
    assert abs(seq_only.iloc[0, liver] - full.iloc[0, liver]) > 1e-3
