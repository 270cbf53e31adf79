"""Gaussian-noise post-processing and evaluation of DiffVel pair files (published post_process_gnoise.py).

    python post_processing_gnoise.py --output_dir OUT --pair_pkl_dir PAIRS [--z_scores 3 ...]
                                     [--protocol paper|corrected] [--name diffvel_film] [--no_plots]

For every pair file `<excerpt>_pair_<shift>_<time>.npy` in PAIRS and every z-score: remove the
noise below the per-segment z-score threshold, rescale the piece to [0, 1], evaluate. Creates the
published folders OUT/outputs/{pair_pkl,error_profile,noise_visualization,chart,result,maestro} and writes
  OUT/outputs/result/<name>-<time>.csv            one row per excerpt and z-score (the published header
                                                  in the paper protocol, clearer names in the corrected one)
  OUT/outputs/result/notes/<excerpt>-z<z>-<time>.csv   one row per note
  OUT/outputs/result/summary-<time>.csv           pooled over excerpts, one row per z-score
  OUT/outputs/chart/<name>-z<z>-<time>_*.png      error histogram, scatter, error by velocity
See docs/evaluation.md.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from utils.checks import check_output_dir, check_z_scores
from utils.evaluation.pairs import check_finite, list_pair_files, load_pairs
from utils.evaluation.postprocess import DEFAULT_Z_SCORE, postprocess_metrics
from utils.evaluation.protocols import (CORRECTED, CORRECTED_COLUMNS, NOTE_COLUMNS, PAPER, POSTPROCESS_CSV_STEM,
                                        POSTPROCESS_FOLDERS, PROTOCOLS, excerpt_name, note_csv_name,
                                        postprocess_chart_dir, postprocess_columns, postprocess_csv_name,
                                        postprocess_prefix, postprocess_result_dir, postprocess_summary_name,
                                        run_timestamp, z_label)
from utils.evaluation.report import format_table, summary_row, write_csv, write_plots, write_summary_csv

logger = logging.getLogger("post_processing_gnoise")


def get_args(argv=None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True, help="base folder; results go to OUT/outputs/...")
    parser.add_argument("--pair_pkl_dir", "--npy_pair_dir", dest="npy_pair_dir", required=True,
                        help="folder of <excerpt>_pair_<shift>_<time>.npy files written by run_test.py "
                             "(--pair_pkl_dir: the published README; --npy_pair_dir: the published script)")
    parser.add_argument("--z_scores", type=float, nargs="+", default=[DEFAULT_Z_SCORE],
                        help="z-score thresholds (default 3), finite, >= 0 and distinct; 0 = rescale only, no noise removal")
    parser.add_argument("--protocol", choices=PROTOCOLS, default=PAPER,
                        help="paper: published evaluation (default); corrected: see docs/evaluation.md")
    parser.add_argument("--name", default=POSTPROCESS_CSV_STEM, help="prefix of the result CSV and plots (published: diffvel_film)")
    parser.add_argument("--no_plots", action="store_true", help="skip the PNG plots")
    return parser.parse_args(argv)


def result_row(excerpt: str, metrics: dict, protocol: str) -> list:
    """One row of the result CSV for an evaluated excerpt (the published 8 values, then the added ones)."""
    row = [excerpt, metrics["frame_max_error"], metrics["std_max_error"],
           metrics["mean_error_correct_detection"], metrics["std_error_correct_detection"],
           metrics["recall_score"], metrics["frame_recall"], metrics["z_score"]]
    if protocol == CORRECTED:
        row += [metrics["n_notes"], protocol] + [metrics[c] for c in CORRECTED_COLUMNS]
    return row


def note_rows(notes: list[dict]) -> list[list]:
    """Rows of a per-excerpt note CSV: key index, piece frames, true and estimated velocity, error."""
    return [[n["pitch"], n["start"], n["end"], n["velocity"], n["estimate"], n["error"]] for n in notes]


def checked_inputs(args: argparse.Namespace) -> list[Path]:
    """Check the options, the output folder and every pair file (readable, finite) before writing anything."""
    check_z_scores("--z_scores", args.z_scores)
    check_output_dir("--output_dir", args.output_dir)
    pair_files = list_pair_files(args.npy_pair_dir)
    for pair_file in pair_files:
        check_finite(pair_file, load_pairs(pair_file)[0])
    return pair_files


def run(args: argparse.Namespace) -> list[dict]:
    """Evaluate every pair file at every z-score, write all outputs, return the summary rows."""
    pair_files = checked_inputs(args)
    result_dir = postprocess_result_dir(args.output_dir)
    stamp = run_timestamp(result_dir, result_dir / "notes")
    chart_dir = postprocess_chart_dir(args.output_dir)
    for folder in POSTPROCESS_FOLDERS:  # as the published create_output_dir
        (Path(args.output_dir) / "outputs" / folder).mkdir(parents=True, exist_ok=True)

    rows_by_z = {z: [] for z in args.z_scores}
    notes_by_z = {z: [] for z in args.z_scores}
    for pair_file in tqdm(pair_files, desc="excerpts", unit="file"):
        excerpt = excerpt_name(pair_file)
        output_dict_list, target_dict_list = load_pairs(pair_file)
        for z_score in args.z_scores:
            try:
                metrics = postprocess_metrics(output_dict_list, target_dict_list, z_score, args.protocol)
            except ValueError as exc:
                raise ValueError(f"{pair_file.name}: {exc}") from None
            rows_by_z[z_score].append(result_row(excerpt, metrics, args.protocol))
            notes_by_z[z_score].extend(metrics["notes"])
            write_csv(result_dir / note_csv_name(excerpt, z_score, stamp),
                      NOTE_COLUMNS, note_rows(metrics["notes"]))
            logger.info("%s z=%g: %d notes, MAE %.3f", excerpt, z_score, metrics["n_notes"],
                        metrics["frame_max_error"])

    header = postprocess_columns(args.protocol)  # the published header in the paper protocol
    result_path = write_csv(result_dir / postprocess_csv_name(args.name, stamp), header,
                            [row for z in args.z_scores for row in rows_by_z[z]])  # published order
    summary = []
    for z_score in args.z_scores:
        notes = notes_by_z[z_score]
        true = [n["velocity"] for n in notes]
        estimate = [n["estimate"] for n in notes]
        summary.append(summary_row(args.protocol, f"{args.name} z={z_label(z_score)}", true, estimate,
                                   [n["detected"] for n in notes]))
        if not args.no_plots:
            write_plots(chart_dir, postprocess_prefix(args.name, z_score, stamp), true, estimate)
    write_summary_csv(result_dir / postprocess_summary_name(stamp), summary)
    logger.info("wrote %s", result_path)
    return summary


def main(argv=None) -> int:
    """CLI entry point: returns the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = get_args(argv)
    try:
        summary = run(args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
