"""Session-scoped parses of the real bundled files (each is parsed once per test run)."""
import pytest

from genesplice.annotations.go import read_gaf, read_go_obo
from genesplice.annotations.ids import default_resolver


@pytest.fixture(scope="session")
def resolver():
    return default_resolver()


@pytest.fixture(scope="session")
def go():
    return read_go_obo()


@pytest.fixture(scope="session")
def gaf(go, resolver):
    return read_gaf(ontology=go, resolver=resolver)
