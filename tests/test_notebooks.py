"""The walkthrough notebooks run top to bottom on the bundled data (issues 6, 13).

Executed in order with nbclient in a kernel of this interpreter: 01 builds the graph, 02 trains
the small model, 03 queries it, 04 fine-tunes a small base model to a new table. Their paths are redirected into a temporary folder by a cell
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
         "03_query_predictions.ipynb", "04_finetune_your_table.ipynb"]


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


def test_03_opened_first_says_what_to_run_first(kernel, tmp_path):
    """Notebook 03 before any training (no checkpoint, no notebook-02 model): the guard
    cell stops "Run all" with a message naming `make demo` and notebook 02 — no traceback."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(NOTEBOOKS / ORDER[2], as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])][0]
    missing = tmp_path / "no_run" / "fused.pt"
    nb.cells.insert(tagged + 1, nbformat.v4.new_code_cell(f"CHECKPOINT = Path({str(missing)!r})"))
    nb.cells = nb.cells[: tagged + 3]                    # up to and with the guard cell
    client = NotebookClient(nb, kernel_name=kernel, timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as err:
        client.execute()
    assert "NoTrainedModelYet" in str(err.value)
    shown = "".join(o.get("data", {}).get("text/markdown", "")
                    for o in _outputs(nb, "display_data"))
    assert "make demo" in shown and "02_train_fused_model.ipynb" in shown and str(missing) in shown
    errors = _outputs(nb, "error")
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1     # one line, no traceback


@pytest.mark.slow
def test_03_query_predictions(kernel, workdir):
    nb = _run(ORDER[2], kernel, workdir)
    assert len(_outputs(nb, "display_data")) >= 4            # heat maps, explanation, variants
    text = "".join(o.get("text", "") for o in _outputs(nb, "stream"))
    assert "unknown gene: 'TP35'" in text and "does not match the genome" in text


@pytest.mark.slow
def test_04_finetune_your_table(kernel, workdir):
    nb = _run(ORDER[3], kernel, workdir)
    out = workdir / "run" / "finetune" / "out"
    for name in ("finetuned.pt", "predictions.csv", "predictions.splits.csv", "report.md"):
        assert (out / name).stat().st_size > 0
    assert _outputs(nb, "display_data")                     # the comparison plot
