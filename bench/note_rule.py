"""Which note rule turns the model's output over a note into the best velocity (utils/estimate/rules.py).

    python -m bench.note_rule --ckpt CKPT --h5-root demo_out/data/smd_h5 [--loudness-fit FIT [--blend W
        [--blend-level own|regression]]] [--out rules.md]

Runs estimate_velocity.py's own path (utils.estimate: overlapping segments, each note judged where
its onset is farthest from the segment edges, score rolls as in training, config/estimate.yaml's
sampler and seed) on every SMD-style .h5 excerpt under --h5-root, keeps the model output over every
note once, and applies each rule of RULES to it. Prints one Markdown row per rule: notes, MAE and
STD of |estimate - true velocity| in MIDI units, and the MAE minus the best rule's. --loudness-fit adds
the row of method=loudness, --blend W the row of method=blend (the configured rule, weight W; with
--blend-level regression each excerpt at the regression's mean: method=unheard with W = 0.8).
"""

from bench.measure import compose_config, emit_table, load_1min  # isort: skip  (sets OMP_WAIT_POLICY before torch)

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from utils import tables  # noqa: E402
from utils.checks import report_error  # noqa: E402
from utils.conventions import MAX_MIDI, MIN_MIDI, SAMPLE_RATE  # noqa: E402
from utils.data.corrected_labels import parse_notes, parse_pedals  # noqa: E402
from utils.data.smd import INT16_SCALE, SMDFileError, list_excerpts, read_excerpt  # noqa: E402
from utils.estimate.blend import LEVELS, OWN_LEVEL, REGRESSION_LEVEL, blend_velocities  # noqa: E402
from utils.estimate.errors import EstimateError  # noqa: E402
from utils.estimate.loudness import load_fit  # noqa: E402
from utils.estimate.model_io import load_model, pick_device  # noqa: E402
from utils.estimate.pipeline import note_outputs  # noqa: E402
from utils.estimate.rules import RULES, apply_rule, resolve_rule, to_midi_velocity  # noqa: E402
from utils.estimate.segments import ScoreNotes, sounding_ends  # noqa: E402


def excerpt_notes(path: Path) -> tuple[np.ndarray, ScoreNotes, np.ndarray]:
    """waveform (samples,) float32, the notes on the 88 keys that start in the audio, their true velocities (N,)."""
    excerpt = read_excerpt(path)
    waveform = excerpt.waveform.astype(np.float32) / INT16_SCALE
    table = parse_notes(excerpt.midi_events, excerpt.midi_event_times, extend_pedal=False)  # (N, 4) on, off, pitch, vel
    keep = (table[:, 2] >= MIN_MIDI) & (table[:, 2] <= MAX_MIDI) & (table[:, 0] < len(waveform) / SAMPLE_RATE)
    table = table[keep]
    pedals = parse_pedals(excerpt.midi_events, excerpt.midi_event_times)
    ends = sounding_ends(table[:, 0], table[:, 1], table[:, 2].astype(np.int64), pedals)
    return waveform, ScoreNotes(table[:, 0], ends, table[:, 2].astype(np.int64) - MIN_MIDI), table[:, 3]


def rule_rows(outputs: list[np.ndarray], truth: np.ndarray) -> list[dict]:
    """One row per rule: notes, MAE, STD of |velocity - truth|."""
    return [error_row(rule, np.array([to_midi_velocity(apply_rule(rule, values)) for values in outputs],
                                     dtype=np.float64), truth) for rule in RULES]


def error_row(label: str, estimate: np.ndarray, truth: np.ndarray) -> dict:
    """notes, MAE and STD of |estimate - truth| under `label`."""
    errors = np.abs(estimate - truth)
    return {"rule": label, "notes": len(errors), "MAE": float(errors.mean()), "STD": float(errors.std())}


def loudness_velocities(fit, excerpts: dict) -> np.ndarray:
    """method=loudness's velocity of every note of `excerpts`, in their order."""
    return np.concatenate([fit.velocities(waveform, notes.onset) for waveform, notes, _ in excerpts.values()])


def blend_row(outputs: list[np.ndarray], loudness: np.ndarray, truth: np.ndarray, weight: float, rule: str,
              level: str = OWN_LEVEL, sizes=None) -> dict:
    """The row of method=blend on the same notes: the network under `rule`, blended with `loudness`, each
    excerpt (`sizes`: its number of notes; default one excerpt) at its own or the regression's level."""
    network = np.array([to_midi_velocity(apply_rule(rule, values)) for values in outputs], dtype=np.int64)
    bounds = np.cumsum([0, *(sizes if sizes is not None else [len(truth)])])
    blended = np.concatenate([blend_velocities(network[a:b], loudness[a:b], weight, level)
                              for a, b in zip(bounds[:-1], bounds[1:])])
    title = f"method=blend (w = {weight:g}, {rule}{', regression level' if level == REGRESSION_LEVEL else ''})"
    return error_row(title, blended, truth)


def markdown_table(rows: list[dict]) -> str:
    best = min(r["MAE"] for r in rows)
    return tables.markdown_table(
        ("note rule", "notes", "MAE", "STD", "MAE - best"),
        ([r["rule"], r["notes"], f"{r['MAE']:.2f}", f"{r['STD']:.2f}", f"{r['MAE'] - best:+.2f}"]
         for r in sorted(rows, key=lambda r: r["MAE"])), "lrrrr")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", type=Path, required=True, help="DiffVel+ (or paper) checkpoint")
    parser.add_argument("--h5-root", type=Path, required=True, help="folder of SMD-style .h5 excerpts")
    parser.add_argument("--override", nargs="*", default=[], help="config/estimate.yaml overrides, e.g. seed=1")
    parser.add_argument("--loudness-fit", type=Path, help="also score estimate_velocity.py method=loudness with "
                                                         "this fit (e.g. pretrained/loudness_regression.json)")
    parser.add_argument("--blend", type=float, metavar="W", help="also score method=blend with this weight "
                                                                 "(needs --loudness-fit)")
    parser.add_argument("--blend-level", choices=LEVELS, default=OWN_LEVEL,
                        help="regression: each excerpt's blend at the regression's mean (method=unheard's level)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    args = parser.parse_args(argv)
    if args.blend is not None and (args.loudness_fit is None or not 0.0 <= args.blend <= 1.0):
        parser.error(f"--blend {args.blend:g}: needs --loudness-fit and a weight in [0, 1]")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = compose_config("estimate", ["progress=false", *args.override])
    try:
        device = pick_device(str(cfg.device))
        model = load_model(args.ckpt, device)
        files = list_excerpts(args.h5_root)
        excerpts = {p.stem: excerpt_notes(p) for p in files}
        loudness = load_fit(args.loudness_fit) if args.loudness_fit else None
    except (EstimateError, SMDFileError, FileNotFoundError) as error:
        return report_error(error)
    print(f"{args.ckpt}: {len(files)} excerpts on {device}, sampler {dict(cfg.task.sampling)}, load {load_1min():.2f}",
          flush=True)
    outputs, truth, began = [], [], time.perf_counter()
    for name, (waveform, notes, velocities) in excerpts.items():
        outputs += note_outputs(model, waveform, notes, np.arange(len(velocities)), cfg, name)
        truth.append(velocities)
        print(f"{name}: {len(velocities)} notes ({time.perf_counter() - began:.0f} s)", flush=True)
    truth = np.concatenate(truth)
    rows = rule_rows(outputs, truth)
    if loudness is not None:
        by_fit = loudness_velocities(loudness, excerpts)
        rows.append(error_row("method=loudness", by_fit, truth))
    if args.blend is not None:
        sizes = [len(velocities) for _, _, velocities in excerpts.values()]
        rows.append(blend_row(outputs, by_fit, truth, args.blend, resolve_rule(cfg.note_rule), args.blend_level, sizes))
    emit_table(markdown_table(rows), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
