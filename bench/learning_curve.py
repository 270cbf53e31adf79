"""Velocity error against training steps: every checkpoint of a run on the same notes, with both baselines.

    python -m bench.learning_curve CKPT [CKPT ...] [--sets demo heldout=FOLDER] [--protocol paper]
                                   [--out curve.md] [--plot curve.png]

Each checkpoint is scored as bench.accuracy scores a model (DDIM 10 by default, the same per-segment
seeds, the notes of the ground truth); its step is the checkpoint's own `global_step` (a Lightning
checkpoint; an exported one has none and is refused). Prints one Markdown row per (step, set) and,
with --plot, draws MAE against steps per set with the training-mean and loudness-regression
baselines of that set as dashed lines.
"""

from bench.measure import emit_table  # isort: skip  (sets OMP_WAIT_POLICY before torch is imported)

import argparse  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from bench.accuracy import DEFAULT_SETS, SAMPLING, load_set, model_notes, notes_summary, resolve_sets  # noqa: E402
from model.diffvel import load_diffvel  # noqa: E402
from utils import tables  # noqa: E402
from utils.checks import report_error  # noqa: E402
from utils.demo import baseline_rows, spectrogram_args  # noqa: E402
from utils.evaluation.baselines import fit_baselines  # noqa: E402
from utils.evaluation.protocols import PROTOCOLS  # noqa: E402
from utils.evaluation.report import mae_against_steps_plot  # noqa: E402
from utils.training.checkpoint import load_checkpoint  # noqa: E402


def checkpoint_step(path: Path) -> int:
    """The training step a Lightning checkpoint was written at; ValueError (one line) if it has none."""
    step = load_checkpoint(path).get("global_step")
    if not isinstance(step, int):
        raise ValueError(f"{path}: no global_step (an exported checkpoint?); give the run's Lightning checkpoints")
    return step


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="Lightning checkpoints of one run")
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), metavar="NAME[=H5_FOLDER]",
                        help="test sets: demo, heldout, or NAME=folder of .h5 excerpts")
    parser.add_argument("--baseline-root", type=Path, default=DEFAULT_SETS["demo"].parent,
                        help="MAESTRO-layout corpus whose train split fits the baselines")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="paper")
    parser.add_argument("--sampling", choices=sorted(SAMPLING), default="fast")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    parser.add_argument("--plot", type=Path, help="write MAE against steps as a PNG here")
    return parser.parse_args(argv)


def curve_rows(steps: dict, sets: dict, protocol: str, sampling: dict, baselines, spec_args: dict) -> list[dict]:
    """[{step, set, method, MAE, notes}] for every checkpoint ({step: path}) and both baselines per set."""
    excerpts = {label: load_set(folder, protocol) for label, folder in sets.items()}
    rows, notes = [], {}
    for step, path in sorted(steps.items()):
        model = load_diffvel(path, frame_threshold=0.5).eval()
        for label in sets:
            notes[label] = model_notes(model, excerpts[label], protocol, sampling)
            row = notes_summary(protocol, "model", notes[label])
            rows.append({"step": step, "set": label, "method": "model", "MAE": row["MAE"], "notes": row["notes"]})
            print(f"{label} step {step}: MAE {row['MAE']:.2f}", flush=True)
    for label in sets:  # the notes come from the ground truth: the same for every checkpoint
        for row in baseline_rows(baselines, excerpts[label], list(notes[label].items()), protocol, spec_args)[0]:
            rows.append({"step": None, "set": label, "method": row["method"], "MAE": row["MAE"], "notes": row["notes"]})
    return [row for label in sets for row in rows if row["set"] == label]  # per set: steps, then its baselines


def markdown_table(rows: list[dict]) -> str:
    return tables.markdown_table(("set", "method", "step", "notes", "MAE"),
                                 ([r["set"], r["method"], "" if r["step"] is None else r["step"], r["notes"],
                                   f"{r['MAE']:.2f}"] for r in rows), "llrrr")


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    try:
        sets = resolve_sets(args.sets)
        steps = {checkpoint_step(path): path for path in args.checkpoints}
        spec_args = spectrogram_args()
        baselines = fit_baselines(args.baseline_root, spec_args)
    except (FileNotFoundError, ValueError) as error:
        return report_error(error)
    rows = curve_rows(steps, sets, args.protocol, SAMPLING[args.sampling], baselines, spec_args)
    emit_table(markdown_table(rows), args.out)
    if args.plot:
        mae_against_steps_plot(rows, args.plot, f"Velocity MAE against training steps ({args.protocol} protocol)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
