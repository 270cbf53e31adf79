"""Command line: write the synthetic corpus. `python -m utils.synth --help`."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from utils.checks import report_error
from utils.synth.corpus import OUTPUT_FORMATS, TINY, CorpusConfig, write_corpus
from utils.synth.render import RENDERERS, RendererUnavailable

# command-line option -> CorpusConfig field
OPTIONS = {"n_train": int, "n_val": int, "n_test": int, "n_smd": int, "seconds": float, "smd_seconds": float,
           "seed": int, "gain_db": float, "eq_db": float, "room": float, "free_velocity": float,
           "performance_fraction": float}


def main(argv: list[str] | None = None) -> int:
    defaults = CorpusConfig()
    parser = argparse.ArgumentParser(prog="python -m utils.synth",
                                     description="Write a synthetic piano corpus in MAESTRO v2.0.0 + SMD .h5 form.")
    parser.add_argument("--out", default="data/synth", help="output folder (default: data/synth)")
    parser.add_argument("--tiny", action="store_true",
                        help=f"CI size: {TINY.n_train}/{TINY.n_val}/{TINY.n_test} pieces of {TINY.seconds:g} s, "
                             f"{TINY.n_smd} SMD excerpts of {TINY.smd_seconds:g} s (explicit options still win)")
    for field, kind in OPTIONS.items():
        parser.add_argument("--" + field.replace("_", "-"), type=kind, default=None,
                            help=f"default {getattr(defaults, field)}")
    parser.add_argument("--renderer", choices=RENDERERS, default=defaults.renderer,
                        help="auto = FluidSynth when available, else the additive numpy renderer")
    parser.add_argument("--sample-rate", type=int, choices=sorted(OUTPUT_FORMATS), default=defaults.sample_rate,
                        help="44100 writes stereo (like MAESTRO), 16000 writes mono (the model's rate)")
    parser.add_argument("--soundfont", action="append", default=[], dest="soundfonts",
                        help="draw each piece's SoundFont from these (repeat the option): .sf2/.sf3 files render with "
                             "FluidSynth, .cfg files (e.g. /etc/timidity/freepats.cfg) with TiMidity++, a folder of "
                             "one-per-key recordings (python -m utils.synth.samples) with the sampler")
    parser.add_argument("--performances", action="append", default=[],
                        help="performance MIDI file or folder (repeatable): --performance-fraction of the pieces are "
                             "windows of these real performances instead of generated (utils/synth/performances.py)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    config = dataclasses.replace(TINY if args.tiny else defaults, renderer=args.renderer,
                                 sample_rate=args.sample_rate, soundfonts=tuple(args.soundfonts),
                                 performances=tuple(args.performances),
                                 **{f: getattr(args, f) for f in OPTIONS if getattr(args, f) is not None})
    try:
        summary = write_corpus(args.out, config)
    except (ValueError, FileNotFoundError, RendererUnavailable) as error:  # PerformanceError is a ValueError
        return report_error(error)
    splits = {split: sum(row["split"] == split for row in summary.rows) for split in ("train", "validation", "test")}
    hours = sum(row["duration"] for row in summary.rows) / 3600
    print(f"{summary.dataset_dir}: {splits} ({hours:.2f} h; {summary.rendered} rendered, "
          f"{summary.skipped} already present); {len(summary.smd_files)} SMD .h5 files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
