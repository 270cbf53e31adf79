"""The one-command demo (make demo): synthetic corpus -> train -> run_test -> post-processing -> summary.

    python -m utils.demo [--out demo_out] [--train-steps 1560] [--plus-train-steps 0] [--pretrained] [--tiny]
                         [--sampling paper|fast]

Every stage runs the project's own command line (printed before it runs) and skips work already
done, so an interrupted demo resumes. The summary compares the paper's DiffVel and DiffVel+, before
and after the paper's noise removal, with two baselines (training-set mean velocity; loudness regression) on the same
notes, under both evaluation protocols. Writes OUT/summary.csv, OUT/summary.md and plots in OUT/plots.
"""
from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from utils.atomic import atomic_write_bytes
from utils.evaluation.baselines import features_for_notes, fit_baselines
from utils.conventions import FRAMES_PER_SECOND, PAPER_TEST_FPS
from utils.evaluation.metrics import evaluate
from utils.evaluation.excerpts import load_segments
from utils.evaluation.pairs import latest_pair_files, load_pairs
from utils.evaluation.postprocess import postprocess_metrics
from utils.evaluation.protocols import CORRECTED, PAPER, excerpt_name, pair_dir as protocol_pair_dir
from utils.evaluation.report import format_table, summary_row, write_plots, write_summary_csv
from utils.synth.corpus import TINY, CorpusConfig, write_corpus
from utils import tables

log = logging.getLogger("demo")

REPO = Path(__file__).resolve().parent.parent
PRETRAINED_DIR = REPO / "pretrained"
LABEL_FPS = {PAPER: PAPER_TEST_FPS, CORRECTED: FRAMES_PER_SECOND}  # frame rate of each protocol's labels


def run_command(args: list[str]) -> None:
    """Run one of the project's scripts with this interpreter, echoing the command."""
    command = [sys.executable, *args]
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, cwd=REPO, check=True)


def quoted(path: Path) -> str:
    """A path as a Hydra override value: quoted, since the paper's run names contain '='."""
    return f"'{path.resolve()}'"


@dataclass(frozen=True)
class DemoModel:
    """One model of the demo: its label in the tables, folder tag, experiment config and pretrained file."""

    label: str
    tag: str  # sub-folder of runs/, inference/, pairs/, postprocessing/
    experiment: str  # the experiment config it trains with (and run_test.py composes)
    pretrained: Path  # the shipped checkpoint (pretrained/)


PAPER_MODEL = DemoModel("DiffVel (paper, cpu_small)", "diffvel", "cpu_small", PRETRAINED_DIR / "diffvel_cpu_small.ckpt")
PLUS_MODEL = DemoModel("DiffVel+", "diffvel_plus", "plus_cpu", PRETRAINED_DIR / "diffvel_plus.ckpt")


def train(out: Path, data: Path, model: DemoModel, steps: int, extra: list[str]) -> Path:
    """Train `model` for exactly `steps` seeded steps; returns last.ckpt (reused if a run exists)."""
    runs = out / "runs" / model.tag
    found = sorted(runs.glob("*/version_*/checkpoints/last.ckpt"))
    if found:
        print(f"using the trained model {found[-1]}")
        return found[-1]
    run_command([
        "train_spec_roll.py", f"experiment={model.experiment}", f"data_root={quoted(data)}", f"log_dir={quoted(runs)}",
        "epochs=100000", f"trainer.max_steps={steps}", "trainer.max_time=null", "save_every_n_steps=null",
        f"hydra.run.dir={quoted(out / 'hydra' / ('train_' + model.tag))}", *extra,
    ])
    return sorted(runs.glob("*/version_*/checkpoints/last.ckpt"))[-1]


def pair_folder(out: Path, model: DemoModel, protocol: str) -> Path:
    return protocol_pair_dir(out / "pairs" / model.tag, protocol)


def infer(out: Path, data: Path, model: DemoModel, checkpoint: Path, protocol: str, sampling: str) -> None:
    run_command([
        "run_test.py", f"experiment={model.experiment}", "gpus=0", f"comp_modelckpt={quoted(checkpoint)}",
        f"SMD_data_root={quoted(data / 'smd_h5')}",
        f"inference_result_path={quoted(out / 'inference' / model.tag / protocol)}",
        f"pair_pkl_dir={quoted(out / 'pairs' / model.tag)}", f"protocol={protocol}", f"sampling={sampling}",
        f"hydra.run.dir={quoted(out / 'hydra' / ('test_' + model.tag + '_' + protocol))}",
    ])
    run_command([
        "post_processing_gnoise.py", "--output_dir", str(out / "postprocessing" / model.tag / protocol),
        "--pair_pkl_dir", str(pair_folder(out, model, protocol)), "--protocol", protocol,
    ])


def model_rows(out: Path, model: DemoModel, protocol: str) -> tuple[list[dict], list[tuple[str, list]]]:
    """(summary rows of the model raw and after noise removal, (excerpt, raw notes) per pair file)."""
    raw, post, notes_by_pair = [], [], []
    for pair_file in latest_pair_files(pair_folder(out, model, protocol)):
        outputs, targets = load_pairs(pair_file)
        notes = evaluate(outputs, targets, protocol)["notes"]
        raw.extend(notes)
        post.extend(postprocess_metrics(outputs, targets, 3.0, protocol)["notes"])
        notes_by_pair.append((excerpt_name(pair_file), notes))
    write_plots(out / "plots", f"{protocol}_{model.tag}", [n["velocity"] for n in raw],
                [n["estimate"] for n in raw])
    rows = [
        summary_row(protocol, f"{model.label} (run_test, raw)", [n["velocity"] for n in raw],
                    [n["estimate"] for n in raw], [n["detected"] for n in raw]),
        summary_row(protocol, f"{model.label} + noise removal z=3", [n["velocity"] for n in post],
                    [n["estimate"] for n in post], [n["detected"] for n in post]),
    ]
    return rows, notes_by_pair


def baseline_rows(baselines, excerpts: dict, notes: list, protocol: str, spec_args: dict) -> tuple[list[dict], list]:
    """(mean and loudness-regression summary rows, loudness estimates) on the notes the models were scored on.

    `excerpts` {name: segments}; `notes` [(name, evaluated notes)] (from the ground truth: the same for every model).
    """
    features = [f for name, excerpt_notes in notes
                for f in features_for_notes(excerpts[name], excerpt_notes, spec_args, LABEL_FPS[protocol])]
    true = [n["velocity"] for _, excerpt_notes in notes for n in excerpt_notes]
    loudness = baselines.predict_loudness(features)
    everything = [True] * len(true)
    return [
        summary_row(protocol, "baseline: training mean", true, baselines.predict_mean(len(true)), everything),
        summary_row(protocol, "baseline: loudness regression", true, loudness, everything),
    ], loudness


def summarise(out: Path, data: Path, protocol: str, models: list[DemoModel], baselines, spec_args: dict) -> list[dict]:
    """Summary rows of one protocol: each model raw and post-processed, and both baselines, on the same notes."""
    rows, notes = [], []
    for model in models:
        model_summary, notes = model_rows(out, model, protocol)
        rows.extend(model_summary)
    excerpts = {name: load_segments(data / "smd_h5" / f"{name}.h5", 0, protocol, PAPER_TEST_FPS) for name, _ in notes}
    baseline_summary, loudness = baseline_rows(baselines, excerpts, notes, protocol, spec_args)
    write_plots(out / "plots", f"{protocol}_loudness_baseline",
                [n["velocity"] for _, excerpt_notes in notes for n in excerpt_notes], loudness)
    return rows + baseline_summary


def spectrogram_args() -> dict:
    """The model's spectrogram settings, from the composed training config (config/spec/mel.yaml)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(REPO / "config"), version_base="1.3"):
        return OmegaConf.to_container(compose("spec_roll").spec.args, resolve=True)


def markdown_table(rows: list[dict]) -> str:
    return tables.markdown_table(
        ("protocol", "method", "notes", "MAE", "STD", "recall"),
        ([r["protocol"], r["method"], r["notes"], f"{r['MAE']:.2f}", f"{r['STD']:.2f}", f"{r['recall']:.3f}"]
         for r in rows), "llrrrr") + "\n"


def checkpoint_for(args, out: Path, data: Path, model: DemoModel, steps: int) -> Path:
    """The shipped checkpoint with --pretrained (or steps=0), else a model trained here for `steps` steps."""
    if args.pretrained or steps == 0:
        if not model.pretrained.is_file():
            raise FileNotFoundError(f"{model.pretrained}: pretrained checkpoint missing")
        print(f"using the pretrained model {model.pretrained}")
        return model.pretrained
    return train(out, data, model, steps, args.train_override if model is PAPER_MODEL else [])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "demo_out", help="output folder (default demo_out)")
    parser.add_argument("--train-steps", type=int, default=1560,
                        help="training steps of the paper's model (default 1560, as the shipped one; fixed, so every machine gets the same model)")
    parser.add_argument("--plus-train-steps", type=int, default=0,
                        help="train DiffVel+ for this many steps on the demo corpus (default 0: use the shipped one)")
    parser.add_argument("--pretrained", action="store_true", help="train nothing: evaluate the shipped checkpoints")
    parser.add_argument("--tiny", action="store_true", help="tiny corpus (CI-sized; numbers are meaningless)")
    parser.add_argument("--sampling", choices=("paper", "fast"), default="paper",
                        help="paper: 200-step DDPM (default); fast: DDIM, few steps")
    parser.add_argument("--train-override", action="append", default=[],
                        help="extra Hydra override for training the paper's model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.time()

    data = args.out / "data"
    print("== 1/4 synthetic corpus", flush=True)
    write_corpus(data, TINY if args.tiny else CorpusConfig())
    print("== 2/4 models: the paper's DiffVel (cpu_small) and DiffVel+", flush=True)
    models = [PAPER_MODEL, PLUS_MODEL]
    checkpoints = {m: checkpoint_for(args, args.out, data, m, args.train_steps if m is PAPER_MODEL
                                     else args.plus_train_steps) for m in models}
    spec_args = spectrogram_args()
    print("== 3/4 inference and post-processing, both protocols", flush=True)
    for model in models:
        for protocol in (PAPER, CORRECTED):
            infer(args.out, data, model, checkpoints[model], protocol, args.sampling)
    print("== 4/4 summary", flush=True)
    baselines = fit_baselines(data, spec_args)
    rows = [row for protocol in (PAPER, CORRECTED)
            for row in summarise(args.out, data, protocol, models, baselines, spec_args)]
    write_summary_csv(args.out / "summary.csv", rows)
    atomic_write_bytes(args.out / "summary.md", markdown_table(rows).encode())
    print(format_table(rows))
    print(f"demo finished in {(time.time() - started) / 60:.1f} min; outputs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
