"""open_text / check_readable: plain and gzip files, and the errors that name the file."""
import gzip

import pytest

from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.text import check_readable, open_text


def test_plain_and_gzip_read_the_same(tmp_path):
    plain = tmp_path / "a.tsv"
    plain.write_text("x\ty\n1\t2\n", encoding="utf-8")
    gz = tmp_path / "a.tsv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.write("x\ty\n1\t2\n")
    with open_text(plain) as a, open_text(gz) as b:
        assert a.read() == b.read() == "x\ty\n1\t2\n"


def test_missing_empty_and_directory_name_the_file(tmp_path):
    with pytest.raises(GeneSpliceInputError, match=r"nope.tsv: file not found"):
        open_text(tmp_path / "nope.tsv")
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    with pytest.raises(GeneSpliceInputError, match=r"empty.tsv: file is empty"):
        open_text(empty)
    with pytest.raises(GeneSpliceInputError, match="expected a file, found a directory"):
        check_readable(tmp_path)


def test_error_is_one_line_with_path_and_line():
    err = GeneSpliceInputError("bad value", path="f.tsv", line=3)
    assert str(err) == "f.tsv:3: bad value" and err.line == 3 and err.problem == "bad value"
    assert str(GeneSpliceInputError("no file")) == "no file"


def test_check_readable_returns_a_path(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    assert check_readable(str(f)) == f
