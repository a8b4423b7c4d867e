"""The two chromosome spellings: reported names (chr8) and FASTA alias keys (8)."""
import pytest

from genesplice.io.chromosomes import alias_key, normalize_chromosome


@pytest.mark.parametrize("raw,name", [
    ("8", "chr8"), ("chr8", "chr8"), ("CHR8", "chr8"), (" chr08 ", "chr8"), ("x", "chrX"),
    ("chrY", "chrY"), ("MT", "chrM"), ("M", "chrM"), ("chrM", "chrM"),
    ("chr1_KI270706v1", "chr1_KI270706v1"),
])
def test_normalize_chromosome(raw, name):
    assert normalize_chromosome(raw) == name


@pytest.mark.parametrize("raw,key", [
    ("chr20", "20"), ("20", "20"), ("chrx", "X"), ("chrM", "MT"), ("M", "MT"), ("MT", "MT"),
    ("NC_000020.10", "NC_000020.10"),
])
def test_alias_key(raw, key):
    assert alias_key(raw) == key


def test_both_conventions_agree_on_the_chromosome():
    for raw in ("chr20", "20", "X", "chrM", "MT"):
        assert alias_key(normalize_chromosome(raw)) == alias_key(raw)
