"""`validate_file` on real bundled files (good) and on small malformed files (bad)."""

import pytest

from genesplice.annotations.validate import guess_format, validate_file
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from tests.textfiles import write_text


@pytest.mark.parametrize("rel,fmt", [
    ("annotations/trrust_human.tsv.gz", "tsv"),
    ("annotations/ReactomePathways_2021-02.gmt.gz", "gmt"),
    ("coords/xpresso_hg38_promoters_cage_corrected_pm10kb.bed.gz", "bed"),
    ("coords/epdnew_hs_core_promoters_m49_p10.fa.gz", "fasta"),
])
def test_real_files_validate(rel, fmt):
    line = validate_file(knowledge_path(rel))
    assert f"OK ({fmt})" in line and "\n" not in line


def test_guess_format():
    assert guess_format("x.gaf.gz") == "gaf"
    assert guess_format("x.fa") == "fasta"
    assert guess_format("x.gtf") == "gtf"
    with pytest.raises(GeneSpliceInputError, match="--format"):
        guess_format("x.unknown")




@pytest.mark.parametrize("name,text,fmt,where", [
    ("bad.tsv", "a\tb\n1\t2\n3\n", None, ":3: expected 2"),
    ("bad.bed", "chr1\t10\t20\nchr1\tx\t30\n", None, ":2: expected integer start"),
    ("bad2.bed", "chr1\t10\n", None, ":1: expected at least 3"),
    ("bad.gtf", "chr1\tsrc\tgene\t1\t10\t.\t+\t.\tgene_id \"a\";\nchr1\tsrc\tgene\t5\t1\t.\t+\t.\tx\n",
     None, ":2: expected integer 1-based start <= end"),
    ("bad.fa", ">s1\nACGT\nACXT\n", None, ":3: unexpected character 'X'"),
    ("nohead.fa", "ACGT\n", None, ":1: expected a '>' header"),
    ("bad.gmt", "set\tdesc\n", None, ":1: gene set 'set' has no genes"),
    ("bad.txt", "a\tb\n1\t2\t3\n", "tsv", ":2: expected 2"),
])
def test_malformed_files_name_the_line(tmp_path, name, text, fmt, where):
    p = write_text(tmp_path / name, text)
    with pytest.raises(GeneSpliceInputError) as exc:
        validate_file(p, fmt)
    assert str(exc.value).startswith(str(p) + where), str(exc.value)


def test_gz_and_empty(tmp_path):
    p = write_text(tmp_path / "ok.tsv.gz", "a\tb\n1\t2\n", gz=True)
    assert "1 rows x 2 columns" in validate_file(p)
    e = write_text(tmp_path / "empty.tsv", "")
    with pytest.raises(GeneSpliceInputError, match="empty"):
        validate_file(e)
    eg = write_text(tmp_path / "empty.tsv.gz", "", gz=True)
    with pytest.raises(GeneSpliceInputError, match="empty"):
        validate_file(eg)
