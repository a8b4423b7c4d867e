"""The three walkthrough notebooks run top to bottom on the bundled data (issue 6).

Executed in order with nbclient in a kernel of this interpreter: 01 builds the graph, 02 trains
the small model, 03 queries it. Their paths are redirected into a temporary folder by a cell
injected after each notebook's ``parameters`` cell (papermill-style), so nothing is written into
the checkout. A failing cell fails the test with its traceback.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ORDER = ["01_build_knowledge_graph.ipynb", "02_train_fused_model.ipynb",
         "03_query_predictions.ipynb"]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernelspec for this very interpreter, found first through JUPYTER_PATH (a fresh
    virtual environment has no registered kernel of its own to rely on)."""
    jupyter = tmp_path_factory.mktemp("jupyter")
    spec = jupyter / "kernels" / "genesplice-tests"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "genesplice tests", "language": "python",
        "env": {"PYTHONHASHSEED": "0"}}))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(jupyter), *([old] if old else [])])
    yield "genesplice-tests"
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("notebooks")


def _overrides(workdir: Path) -> str:
    graph, run = workdir / "graph", workdir / "run"
    return (f'GRAPH_DIR = Path({str(graph)!r})\nRUN_DIR = Path({str(run)!r})\n'
            f'CHECKPOINT = Path({str(run / "fused.pt")!r})\n')


def _run(name: str, kernel: str, workdir: Path):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: expected one cell tagged 'parameters'"
    nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(_overrides(workdir)))
    NotebookClient(nb, kernel_name=kernel, timeout=600,
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


def _outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == kind]


def test_committed_notebooks_have_no_outputs():
    for name in ORDER:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, name


@pytest.mark.slow
def test_01_build_knowledge_graph(kernel, workdir):
    nb = _run(ORDER[0], kernel, workdir)
    assert (workdir / "graph" / "graph.json").exists()
    assert _outputs(nb, "display_data")                     # the histogram plot


@pytest.mark.slow
def test_02_train_fused_model(kernel, workdir):
    nb = _run(ORDER[1], kernel, workdir)
    run = workdir / "run"
    for name in ("fused.pt", "predictions.csv", "labelled_genes.txt"):
        assert (run / name).stat().st_size > 0
    assert len(_outputs(nb, "display_data")) >= 2


@pytest.mark.slow
def test_03_query_predictions(kernel, workdir):
    nb = _run(ORDER[2], kernel, workdir)
    assert len(_outputs(nb, "display_data")) >= 4            # heat maps, explanation, variants
    text = "".join(o.get("text", "") for o in _outputs(nb, "stream"))
    assert "unknown gene: 'TP35'" in text and "does not match the genome" in text
