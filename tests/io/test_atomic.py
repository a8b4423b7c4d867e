"""Atomic writes: the file appears whole or not at all; no temporary file is left behind."""
import os

import pytest

from genesplice.io.atomic import atomic_write, atomic_write_text, check_writable_dir
from genesplice.io.errors import GeneSpliceInputError


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


def test_check_writable_dir(tmp_path):
    out = tmp_path / "new" / "run"
    assert check_writable_dir(out) == out and not out.exists()        # nothing left behind
    assert list(tmp_path.iterdir()) == []
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(GeneSpliceInputError, match="file.txt: expected an output folder"):
        check_writable_dir(afile)
    with pytest.raises(GeneSpliceInputError, match="file.txt: expected an output folder"):
        check_writable_dir(afile / "below")
    with pytest.raises(GeneSpliceInputError, match=r"MiB free where the output goes"):
        check_writable_dir(out, min_free_mb=1e15)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_unwritable_dir_is_reported_even_for_root():
    with pytest.raises(GeneSpliceInputError, match="genesplice-out: output folder is not writable"):
        check_writable_dir("/proc/self/genesplice-out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_dir_is_reported(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(GeneSpliceInputError, match="not writable"):
            check_writable_dir(ro)
    finally:
        ro.chmod(0o700)
