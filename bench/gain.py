"""Sensitivity to the recording level: every model and the loudness regression on the same notes, with
the audio of every segment scaled by each gain.

    python -m bench.gain [--model NAME=CKPT ...] [--sets NAME=H5_FOLDER ...] [--gains-db -6 0 6]
                         [--protocol corrected] [--out gain.md] [--plot gain.png]

A model that hears the level (the loudness regression, DiffVel+ with `absolute_level`) moves its
estimates with the gain; one that min-max normalises every spectrogram crop (the paper's DiffVel,
DiffVel+ without it) can only read the velocity off the timbre, so it hardly moves. The gain scales the
float waveform the model reads (no clipping). Sampling and notes as in bench.accuracy (DDIM 10 by
default, the same per-segment seeds). Prints one Markdown row per (set, gain, method): MAE and the mean
signed error (estimate - truth) over the same notes.
"""

from bench.measure import emit_table  # isort: skip  (sets OMP_WAIT_POLICY before torch is imported)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.accuracy import REPO, SAMPLING, load_set, model_notes, prepare  # noqa: E402
from utils import tables  # noqa: E402
from utils.checks import report_error  # noqa: E402
from utils.demo import baseline_rows  # noqa: E402
from utils.evaluation.protocols import CORRECTED, PROTOCOLS  # noqa: E402
from utils.evaluation.report import mae_against_gain_plot  # noqa: E402

LOUDNESS = "baseline: loudness regression"


def scaled(excerpts: dict, gain_db: float) -> dict:
    """{excerpt: segments} with every waveform times 10^(gain_db / 20)."""
    factor = np.float32(10.0 ** (gain_db / 20.0))
    return {name: [dataclasses.replace(s, waveform=s.waveform * factor) for s in segments]
            for name, segments in excerpts.items()}


def row(label: str, gain_db: float, method: str, truth: np.ndarray, estimate: np.ndarray) -> dict:
    return {"set": label, "gain_db": gain_db, "method": method, "notes": int(truth.size),
            "MAE": float(np.abs(estimate - truth).mean()), "bias": float((estimate - truth).mean())}


def markdown_table(rows: list[dict]) -> str:
    return tables.markdown_table(
        ("set", "gain (dB)", "method", "notes", "MAE", "mean error"),
        ([r["set"], f"{r['gain_db']:+g}", r["method"], r["notes"], f"{r['MAE']:.2f}", f"{r['bias']:+.2f}"]
         for r in rows), "llrrrr")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=CKPT",
                        help="a model to score (repeatable); default: as bench.accuracy")
    parser.add_argument("--sets", nargs="+", default=["demo"], metavar="NAME[=H5_FOLDER]",
                        help="test sets: demo, heldout, or NAME=folder of .h5 excerpts")
    parser.add_argument("--gains-db", nargs="+", type=float, default=[-6.0, 0.0, 6.0])
    parser.add_argument("--baseline-root", type=Path, default=REPO / "demo_out" / "data",
                        help="MAESTRO-layout corpus whose train split fits the loudness regression")
    parser.add_argument("--protocol", choices=PROTOCOLS, default=CORRECTED)
    parser.add_argument("--sampling", choices=sorted(SAMPLING), default="fast")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="also write the Markdown table to this file")
    parser.add_argument("--plot", help="also draw MAE against gain per set and method (PNG)")
    return parser.parse_args(argv)


def set_rows(label, excerpts, gain_db, models, baselines, args, spec_args) -> list[dict]:
    """The rows of one set at one gain: every model, then the loudness regression on the same notes."""
    excerpts = scaled(excerpts, gain_db)
    rows, notes, truth = [], None, None
    for name, model in models.items():
        notes = model_notes(model, excerpts, args.protocol, SAMPLING[args.sampling])
        flat = [n for excerpt_notes in notes.values() for n in excerpt_notes]  # the same notes for every model
        truth = np.array([n["velocity"] for n in flat], float)
        rows.append(row(label, gain_db, name, truth, np.array([n["estimate"] for n in flat], float)))
        print(f"{label} {gain_db:+g} dB {name}: MAE {rows[-1]['MAE']:.2f}", flush=True)
    _, loudness = baseline_rows(baselines, excerpts, list(notes.items()), args.protocol, spec_args)
    return rows + [row(label, gain_db, LOUDNESS, truth, np.asarray(loudness, float))]


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    try:
        loaded, sets, spec_args, baselines, _ = prepare(args)
    except (FileNotFoundError, ValueError) as error:
        return report_error(error)
    rows = []
    for label, folder in sets.items():
        excerpts = load_set(folder, args.protocol)
        for gain_db in args.gains_db:
            rows += set_rows(label, excerpts, gain_db, loaded, baselines, args, spec_args)
    emit_table(markdown_table(rows), args.out)
    if args.plot:
        mae_against_gain_plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
