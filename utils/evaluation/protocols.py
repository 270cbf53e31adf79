"""The one place for the conventions every evaluation script shares.

Protocol names; the CSV columns of each script and protocol; the names and folders of pair files
and result files; the run timestamp. run_test.py, post_processing_gnoise.py, utils/demo.py, the quirk
ablation and the benchmarks import them from here instead of spelling them out.

The paper protocol writes the published scripts' output names and CSV headers (DiffVel_CMMR2023,
commit 00c0542), so scripts written against the authors' outputs keep working; the corrected protocol
keeps the clearer names. README, "Published column names", says what each published column really holds.
"""
from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

PAPER = "paper"
CORRECTED = "corrected"
PROTOCOLS = (PAPER, CORRECTED)


def check_protocol(protocol: str) -> str:
    """`protocol` itself, or a ValueError naming the known protocols."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: expected one of {PROTOCOLS}")
    return protocol


# ---------------------------------------------------------------------------------------------
# CSV columns
# ---------------------------------------------------------------------------------------------

# The per-excerpt CSV of run_test.py, clear names: the published header with its three positive-class
# frame scores (published names precision_support, recall_support, f1_support) given their real names;
# also the metric keys of each row. `frame_max_error` / `std_max_error` keep their published names
# (users' scripts read them) but hold the MAE and STD of the NOTE velocity errors
# (|128 x max output over the note - true velocity|).
RUN_TEST_COLUMNS = (
    "g_means", "g_stds", "test_h5", "frame_max_error", "std_max_error", "mean_error_correct_detection",
    "std_error_correct_detection", "average_precision_score", "f1_score", "precision_score",
    "recall_score", "frame_precision", "frame_recall", "frame_f1",
)
# The published header of that CSV (the paper protocol writes it): the same values, other names.
RUN_TEST_HEADER = (
    "g_means", "g_stds", "test_h5", "frame_max_error", "std_max_error", "mean_error_correct_detection",
    "std_error_correct_detection", "average_precision_score", "f1_score", "precision_score", "recall_score",
    "precision_support", "recall_support", "f1_support",
)
# Both scripts add, under the corrected protocol, the share of detected notes and mir_eval's
# velocity-aware note scores.
CORRECTED_COLUMNS = ("note_recall", "velocity_precision", "velocity_recall", "velocity_f1")
# The per-excerpt CSV of post_processing_gnoise.py under the corrected protocol (+ CORRECTED_COLUMNS)...
POSTPROCESS_COLUMNS = ("test_h5", "frame_max_error", "std_max_error", "mean_error_correct_detection",
                       "std_error_correct_detection", "recall", "frame_recall", "z_score", "n_notes", "protocol")
# ... and the published header, written under the paper protocol: the first 8 values, other names.
POSTPROCESS_HEADER = (
    "test_h5", "frame_max_error", "std_max_error", "mean_error_correct_detection", "std_error_correct_detection",
    "recall_score", "recall_support", "z_score",
)
# Its per-note CSVs.
NOTE_COLUMNS = ("pitch", "onset_frame", "offset_frame", "velocity_true", "velocity_estimate", "error")
# The pooled summary CSVs (run_test.py, post_processing_gnoise.py, the demo's summary.csv).
SUMMARY_COLUMNS = ("protocol", "method", "notes", "MAE", "STD", "recall")
# The CSV of the quirk ablation (python -m utils.analysis.quirks).
QUIRKS_COLUMNS = ("shift", "variant", "what changes", "notes", "MAE raw", "STD raw", "MAE z=3", "STD z=3",
                  "delta MAE raw", "delta MAE z=3")


def run_test_columns(protocol: str) -> tuple[str, ...]:
    """The metric keys of a row of run_test.py's per-excerpt CSV under `protocol` (clear names)."""
    return RUN_TEST_COLUMNS + (CORRECTED_COLUMNS if check_protocol(protocol) == CORRECTED else ())


def run_test_header(protocol: str) -> tuple[str, ...]:
    """The header of run_test.py's per-excerpt CSV: the published one in the paper protocol."""
    return run_test_columns(protocol) if check_protocol(protocol) == CORRECTED else RUN_TEST_HEADER


def postprocess_columns(protocol: str) -> tuple[str, ...]:
    """The header of post_processing_gnoise.py's per-excerpt CSV: the published one in the paper protocol."""
    return POSTPROCESS_COLUMNS + CORRECTED_COLUMNS if check_protocol(protocol) == CORRECTED else POSTPROCESS_HEADER


# ---------------------------------------------------------------------------------------------
# Run timestamp
# ---------------------------------------------------------------------------------------------

TIMESTAMP_FORMAT = "%Y-%m-%d_%H-%M-%S"


def run_timestamp(*folders) -> str:
    """The `<time>` field of every file one run writes (local time, as the paper).

    The published format has one-second resolution, so two runs within one second would overwrite each
    other's files: a stamp already in a file name under `folders` is not reused (the run waits for the next).
    """
    while True:
        stamp = datetime.datetime.now().strftime(TIMESTAMP_FORMAT)
        if not any(stamp in path.name for folder in map(Path, folders) if folder.is_dir() for path in folder.iterdir()):
            return stamp
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Pair files: <pair_pkl_dir>[/corrected]/<excerpt>_pair_<shift>_<time>.npy
# ---------------------------------------------------------------------------------------------

PAIR_MARKER = "_pair_"
PAIR_SUFFIX = ".npy"


def pair_dir(root: str | os.PathLike, protocol: str) -> Path:
    """The folder of a protocol's pair files: `root` (paper) or `root/corrected`."""
    return Path(root) / (CORRECTED if check_protocol(protocol) == CORRECTED else "")


def pair_file_name(excerpt: str, shift, stamp: str) -> str:
    """`<excerpt>_pair_<shift>_<time>.npy`, the published pair-file name."""
    return f"{excerpt}{PAIR_MARKER}{shift}_{stamp}{PAIR_SUFFIX}"


def pair_file_pattern(excerpt: str = "*", shift="*") -> str:
    """Glob pattern of the pair files of one excerpt and shift (default: any)."""
    return f"{excerpt}{PAIR_MARKER}{shift}_*{PAIR_SUFFIX}"


def is_pair_file_name(name: str) -> bool:
    """True for names of the form `*_pair_*.npy`."""
    return PAIR_MARKER in name and name.endswith(PAIR_SUFFIX)


def excerpt_name(path: str | os.PathLike) -> str:
    """The excerpt name of a pair file: the part of the file name before `_pair_`."""
    from utils.evaluation.pairs import PairFileError

    stem = Path(path).name
    if PAIR_MARKER not in stem:
        raise PairFileError(f"{stem}: not a pair file name (expected '<excerpt>{PAIR_MARKER}<shift>_<time>.npy')")
    return stem.split(PAIR_MARKER)[0]


def pair_shift(path: str | os.PathLike) -> str:
    """The shift field of `<excerpt>_pair_<shift>_<time>.npy`."""
    return Path(path).name.split(PAIR_MARKER, 1)[1].split("_")[0]


def pair_run_time(path: str | os.PathLike) -> str:
    """The `<time>` field of `<excerpt>_pair_<shift>_<time>.npy` (TIMESTAMP_FORMAT sorts in time order)."""
    return Path(path).name.split(PAIR_MARKER, 1)[1].split("_", 1)[1]


# ---------------------------------------------------------------------------------------------
# Result files of run_test.py (under inference_result_path)
# ---------------------------------------------------------------------------------------------

# <inference_result_path>/diffvel_baseline/diffvel_base_shift_<shift>-<time>.csv (the published script
# names the folder `model_info` and hard-codes the CSV stem); config keys result_folder, result_name
RUN_TEST_RESULT_FOLDER = "diffvel_baseline"
RUN_TEST_CSV_STEM = "diffvel_base"


def run_test_result_dir(inference_result_path: str | os.PathLike, result_folder: str) -> Path:
    """`<inference_result_path>/<result_folder>`: the per-excerpt CSV, its plots and the summary."""
    return Path(inference_result_path) / result_folder


def run_test_stem(result_name: str, protocol: str) -> str:
    """`<result_name>` (paper, as published) or `<result_name>_corrected`."""
    return f"{result_name}_{CORRECTED}" if check_protocol(protocol) == CORRECTED else result_name


def run_test_prefix(result_name: str, protocol: str, shift, stamp: str) -> str:
    """`<stem>_shift_<shift>-<time>`: the per-excerpt CSV and the plots of one shift."""
    return f"{run_test_stem(result_name, protocol)}_shift_{shift}-{stamp}"


def error_profile_name(excerpt: str, shift, stamp: str) -> str:
    """`<excerpt>_<shift>_<time>.npy`: the published note error profile of one excerpt."""
    return f"{excerpt}_{shift}_{stamp}.npy"


def run_test_summary_name(result_name: str, protocol: str, stamp: str) -> str:
    """`<stem>_summary-<time>.csv`: run_test.py's pooled summary."""
    return f"{run_test_stem(result_name, protocol)}_summary-{stamp}.csv"


# ---------------------------------------------------------------------------------------------
# Result files of post_processing_gnoise.py (under --output_dir)
# ---------------------------------------------------------------------------------------------

def z_label(z_score: float) -> str:
    """'3' for 3.0, '2.5' for 2.5: z-scores in file names."""
    return f"{z_score:g}"


# OUT/outputs/result/diffvel_film-<time>.csv; the folders the published script creates under OUT/outputs
# (it writes only into `result`)
POSTPROCESS_CSV_STEM = "diffvel_film"
POSTPROCESS_FOLDERS = ("pair_pkl", "error_profile", "noise_visualization", "chart", "result", "maestro")


def postprocess_result_dir(output_dir: str | os.PathLike) -> Path:
    """OUT/outputs/result: the CSVs of post_processing_gnoise.py."""
    return Path(output_dir) / "outputs" / "result"


def postprocess_chart_dir(output_dir: str | os.PathLike) -> Path:
    """OUT/outputs/chart: the plots of post_processing_gnoise.py."""
    return Path(output_dir) / "outputs" / "chart"


def note_csv_name(excerpt: str, z_score: float, stamp: str) -> str:
    """`notes/<excerpt>-z<z>-<time>.csv` (relative to the result folder): one row per note."""
    return f"notes/{excerpt}-z{z_label(z_score)}-{stamp}.csv"


def postprocess_prefix(name: str, z_score: float, stamp: str) -> str:
    """`<name>-z<z>-<time>`: the plots of one z-score."""
    return f"{name}-z{z_label(z_score)}-{stamp}"


def postprocess_csv_name(name: str, stamp: str) -> str:
    """`<name>-<time>.csv`: one row per excerpt and z-score."""
    return f"{name}-{stamp}.csv"


def postprocess_summary_name(stamp: str) -> str:
    """`summary-<time>.csv`: pooled over excerpts, one row per z-score."""
    return f"summary-{stamp}.csv"
