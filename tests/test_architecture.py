"""The package's shape, checked on every `make test`: the import-linter layers contract in
pyproject.toml (stages import only the stages below them), no import cycle between modules,
and imports of our own modules inside functions only where a reason is written down."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "genesplice"
#: files allowed to import our modules inside functions (the CLI keeps `--help` fast)
LAZY_ALLOWED = {"cli.py"}
MAX_LAZY_ELSEWHERE = 3


def test_layers_contract_holds():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    run = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "1 kept, 0 broken" in run.stdout


def test_layers_contract_fails_on_a_back_edge(tmp_path):
    """The contract is not vacuous: a copy of the package with one upward import breaks it."""
    copy = tmp_path / "genesplice"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "io" / "constants.py"
    target.write_text(target.read_text() + "\nimport genesplice.api  # back-edge\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    run = subprocess.run([exe, "--config", str(tmp_path / "pyproject.toml"), "--no-cache"],
                         cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": ""})
    assert run.returncode != 0
    assert "genesplice.io is not allowed to import genesplice.api" in run.stdout


def test_no_module_import_cycles():
    graph = grimp.build_graph("genesplice", cache_dir=None)
    g = nx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            # a package's __init__ re-exporting its own submodules is not a cycle of stages
            if imported.startswith(module + "."):
                continue
            g.add_edge(module, imported)
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert cycles == []


def _lazy_own_imports() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in LAZY_ALLOWED:
            continue
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                own = (isinstance(node, ast.ImportFrom) and (node.level > 0 or (
                    node.module or "").split(".")[0] == "genesplice")) or (
                    isinstance(node, ast.Import)
                    and any(a.name.split(".")[0] == "genesplice" for a in node.names))
                if own:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return sorted(set(found))


def test_own_imports_inside_functions_are_rare():
    lazy = _lazy_own_imports()
    assert len(lazy) <= MAX_LAZY_ELSEWHERE, lazy
