"""The bundled real data matches its MANIFEST (sha256 and line counts)."""
import gzip

from genesplice.cli import main
from genesplice.io.knowledge import knowledge_dir, read_manifest, verify_manifest


def test_every_checksum_matches():
    assert verify_manifest() == []


def test_manifest_lists_every_bundled_file():
    root = knowledge_dir()
    listed = {row["file"] for row in read_manifest()}
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*")
               if p.is_file() and p.name not in ("MANIFEST.tsv", "README.md")}
    assert listed == on_disk


def test_row_counts_match_for_small_files():
    root = knowledge_dir()
    for row in read_manifest():
        f = root / row["file"]
        if f.stat().st_size > 2_000_000:
            continue
        opener = gzip.open if f.suffix == ".gz" else open
        with opener(f, "rb") as fh:
            assert sum(1 for _ in fh) == int(row["rows"]), row["file"]


def test_cli_check_knowledge(capsys):
    assert main(["check-knowledge"]) == 0
    assert "match MANIFEST.tsv" in capsys.readouterr().out
