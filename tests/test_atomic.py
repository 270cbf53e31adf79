"""Atomic writes: a failed write leaves the previous file intact and no temporary file behind."""
import pytest

from utils.atomic import atomic_path, atomic_write_bytes


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = atomic_write_bytes(tmp_path / "out.csv", b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_successful_write_replaces_and_creates_folders(tmp_path):
    target = atomic_write_bytes(tmp_path / "a" / "b" / "out.bin", b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_written_files_get_the_mode_open_would_give(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        target = atomic_write_bytes(tmp_path / "shared.csv", b"x")
        plain = tmp_path / "plain.csv"
        plain.write_bytes(b"x")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o644
