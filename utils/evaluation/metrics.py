"""Note-level velocity evaluation: the paper's protocol (faithful, quirks kept) and a corrected one.

Both protocols take the pair lists `run_test.py` produces: one output dict per segment
(`velocity_output`: (1, 640, 88) in the model's 0..1 scale) and one target dict per segment
(`velocity_roll`, `frame_roll`, `onset_roll`: (1, 640, 88); `pedal_frame_roll`: (1, 1272)).

`paper_metrics` reproduces the published `gt_to_note_list` + `classification_error` +
`error_on_correct_detection` number for number (see docs/evaluation.md for every quirk it keeps).
`corrected_metrics` evaluates the true notes (`target["notes"]`), clips velocities to 1..127 and
adds mir_eval's velocity-aware note F1. `evaluate(..., protocol=...)` picks one.
"""
from __future__ import annotations

import logging

import numpy as np

from utils.conventions import FRAMES_PER_SECOND, MIN_MIDI, N_KEYS, VELOCITY_SCALE

logger = logging.getLogger(__name__)

PAPER = "paper"
CORRECTED = "corrected"
PROTOCOLS = (PAPER, CORRECTED)

DETECTION_THRESHOLD = 1e-4  # an output above this counts as "sounding" (published constant)
MIDI_VELOCITY_MIN, MIDI_VELOCITY_MAX = 1, 127

# The per-excerpt CSV of run_test.py: the published header, with its three positive-class frame
# scores (published names precision_support, recall_support, f1_support) given their real names.
RUN_TEST_COLUMNS = (
    "g_means", "g_stds", "test_h5", "frame_max_error", "std_max_error", "mean_error_correct_detection",
    "std_error_correct_detection", "average_precision_score", "f1_score", "precision_score",
    "recall_score", "frame_precision", "frame_recall", "frame_f1",
)

SUMMARY_KEYS = (
    "frame_max_error", "std_max_error", "mean_error_correct_detection", "std_error_correct_detection",
    "average_precision_score", "f1_score", "precision_score", "recall_score",
    "frame_precision", "frame_recall", "frame_f1", "n_notes",
)


def first_item(value, name: str, keyed: bool = True, dtype=np.float64) -> np.ndarray:
    """The first batch item of a stored roll: (1, T, 88) or (T, 88) -> (T, 88); keyed=False: (1, P) -> (P,).

    The published loop `for nth_frame, _ in enumerate(output_dict)` runs once per KEY of the
    output dict (one key: `velocity_output`), so only item 0 of each segment is ever read.
    dtype=None keeps the stored dtype.
    """
    array = np.asarray(value[0] if isinstance(value, (list, tuple)) else value, dtype=dtype)
    if keyed:
        if array.ndim == 3:
            array = array[0]
        if array.ndim != 2 or array.shape[1] != N_KEYS:
            raise ValueError(f"{name}: expected (1, frames, {N_KEYS}) rolls, got shape {np.shape(value)}")
    else:
        if array.ndim == 2:
            array = array[0]
        if array.ndim != 1:
            raise ValueError(f"{name}: expected a (1, frames) roll, got shape {np.shape(value)}")
    return array


def concatenate_segments(dict_list: list[dict], key: str, keyed: bool = True) -> np.ndarray:
    """Concatenate item 0 of `key` over all segments along time: (n_segments * T, 88), or (n * P,) if not keyed."""
    if len(dict_list) == 0:
        raise ValueError("no segments to evaluate (empty pair list)")
    missing = [i for i, d in enumerate(dict_list) if key not in d]
    if missing:
        raise ValueError(f"segment {missing[0]}: no '{key}' in its dict")
    return np.concatenate([first_item(d[key], key, keyed) for d in dict_list], axis=0)


def mean_std(values) -> tuple[float, float]:
    """Mean and population std of `values`; (nan, nan) for an empty list instead of a warning."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values))


# ---------------------------------------------------------------------------------------------
# Frame-level classification (sklearn's binary metrics, computed from counts without warnings)
# ---------------------------------------------------------------------------------------------

def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, 0.0 when the denominator is 0 (sklearn's zero_division default)."""
    return float(numerator) / float(denominator) if denominator > 0 else 0.0


def classification_scores(truth_active: np.ndarray, predicted_active: np.ndarray) -> dict:
    """Frame-level scores of boolean cells, equal to the sklearn calls of the published code.

    `average_precision_score` (binary predictions), macro `f1_score`/`precision_score`/
    `recall_score` over the labels present in truth or prediction, and the positive-class
    `frame_precision`/`frame_recall`/`frame_f1` (published: precision_recall_fscore_support()[i][1]).
    Undefined ratios are 0.0 (sklearn's zero_division); the published code crashed with
    IndexError when no cell was active in truth and prediction, here the positive class scores 0.
    """
    truth = np.asarray(truth_active, dtype=bool).ravel()
    predicted = np.asarray(predicted_active, dtype=bool).ravel()
    n_cells = truth.size
    tp = int(np.count_nonzero(truth & predicted))
    fp = int(np.count_nonzero(~truth & predicted))
    fn = int(np.count_nonzero(truth & ~predicted))
    tn = n_cells - tp - fp - fn
    positives = tp + fn

    per_label = {
        1: (_ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)),
        0: (_ratio(tn, tn + fn), _ratio(tn, tn + fp), _ratio(2 * tn, 2 * tn + fn + fp)),
    }
    # sklearn averages over the labels present in truth or prediction.
    present = [label for label, cells in ((0, tn + fp + fn), (1, tp + fp + fn)) if cells > 0]
    macro = [float(np.mean([per_label[label][i] for label in present])) if present else 0.0
             for i in range(3)]

    # Average precision of a two-level score: thresholds "predicted" then "everything".
    if positives == 0:
        average_precision = 0.0
    else:
        base_rate = positives / n_cells
        if tp + fp > 0 and fn + tn > 0:
            recall_at_1 = tp / positives
            average_precision = recall_at_1 * (tp / (tp + fp)) + (1.0 - recall_at_1) * base_rate
        else:  # a single threshold: all or nothing predicted
            average_precision = base_rate

    return {
        "average_precision_score": float(average_precision),
        "f1_score": macro[2],
        "precision_score": macro[0],
        "recall_score": macro[1],
        "frame_precision": per_label[1][0],
        "frame_recall": per_label[1][1],
        "frame_f1": per_label[1][2],
    }


# ---------------------------------------------------------------------------------------------
# Paper protocol
# ---------------------------------------------------------------------------------------------

def paper_note_spans(velocity_roll: np.ndarray) -> list[tuple[int, int, int, float]]:
    """The published `get_midi_sound_profile`: notes as runs of non-zero velocity frames.

    velocity_roll: (T, 88) concatenated ground truth. Returns (key, start, end, velocity) in key
    order then time, velocity = the roll at the run's first frame. Kept quirks: adjacent notes of a
    key (a re-strike with no silent frame) merge into one; a run touching the first or the last
    frame of the piece is dropped (`np.delete(ranges, [0, -1])` assumes silence at both ends). The
    published code raised IndexError for a key sounding over the whole piece; here it has no note.
    """
    notes = []
    for key in range(velocity_roll.shape[1]):
        silent = np.concatenate(([0], (velocity_roll[:, key] == 0).astype(np.int8), [0]))
        edges = np.flatnonzero(np.abs(np.diff(silent)) == 1)  # [silence start, silence end, ...]
        inner = edges[1:-1]  # drop the first silence start and the last silence end
        for start, end in inner.reshape(-1, 2):
            notes.append((key, int(start), int(end), float(velocity_roll[start, key])))
    return notes


def paper_metrics(output_dict_list: list[dict], target_dict_list: list[dict]) -> dict:
    """The published evaluation (run_test.py / post_process_gnoise.py) of one excerpt.

    Returns SUMMARY_KEYS plus `notes`: one dict per note, in the published visiting order, with
    pitch (key index 0..87), start, end (frames of the concatenated piece), velocity (ground truth),
    estimate (128 * max output over the note's frames, outputs <= 1e-4 set to 0), error,
    detected (published `classification_check`), pedal (`pedal_check`), simultaneous_notes.
    Empty means (no note, no detected note) are nan.
    """
    score = concatenate_segments(target_dict_list, "velocity_roll")  # (T, 88)
    estimation = concatenate_segments(output_dict_list, "velocity_output")  # (T, 88)
    if score.shape != estimation.shape:
        raise ValueError(f"ground truth {score.shape} and estimate {estimation.shape} differ in shape")
    pedal = (concatenate_segments(target_dict_list, "pedal_frame_roll", keyed=False)
             if all("pedal_frame_roll" in d for d in target_dict_list) else np.zeros(0))  # (n * 1272,)

    result = classification_scores(score > 0, estimation > DETECTION_THRESHOLD)
    clipped = np.where(estimation <= DETECTION_THRESHOLD, 0.0, estimation)  # (T, 88)
    sounding_keys = score != 0  # (T, 88)

    notes = []
    for key, start, end, velocity in paper_note_spans(score):
        span = clipped[start:end, key]
        estimate = float(span.max()) * VELOCITY_SCALE
        notes.append({
            "pitch": key, "start": start, "end": end, "velocity": velocity,
            "estimate": estimate, "error": abs(estimate - velocity),
            "detected": bool(span.sum() > 0),
            "pedal": bool(pedal[start:end].sum() > 0),
            "simultaneous_notes": int(np.count_nonzero(sounding_keys[start:end].any(axis=0))),
        })
    result["frame_max_error"], result["std_max_error"] = mean_std([n["error"] for n in notes])
    result["mean_error_correct_detection"], result["std_error_correct_detection"] = mean_std(
        [n["error"] for n in notes if n["detected"]])
    result["n_notes"] = len(notes)
    result["notes"] = notes
    result["protocol"] = PAPER
    return result


# ---------------------------------------------------------------------------------------------
# Corrected protocol
# ---------------------------------------------------------------------------------------------

def _segment_frames(output_dict_list: list[dict]) -> list[int]:
    """Number of frames of each segment's output."""
    return [first_item(d["velocity_output"], "velocity_output").shape[0] for d in output_dict_list]


def notes_from_targets(target_dict_list: list[dict], segment_frames: list[int]) -> list[tuple[int, int, int, float]]:
    """True notes (key, start, end, velocity) in piece frames from each segment's `target["notes"]`.

    `notes` rows are (key_index 0..87, onset_frame, offset_frame, velocity 1..127) in frames of the
    segment (offset exclusive, may run past the segment). A note belongs to the segment holding
    its onset (0 <= onset < segment frames), so a note crossing a boundary counts once; a note
    shorter than a frame gets one frame.
    """
    total = sum(segment_frames)
    notes = []
    offset_frames = 0
    for index, (target, n_frames) in enumerate(zip(target_dict_list, segment_frames)):
        rows = np.asarray(target["notes"], dtype=np.float64).reshape(-1, 4)
        for key, onset, offset, velocity in rows:
            if not 0 <= key < N_KEYS:
                raise ValueError(f"segment {index}: note key index {key:g} outside 0..{N_KEYS - 1}")
            onset_frame = int(round(onset))
            if not 0 <= onset_frame < n_frames:
                continue
            start = offset_frames + onset_frame
            end = min(total, offset_frames + max(int(round(offset)), onset_frame + 1))
            notes.append((int(key), start, end, float(velocity)))
        offset_frames += n_frames
    return sorted(notes, key=lambda note: (note[1], note[0]))


def notes_from_onset_roll(target_dict_list: list[dict]) -> list[tuple[int, int, int, float]]:
    """Fallback notes (key, start, end, velocity) when targets carry no `notes`.

    Every onset cell starts a note, so re-strikes and a note at frame 0 count. The note lasts
    while the frame roll stays active and no new onset of that key starts; its velocity is the
    velocity roll (MIDI units, as in the authors' pair files) at the onset.
    """
    onset = concatenate_segments(target_dict_list, "onset_roll") > 0  # (T, 88)
    frame = concatenate_segments(target_dict_list, "frame_roll") > 0  # (T, 88)
    velocity = concatenate_segments(target_dict_list, "velocity_roll")  # (T, 88)
    n_frames = onset.shape[0]
    notes = []
    for start, key in zip(*np.nonzero(onset)):
        end = start + 1
        while end < n_frames and frame[end, key] and not onset[end, key]:
            end += 1
        notes.append((int(key), int(start), int(end), float(velocity[start, key])))
    return notes


def velocity_note_scores(notes: list[dict]) -> dict:
    """mir_eval's velocity-aware note precision/recall/F1 of the true notes with estimated velocities.

    Reference and estimate share intervals (seconds at FRAMES_PER_SECOND) and pitches, so this
    scores only the velocities (onset-only matching, mir_eval default tolerances).
    """
    import mir_eval

    if not notes:
        return {"velocity_precision": float("nan"), "velocity_recall": float("nan"),
                "velocity_f1": float("nan")}
    intervals = np.array([[n["start"], n["end"]] for n in notes], dtype=np.float64) / FRAMES_PER_SECOND
    pitches = mir_eval.util.midi_to_hz(np.array([n["pitch"] + MIN_MIDI for n in notes], dtype=np.float64))
    true_velocities = np.array([n["velocity"] for n in notes], dtype=np.float64)
    estimated_velocities = np.array([n["estimate"] for n in notes], dtype=np.float64)
    precision, recall, f1, _ = mir_eval.transcription_velocity.precision_recall_f1_overlap(
        intervals, pitches, true_velocities, intervals, pitches, estimated_velocities, offset_ratio=None)
    return {"velocity_precision": float(precision), "velocity_recall": float(recall),
            "velocity_f1": float(f1)}


def corrected_metrics(output_dict_list: list[dict], target_dict_list: list[dict]) -> dict:
    """The corrected evaluation of one excerpt.

    Notes come from `target["notes"]` (falling back, with a warning, to the onset roll); the
    estimate is 128 * max output over the note's frames (outputs <= 1e-4 set to 0), clipped to
    1..127; frame scores use the score frame roll as truth; velocity_precision/recall/f1 come from
    mir_eval. Same keys as `paper_metrics`, plus `note_recall`, `notes_source` and velocity_*.
    """
    estimation = concatenate_segments(output_dict_list, "velocity_output")  # (T, 88)
    frame_truth = concatenate_segments(target_dict_list, "frame_roll")  # (T, 88)
    if frame_truth.shape != estimation.shape:
        raise ValueError(f"frame roll {frame_truth.shape} and estimate {estimation.shape} differ in shape")
    if all("notes" in d for d in target_dict_list):
        spans = notes_from_targets(target_dict_list, _segment_frames(output_dict_list))
        source = "target_notes"
    else:
        logger.warning("targets carry no 'notes': deriving the true notes from the onset roll")
        spans = notes_from_onset_roll(target_dict_list)
        source = "onset_roll"

    result = classification_scores(frame_truth > 0, estimation > DETECTION_THRESHOLD)
    clipped = np.where(estimation <= DETECTION_THRESHOLD, 0.0, estimation)  # (T, 88)
    notes = []
    for key, start, end, velocity in spans:
        span = clipped[start:end, key]
        raw_estimate = float(span.max()) * VELOCITY_SCALE
        estimate = float(np.clip(raw_estimate, MIDI_VELOCITY_MIN, MIDI_VELOCITY_MAX))
        notes.append({
            "pitch": key, "start": start, "end": end, "velocity": velocity,
            "estimate": estimate, "raw_estimate": raw_estimate, "error": abs(estimate - velocity),
            "detected": bool(span.sum() > 0),
        })
    result["frame_max_error"], result["std_max_error"] = mean_std([n["error"] for n in notes])
    result["mean_error_correct_detection"], result["std_error_correct_detection"] = mean_std(
        [n["error"] for n in notes if n["detected"]])
    result["n_notes"] = len(notes)
    result["note_recall"] = (sum(n["detected"] for n in notes) / len(notes)) if notes else float("nan")
    result.update(velocity_note_scores(notes))
    result["notes"] = notes
    result["notes_source"] = source
    result["protocol"] = CORRECTED
    return result


def evaluate(output_dict_list: list[dict], target_dict_list: list[dict], protocol: str = PAPER) -> dict:
    """Evaluate one excerpt with the `paper` or `corrected` protocol."""
    if protocol == PAPER:
        return paper_metrics(output_dict_list, target_dict_list)
    if protocol == CORRECTED:
        return corrected_metrics(output_dict_list, target_dict_list)
    raise ValueError(f"unknown protocol {protocol!r}: expected one of {PROTOCOLS}")
