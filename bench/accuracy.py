"""Note-velocity accuracy of every model and baseline on the same notes: the demo's synthetic test set
and the held-out real-performance set.

    python -m bench.accuracy [--model NAME=CKPT ...] [--sets demo heldout] [--bias] [--versus-regression
        [--bootstrap-unit excerpt|piece] [--plot PNG]] [--blend W ...] [--blend-level own|regression] [--out FILE]

Models default to the two shipped DiffVel+ networks (pretrained/diffvel_plus.ckpt and
diffvel_plus_unheard.ckpt) and, when present, the demo's paper model. A shipped network (by default or
given with --model) also gets the row of its estimate_velocity method: method=blend (the shipped DiffVel+
and the regression, w = 0.55) and method=unheard (the unheard network and the regression at the
regression's level, w = 0.80; utils/estimate/blend.py PRESETS).
Every model samples every segment as run_test.py does (utils.evaluation.excerpts, same per-segment seeds) with
the sampler of --sampling (fast: DDIM 10 steps; paper: 200-step DDPM). Baselines (training mean and
loudness regression, utils/evaluation/baselines.py) are fitted on the train split of --baseline-root (the demo
corpus) and scored on exactly the evaluated notes. Prints one Markdown row per (set, protocol, method).
--bias adds three diagnostic columns (utils.evaluation.report.bias_split): the mean signed error, the MAE
left once each excerpt's mean error is removed (what an offset per recording, such as an unfamiliar piano's
level or brightness, does not explain), and the correlation of estimates and truth over all notes (n/a for
a constant guess such as the training mean). --blend W adds, per model, the per-note blend W x the model's
estimate + (1 - W) x the loudness regression's; --blend-level regression then shifts each excerpt's blend to the
regression's mean (the model sets how notes differ, the regression how loud the recording is).
--versus-regression adds each row's MAE minus the loudness regression's on the same notes, with the 95 %
interval of a paired bootstrap that resamples whole excerpts (utils/evaluation/paired.py), and the number
of excerpts on which the row's MAE is lower; --bootstrap-unit piece resamples the excerpts of one performance
(bench.heldout's <piece>_<NN>) together, and --plot PNG draws those intervals.
"""

from bench.measure import emit_table  # isort: skip  (sets OMP_WAIT_POLICY before torch is imported)

import argparse  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.heldout_names import piece_of  # noqa: E402
from model.diffvel import load_diffvel  # noqa: E402
from utils import tables  # noqa: E402
from utils.checks import report_error  # noqa: E402
from utils.conventions import PAPER_TEST_FPS  # noqa: E402
from utils.data.smd import list_excerpts  # noqa: E402
from utils.demo import PAPER_MODEL, baseline_rows, spectrogram_args  # noqa: E402
from utils.estimate.blend import LEVELS, OWN_LEVEL, PRESETS, REGRESSION_LEVEL, at_level  # noqa: E402
from utils.estimate.model_io import PRETRAINED as SHIPPED_DIR  # noqa: E402
from utils.evaluation.baselines import fit_baselines  # noqa: E402
from utils.evaluation.excerpts import estimate_segments, load_segments, pair_dicts  # noqa: E402
from utils.evaluation.metrics import evaluate  # noqa: E402
from utils.evaluation.paired import paired_excerpt_bootstrap  # noqa: E402
from utils.evaluation.protocols import PROTOCOLS  # noqa: E402
from utils.evaluation.report import bias_split, summary_row, versus_plot  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLING = {"fast": {"type": "ddim_x0", "steps": 10}, "paper": {"type": "cfdg_ddpm_x0", "steps": None}}
DEFAULT_SETS = {"demo": REPO / "demo_out" / "data" / "smd_h5", "heldout": REPO / "data" / "heldout" / "smd_h5"}
PRETRAINED = SHIPPED_DIR / PRESETS["blend"].checkpoint
PRETRAINED_UNHEARD = SHIPPED_DIR / PRESETS["unheard"].checkpoint
VERSUS_HEADER = "MAE - regression's [95% CI, paired bootstrap], excerpts better"
LEVEL_TITLES = {OWN_LEVEL: "", REGRESSION_LEVEL: ", regression's level"}
DEMO_PAPER_MODELS = f"demo_out/runs/{PAPER_MODEL.tag}/*/version_*/checkpoints/last.ckpt"


def default_models() -> dict:
    shipped = {"DiffVel+ (pretrained)": PRETRAINED, "DiffVel+ unheard (pretrained)": PRETRAINED_UNHEARD}
    models = {name: path for name, path in shipped.items() if path.is_file()}
    found = sorted(REPO.glob(DEMO_PAPER_MODELS))
    if found:
        models["DiffVel (demo, cpu_small)"] = found[-1]
    return models


def model_notes(model, excerpts: dict, protocol: str, sampling: dict) -> dict:
    """{excerpt: evaluated notes} of one model (the notes come from the ground truth, so every model
    and baseline is scored on the same ones)."""
    notes = {}
    for name, segments in excerpts.items():
        outputs = estimate_segments(model, segments, name, 0.0, progress=False, **sampling)
        notes[name] = evaluate(*pair_dicts(segments, outputs, protocol), protocol)["notes"]
    return notes


def markdown_table(rows: list[dict]) -> str:
    """The accuracy table; with the --bias and --versus-regression columns when the rows carry them."""
    bias, versus = (bool(rows) and key in rows[0] for key in ("bias", "versus"))
    header = ("set", "protocol", "method", "notes", "MAE", "STD", "recall") + (
        ("mean error", "MAE, excerpt bias removed", "correlation") if bias else ()) + (
        (VERSUS_HEADER,) if versus else ())
    return tables.markdown_table(header, (
        [r["set"], r["protocol"], r["method"], r["notes"], f"{r['MAE']:.2f}", f"{r['STD']:.2f}", f"{r['recall']:.3f}"]
        + ([f"{r['bias']:+.2f}", f"{r['centred_MAE']:.2f}", _correlation_cell(r["correlation"])] if bias else [])
        + ([_versus_cell(r["versus"])] if versus else [])
        for r in rows), "lllrrrr" + "rrr" * bias + "r" * versus)


def _versus_cell(result: dict) -> str:
    pieces = f" ({result['groups']} pieces)" if result["groups"] != result["excerpts"] else ""
    return (f"{result['difference']:+.2f} [{result['low']:+.2f}, {result['high']:+.2f}] "
            f"{result['better']}/{result['excerpts']}{pieces}")


def _correlation_cell(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.2f}"


def excerpt_split(notes: dict, estimates=None) -> tuple[list, list]:
    """(truth, estimates) per excerpt of {excerpt: evaluated notes}, with the notes' own estimates or the
    flat `estimates` (one per note, in the notes' order: a baseline's)."""
    truth = [np.array([n["velocity"] for n in excerpt], dtype=float) for excerpt in notes.values()]
    if estimates is None:
        return truth, [np.array([n["estimate"] for n in excerpt], dtype=float) for excerpt in notes.values()]
    bounds = np.cumsum([0] + [len(t) for t in truth])
    return truth, [np.asarray(estimates, dtype=float)[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def excerpt_bias(notes: dict, estimates=None) -> dict:
    """bias_split of {excerpt: evaluated notes} (estimates as in excerpt_split)."""
    return bias_split(*excerpt_split(notes, estimates))


def diagnostics(args, notes: dict, estimates=None) -> dict:
    """A row's --bias columns and, with --versus-regression, its per-excerpt absolute errors."""
    extra = excerpt_bias(notes, estimates) if args.bias else {}
    if args.versus_regression:
        truth, guesses = excerpt_split(notes, estimates)
        extra["errors"] = [np.abs(g - t) for t, g in zip(truth, guesses)]
    return extra


def add_versus(rows: list[dict], reference_errors: list, groups=None) -> None:
    """Each row's paired bootstrap against `reference_errors` (the loudness regression's, per excerpt),
    resampling excerpts or, with `groups` (a label per excerpt), whole groups."""
    for row in rows:
        row["versus"] = paired_excerpt_bootstrap(row.pop("errors"), reference_errors, groups)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=CKPT",
                        help="a model to score (repeatable); default: pretrained DiffVel+ and the demo's model")
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), metavar="NAME[=H5_FOLDER]",
                        help="test sets: demo, heldout, or NAME=folder of .h5 excerpts")
    parser.add_argument("--baseline-root", type=Path, default=REPO / "demo_out" / "data",
                        help="MAESTRO-layout corpus whose train split fits the baselines")
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS))
    parser.add_argument("--sampling", choices=sorted(SAMPLING), default="fast")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    parser.add_argument("--blend", type=float, nargs="+", default=[], metavar="W",
                        help="also score each model blended with the loudness regression: per note, W x the "
                             "model's estimate + (1 - W) x the regression's (W in [0, 1]; docs/experiments.md, run B)")
    parser.add_argument("--blend-level", choices=LEVELS, default=OWN_LEVEL,
                        help="regression: shift each excerpt's blend so that its mean is the regression's "
                             "(the model's shape at the regression's level; docs/experiments.md, run ZB)")
    parser.add_argument("--versus-regression", action="store_true",
                        help="add each row's MAE minus the loudness regression's on the same notes, with a 95%% "
                             "interval from a paired bootstrap over excerpts, and the excerpts where it is lower")
    parser.add_argument("--plot", type=Path, metavar="PNG",
                        help="with --versus-regression: each row's difference and interval as a PNG")
    parser.add_argument("--bootstrap-unit", choices=("excerpt", "piece"), default="excerpt",
                        help="--versus-regression resamples excerpts, or whole pieces (bench.heldout's <piece>_<NN> "
                             "excerpts of one performance together)")
    parser.add_argument("--bias", action="store_true",
                        help="add the mean signed error, the MAE left once each excerpt's mean error is "
                             "removed, and the correlation of estimates and truth")
    args = parser.parse_args(argv)
    if args.plot and not args.versus_regression:
        parser.error("--plot draws the --versus-regression intervals: give --versus-regression too")
    if any(not 0.0 <= w <= 1.0 for w in args.blend):
        parser.error(f"--blend {' '.join(f'{w:g}' for w in args.blend)}: every weight must be in [0, 1]")
    return args


def resolve(args):
    """(models {name: path}, sets {name: folder}); raises FileNotFoundError/ValueError with one line."""
    models = dict(item.split("=", 1) for item in args.model) if args.model else default_models()
    if not models:
        raise FileNotFoundError(f"no model: {PRETRAINED} is missing and no --model given")
    for path in map(Path, models.values()):
        if not path.exists():
            raise FileNotFoundError(f"{path}: not found")
    return {name: Path(path) for name, path in models.items()}, resolve_sets(args.sets)


def resolve_sets(items: list[str]) -> dict:
    """{name: folder} of --sets items (demo, heldout, or NAME=folder); ValueError/FileNotFoundError in one line."""
    sets = {}
    for item in items:
        name, _, folder = item.partition("=")
        if not folder and name not in DEFAULT_SETS:
            raise ValueError(f"--sets {item}: unknown set (give NAME=folder)")
        sets[name] = Path(folder) if folder else DEFAULT_SETS[name]
        if not sets[name].is_dir():
            raise FileNotFoundError(f"{sets[name]}: not found")
    return sets


def load_set(folder: Path, protocol: str) -> dict:
    """{excerpt: segments} of every .h5 excerpt in `folder`, as run_test.py reads them (no shift)."""
    return {p.stem: load_segments(p, 0.0, protocol, PAPER_TEST_FPS) for p in list_excerpts(folder)}


def notes_summary(protocol: str, method: str, notes: dict) -> dict:
    """The summary row (utils.evaluation.report.summary_row) of one model's {excerpt: evaluated notes}."""
    flat = [n for excerpt in notes.values() for n in excerpt]
    return summary_row(protocol, method, [n["velocity"] for n in flat], [n["estimate"] for n in flat],
                       [n["detected"] for n in flat])


def shipped_methods(models: dict) -> dict:
    """{model name: estimate_velocity method} of the models that are a blend method's shipped checkpoint."""
    shipped = {(SHIPPED_DIR / preset.checkpoint).resolve(): method for method, preset in PRESETS.items()}
    return {name: shipped[path.resolve()] for name, path in models.items() if path.resolve() in shipped}


def prepare(args):
    """(loaded models {name: model}, sets {name: folder}, spectrogram args, fitted baselines, the models'
    estimate_velocity methods (shipped_methods)) for --model/--sets/--baseline-root; FileNotFoundError/
    ValueError with one line."""
    models, sets = resolve(args)
    spec_args = spectrogram_args()
    baselines = fit_baselines(args.baseline_root, spec_args)
    loaded = {name: load_diffvel(path, frame_threshold=0.5).eval() for name, path in models.items()}
    return loaded, sets, spec_args, baselines, shipped_methods(models)


def blend_estimates(notes: dict, loudness, weight: float, level: str = OWN_LEVEL) -> np.ndarray:
    """Per note, weight x the model's estimate + (1 - weight) x the loudness regression's (flat, in the notes'
    order); with level=regression each excerpt's blend is then shifted to the regression's mean (at_level)."""
    model = np.array([n["estimate"] for excerpt in notes.values() for n in excerpt], dtype=float)
    blended = weight * model + (1.0 - weight) * np.asarray(loudness, dtype=float)
    if level == OWN_LEVEL:
        return blended
    parts = zip(excerpt_split(notes, blended)[1], excerpt_split(notes, loudness)[1])
    return np.concatenate([at_level(part, reference) for part, reference in parts])


def set_rows(args, loaded: dict, baselines, spec_args: dict, label: str, folder: Path, protocol: str,
             methods: dict) -> list[dict]:
    """The rows of one set and protocol: every model, the baselines, each model's --blend rows, then the
    estimate_velocity method of each shipped model (`methods`: method=blend, method=unheard, their presets)."""
    excerpts = load_set(folder, protocol)
    rows, scored = [], {}
    for name, model in loaded.items():
        start = time.perf_counter()
        scored[name] = model_notes(model, excerpts, protocol, SAMPLING[args.sampling])
        rows.append({**notes_summary(protocol, name, scored[name]), "set": label, **diagnostics(args, scored[name])})
        print(f"{label} {protocol} {name}: MAE {rows[-1]['MAE']:.2f} ({time.perf_counter() - start:.0f} s)", flush=True)
    notes = scored[next(iter(scored))]  # from the ground truth: the same notes for every model
    summary, loudness = baseline_rows(baselines, excerpts, list(notes.items()), protocol, spec_args)
    guesses = (baselines.predict_mean(summary[0]["notes"]), loudness)  # the rows' order
    rows += [{**row, "set": label, **diagnostics(args, notes, guess)} for row, guess in zip(summary, guesses)]
    regression_errors = rows[-1].get("errors")
    blends = [(name, weight, args.blend_level, "") for weight in args.blend for name in scored]
    blends += [(name, PRESETS[method].weight, PRESETS[method].level, f"method={method}: ")
               for name, method in methods.items()]
    for name, weight, level, prefix in blends:
        blended = blend_estimates(scored[name], loudness, weight, level)
        truth = [n["velocity"] for excerpt in scored[name].values() for n in excerpt]
        title = f"{prefix}{name} + loudness regression (w = {weight:g}{LEVEL_TITLES[level]})"
        rows.append({**summary_row(protocol, title, truth, blended, [True] * len(truth)),
                     "set": label, **diagnostics(args, scored[name], blended)})
    if args.versus_regression:
        groups = [piece_of(name) for name in notes] if args.bootstrap_unit == "piece" else None
        add_versus(rows, regression_errors, groups)
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    try:
        loaded, sets, spec_args, baselines, methods = prepare(args)
    except (FileNotFoundError, ValueError) as error:
        return report_error(error)
    rows = []
    for label, folder in sets.items():
        for protocol in args.protocols:
            rows += set_rows(args, loaded, baselines, spec_args, label, folder, protocol, methods)
    emit_table(markdown_table(rows), args.out)
    if args.plot:
        versus_plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
