"""Session-wide real-data fixtures shared by every test folder (built once per session)."""
import pytest

from genesplice.graph.build import build_graph
from genesplice.graph.recipes import default_recipe_path


@pytest.fixture(scope="session")
def kg():
    """The default human graph, built from the real bundled files."""
    return build_graph(default_recipe_path(), progress=False)


@pytest.fixture(scope="session")
def saved(kg, tmp_path_factory):
    out = tmp_path_factory.mktemp("graph") / "human_default"
    kg.save(out)
    return out
