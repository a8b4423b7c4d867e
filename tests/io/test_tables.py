"""genesplice.io.tables: the vectorised line scan and validated TSV reading."""

import numpy as np
import pytest

from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.tables import (
    check_field_counts,
    line_text,
    read_bytes,
    read_table,
    scan_lines,
)
from tests.textfiles import write_text




def test_read_table_required_and_header(tmp_path):
    p = write_text(tmp_path / "t.tsv", "tf\ttarget\nA\t\n")
    with pytest.raises(GeneSpliceInputError, match=r"t.tsv:2: empty value in required column 'target'"):
        read_table(p, columns=("tf", "target"), required=("tf", "target"))
    with pytest.raises(GeneSpliceInputError, match=r"t.tsv:1: missing column"):
        read_table(p, columns=("tf", "mode"))
    h = write_text(tmp_path / "h.tsv", "tf\ttarget\n")
    with pytest.raises(GeneSpliceInputError, match="no data rows"):
        read_table(h, columns=("tf",))


def test_read_table_field_counts_name_the_line(tmp_path):
    p = write_text(tmp_path / "t.tsv", "a\tb\n1\t2\n3\t4\t5\n")
    with pytest.raises(GeneSpliceInputError, match=r"t.tsv:3: expected 2 tab-separated fields"):
        read_table(p, columns=("a", "b"))
    q = write_text(tmp_path / "q.tsv.gz", "1\t2\n3\n", gz=True)
    with pytest.raises(GeneSpliceInputError, match=r"q.tsv.gz:2: expected 2 tab-separated "
                                                   r"fields, found 1"):
        read_table(q, header=False, names=("x", "y"))
    df = read_table(write_text(tmp_path / "ok.tsv", "a\tb\n1\t\n"), columns=("a",))
    assert df["a"].tolist() == ["1"] and df["b"].isna().tolist() == [True]


def test_scan_lines_counts_fields_and_strips_cr():
    data = b"a\tb\r\n\nc\n"
    lines = scan_lines(data)
    assert lines.n == 3
    assert lines.n_fields.tolist() == [2, 1, 1]
    assert [line_text(data, lines, i) for i in range(3)] == ["a\tb", "", "c"]
    assert lines.first_byte.tolist() == [ord("a"), 10, ord("c")]
    with pytest.raises(GeneSpliceInputError, match=r"f:1: expected 3 tab-separated fields, found 2"):
        check_field_counts("f", lines, np.ones(3, dtype=bool), expected=3)


def test_read_bytes_decompresses_and_rejects_empty(tmp_path):
    assert read_bytes(write_text(tmp_path / "x.gz", "hello\n", gz=True)) == b"hello\n"
    with pytest.raises(GeneSpliceInputError, match="x.txt: file is empty"):
        read_bytes(write_text(tmp_path / "x.txt", "\n\n"))
