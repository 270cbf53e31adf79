"""Summaries and plots of note-level velocity results (any protocol, any method).

Functions take plain note lists: the true MIDI velocities and the estimates, one per note (and
optionally whether each note was detected), so run_test.py, the post-processing CLI and the demo
can all call them. Baselines enter the summary table as extra rows with the same columns.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from utils.atomic import atomic_write_bytes
from utils.evaluation.protocols import SUMMARY_COLUMNS

VELOCITY_BIN_WIDTH = 16  # MIDI velocity bins 0-15, 16-31, ... for the error-by-velocity plot


def write_csv(path: str | os.PathLike, header, rows) -> Path:
    """Write a CSV (header + rows of values) atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def _note_arrays(true_velocities, estimated_velocities) -> tuple[np.ndarray, np.ndarray]:
    """(true, estimate) as float arrays of equal length, or a ValueError."""
    true = np.asarray(true_velocities, dtype=np.float64).ravel()
    estimate = np.asarray(estimated_velocities, dtype=np.float64).ravel()
    if true.shape != estimate.shape:
        raise ValueError(f"{true.size} true velocities but {estimate.size} estimates")
    return true, estimate


def summary_row(protocol: str, method: str, true_velocities, estimated_velocities, detected=None) -> dict:
    """One summary row: notes, MAE and STD of |estimate - true|, recall = share of detected notes.

    `detected` defaults to "estimate > 0". Empty note lists give nan MAE/STD/recall.
    """
    true, estimate = _note_arrays(true_velocities, estimated_velocities)
    detected = estimate > 0 if detected is None else np.asarray(detected, dtype=bool).ravel()
    if detected.shape != true.shape:
        raise ValueError(f"{true.size} notes but {detected.size} detection flags")
    errors = np.abs(estimate - true)
    empty = true.size == 0
    return {
        "protocol": protocol, "method": method, "notes": int(true.size),
        "MAE": float("nan") if empty else float(errors.mean()),
        "STD": float("nan") if empty else float(errors.std()),
        "recall": float("nan") if empty else float(detected.mean()),
    }


def bias_split(true_by_excerpt, estimate_by_excerpt) -> dict:
    """How much of an error is one offset per recording: the mean signed error (estimate - true) over
    all notes, the MAE left once each excerpt's own mean error is subtracted from its notes, and the
    correlation of estimates and truth over all notes (nan where either is constant).

    A diagnostic, not a score: centring uses the truth. A model that is right up to a per-recording
    offset (a piano or level it has not heard) has a small centred MAE and a large bias.
    """
    pairs = [_note_arrays(true, estimate) for true, estimate in zip(true_by_excerpt, estimate_by_excerpt, strict=True)]
    pairs = [(true, estimate) for true, estimate in pairs if true.size]
    if not pairs:
        return {"bias": float("nan"), "centred_MAE": float("nan"), "correlation": float("nan")}
    signed = [estimate - true for true, estimate in pairs]
    centred = np.concatenate([error - error.mean() for error in signed])
    true, estimate = (np.concatenate(arrays) for arrays in zip(*pairs))
    return {"bias": float(np.concatenate(signed).mean()), "centred_MAE": float(np.abs(centred).mean()),
            "correlation": _correlation(true, estimate)}


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length arrays; nan if either is constant."""
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def summary_table(rows: list[dict], extra_rows: list[dict] = ()) -> list[dict]:
    """The rows followed by the baseline rows, each checked to have every SUMMARY_COLUMNS entry."""
    table = list(rows) + list(extra_rows)
    for row in table:
        missing = [c for c in SUMMARY_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"summary row {row.get('method', '?')!r}: missing columns {missing}")
    return table


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of summary rows (MAE/STD to 2 decimals, recall to 4)."""
    formats = {"MAE": "{:.2f}", "STD": "{:.2f}", "recall": "{:.4f}", "notes": "{:d}"}
    cells = [list(SUMMARY_COLUMNS)] + [
        [formats.get(c, "{}").format(row[c]) for c in SUMMARY_COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(SUMMARY_COLUMNS))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_summary_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    """The summary rows as CSV with SUMMARY_COLUMNS, atomically."""
    return write_csv(path, SUMMARY_COLUMNS, [[row[c] for c in SUMMARY_COLUMNS] for row in rows])


def _save_figure(figure, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def _new_axes(title: str, figsize=(6, 4)):
    """A fresh Agg figure and axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=figsize)
    axes.set_title(title)
    return figure, axes


def plot_error_histogram(true_velocities, estimated_velocities, path, title: str = "Velocity error") -> Path:
    """Histogram of |estimate - true| in MIDI velocity units (1-wide bins)."""
    true, estimate = _note_arrays(true_velocities, estimated_velocities)
    errors = np.abs(estimate - true)
    figure, axes = _new_axes(title)
    top = int(np.ceil(errors.max())) + 1 if errors.size else 1
    axes.hist(errors, bins=np.arange(0, top + 1), color="tab:blue")
    axes.set_xlabel("|estimate - true| (MIDI velocity)")
    axes.set_ylabel("notes")
    return _save_figure(figure, path)


def plot_velocity_scatter(true_velocities, estimated_velocities, path, title: str = "Estimated vs true velocity") -> Path:
    """Scatter of estimated against true velocity with the identity line."""
    true, estimate = _note_arrays(true_velocities, estimated_velocities)
    figure, axes = _new_axes(title)
    axes.scatter(true, estimate, s=6, alpha=0.5, color="tab:blue")
    axes.plot([0, 127], [0, 127], color="tab:gray", linewidth=1)
    axes.set_xlim(0, 128)
    axes.set_ylim(0, 128)
    axes.set_xlabel("true velocity")
    axes.set_ylabel("estimated velocity")
    return _save_figure(figure, path)


def error_by_velocity_bin(true_velocities, estimated_velocities, bin_width: int = VELOCITY_BIN_WIDTH) -> list[dict]:
    """Mean/std of |estimate - true| per true-velocity bin: [{low, high, notes, MAE, STD}]."""
    true, estimate = _note_arrays(true_velocities, estimated_velocities)
    errors = np.abs(estimate - true)
    bins = []
    for low in range(0, 128, bin_width):
        high = min(low + bin_width, 128)
        in_bin = (true >= low) & (true < high)
        count = int(in_bin.sum())
        bins.append({"low": low, "high": high, "notes": count,
                     "MAE": float(errors[in_bin].mean()) if count else float("nan"),
                     "STD": float(errors[in_bin].std()) if count else float("nan")})
    return bins


def plot_error_by_velocity(true_velocities, estimated_velocities, path,
                           bin_width: int = VELOCITY_BIN_WIDTH, title: str = "Error by true velocity") -> Path:
    """Bar chart of the mean error (std as error bar) per true-velocity bin."""
    bins = error_by_velocity_bin(true_velocities, estimated_velocities, bin_width)
    figure, axes = _new_axes(title)
    labels = [f"{b['low']}-{b['high'] - 1}" for b in bins]
    means = [0.0 if b["notes"] == 0 else b["MAE"] for b in bins]
    stds = [0.0 if b["notes"] == 0 else b["STD"] for b in bins]
    axes.bar(labels, means, yerr=stds, color="tab:blue", capsize=3)
    axes.set_xlabel("true velocity bin")
    axes.set_ylabel("mean |estimate - true|")
    axes.tick_params(axis="x", labelrotation=45)
    return _save_figure(figure, path)


def write_plots(out_dir: str | os.PathLike, prefix: str, true_velocities, estimated_velocities) -> dict[str, Path]:
    """The three plots as `<out_dir>/<prefix>_{error_histogram,velocity_scatter,error_by_velocity}.png`."""
    out_dir = Path(out_dir)
    return {
        "error_histogram": plot_error_histogram(
            true_velocities, estimated_velocities, out_dir / f"{prefix}_error_histogram.png"),
        "velocity_scatter": plot_velocity_scatter(
            true_velocities, estimated_velocities, out_dir / f"{prefix}_velocity_scatter.png"),
        "error_by_velocity": plot_error_by_velocity(
            true_velocities, estimated_velocities, out_dir / f"{prefix}_error_by_velocity.png"),
    }


def mae_against_steps_plot(rows: list[dict], path, title: str = "Velocity MAE against training steps") -> Path:
    """One line of MAE against step per set (rows with a step), its baselines (rows without) dashed."""
    figure, axes = _new_axes(title)
    for index, label in enumerate(dict.fromkeys(row["set"] for row in rows)):
        color = f"C{index}"
        curve = sorted((row["step"], row["MAE"]) for row in rows if row["set"] == label and row["step"] is not None)
        axes.plot(*zip(*curve), marker="o", color=color, label=label)
        for row, style in zip((r for r in rows if r["set"] == label and r["step"] is None), ("--", ":")):
            axes.axhline(row["MAE"], linestyle=style, color=color, linewidth=1, label=f"{label}: {row['method']}")
    axes.set_xlabel("training step")
    axes.set_ylabel("MAE (MIDI velocity)")
    axes.legend(fontsize=7)
    return _save_figure(figure, path)


def mae_against_gain_plot(rows: list[dict], path, title: str = "Velocity MAE against recording gain") -> Path:
    """One line of MAE against gain (dB) per (set, method)."""
    figure, axes = _new_axes(title)
    for label, method in dict.fromkeys((row["set"], row["method"]) for row in rows):
        curve = sorted((row["gain_db"], row["MAE"]) for row in rows if (row["set"], row["method"]) == (label, method))
        axes.plot(*zip(*curve), marker="o", label=f"{label}: {method}")
    axes.set_xlabel("gain applied to the audio (dB)")
    axes.set_ylabel("MAE (MIDI velocity)")
    axes.legend(fontsize=7)
    return _save_figure(figure, path)


def versus_plot(rows: list[dict], path, title: str = "MAE minus the loudness regression's (95 % paired bootstrap)") -> Path:
    """One interval per row with a "versus" result (utils.evaluation.paired), grouped by set and protocol;
    the reference itself (difference 0 on every draw) is left out. Left of the line: better than it."""
    shown = [row for row in rows if row["versus"]["low"] != row["versus"]["high"]]
    figure, axes = _new_axes(title, figsize=(9, 0.6 + 0.32 * len(shown)))
    for y, row in enumerate(shown):
        result = row["versus"]
        axes.errorbar(result["difference"], y, xerr=[[result["difference"] - result["low"]],
                                                      [result["high"] - result["difference"]]],
                      fmt="o", color="C0" if result["high"] < 0 else "C3" if result["low"] > 0 else "C7", capsize=3)
    axes.axvline(0.0, color="black", linewidth=1)
    axes.set_yticks(range(len(shown)), [f"{r['set']}, {r['protocol']}: {r['method']}" for r in shown], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("MAE - loudness regression's MAE (MIDI velocity)")
    axes.title.set_fontsize(9)
    return _save_figure(figure, path)
