"""The one-command demo (make demo): synthetic corpus -> train -> run_test -> post-processing -> summary.

    python -m utils.demo [--out demo_out] [--train-minutes 14] [--tiny] [--sampling paper|fast]

Every stage runs the project's own command line (printed before it runs) and skips work already
done, so an interrupted demo resumes. The summary compares DiffVel, before and after the paper's
noise removal, with two baselines (training-set mean velocity; loudness regression) on the same
notes, under both evaluation protocols. Writes OUT/summary.csv, OUT/summary.md and plots in OUT/plots.
"""
from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path

from utils.atomic import atomic_write_bytes
from utils.evaluation.baselines import features_for_notes, fit_baselines
from utils.conventions import FRAMES_PER_SECOND, PAPER_TEST_FPS
from utils.evaluation.metrics import evaluate
from utils.evaluation.excerpts import load_segments
from utils.evaluation.pairs import list_pair_files, load_pairs
from utils.evaluation.postprocess import postprocess_metrics
from utils.evaluation.protocols import CORRECTED, PAPER, excerpt_name, pair_dir as protocol_pair_dir
from utils.evaluation.report import format_table, summary_row, write_plots, write_summary_csv
from utils.synth.corpus import TINY, CorpusConfig, write_corpus
from utils import tables

log = logging.getLogger("demo")

REPO = Path(__file__).resolve().parent.parent
LABEL_FPS = {PAPER: PAPER_TEST_FPS, CORRECTED: FRAMES_PER_SECOND}  # frame rate of each protocol's labels


def run_command(args: list[str]) -> None:
    """Run one of the project's scripts with this interpreter, echoing the command."""
    command = [sys.executable, *args]
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, cwd=REPO, check=True)


def quoted(path: Path) -> str:
    """A path as a Hydra override value: quoted, since the paper's run names contain '='."""
    return f"'{path.resolve()}'"


def train(out: Path, data: Path, minutes: float, steps: int | None, extra: list[str]) -> Path:
    """Train the small CPU model for a bounded time (or `steps` steps); returns last.ckpt (reused if present)."""
    found = sorted((out / "runs").glob("*/version_*/checkpoints/last.ckpt"))
    if found:
        print(f"using the trained model {found[-1]}")
        return found[-1]
    seconds = int(round(minutes * 60))
    budget = [f"trainer.max_steps={steps}"] if steps else [
        f"trainer.max_time=00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"]
    run_command([
        "train_spec_roll.py", "experiment=cpu_small", f"data_root={quoted(data)}", f"log_dir={quoted(out / 'runs')}",
        "epochs=100000", *budget, f"hydra.run.dir={quoted(out / 'hydra' / 'train')}", *extra,
    ])
    return sorted((out / "runs").glob("*/version_*/checkpoints/last.ckpt"))[-1]


def infer(out: Path, data: Path, checkpoint: Path, protocol: str, sampling: str) -> None:
    run_command([
        "run_test.py", "experiment=cpu_small", "gpus=0", f"comp_modelckpt={quoted(checkpoint)}",
        f"SMD_data_root={quoted(data / 'smd_h5')}", f"inference_result_path={quoted(out / 'inference' / protocol)}",
        f"pair_pkl_dir={quoted(out / 'pairs')}", f"protocol={protocol}", f"sampling={sampling}",
        f"hydra.run.dir={quoted(out / 'hydra' / ('test_' + protocol))}",
    ])
    pair_dir = protocol_pair_dir(out / "pairs", protocol)
    run_command([
        "post_processing_gnoise.py", "--output_dir", str(out / "postprocessing" / protocol),
        "--npy_pair_dir", str(pair_dir), "--protocol", protocol,
    ])


def summarise(out: Path, data: Path, protocol: str, baselines, spec_args: dict) -> list[dict]:
    """Summary rows of one protocol: DiffVel raw and post-processed, and both baselines, on the same notes."""
    pair_dir = protocol_pair_dir(out / "pairs", protocol)
    raw, post, features = [], [], []
    for pair_file in list_pair_files(pair_dir):
        outputs, targets = load_pairs(pair_file)
        notes = evaluate(outputs, targets, protocol)["notes"]
        raw.extend(notes)
        post.extend(postprocess_metrics(outputs, targets, 3.0, protocol)["notes"])
        segments = load_segments(data / "smd_h5" / f"{excerpt_name(pair_file)}.h5", 0, protocol, PAPER_TEST_FPS)
        features.extend(features_for_notes(segments, notes, spec_args, LABEL_FPS[protocol]))
    true = [n["velocity"] for n in raw]
    write_plots(out / "plots", f"{protocol}_diffvel_postprocessed", [n["velocity"] for n in post],
                [n["estimate"] for n in post])
    loudness = baselines.predict_loudness(features)
    write_plots(out / "plots", f"{protocol}_loudness_baseline", true, loudness)
    everything = [True] * len(true)
    return [
        summary_row(protocol, "DiffVel (run_test, raw)", true, [n["estimate"] for n in raw], [n["detected"] for n in raw]),
        summary_row(protocol, "DiffVel + noise removal z=3", [n["velocity"] for n in post],
                    [n["estimate"] for n in post], [n["detected"] for n in post]),
        summary_row(protocol, "baseline: training mean", true, baselines.predict_mean(len(true)), everything),
        summary_row(protocol, "baseline: loudness regression", true, loudness, everything),
    ]


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "demo_out", help="output folder (default demo_out)")
    parser.add_argument("--train-minutes", type=float, default=14, help="training time budget (default 14)")
    parser.add_argument("--train-steps", type=int, default=None, help="train this many steps instead (tests)")
    parser.add_argument("--tiny", action="store_true", help="tiny corpus (CI-sized; numbers are meaningless)")
    parser.add_argument("--sampling", choices=("paper", "fast"), default="paper",
                        help="paper: 200-step DDPM (default); fast: DDIM, few steps")
    parser.add_argument("--train-override", action="append", default=[], help="extra Hydra override for training")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.time()

    data = args.out / "data"
    print("== 1/4 synthetic corpus", flush=True)
    write_corpus(data, TINY if args.tiny else CorpusConfig())
    print("== 2/4 training (experiment=cpu_small)", flush=True)
    checkpoint = train(args.out, data, args.train_minutes, args.train_steps, args.train_override)
    rows = []
    spec_args = spectrogram_args()
    print("== 3/4 inference and post-processing, both protocols", flush=True)
    for protocol in (PAPER, CORRECTED):
        infer(args.out, data, checkpoint, protocol, args.sampling)
    print("== 4/4 summary", flush=True)
    baselines = fit_baselines(data, spec_args)
    for protocol in (PAPER, CORRECTED):
        rows.extend(summarise(args.out, data, protocol, baselines, spec_args))
    write_summary_csv(args.out / "summary.csv", rows)
    atomic_write_bytes(args.out / "summary.md", markdown_table(rows).encode())
    print(format_table(rows))
    print(f"demo finished in {(time.time() - started) / 60:.1f} min; outputs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
