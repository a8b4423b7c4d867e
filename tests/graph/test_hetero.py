"""Save -> load round trip and stale-graph detection."""
import json
import shutil

import pytest
import torch

from genesplice.io.errors import GeneSpliceInputError
from genesplice.graph.hetero import KnowledgeGraph
from genesplice.graph.recipes import default_recipe_path, load_recipe


def test_round_trip_is_exact(kg, saved):
    back = KnowledgeGraph.load(saved, check_inputs=True,
                               recipe=load_recipe(default_recipe_path()))
    assert back.node_ids == kg.node_ids
    assert back.node_names == kg.node_names
    assert back.edge_attr_names == kg.edge_attr_names
    assert back.recipe == kg.recipe and back.inputs == kg.inputs
    assert back.data.edge_types == kg.data.edge_types
    for et in kg.data.edge_types:
        for key in ("edge_index", "edge_attr"):
            if key in kg.data[et]:
                a, b = kg.data[et][key], back.data[et][key]
                assert a.dtype == b.dtype and torch.equal(a, b), (et, key)
    for t in kg.data.node_types:
        assert back.data[t].num_nodes == kg.data[t].num_nodes
    assert torch.equal(back.data["go_term"].namespace, kg.data["go_term"].namespace)
    assert back.summary().equals(kg.summary())
    assert (back.membership("member_of") != kg.membership("member_of")).nnz == 0


def test_saved_files_are_plain(saved):
    tensors = torch.load(saved / "tensors.pt", weights_only=True)
    assert set(tensors) == {"num_nodes", "node", "edge_index", "edge_attr"}
    meta = json.loads((saved / "graph.json").read_text())
    assert len(meta["inputs"]["GO ontology"]["sha256"]) == 64
    assert not list(saved.glob(".*.tmp"))  # atomic writes leave no temp files


def test_stale_input_detected(saved, tmp_path):
    copy = tmp_path / "g"
    shutil.copytree(saved, copy)
    meta = json.loads((copy / "graph.json").read_text())
    src = meta["inputs"]["TRRUST"]["path"]
    local = tmp_path / "trrust.tsv.gz"
    shutil.copy(src, local)
    meta["inputs"]["TRRUST"]["path"] = str(local)
    (copy / "graph.json").write_text(json.dumps(meta))
    KnowledgeGraph.load(copy, check_inputs=True)  # unchanged copy: fine
    local.write_bytes(local.read_bytes() + b"\n")
    with pytest.raises(GeneSpliceInputError, match="stale: input TRRUST changed"):
        KnowledgeGraph.load(copy, check_inputs=True)
    KnowledgeGraph.load(copy)  # without the check it still loads


def test_stale_recipe_detected(saved):
    from dataclasses import replace
    r = load_recipe(default_recipe_path())
    other = replace(r, go=replace(r.go, min_genes=5))
    with pytest.raises(GeneSpliceInputError, match=r"stale: built from a different recipe.*go"):
        KnowledgeGraph.load(saved, recipe=other)


def test_missing_and_corrupt(tmp_path, saved):
    with pytest.raises(GeneSpliceInputError, match="not a saved graph"):
        KnowledgeGraph.load(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(saved, bad)
    meta = json.loads((bad / "graph.json").read_text())
    meta["node_ids"]["gene"] = meta["node_ids"]["gene"][:-1]
    (bad / "graph.json").write_text(json.dumps(meta))
    with pytest.raises(GeneSpliceInputError, match="node type 'gene'"):
        KnowledgeGraph.load(bad)


def test_truncated_or_foreign_tensors_are_one_line(tmp_path, saved):
    for name, write in [
        ("cut", lambda p: p.write_bytes((saved / "tensors.pt").read_bytes()[:1000])),
        ("foreign", lambda p: torch.save({"weights": torch.zeros(2)}, p)),
        ("json", lambda p: None),
    ]:
        bad = tmp_path / name
        shutil.copytree(saved, bad)
        write(bad / "tensors.pt")
        if name == "json":
            (bad / "graph.json").write_text("[1, 2]")
        with pytest.raises(GeneSpliceInputError) as err:
            KnowledgeGraph.load(bad)
        assert str(err.value).startswith(str(bad)) and "\n" not in str(err.value)
