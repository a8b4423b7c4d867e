"""Every bundled default path in genesplice.io.constants is a file listed in MANIFEST.tsv."""
from genesplice.io import constants
from genesplice.io.knowledge import knowledge_path, read_manifest


def _bundled_paths():
    for name, value in vars(constants).items():
        if name.isupper() and isinstance(value, str) and "/" in value:
            yield name, value
        elif name.isupper() and isinstance(value, tuple):
            yield from ((f"{name}[{i}]", v) for i, v in enumerate(value))


def test_constants_point_at_manifest_files():
    listed = {row["file"] for row in read_manifest()}
    paths = dict(_bundled_paths())
    assert len(paths) >= 17
    missing = {k: v for k, v in paths.items() if v not in listed}
    assert missing == {}
    for rel in paths.values():
        assert knowledge_path(rel).stat().st_size > 0


def test_promoter_constants_and_unit_label():
    assert constants.PROMOTER_LENGTH == 60 and constants.PROMOTER_TSS_INDEX == 49
    assert constants.unit_label("log10_ntpm1") == "log10(nTPM + 1)"
    assert constants.unit_label("counts") == "counts"
