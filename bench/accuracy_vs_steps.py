"""Velocity error against sampling cost: the paper's 200-step DDPM against every fast setting.

    python -m bench.accuracy_vs_steps --ckpt runs/.../last.ckpt --h5-root data/synth/smd_h5 [--out acc.md]

For every setting (sampler, visited steps, precision) and protocol (paper, corrected), samples every
segment of every .h5 excerpt under --h5-root exactly as run_test.py does (utils.evaluation.excerpts: the same
per-segment noise seeds, so settings differ only by the sampler) and evaluates with
utils.evaluation.metrics. Prints one Markdown row per (setting, protocol): notes, MAE and STD of the note
velocity error, recall, wall time per segment, and MAE minus that of the 200-step DDPM.
"""

from bench.measure import emit_table, load_1min  # isort: skip  (sets OMP_WAIT_POLICY before torch is imported)

import argparse  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from model.diffvel import load_diffvel  # noqa: E402
from utils.conventions import PAPER_TEST_FPS  # noqa: E402
from utils import tables  # noqa: E402
from utils.checks import report_error  # noqa: E402
from utils.data.smd import list_excerpts  # noqa: E402
from utils.evaluation.excerpts import estimate_segments, load_segments, pair_dicts  # noqa: E402
from utils.evaluation.metrics import evaluate  # noqa: E402
from utils.evaluation.protocols import PROTOCOLS  # noqa: E402
from utils.evaluation.report import summary_row  # noqa: E402

FAST_KS = (1, 2, 3, 4, 5, 10, 20, 50)


@dataclass(frozen=True)
class SamplerSetting:
    """One way of sampling, as the keyword overrides `model.sample` takes."""

    sampler: str  # cfdg_ddpm_x0 | ddim_x0
    steps: int | None  # None = all 200
    precision: str = "fp32"

    @property
    def label(self) -> str:
        name = {"cfdg_ddpm_x0": "DDPM" if self.steps is None else "strided DDPM", "ddim_x0": "DDIM"}[self.sampler]
        return f"{name} {self.steps or 200} steps" + ("" if self.precision == "fp32" else f" {self.precision}")

    def overrides(self) -> dict:
        return {"type": self.sampler, "steps": self.steps, "precision": self.precision}


PAPER_SETTING = SamplerSetting("cfdg_ddpm_x0", None)
ALL_SETTINGS = ([PAPER_SETTING]
                + [SamplerSetting("ddim_x0", k) for k in FAST_KS]
                + [SamplerSetting("cfdg_ddpm_x0", k) for k in FAST_KS]
                + [SamplerSetting("ddim_x0", 10, "bf16")])


def evaluate_setting(model, setting: SamplerSetting, excerpts: dict, protocol: str, args) -> dict:
    """Summary row (MAE, STD, recall, notes) of one setting over all excerpts, plus seconds per segment."""
    notes, n_segments, seconds = [], 0, 0.0
    for name, segments in excerpts.items():
        start = time.perf_counter()
        outputs = estimate_segments(model, segments, name, args.shift, seed=args.seed,
                                    batch_segments=args.batch_segments, progress=False, w=args.w,
                                    **setting.overrides())
        seconds += time.perf_counter() - start
        n_segments += len(segments)
        notes += evaluate(*pair_dicts(segments, outputs), protocol)["notes"]
    row = summary_row(protocol, setting.label, [n["velocity"] for n in notes], [n["estimate"] for n in notes],
                      [n["detected"] for n in notes])
    row["seconds_per_segment"] = seconds / max(1, n_segments)
    return row


def markdown_table(rows: list[dict]) -> str:
    paper_mae = {r["protocol"]: r["MAE"] for r in rows if r["method"] == PAPER_SETTING.label}
    cells = []
    for r in rows:
        delta = r["MAE"] - paper_mae[r["protocol"]] if r["protocol"] in paper_mae else float("nan")
        cells.append([r["method"], r["protocol"], r["notes"], f"{r['MAE']:.2f}", f"{r['STD']:.2f}",
                      f"{r['recall']:.4f}", f"{r['seconds_per_segment']:.3g}", f"{delta:+.2f}"])
    header = ("setting", "protocol", "notes", "MAE", "STD", "recall", "s / segment", "MAE - 200-step DDPM")
    return tables.markdown_table(header, cells, "llrrrrrr")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", type=Path, required=True, help="trained model checkpoint (ours or the authors')")
    parser.add_argument("--h5-root", type=Path, required=True, help="folder of SMD-style .h5 test excerpts")
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS))
    parser.add_argument("--settings", nargs="+", choices=[s.label for s in ALL_SETTINGS],
                        help="subset of settings (default: all); the 200-step DDPM is always included")
    parser.add_argument("--w", type=float, default=0.0, help="guidance weight (the paper's is 0)")
    parser.add_argument("--shift", type=float, default=0.0, help="audio-to-score shift in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-segments", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        if not args.ckpt.is_file():
            raise FileNotFoundError(f"{args.ckpt}: checkpoint not found")
        model = load_diffvel(args.ckpt, map_location=args.device, frame_threshold=0.5).eval()
        h5_files = list_excerpts(args.h5_root)
    except (FileNotFoundError, ValueError) as error:
        return report_error(error)
    chosen = ALL_SETTINGS if not args.settings else [s for s in ALL_SETTINGS
                                                     if s is PAPER_SETTING or s.label in args.settings]
    print(f"{args.ckpt}: {len(h5_files)} excerpts, {len(chosen)} settings, protocols {args.protocols}, "
          f"{torch.get_num_threads()} threads on {args.device}, load {load_1min():.2f}", flush=True)
    rows = []
    for protocol in args.protocols:
        excerpts = {p.stem: load_segments(p, args.shift, protocol, PAPER_TEST_FPS) for p in h5_files}
        for setting in chosen:
            rows.append(evaluate_setting(model, setting, excerpts, protocol, args))
            r = rows[-1]
            print(f"{protocol:9s} {setting.label:24s} MAE {r['MAE']:.2f} STD {r['STD']:.2f} "
                  f"({r['seconds_per_segment']:.3g} s/segment, load {load_1min():.2f})", flush=True)
    emit_table(markdown_table(rows), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
