"""Real piano performances from ASAP, split by work into training and validation folders.

    git clone https://github.com/fosfrancesco/asap-dataset          # once, any machine with internet
    python -m utils.synth.asap --asap asap-dataset --out data/performances/asap

ASAP (Foscarin et al., ISMIR 2020; CC BY-NC-SA 4.0) holds 1,067 performance MIDI files of 235 pieces by
16 composers, played by human pianists on Disklavier pianos (MAESTRO and the Piano-e-Competition). This
module reads its ``metadata.csv`` and copies each performance to ``<out>/train/`` or ``<out>/val/``:
every performance of one work (a sonata's movements, a piece with and without repeats) goes to the same
side, chosen by a hash of the work's name (VAL_SHARE of the works go to validation), so no piece is
played in both. Works of the held-out set (bench/heldout.py) go to neither: three of its ten MAESTRO
performances are in ASAP (found by matching note and velocity sequences), and HELDOUT_WORKS drops
every performance of those works. Give ``train/`` to ``python -m utils.synth --performances`` and
``val/`` to ``python -m bench.heldout --midi``. Provenance is written to ``<out>/SOURCES.md``.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from utils.atomic import atomic_write_bytes
from utils.checks import report_error
from utils.data.sdist import sha256_of

log = logging.getLogger(__name__)

METADATA = "metadata.csv"
COLUMNS = ("folder", "midi_performance")
VAL_SHARE = 8  # one work in VAL_SHARE (by hash) is a validation work
HELDOUT_WORKS = (  # works of bench/heldout.py's performances (Maestro_5, _8, _9 are ASAP performances)
    "Beethoven/Piano_Sonatas/11",
    "Beethoven/Piano_Sonatas/21",
    "Beethoven/Piano_Sonatas/28",
)
LICENCE = "CC BY-NC-SA 4.0 (ASAP, Foscarin et al. 2020; MIDI from MAESTRO and the Piano-e-Competition)"
_REPEAT = re.compile(r"_(no_)?repeat$")
_MOVEMENT = re.compile(r"^(\d+)-\d+$")


class AsapError(ValueError):
    """A missing or malformed ASAP checkout (the message names the file)."""


@dataclass(frozen=True)
class AsapPerformance:
    midi: str  # path inside the checkout
    work: str  # e.g. "Beethoven/Piano_Sonatas/21" (work_of its folder)


def work_of(folder: str) -> str:
    """The work a piece folder belongs to: repeat variants and a sonata's movements share one."""
    parent, _, leaf = folder.rstrip("/").rpartition("/")
    leaf = _REPEAT.sub("", leaf)
    movement = _MOVEMENT.match(leaf)
    leaf = movement.group(1) if movement else leaf
    return f"{parent}/{leaf}" if parent else leaf


def split_of(work: str) -> str:
    """'heldout' (a work of the held-out set), 'val' (one work in VAL_SHARE, by sha1) or 'train'."""
    if work in HELDOUT_WORKS:
        return "heldout"
    return "val" if int(hashlib.sha1(work.encode()).hexdigest(), 16) % VAL_SHARE == 0 else "train"


def read_metadata(root: Path) -> list[AsapPerformance]:
    path = root / METADATA
    if not path.is_file():
        raise AsapError(f"{path}: not found (is --asap an ASAP checkout?)")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = [c for c in COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise AsapError(f"{path}: no rows or missing columns {missing}")
    return [AsapPerformance(r["midi_performance"], work_of(r["folder"])) for r in rows]


def target_name(performance: AsapPerformance) -> str:
    """A flat, unique file name: the piece folder and the performer's file, '/' as '__'."""
    return performance.midi.replace("/", "__")


def copy_split(root: Path, performances: list[AsapPerformance], out: Path) -> dict[str, list[AsapPerformance]]:
    """Copy train and val performances into ``out/<split>/``; returns the performances of each split."""
    written: dict[str, list[AsapPerformance]] = {"train": [], "val": [], "heldout": []}
    for performance in performances:
        split = split_of(performance.work)
        written[split].append(performance)
        if split == "heldout":
            continue
        source = root / performance.midi
        if not source.is_file():
            raise AsapError(f"{source}: listed in {METADATA} but missing")
        target = out / split / target_name(performance)
        if not target.is_file():
            atomic_write_bytes(target, source.read_bytes())
    return written


def sources_markdown(root: Path, written: dict[str, list[AsapPerformance]]) -> str:
    works = {split: sorted({p.work for p in performances}) for split, performances in written.items()}
    return "\n".join([
        "# Performance MIDI: ASAP", "",
        f"- Data: ASAP (https://github.com/fosfrancesco/asap-dataset), licence {LICENCE}.",
        f"- Checkout: `{root}`, `{METADATA}` sha256 `{sha256_of(root / METADATA)}`.",
        f"- train/: {len(written['train'])} performances of {len(works['train'])} works.",
        f"- val/: {len(written['val'])} performances of {len(works['val'])} works: {', '.join(works['val'])}.",
        f"- Left out, works of the held-out set: {len(written['heldout'])} performances of "
        f"{', '.join(works['heldout'])}.", ""])


def prepare(root: Path, out: Path) -> dict[str, list[AsapPerformance]]:
    written = copy_split(root, read_metadata(root), out)
    atomic_write_bytes(out / "SOURCES.md", sources_markdown(root, written).encode("utf-8"))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--asap", type=Path, required=True, help="an ASAP checkout (holds metadata.csv)")
    parser.add_argument("--out", type=Path, default=Path("data/performances/asap"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        written = prepare(args.asap, args.out)
    except (AsapError, OSError) as error:
        return report_error(error)
    log.info("%s: %d train, %d val performances (%d of held-out works left out)", args.out,
             len(written["train"]), len(written["val"]), len(written["heldout"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
