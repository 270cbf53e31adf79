"""Ablation of the published DiffVel evaluation quirks: the effect of each one on the demo's numbers.

Starting from the paper protocol, each variant switches ONE published quirk to its corrected
behaviour (and the last one switches all of them: the corrected protocol). Every variant is scored
on the notes of the demo's pair files, pooled over all excerpts like the demo's summary.csv:
notes, MAE and STD of |estimate - true velocity|, raw (run_test) and after the z=3 noise removal.

    python -m utils.analysis.quirks --demo-out DIR [--model diffvel] [--out DIR/quirks.md]

reads DIR/pairs/<model>/*_pair_*.npy (paper pairs; DIR/pairs/ for demos older than the per-model
folders), its corrected/*_pair_*.npy (corrected pairs), the newest run of each excerpt,
DIR/data/smd_h5/*.h5 (key-down spans, audio scale) and DIR/runs/<model>/*/version_*/checkpoints/last.ckpt
(audio scale), and writes the Markdown report and the same table as CSV (.csv beside it).
See docs/quirks.md.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from utils.analysis.quirks_facts import audio_scale_effect, measured_facts
from utils.analysis.quirks_inputs import QuirksInputError, demo_model_dir, load_demo_pairs
from utils.analysis.quirks_report import report_markdown
from utils.analysis.quirks_variants import ablation_rows
from utils.atomic import atomic_write_bytes
from utils.evaluation.pairs import PairFileError
from utils.evaluation.protocols import QUIRKS_COLUMNS
from utils.evaluation.report import write_csv

TABLE_COLUMNS = QUIRKS_COLUMNS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Effect of each published evaluation quirk on the demo's numbers")
    parser.add_argument("--demo-out", type=Path, required=True, help="the demo's output folder")
    parser.add_argument("--model", default="diffvel", help="the demo model's folder tag under pairs/ and runs/ "
                        "(default diffvel, the paper's model; older demos without it are read from pairs/, runs/)")
    parser.add_argument("--out", type=Path, default=None, help="Markdown report (default DEMO_OUT/quirks.md); "
                        "the CSV goes beside it with the .csv suffix")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("utils.evaluation.postprocess").setLevel(logging.ERROR)  # segments without a threshold are counted
    out = args.out or args.demo_out / "quirks.md"
    try:
        import torch

        torch.set_num_threads(1)
        by_shift = load_demo_pairs(args.demo_out, args.model)
        tables = {shift: ablation_rows(excerpts) for shift, excerpts in by_shift.items()}
        facts = {shift: measured_facts(excerpts) for shift, excerpts in by_shift.items()}
        checkpoints = sorted(demo_model_dir(args.demo_out, "runs", args.model).glob("*/version_*/checkpoints/last.ckpt"))
        first = next(iter(by_shift.values()))[0]
        h5_path = args.demo_out / "data" / "smd_h5" / f"{first.name}.h5"
        audio_scale = audio_scale_effect(checkpoints[-1], h5_path) if checkpoints and h5_path.is_file() else None
    except (FileNotFoundError, PairFileError, QuirksInputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = report_markdown(args.demo_out, tables, facts, audio_scale)
    atomic_write_bytes(out, text.encode("utf-8"))
    rows = [row for shift_rows in tables.values() for row in shift_rows]
    write_csv(out.with_suffix(".csv"), TABLE_COLUMNS, [[row[c] for c in TABLE_COLUMNS] for row in rows])
    print(text)
    print(f"written {out} and {out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
