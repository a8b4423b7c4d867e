"""genesplice.api.loading: load (checksums checked), from_files (trains), devices."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genesplice.api import GeneSplice
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path


def test_load_refuses_a_changed_expression_table(trained, tmp_path):
    src = knowledge_path("expression/hpa_gtex_tissue_nTPM_wide.tsv.gz")
    table = pd.read_csv(src, sep="\t")
    table.iloc[0, -1] = float(table.iloc[0, -1]) + 100.0
    changed = tmp_path / "expression.tsv.gz"
    table.to_csv(changed, sep="\t", index=False)
    with pytest.raises(GeneSpliceInputError, match="expression: checkpoint"):
        GeneSplice.load(trained["checkpoint"], graph=trained["graph"], expression=changed,
                        genes=trained["genes"], progress=False)


def test_subset_run_reloads_without_its_gene_list(trained):
    # the sequence checksum covers every promoter mapped to the graph, not just the ones a
    # quick run on a gene subset encoded, so its checkpoint reloads on the same inputs
    gs = GeneSplice.load(trained["checkpoint"], graph=trained["graph"], device="cpu",
                         progress=False)
    assert str(gs.device) == "cpu"
    pred = gs.predict(["TP53"], progress=False)
    assert pred.shape == (1, len(trained["extra"]["tissues"]))
    assert np.isfinite(pred.to_numpy()).all()


def test_load_refuses_an_unknown_device(trained):
    with pytest.raises(GeneSpliceInputError, match="device 'tpu' is not one of"):
        GeneSplice.load(trained["checkpoint"], graph=trained["graph"], genes=trained["genes"],
                        device="tpu", progress=False)


def test_from_files_object_matches_the_loaded_checkpoint(gs, trained):
    """The object from_files returns (after training) answers as the reloaded checkpoint."""
    fresh = trained["fresh"]
    assert Path(fresh.checkpoint) == trained["checkpoint"] and trained["checkpoint"].exists()
    a = fresh.predict(["ALB", "MYH4"], progress=False)
    assert a.attrs["views"] == {"ALB": "sequence+graph", "MYH4": "sequence+graph"}
    np.testing.assert_allclose(a.to_numpy(), gs.predict(["ALB", "MYH4"], progress=False).to_numpy(),
                               atol=1e-6)
