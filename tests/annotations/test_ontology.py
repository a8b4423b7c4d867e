"""DAG utilities: ancestor closure, true-path expansion, unique pairs, roots."""
import numpy as np
import pytest

from genesplice.annotations.ontology import build_ancestors, expand, reduce_pairs, root_mask
from genesplice.io.errors import GeneSpliceInputError

# a -> b -> d, a -> c -> d (child -> parent); e alone
NODES = ["a", "b", "c", "d", "e"]
CHILD = np.array(["a", "a", "b", "c"])
PARENT = np.array(["b", "c", "d", "d"])


def test_ancestors_are_reflexive_and_transitive():
    anc = build_ancestors(NODES, CHILD, PARENT)
    assert anc.of("a") == ["a", "b", "c", "d"]
    assert anc.of("d") == ["d"] and anc.of("e") == ["e"]
    with pytest.raises(GeneSpliceInputError, match="toy has a cycle"):
        build_ancestors(["x", "y"], np.array(["x", "y"]), np.array(["y", "x"]), what="toy")


def test_expand_applies_the_true_path_rule_once_per_pair():
    anc = build_ancestors(NODES, CHILD, PARENT)
    item, term, direct = expand(anc, np.array([0, 0, 1]), anc.codes(np.array(["a", "b", "e"])))
    pairs = {(int(i), NODES[t], bool(d)) for i, t, d in zip(item, term, direct)}
    assert pairs == {(0, "a", True), (0, "b", True), (0, "c", False), (0, "d", False),
                     (1, "e", True)}
    assert len(item) == len(pairs)


def test_reduce_pairs_sorts_and_ors_flags():
    item, term, flags = reduce_pairs(np.array([1, 0, 1, 1]), np.array([2, 3, 2, 0]), 4,
                                     {"f": np.array([False, True, True, False])})
    assert item.tolist() == [0, 1, 1] and term.tolist() == [3, 0, 2]
    assert flags["f"].tolist() == [True, False, True]
    empty = reduce_pairs(np.zeros(0), np.zeros(0), 4, {"f": np.zeros(0, dtype=bool)})
    assert len(empty[0]) == 0 and len(empty[2]["f"]) == 0


def test_root_mask_needs_a_child_and_no_parent():
    codes = {n: i for i, n in enumerate(NODES)}
    mask = root_mask(len(NODES), [codes[c] for c in CHILD], [codes[p] for p in PARENT])
    assert mask.tolist() == [False, False, False, True, False]
    assert root_mask(3, [], []).tolist() == [False, False, False]
