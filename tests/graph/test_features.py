"""Graph-derived features: top-level pathways, true-path membership, membership matrices."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import HeteroData

from genesplice.annotations.gene_structure import read_gene_structure
from genesplice.graph.features import (
    GRAPH_FEATURES,
    STRUCTURE_FEATURES,
    gene_level_features,
    membership_features,
    membership_from_graph,
    membership_matrix,
    top_level_pathways,
)
from genesplice.graph.hetero import KnowledgeGraph
from genesplice.io.errors import GeneSpliceInputError

PART_OF = ("pathway", "part_of", "pathway")
MEMBER = ("gene", "member_of", "pathway")
ANNOT = ("gene", "annotated_with", "go_term")
REG = ("gene", "regulates", "gene")


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


def _tiny_with_go_and_tfs():
    """:func:`_tiny` plus GO terms t0, t1 (g0: both, g2: t1) and TF edges g0 -> g1, g0 -> g2,
    g3 -> g0 (g0 and g3 are TFs; g1 and g2 only targets)."""
    kg = _tiny()
    kg.data["go_term"].num_nodes = 2
    kg.data[ANNOT].edge_index = torch.tensor([[0, 0, 2], [0, 1, 1]])
    kg.data[REG].edge_index = torch.tensor([[0, 0, 3], [1, 2, 0]])
    kg.node_ids["go_term"] = ["t0", "t1"]
    return kg


def test_gene_level_features_on_a_tiny_graph():
    kg = _tiny_with_go_and_tfs()
    structure = pd.DataFrame({"span_bp": [1000, 10, 5], "n_exons": [3, 1, 2]},
                             index=pd.Index(["g1", "g0", "elsewhere"], name="gene_symbol"))
    f = gene_level_features(kg, structure)
    assert f.gene_ids == ("g0", "g1", "g2", "g3") and f.mean is None
    assert f.feature_names == STRUCTURE_FEATURES + GRAPH_FEATURES
    assert f.matrix.dtype == np.float32 and f.matrix.shape == (4, 8)
    col = {n: f.matrix[:, j] for j, n in enumerate(f.feature_names)}
    np.testing.assert_allclose(col["log10_span_bp"], [1, 3, 0, 0])  # g2, g3: no transcript
    np.testing.assert_allclose(col["log1p_n_exons"], np.log1p([1, 3, 0, 0]), rtol=1e-6)
    assert col["has_transcript"].tolist() == [1, 1, 0, 0]
    assert col["is_tf"].tolist() == [1, 0, 0, 1]
    np.testing.assert_allclose(col["log1p_n_targets"], np.log1p([2, 0, 0, 1]), rtol=1e-6)
    np.testing.assert_allclose(col["log1p_n_go_terms"], np.log1p([2, 0, 1, 0]), rtol=1e-6)
    np.testing.assert_allclose(col["log1p_n_pathways"], np.log1p([1, 1, 1, 2]), rtol=1e-6)
    np.testing.assert_allclose(col["log1p_n_regulators"], np.log1p([1, 1, 1, 0]), rtol=1e-6)
    # without a structure table: the graph columns only; absent edge types count 0
    g = gene_level_features(_tiny())
    assert g.feature_names == GRAPH_FEATURES
    assert g.matrix[:, list(GRAPH_FEATURES).index("is_tf")].tolist() == [0, 0, 0, 0]
    with pytest.raises(GeneSpliceInputError, match="lacks columns"):
        gene_level_features(kg, structure.drop(columns="n_exons"))
    with pytest.raises(GeneSpliceInputError, match="repeats gene symbols"):
        gene_level_features(kg, pd.concat([structure, structure]))


def test_gene_level_features_standardized():
    kg = _tiny_with_go_and_tfs()
    raw = gene_level_features(kg, pd.DataFrame({"span_bp": [1000], "n_exons": [3]},
                                               index=["g1"]))
    z = raw.standardized()
    assert z.matrix.dtype == np.float32 and z.gene_ids == raw.gene_ids
    np.testing.assert_allclose(z.matrix.mean(axis=0), 0, atol=1e-6)
    stds = z.matrix.std(axis=0)
    np.testing.assert_allclose(stds[raw.matrix.std(axis=0) > 0], 1, rtol=1e-5)
    np.testing.assert_allclose(z.mean, raw.matrix.mean(axis=0), rtol=1e-6)
    # fitted on some rows, then the same transform applied again gives the same matrix
    fit = raw.standardized(np.array([0, 1, 3]))
    np.testing.assert_allclose(fit.mean, raw.matrix[[0, 1, 3]].mean(axis=0), rtol=1e-6)
    again = raw.standardized(mean=fit.mean, std=fit.std)
    np.testing.assert_array_equal(again.matrix, fit.matrix)
    with pytest.raises(ValueError, match="already standardized"):
        z.standardized()
    with pytest.raises(ValueError, match="both mean and std"):
        raw.standardized(mean=fit.mean)


def test_gene_level_features_of_the_default_graph(kg):
    structure, _ = read_gene_structure()
    f = gene_level_features(kg, structure)
    assert f.gene_ids == tuple(kg.node_ids["gene"]) and f.matrix.shape == (len(f.gene_ids), 8)
    assert np.isfinite(f.matrix).all()
    tp53 = dict(zip(f.feature_names, f.matrix[f.gene_ids.index("TP53")].tolist()))
    assert tp53["has_transcript"] == 1 and tp53["is_tf"] == 1
    assert tp53["log10_span_bp"] == pytest.approx(np.log10(19_137))  # GENCODE V24: 19.1 kb
    assert tp53["log1p_n_exons"] == pytest.approx(np.log1p(11))
    reg = kg.data[REG].edge_index
    assert f.matrix[:, f.feature_names.index("is_tf")].sum() == len(set(reg[0].tolist()))
    has = f.matrix[:, f.feature_names.index("has_transcript")]
    assert 0.9 < has.mean() < 1  # most genes have a canonical GENCODE V24 transcript
