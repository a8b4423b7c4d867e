"""The default human graph (graphs/human_default.toml) built from the real bundled files."""
import networkx as nx
import numpy as np
import pandas as pd
import torch

from genesplice.io.knowledge import knowledge_path

EXPECTED_EDGE_TYPES = {
    ("gene", "annotated_with", "go_term"), ("go_term", "is_a", "go_term"),
    ("go_term", "part_of", "go_term"), ("go_term", "regulates", "go_term"),
    ("gene", "member_of", "pathway"), ("pathway", "part_of", "pathway"),
    ("gene", "regulates", "gene"),
}


def test_node_and_edge_types(kg):
    assert set(kg.data.node_types) == {"gene", "go_term", "pathway"}
    fwd = {et for et in kg.data.edge_types if not et[1].startswith("rev_")}
    assert fwd == EXPECTED_EDGE_TYPES
    for s, r, d in fwd:  # every edge type has its reverse, with the same attributes
        rev = kg.data[(d, f"rev_{r}", s)]
        assert torch.equal(rev.edge_index, kg.data[(s, r, d)].edge_index.flip(0))
        if "edge_attr" in kg.data[(s, r, d)]:
            assert torch.equal(rev.edge_attr, kg.data[(s, r, d)].edge_attr)
    for et in kg.data.edge_types:
        if "edge_attr" in kg.data[et]:
            assert kg.data[et].edge_attr.dtype == torch.float32
        assert kg.data[et].edge_index.dtype == torch.long
    kg.validate()


def test_gene_universe_is_the_expression_table(kg):
    hpa = pd.read_csv(knowledge_path("expression/hpa_gtex_tissue_nTPM_wide.tsv.gz"), sep="\t",
                      usecols=["gene_symbol"])
    genes = kg.node_ids["gene"]
    assert genes == sorted(set(genes))
    # every HPA row maps to a node or is reported as unmapped / a duplicate symbol
    skipped = kg.stats["skipped"]["gene universe"]
    assert len(genes) + sum(skipped.values()) == len(hpa)
    assert kg.stats["genes"]["without_any"] > 0  # unannotated genes are still nodes
    idx = kg.node_index("gene")
    assert all(idx[g] == i for i, g in enumerate(genes))


def test_tp53_annotations(kg):
    ann = kg.edges(("gene", "annotated_with", "go_term"))
    tp53 = ann[ann["src"] == "TP53"]
    assert len(tp53) > 50
    m = kg.membership(("gene", "annotated_with", "go_term"), propagate=True)
    g, t = kg.node_index("gene")["TP53"], kg.node_index("go_term")["GO:0006915"]
    assert m[g, t] == 1.0
    assert kg.name("go_term", "GO:0006915") == "apoptotic process"
    direct = kg.membership("annotated_with")
    assert direct.shape == (len(kg.node_ids["gene"]), len(kg.node_ids["go_term"]))
    assert direct.nnz == kg.data[("gene", "annotated_with", "go_term")].num_edges
    assert m.nnz > direct.nnz


def test_min_genes_counted_after_propagation(kg):
    m = kg.membership("annotated_with", propagate=True)
    sizes = np.asarray(m.sum(axis=0)).ravel()
    assert sizes.min() >= 10
    p = kg.membership("member_of", propagate=True)
    assert np.asarray(p.sum(axis=0)).ravel().min() >= 10
    assert kg.stats["terms"]["go"]["below_min_genes"] > 0
    assert kg.stats["terms"]["go"]["annotations_without_kept_term"] == 0


def test_hierarchies_acyclic_and_signal_transduction_top_level(kg):
    for et in [("go_term", "is_a", "go_term"), ("pathway", "part_of", "pathway")]:
        ei = kg.data[et].edge_index.numpy()
        g = nx.DiGraph(list(zip(ei[0].tolist(), ei[1].tolist())))
        assert nx.is_directed_acyclic_graph(g)
    pidx = kg.node_index("pathway")
    assert kg.name("pathway", "R-HSA-162582") == "Signal Transduction"
    assert bool(kg.data["pathway"].top_level[pidx["R-HSA-162582"]])
    assert int(kg.data["pathway"].top_level.sum()) == 29


def test_regulation_edges_sign_and_confidence(kg):
    reg = kg.edges(("gene", "regulates", "gene"))
    assert set(reg["sign"]) <= {-1.0, 0.0, 1.0}
    assert reg["confidence"].between(0.2, 1.0).all()
    assert kg.attr_names(("gene", "regulates", "gene")) == ["sign", "confidence"]
    row = reg[(reg["src"] == "AATF") & (reg["dst"] == "BAX")]
    assert row["sign"].tolist() == [-1.0]  # TRRUST: AATF represses BAX
    tf_matrix = kg.membership(("gene", "regulates", "gene"))
    assert tf_matrix.nnz == len(reg)


def test_go_regulates_sign(kg):
    r = kg.edges(("go_term", "regulates", "go_term"))
    assert set(r["sign"]) == {-1.0, 0.0, 1.0}
    # negative regulation of apoptotic process -> apoptotic process
    row = r[(r["src"] == "GO:0043066") & (r["dst"] == "GO:0006915")]
    assert row["sign"].tolist() == [-1.0]


def test_networkx_graph_is_typed(kg):
    g = kg.nx_graph
    assert g.nodes["TP53"]["type"] == "gene"
    assert g.nodes["GO:0006915"]["type"] == "go_term"
    assert g.nodes["R-HSA-162582"]["name"] == "Signal Transduction"
    edge = g.get_edge_data("AATF", "BAX")["regulates"]
    assert edge["sign"] == -1 and "TRRUST" in edge["sources"] and edge["pmids"]
    n_fwd = sum(kg.data[et].num_edges for et in kg.data.edge_types
                if not et[1].startswith("rev_"))
    assert g.number_of_edges() == n_fwd


def test_summary_and_report(kg):
    s = kg.summary()
    assert list(s.columns) == ["kind", "type", "count"]
    nodes = s[s["kind"] == "node"].set_index("type")["count"]
    assert nodes["gene"] == len(kg.node_ids["gene"])
    lines = "\n".join(kg.report_lines())
    assert "genes with no annotation" in lines and "not mapped" in lines
    assert set(kg.inputs) >= {"GO ontology", "GO annotations", "TRRUST", "DoRothEA",
                              "Reactome mapping", "gene universe", "gene id table"}


def test_expression_evidence_is_excluded(kg):
    # IEP / HEP (expression pattern) are measured expression: 969 more GAF rows than ND alone
    assert kg.recipe["go"]["exclude_evidence"] == ["ND", "IEP", "HEP"]
    assert kg.stats["skipped"]["GO annotations"]["evidence code excluded"] == 1_803 + 969
