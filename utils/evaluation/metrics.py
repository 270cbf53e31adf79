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

from utils.conventions import FRAMES_PER_SECOND, MIN_MIDI
from utils.evaluation.notes import (DETECTION_THRESHOLD, EVENTS, RUNS, has_target_notes, note_estimates,
                                    paper_note_spans, true_note_spans)
from utils.evaluation.protocols import CORRECTED, PAPER, check_protocol
from utils.evaluation.rolls import concatenate_segments, mean_std

__all__ = ["SUMMARY_KEYS", "classification_scores", "corrected_metrics", "evaluate", "paper_metrics",
           "paper_note_spans", "velocity_note_scores"]

logger = logging.getLogger(__name__)

SUMMARY_KEYS = (
    "frame_max_error", "std_max_error", "mean_error_correct_detection", "std_error_correct_detection",
    "average_precision_score", "f1_score", "precision_score", "recall_score",
    "frame_precision", "frame_recall", "frame_f1", "n_notes",
)


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


def error_statistics(notes: list[dict]) -> dict:
    """Mean/std of the note errors, over all notes and over the detected ones (published names), and n_notes."""
    mean, std = mean_std([n["error"] for n in notes])
    detected_mean, detected_std = mean_std([n["error"] for n in notes if n["detected"]])
    return {"frame_max_error": mean, "std_max_error": std, "mean_error_correct_detection": detected_mean,
            "std_error_correct_detection": detected_std, "n_notes": len(notes)}


# ---------------------------------------------------------------------------------------------
# Paper protocol
# ---------------------------------------------------------------------------------------------

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
    sounding_keys = score != 0  # (T, 88)
    notes = note_estimates(estimation, true_note_spans(output_dict_list, target_dict_list, RUNS))
    for note in notes:
        start, end = note["start"], note["end"]
        note["pedal"] = bool(pedal[start:end].sum() > 0)
        note["simultaneous_notes"] = int(np.count_nonzero(sounding_keys[start:end].any(axis=0)))
    result.update(error_statistics(notes))
    result["notes"] = notes
    result["protocol"] = PAPER
    return result


# ---------------------------------------------------------------------------------------------
# Corrected protocol
# ---------------------------------------------------------------------------------------------

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
    if has_target_notes(target_dict_list):
        source = "target_notes"
    else:
        logger.warning("targets carry no 'notes': deriving the true notes from the onset roll")
        source = "onset_roll"
    result = classification_scores(frame_truth > 0, estimation > DETECTION_THRESHOLD)
    notes = note_estimates(estimation, true_note_spans(output_dict_list, target_dict_list, EVENTS), clip=True)
    result.update(error_statistics(notes))
    result["note_recall"] = (sum(n["detected"] for n in notes) / len(notes)) if notes else float("nan")
    result.update(velocity_note_scores(notes))
    result["notes"] = notes
    result["notes_source"] = source
    result["protocol"] = CORRECTED
    return result


def evaluate(output_dict_list: list[dict], target_dict_list: list[dict], protocol: str = PAPER) -> dict:
    """Evaluate one excerpt with the `paper` or `corrected` protocol."""
    if check_protocol(protocol) == PAPER:
        return paper_metrics(output_dict_list, target_dict_list)
    return corrected_metrics(output_dict_list, target_dict_list)
