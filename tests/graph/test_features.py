"""Graph-derived features: top-level pathways, true-path membership, membership matrices."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import HeteroData

from genesplice.graph.features import (
    membership_features,
    membership_from_graph,
    membership_matrix,
    top_level_pathways,
)
from genesplice.graph.hetero import KnowledgeGraph
from genesplice.io.errors import GeneSpliceInputError

PART_OF = ("pathway", "part_of", "pathway")
MEMBER = ("gene", "member_of", "pathway")


def _tiny():
    """Genes g0..g3; pathways p0 > p1 > p2 (child -> parent edges p2->p1, p1->p0), p3 > p4,
    p5 alone (no parent, no child)."""
    data = HeteroData()
    data["gene"].num_nodes = 4
    data["pathway"].num_nodes = 6
    data[PART_OF].edge_index = torch.tensor([[2, 1, 4], [1, 0, 3]])
    data[MEMBER].edge_index = torch.tensor([[0, 1, 2, 3, 3], [2, 1, 4, 5, 0]])
    data[MEMBER].edge_attr = torch.ones(5, 1)
    return KnowledgeGraph(data=data, node_ids={"gene": ["g0", "g1", "g2", "g3"],
                                               "pathway": [f"p{i}" for i in range(6)]},
                          edge_attr_names={"gene__member_of__pathway": ["direct"]})


def test_top_level_pathways_are_hierarchy_roots():
    kg = _tiny()
    assert top_level_pathways(kg) == [0, 3]  # p5 has no sub-pathway: not a root
    kg.data[PART_OF].edge_index = torch.zeros((2, 0), dtype=torch.long)
    assert top_level_pathways(kg) == []


def test_top_level_pathways_of_the_default_graph(kg):
    rows = top_level_pathways(kg)
    assert len(rows) == 29 and rows == sorted(rows)
    assert rows == np.flatnonzero(kg.data["pathway"].top_level.numpy()).tolist()
    assert kg.node_index("pathway")["R-HSA-162582"] in rows  # Signal Transduction
    ei = kg.data[PART_OF].edge_index.numpy()
    assert not set(rows) & set(ei[0].tolist()) and set(rows) <= set(ei[1].tolist())


def test_membership_propagates_up_the_hierarchy():
    kg = _tiny()
    direct = kg.membership("member_of").toarray()
    assert direct.tolist() == [[0, 0, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0],
                               [0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 1]]
    up = kg.membership("member_of", propagate=True)
    assert up.dtype == np.float64 and set(up.data.tolist()) == {1.0}
    assert up.toarray().tolist() == [[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0],
                                     [0, 0, 0, 1, 1, 0], [1, 0, 0, 0, 0, 1]]
    with pytest.raises(GeneSpliceInputError, match="value= and propagate=True"):
        kg.membership("member_of", propagate=True, value="direct")


def test_propagated_membership_of_the_default_graph_is_closed_upwards(kg):
    m = kg.membership("member_of", propagate=True).tocsr()
    ei = kg.data[PART_OF].edge_index.numpy()
    child_to_parent = sp.csr_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(m.shape[1],) * 2)
    parents = (m @ child_to_parent) > 0
    assert parents.nnz > 0 and parents.multiply(m > 0).nnz == parents.nnz  # every parent marked
    direct = kg.membership("member_of") > 0
    assert direct.multiply(m > 0).nnz == direct.nnz  # direct memberships kept
    assert m.nnz > direct.nnz


def test_membership_from_graph_blocks_and_rows():
    kg = _tiny()
    feats = membership_from_graph(kg, relations=("member_of",), gene_ids=["g3", "gX", "g0"])
    assert feats.gene_ids == ("g3", "gX", "g0")
    assert feats.feature_ids == tuple(f"p{i}" for i in (0, 1, 2, 4, 5))  # p3: no member
    assert feats.matrix.toarray().tolist() == [[1, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 1, 0, 0]]
    with pytest.raises(GeneSpliceInputError, match="no gene edge type"):
        membership_from_graph(kg, relations=("regulates",))


def test_membership_features_excludes_labels_and_rare_features():
    kg = _tiny()
    x, names, counts = membership_features(kg, exclude_pathways=[0], count_rows=np.arange(4),
                                           min_genes=1)
    assert names == ["p1", "p2", "p4", "p5"] and x.shape == (4, 4)
    assert counts == {"features_total": 5, "features_kept": 4}
    x, names, _ = membership_features(kg, exclude_pathways=[], count_rows=np.array([0, 3]),
                                      min_genes=1)
    assert names == ["p0", "p2", "p5"]


def test_membership_matrix_from_pairs():
    pairs = pd.DataFrame({"gene_id": ["a", "a", "b", "z"], "feature_id": ["f2", "f2", "f1", "f1"]})
    feats = membership_matrix(pairs, ["a", "b", "c"])
    assert feats.feature_ids == ("f1", "f2")
    assert feats.matrix.toarray().tolist() == [[0, 1], [1, 0], [0, 0]]
    assert feats.rows(["b"]).toarray().tolist() == [[1, 0]]
    with pytest.raises(GeneSpliceInputError, match="have no row"):
        feats.rows(["q"])
    with pytest.raises(GeneSpliceInputError, match="lack columns"):
        membership_matrix(pairs.rename(columns={"gene_id": "g"}), ["a"])
