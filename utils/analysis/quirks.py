"""Ablation of the published DiffVel evaluation quirks: the effect of each one on the demo's numbers.

Starting from the paper protocol, each variant switches ONE published quirk to its corrected
behaviour (and the last one switches all of them: the corrected protocol). Every variant is scored
on the notes of the demo's pair files, pooled over all excerpts like the demo's summary.csv:
notes, MAE and STD of |estimate - true velocity|, raw (run_test) and after the z=3 noise removal.

    python -m utils.analysis.quirks --demo-out DIR [--out DIR/quirks.md]

reads DIR/pairs/*_pair_*.npy (paper pairs), DIR/pairs/corrected/*_pair_*.npy (corrected pairs),
DIR/data/smd_h5/*.h5 (key-down spans, audio scale) and DIR/runs/*/version_*/checkpoints/last.ckpt
(audio scale), and writes the Markdown report and the same table as CSV (.csv beside it).
See docs/quirks.md.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utils.atomic import atomic_write_bytes
from utils.conventions import PAPER_TEST_FPS, SEGMENT_SAMPLES, SEGMENT_SECONDS, VELOCITY_SCALE
from utils.evaluation.metrics import (
    CORRECTED,
    DETECTION_THRESHOLD,
    MIDI_VELOCITY_MAX,
    MIDI_VELOCITY_MIN,
    PAPER,
    concatenate_segments,
    first_item,
    notes_from_onset_roll,
    notes_from_targets,
)
from utils.evaluation.excerpts import noise_check
from utils.evaluation.pairs import PairFileError, excerpt_name, list_pair_files, load_pairs
from utils.evaluation.postprocess import DEFAULT_Z_SCORE, postprocess_outputs, remove_noise, rescale_linear01, segment_thresholds
from utils.analysis.quirks_report import report_markdown
from utils.evaluation.report import summary_row, write_csv

logger = logging.getLogger(__name__)

# How the true notes are found (the `notes` field of a Variant).
RUNS = "runs"  # published: runs of non-zero ground-truth frames; re-strikes merge, edge runs dropped
RUNS_SPLIT = "runs_split"  # runs cut at every onset cell: each re-strike is its own note
RUNS_EDGES = "runs_edges"  # runs, keeping those touching the first or last frame of the piece
EVENTS = "events"  # the MIDI notes: target["notes"] (corrected pairs) or the onset roll (paper pairs)

# The note statistic (the `statistic` field).
SPAN_MAX = "span_max"  # published: max output over the (pedal-extended) note span
ONSET_VALUE = "onset_value"  # the output at the onset frame
KEY_DOWN_MAX = "key_down_max"  # max output over the span cut at the key release (no sustain tail)

PAPER_LABEL_FRAMES = int(round(SEGMENT_SECONDS * PAPER_TEST_FPS)) + 1  # 636 frames before the 640 copy


class QuirksInputError(ValueError):
    """Demo outputs that cannot be ablated (missing or mismatched pair files)."""


@dataclass(frozen=True)
class Variant:
    """One evaluation setting: which pair set gives outputs and labels, and how notes are scored."""

    name: str
    changes: str
    outputs: str = PAPER  # pair set of the model outputs: paper (31 fps score) or corrected (31.25 fps)
    labels: str = PAPER  # pair set of the ground truth: paper (31 fps + copy) or corrected
    notes: str = RUNS
    noise_reference: str = PAPER  # PAPER: GT velocity roll; CORRECTED: score frame roll
    clip: bool = False
    statistic: str = SPAN_MAX
    informative: bool = False  # part of neither protocol


VARIANTS = (
    Variant("paper", "all published quirks (baseline)"),
    Variant("1a re-strikes split", "GT runs are cut at each onset, so a re-struck note with no silent "
            "frame before it counts as its own note", notes=RUNS_SPLIT),
    Variant("1b edge notes kept", "GT runs touching the first or last frame of the piece are kept",
            notes=RUNS_EDGES),
    Variant("1 notes from MIDI events", "notes from the onset roll (every strike, frame-0 and last-frame "
            "notes) instead of runs of non-zero GT frames", notes=EVENTS),
    Variant("2a labels at 31.25 fps", "ground truth from the corrected pairs (exact 31.25 fps, no 636->640 "
            "copy), outputs still from the paper run", labels=CORRECTED),
    Variant("2b outputs from 31.25 fps score", "outputs from the corrected run (score roll at 31.25 fps, "
            "audio /32768), ground truth still at 31 fps + copy", outputs=CORRECTED),
    Variant("2 labels + score at 31.25 fps", "corrected pairs (labels and score condition) with the paper's "
            "note extraction and statistics", outputs=CORRECTED, labels=CORRECTED),
    Variant("3 threshold on score-silent cells", "z=3 noise threshold chosen on cells where the score "
            "frame roll is 0 instead of the GT velocity roll", noise_reference=CORRECTED),
    Variant("4 estimates clipped", "estimates clipped to 1..127", clip=True),
    Variant("5 value at onset frame", "estimate = output at the onset frame instead of the max over the "
            "pedal-extended span (informative: in neither protocol)", statistic=ONSET_VALUE, informative=True),
    Variant("5b max over key-down span", "max over the span cut at the key release, without the sustain "
            "tail (informative: in neither protocol)", statistic=KEY_DOWN_MAX, informative=True),
    Variant("corrected", "all at once: corrected pairs, MIDI notes, clipping, score-silent threshold",
            outputs=CORRECTED, labels=CORRECTED, notes=EVENTS, noise_reference=CORRECTED, clip=True),
)

TABLE_COLUMNS = ("shift", "variant", "what changes", "notes", "MAE raw", "STD raw", "MAE z=3", "STD z=3",
                 "delta MAE raw", "delta MAE z=3")


@dataclass
class ExcerptPairs:
    """Both pair sets of one excerpt and shift: (output_dict_list, target_dict_list) each."""

    name: str
    shift: str
    pairs: dict  # {PAPER: (outputs, targets), CORRECTED: (outputs, targets)}
    key_down_roll: np.ndarray | None = field(default=None)  # (T, 88) paper labels without pedal extension


# ---------------------------------------------------------------------------------------------
# Pure building blocks
# ---------------------------------------------------------------------------------------------

def run_note_spans(velocity_roll: np.ndarray, onset_roll: np.ndarray | None = None,
                   keep_edges: bool = False) -> list[tuple[int, int, int, float]]:
    """Notes (key, start, end, velocity) as runs of non-zero frames of a (T, 88) velocity roll.

    With the defaults this equals `utils.evaluation.metrics.paper_note_spans` (runs touching frame 0 or
    frame T-1 dropped, re-strikes merged). `onset_roll` (T, 88): a run is also cut at every onset
    cell after its first frame. `keep_edges`: runs touching the piece's ends are kept. The velocity
    is the roll at each note's first frame.
    """
    n_frames = velocity_roll.shape[0]
    notes = []
    for key in range(velocity_roll.shape[1]):
        padded = np.concatenate(([False], velocity_roll[:, key] != 0, [False]))
        changes = np.flatnonzero(padded[1:] != padded[:-1])  # run starts and ends, alternating
        for start, end in changes.reshape(-1, 2):
            if not keep_edges and (start == 0 or end == n_frames):
                continue
            cuts = [int(start)]
            if onset_roll is not None:
                cuts += [int(start) + 1 + int(f) for f in np.flatnonzero(onset_roll[start + 1:end, key] > 0)]
            for first, stop in zip(cuts, cuts[1:] + [int(end)]):
                notes.append((key, first, stop, float(velocity_roll[first, key])))
    return notes


def key_down_spans(spans: list[tuple[int, int, int, float]], key_down_roll: np.ndarray
                   ) -> list[tuple[int, int, int, float]]:
    """The same notes with each span cut where the key-down roll (T, 88) of its key first falls silent.

    A span keeps at least its first frame and never grows.
    """
    cut = []
    for key, start, end, velocity in spans:
        silent = np.flatnonzero(key_down_roll[start:end, key] == 0)
        stop = start + (int(silent[0]) if silent.size else end - start)
        cut.append((key, start, max(stop, start + 1), velocity))
    return cut


def note_estimates(outputs: np.ndarray, spans: list[tuple[int, int, int, float]],
                   statistic: str = SPAN_MAX, clip: bool = False) -> list[dict]:
    """One dict per note (pitch, start, end, velocity, estimate, error) from (T, 88) outputs in 0..1.

    Outputs <= 1e-4 count as 0 (published); the estimate is 128 x the max over the span
    (SPAN_MAX, KEY_DOWN_MAX: the spans are cut beforehand) or the value at the first frame
    (ONSET_VALUE); `clip` clips it to 1..127.
    """
    cleaned = np.where(outputs <= DETECTION_THRESHOLD, 0.0, outputs)  # (T, 88)
    notes = []
    for key, start, end, velocity in spans:
        values = cleaned[start:end, key]
        estimate = float(values[0] if statistic == ONSET_VALUE else values.max()) * VELOCITY_SCALE
        if clip:
            estimate = float(np.clip(estimate, MIDI_VELOCITY_MIN, MIDI_VELOCITY_MAX))
        notes.append({"pitch": key, "start": start, "end": end, "velocity": velocity,
                      "estimate": estimate, "error": abs(estimate - velocity)})
    return notes


def rescale_linear01_float32(segment_outputs: list[np.ndarray]) -> list[np.ndarray]:
    """The published min-max rescaling as numpy 1.x ran it: float32 throughout (quirk 15)."""
    low = np.float32(min(np.min(x) for x in segment_outputs))
    high = np.float32(max(np.max(x) for x in segment_outputs))
    return [((x.astype(np.float32) - low) / (high - low)).astype(np.float32) for x in segment_outputs]


def remove_noise_strictly_below(output_dict_list: list[dict], thresholds: list[float | None]) -> list[np.ndarray]:
    """Like `utils.evaluation.postprocess.remove_noise`, but zeroes outputs < threshold, keeping the threshold cell
    itself (published: <=, quirk 10). Returns each segment's (T, 88) outputs."""
    cleaned = []
    for output, threshold in zip(output_dict_list, thresholds):
        outputs = first_item(output["velocity_output"], "velocity_output", dtype=None).copy()  # (T, 88)
        if threshold is not None:
            outputs[outputs < threshold] = 0
        cleaned.append(outputs)
    return cleaned


def pedal_flags(spans: list[tuple[int, int, int, float]], target_dict_list: list[dict]
                ) -> tuple[np.ndarray, np.ndarray]:
    """(published, per-segment) pedal flags of each note span, boolean (n_notes,) each.

    Published `pedal_check`: the concatenated, doubled pedal rolls (n * 1272,) indexed with piece
    frames. Per segment: piece frame -> (segment, frame); frames past the 636 label frames are the
    copied ones and read the frame they copy; the segment's own first 636 pedal values.
    """
    pedal_rolls = [first_item(d["pedal_frame_roll"], "pedal_frame_roll", keyed=False) for d in target_dict_list]
    published_roll = np.concatenate(pedal_rolls)  # (n * 1272,)
    segment_frames = first_item(target_dict_list[0]["velocity_roll"], "velocity_roll").shape[0]
    label_frames = pedal_rolls[0].shape[0] // 2 if pedal_rolls[0].shape[0] > segment_frames else segment_frames
    copied = segment_frames - label_frames  # 4 in the paper pairs
    published, per_segment = [], []
    for _, start, end, _ in spans:
        published.append(published_roll[start:end].sum() > 0)
        frames = np.arange(start, end)
        segments, local = frames // segment_frames, frames % segment_frames
        local = np.where(local >= label_frames, local - copied, local)
        per_segment.append(any(pedal_rolls[s][f] > 0 for s, f in zip(segments, local)))
    return np.array(published, dtype=bool), np.array(per_segment, dtype=bool)


def copied_onsets(target_dict_list: list[dict]) -> int:
    """Onset cells in the copied frames (636..639) of the paper labels: duplicated strikes."""
    total = 0
    for target in target_dict_list:
        onsets = first_item(target["onset_roll"], "onset_roll")  # (640, 88)
        total += int(np.count_nonzero(onsets[PAPER_LABEL_FRAMES:] > 0))
    return total


# ---------------------------------------------------------------------------------------------
# Variants
# ---------------------------------------------------------------------------------------------

def variant_spans(variant: Variant, excerpt: ExcerptPairs) -> list[tuple[int, int, int, float]]:
    """The true notes (key, start, end, velocity) of an excerpt under a variant, in piece frames."""
    outputs, targets = excerpt.pairs[variant.outputs][0], excerpt.pairs[variant.labels][1]
    velocity = concatenate_segments(targets, "velocity_roll")  # (T, 88)
    if variant.notes == RUNS:
        spans = run_note_spans(velocity)
    elif variant.notes == RUNS_SPLIT:
        spans = run_note_spans(velocity, concatenate_segments(targets, "onset_roll"))
    elif variant.notes == RUNS_EDGES:
        spans = run_note_spans(velocity, keep_edges=True)
    elif all("notes" in d for d in targets):
        frames = [first_item(d["velocity_output"], "velocity_output").shape[0] for d in outputs]
        spans = notes_from_targets(targets, frames)
    else:
        spans = notes_from_onset_roll(targets)
    if variant.statistic == KEY_DOWN_MAX:
        if excerpt.key_down_roll is None:
            raise QuirksInputError(f"{excerpt.name}: no key-down roll (the excerpt's .h5 file is needed)")
        spans = key_down_spans(spans, excerpt.key_down_roll)
    return spans


def variant_notes(variant: Variant, excerpt: ExcerptPairs, z_score: float = DEFAULT_Z_SCORE
                  ) -> tuple[list[dict], list[dict]]:
    """(raw notes, notes after noise removal at z_score) of one excerpt under a variant."""
    outputs, targets = excerpt.pairs[variant.outputs][0], excerpt.pairs[variant.labels][1]
    if len(outputs) != len(targets):
        raise QuirksInputError(f"{excerpt.name}: {len(outputs)} output segments but {len(targets)} label segments")
    spans = variant_spans(variant, excerpt)
    raw = note_estimates(concatenate_segments(outputs, "velocity_output"), spans, variant.statistic, variant.clip)
    cleaned, _ = postprocess_outputs(outputs, targets, z_score, variant.noise_reference)
    post = note_estimates(concatenate_segments(cleaned, "velocity_output"), spans, variant.statistic, variant.clip)
    return raw, post


def pooled(notes: list[dict]) -> dict:
    """notes, MAE, STD of a pooled note list (report.summary_row)."""
    return summary_row("", "", [n["velocity"] for n in notes], [n["estimate"] for n in notes])


def ablation_rows(excerpts: list[ExcerptPairs], variants=VARIANTS) -> list[dict]:
    """One row per variant (TABLE_COLUMNS keys), notes pooled over all excerpts; deltas vs the first variant.

    "z=3" columns: after the noise removal at the published DEFAULT_Z_SCORE (3). A KEY_DOWN_MAX
    variant is skipped, with a warning, when an excerpt has no key-down roll.
    """
    rows = []
    for variant in variants:
        if variant.statistic == KEY_DOWN_MAX and any(e.key_down_roll is None for e in excerpts):
            logger.warning("%s skipped: the .h5 files of the excerpts are needed", variant.name)
            continue
        raw, post = [], []
        for excerpt in excerpts:
            excerpt_raw, excerpt_post = variant_notes(variant, excerpt)
            raw.extend(excerpt_raw)
            post.extend(excerpt_post)
        raw_summary, post_summary = pooled(raw), pooled(post)
        rows.append({"shift": excerpts[0].shift, "variant": variant.name, "what changes": variant.changes,
                     "notes": raw_summary["notes"], "MAE raw": raw_summary["MAE"], "STD raw": raw_summary["STD"],
                     "MAE z=3": post_summary["MAE"], "STD z=3": post_summary["STD"]})
    for row in rows:
        row["delta MAE raw"] = row["MAE raw"] - rows[0]["MAE raw"]
        row["delta MAE z=3"] = row["MAE z=3"] - rows[0]["MAE z=3"]
    return rows


# ---------------------------------------------------------------------------------------------
# Quirks that do not move the MAE, measured
# ---------------------------------------------------------------------------------------------

def paper_post_mae(excerpts: list[ExcerptPairs], z_score: float = DEFAULT_Z_SCORE,
                   remove=remove_noise, rescale=rescale_linear01) -> float:
    """Pooled paper-protocol MAE after noise removal, with the removal or the rescaling step swappable."""
    notes = []
    for excerpt in excerpts:
        outputs, targets = excerpt.pairs[PAPER]
        thresholds = segment_thresholds(outputs, targets, z_score, PAPER)
        rolls = np.concatenate([np.asarray(x, dtype=np.float64) for x in rescale(remove(outputs, thresholds))])
        notes.extend(note_estimates(rolls, run_note_spans(concatenate_segments(targets, "velocity_roll"))))
    return pooled(notes)["MAE"]


def excerpt_counts(excerpt: ExcerptPairs) -> dict[str, float]:
    """Counts behind the ablation for one excerpt (paper pairs unless said otherwise); all summable."""
    outputs, targets = excerpt.pairs[PAPER]
    velocity = concatenate_segments(targets, "velocity_roll")  # (T, 88)
    onsets = concatenate_segments(targets, "onset_roll")  # (T, 88)
    frame = concatenate_segments(targets, "frame_roll")  # (T, 88)
    estimation = concatenate_segments(outputs, "velocity_output")  # (T, 88)
    spans = run_note_spans(velocity)
    raw, post = variant_notes(VARIANTS[0], excerpt)
    estimates = np.array([n["estimate"] for n in raw])
    post_estimates = np.array([n["estimate"] for n in post])
    published, per_segment = pedal_flags(spans, targets)
    thresholds = segment_thresholds(outputs, targets, DEFAULT_Z_SCORE, PAPER)
    difference = np.abs(estimation - concatenate_segments(excerpt.pairs[CORRECTED][0], "velocity_output"))
    return {
        "segments": len(targets),
        "merged_restrikes": len(run_note_spans(velocity, onsets)) - len(spans),
        "dropped_edge_notes": len(run_note_spans(velocity, keep_edges=True)) - len(spans),
        "whole_piece_keys": int(np.count_nonzero((velocity != 0).all(axis=0))),
        "copied_onsets": copied_onsets(targets),
        "paper_onsets": int(np.count_nonzero(onsets > 0)),
        "corrected_notes": len(variant_spans(VARIANTS[-1], excerpt)),
        "support_cells_differing": int(np.count_nonzero((velocity == 0) != (frame == 0))),
        "cells": velocity.size,
        "estimates_above_127": int(np.count_nonzero(estimates > MIDI_VELOCITY_MAX)),
        "estimates_zero": int(np.count_nonzero(estimates == 0)),
        "post_estimates_above_127": int(np.count_nonzero(post_estimates > MIDI_VELOCITY_MAX)),
        "post_estimates_zero": int(np.count_nonzero(post_estimates == 0)),
        "pedal_flags_published": int(published.sum()),
        "pedal_flags_per_segment": int(per_segment.sum()),
        "pedal_flags_differing": int(np.count_nonzero(published != per_segment)),
        "no_threshold_segments": sum(t is None for t in thresholds),
        "batch_items_above_1": sum(np.shape(d["velocity_output"])[0] != 1 for d in outputs),
        "output_abs_diff_sum": float(difference.sum()) * VELOCITY_SCALE,
        "g_means_frames_sum": float(np.sum(noise_check(outputs)[0])),
        "g_means_keys_sum": float(sum(np.mean(np.asarray(d["velocity_output"])[..., 80:88]) for d in outputs)),
    }


def measured_facts(excerpts: list[ExcerptPairs]) -> dict:
    """`excerpt_counts` summed over the excerpts, plus means and the MAE deltas of quirks 10 and 15."""
    per_excerpt = [excerpt_counts(excerpt) for excerpt in excerpts]
    facts = {key: sum(counts[key] for counts in per_excerpt) for key in per_excerpt[0]}
    facts["excerpts"] = len(excerpts)
    facts["output_mean_abs_diff"] = facts.pop("output_abs_diff_sum") / facts["cells"]
    facts["g_means_frames"] = facts.pop("g_means_frames_sum") / facts["segments"]  # published: frames 80..87
    facts["g_means_keys"] = facts.pop("g_means_keys_sum") / facts["segments"]  # keys 80..87
    paper_mae = paper_post_mae(excerpts)
    facts["delta_mae_float32_rescale"] = paper_post_mae(excerpts, rescale=rescale_linear01_float32) - paper_mae
    facts["delta_mae_strict_threshold"] = paper_post_mae(excerpts, remove=remove_noise_strictly_below) - paper_mae
    return facts


def audio_scale_effect(checkpoint: Path, h5_path: Path) -> float:
    """Max |difference| of the model's normalised log-mel (first segment) between int16/32767 and /32768."""
    import torch

    from model.diffvel import load_diffvel
    from utils.data.smd import INT16_SCALE, PAPER_INT16_SCALE, read_excerpt

    model = load_diffvel(checkpoint, map_location="cpu").eval()
    waveform = read_excerpt(h5_path).waveform[:SEGMENT_SAMPLES].astype(np.float64)  # (<= 327680,)
    with torch.no_grad():
        paper = model.spectrogram(torch.from_numpy((waveform / PAPER_INT16_SCALE).astype(np.float32))[None])
        corrected = model.spectrogram(torch.from_numpy((waveform / INT16_SCALE).astype(np.float32))[None])
    return float((paper - corrected).abs().max())


# ---------------------------------------------------------------------------------------------
# Loading the demo's outputs
# ---------------------------------------------------------------------------------------------

def pair_shift(path: Path) -> str:
    """The shift field of `<excerpt>_pair_<shift>_<time>.npy`."""
    return Path(path).name.split("_pair_", 1)[1].split("_")[0]


def _newest_pairs(pair_dir: Path) -> dict[tuple[str, str], Path]:
    """{(excerpt, shift): newest pair file} of a folder (file names sort by time)."""
    found = {}
    for path in list_pair_files(pair_dir):
        found[(excerpt_name(path), pair_shift(path))] = path
    return found


def paper_key_down_roll(h5_path: Path, n_segments: int) -> np.ndarray:
    """(n_segments * 640, 88) paper velocity labels without the pedal extension (31 fps + 640 copy)."""
    from utils.data.smd import adjust_636_to_640, read_excerpt
    from utils.data.target_processor import TargetProcessor

    excerpt = read_excerpt(h5_path)
    processor = TargetProcessor(SEGMENT_SECONDS, PAPER_TEST_FPS)
    rolls, start_time = [], 0  # start times accumulated from int 0, as in paper_segments
    for _ in range(n_segments):
        targets, _, _ = processor.process(start_time, excerpt.midi_event_times, excerpt.midi_events,
                                          extend_pedal=False, note_shift=0)
        batch = {key: np.array([roll], dtype=np.float32) for key, roll in targets.items()}
        rolls.append(adjust_636_to_640(batch)["velocity_roll"][0])  # (640, 88)
        start_time += SEGMENT_SECONDS
    return np.concatenate(rolls).astype(np.float64)


def load_demo_pairs(demo_out: Path) -> dict[str, list[ExcerptPairs]]:
    """{shift: [ExcerptPairs]} from DIR/pairs and DIR/pairs/corrected (key-down rolls when the .h5 exist)."""
    demo_out = Path(demo_out)
    paper_files = _newest_pairs(demo_out / "pairs")
    corrected_files = _newest_pairs(demo_out / "pairs" / "corrected")
    missing = sorted(set(paper_files) ^ set(corrected_files))
    if missing:
        name, shift = missing[0]
        side = "corrected" if (name, shift) in paper_files else "paper"
        raise QuirksInputError(f"{demo_out / 'pairs'}: {name} (shift {shift}) has no {side} pair file")
    by_shift: dict[str, list[ExcerptPairs]] = {}
    for (name, shift), paper_path in sorted(paper_files.items()):
        pairs = {PAPER: load_pairs(paper_path), CORRECTED: load_pairs(corrected_files[(name, shift)])}
        n_paper, n_corrected = len(pairs[PAPER][0]), len(pairs[CORRECTED][0])
        if n_paper != n_corrected:
            raise QuirksInputError(
                f"{paper_path.name}: {n_paper} segments but its corrected pair file has {n_corrected}")
        h5_path = demo_out / "data" / "smd_h5" / f"{name}.h5"
        key_down = paper_key_down_roll(h5_path, n_paper) if h5_path.is_file() else None
        by_shift.setdefault(shift, []).append(ExcerptPairs(name, shift, pairs, key_down))
    return by_shift


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Effect of each published evaluation quirk on the demo's numbers")
    parser.add_argument("--demo-out", type=Path, required=True, help="the demo's output folder")
    parser.add_argument("--out", type=Path, default=None, help="Markdown report (default DEMO_OUT/quirks.md); "
                        "the CSV goes beside it with the .csv suffix")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("utils.evaluation.postprocess").setLevel(logging.ERROR)  # segments without a threshold are counted
    out = args.out or args.demo_out / "quirks.md"
    try:
        import torch

        torch.set_num_threads(1)
        by_shift = load_demo_pairs(args.demo_out)
        tables = {shift: ablation_rows(excerpts) for shift, excerpts in by_shift.items()}
        facts = {shift: measured_facts(excerpts) for shift, excerpts in by_shift.items()}
        checkpoints = sorted(args.demo_out.glob("runs/*/version_*/checkpoints/last.ckpt"))
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
