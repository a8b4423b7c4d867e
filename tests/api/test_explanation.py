"""genesplice.api.explanation: attention, attributions, explain (and its plot)."""
from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from genesplice.api.base import RELATION_LABELS
from genesplice.api.plots import RELATION_COLOURS
from genesplice.io.errors import GeneSpliceInputError


def test_attention_names_and_sums(gs):
    att = gs.attention("ALB")
    assert list(att.columns[:6]) == ["gene", "relation", "edge_type", "neighbour_id",
                                     "neighbour_name", "weight"]
    # GATv2 normalises per destination and relation: each layer's weights sum to 1
    sums = att.groupby("relation")[["weight_layer_1", "weight_layer_2"]].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-5)
    go = att[att["relation"] == "GO term"]
    assert len(go) == int((gs.annotations("ALB")["relation"] == "GO term").sum())
    assert go["neighbour_id"].str.startswith("GO:").all()
    assert (go["neighbour_name"] != go["neighbour_id"]).all()       # names, not ids
    regulators = set(att.loc[att["relation"] == "regulator", "neighbour_id"])
    assert {"HNF1A", "HNF4A"} & regulators                          # liver TFs regulate ALB
    top = gs.attention("ALB", top=3)
    assert top.groupby("relation").size().max() == 3
    assert set(att["relation"]) <= set(RELATION_COLOURS) == set(RELATION_LABELS.values())


def test_ism_agrees_in_sign_with_gradient_x_input_on_top_positions(gs):
    """MYH4's promoter (minus strand) in skeletal muscle: the five bases whose in-silico
    mutation moves the prediction most have the sign gradient × input gives them."""
    attr = gs.attributions("MYH4", "skeletal muscle")
    assert len(attr) == 60 and attr["offset_to_tss"].tolist() == list(range(-49, 11))
    assert "".join(attr["base"]) == gs.promoter("MYH4")
    assert attr["ism"].abs().max() > 0
    top = attr.reindex(attr["ism"].abs().sort_values(ascending=False).index[:5])
    assert (np.sign(top["ism"]) == np.sign(top["grad_x_input_centred"])).all()
    window = gs.attributions("MYH4", "skeletal muscle", ism_window=(-10, 5))
    assert window["ism"].notna().sum() == 15
    with pytest.raises(GeneSpliceInputError, match="ism_window .* lies outside the window"):
        gs.attributions("MYH4", "skeletal muscle", ism_window=(100, 120))


def test_explain_returns_both_parts_and_plots(gs):
    matplotlib.use("Agg")
    ex = gs.explain("MYH4", "skeletal muscle", top=5, ism_window=(-20, 10))
    assert ex.gene == "MYH4" and ex.unit == "log10(nTPM + 1)"
    assert ex.neighbours.groupby("relation").size().max() <= 5
    assert ex.attributions is not None and ex.attributions["ism"].notna().sum() == 30
    fig = ex.plot()
    assert len(fig.axes) >= 3
    matplotlib.pyplot.close(fig)
