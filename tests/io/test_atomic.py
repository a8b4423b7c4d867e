"""Atomic writes: the file appears whole or not at all; no temporary file is left behind."""
import os

import pytest

from genesplice.io.atomic import atomic_write, atomic_write_text


def test_write_text_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "out.txt"
    assert atomic_write_text(p, "one") == p
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert os.listdir(p.parent) == ["out.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failing_writer_keeps_old_file(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")

    def write(tmp):
        with open(tmp, "w") as fh:
            fh.write("half")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        atomic_write(p, write)
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_failing_writer_creates_nothing(tmp_path):
    p = tmp_path / "new.txt"
    with pytest.raises(KeyboardInterrupt):
        atomic_write(p, lambda tmp: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert os.listdir(tmp_path) == []
