"""Note-level primitives of both protocols: which true notes are scored, and each note's estimate.

Each published quirk that concerns the notes is one switch here, so the paper protocol, the
corrected protocol and the quirk ablation (utils/analysis/quirks.py) all run the same code:

* which notes (`rule` of `true_note_spans`): RUNS (published: runs of non-zero ground-truth frames,
  re-strikes merged, runs touching the piece's ends dropped), RUNS_SPLIT (runs cut at each onset),
  RUNS_EDGES (edge runs kept), EVENTS (the MIDI notes: `target["notes"]`, else the onset roll);
* the note statistic (`statistic` of `note_estimates`): SPAN_MAX (published: max over the
  pedal-extended span), ONSET_VALUE (the onset frame), KEY_DOWN_MAX (spans cut by `key_down_spans`);
* `clip`: estimates clipped to 1..127 (corrected).

Notes are (key, start, end, velocity) tuples in frames of the concatenated piece (end exclusive).
"""
from __future__ import annotations

import numpy as np

from utils.conventions import MIDI_VELOCITY_MAX, MIDI_VELOCITY_MIN, N_KEYS, VELOCITY_SCALE
from utils.evaluation.rolls import concatenate_segments, first_item

DETECTION_THRESHOLD = 1e-4  # an output above this counts as "sounding" (published constant)

RUNS = "runs"  # published: runs of non-zero ground-truth frames; re-strikes merge, edge runs dropped
RUNS_SPLIT = "runs_split"  # runs cut at every onset cell: each re-strike is its own note
RUNS_EDGES = "runs_edges"  # runs, keeping those touching the first or last frame of the piece
EVENTS = "events"  # the MIDI notes: target["notes"] (corrected pairs) or the onset roll (paper pairs)

SPAN_MAX = "span_max"  # published: max output over the (pedal-extended) note span
ONSET_VALUE = "onset_value"  # the output at the onset frame
KEY_DOWN_MAX = "key_down_max"  # max output over the span cut at the key release (no sustain tail)

Note = tuple[int, int, int, float]


def paper_note_spans(velocity_roll: np.ndarray, onset_roll: np.ndarray | None = None,
                     keep_edges: bool = False) -> list[Note]:
    """The published `get_midi_sound_profile`: notes as runs of non-zero frames of a (T, 88) velocity roll.

    Returns (key, start, end, velocity) in key order then time, velocity = the roll at the note's
    first frame. Kept quirks (switches): adjacent notes of a key (a re-strike with no silent frame)
    merge into one, unless `onset_roll` (T, 88) is given, which cuts a run at every onset cell after
    its first frame; a run touching the first or the last frame of the piece is dropped
    (`np.delete(ranges, [0, -1])` assumes silence at both ends) unless `keep_edges`. The published
    code raised IndexError for a key sounding over the whole piece; here it has no note.
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


def notes_from_targets(target_dict_list: list[dict], segment_frames: list[int]) -> list[Note]:
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


def notes_from_onset_roll(target_dict_list: list[dict]) -> list[Note]:
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


def has_target_notes(target_dict_list: list[dict]) -> bool:
    """True when every target dict carries its `notes` (corrected pairs)."""
    return all("notes" in d for d in target_dict_list)


def event_notes(output_dict_list: list[dict], target_dict_list: list[dict]) -> list[Note]:
    """The MIDI notes: from `target["notes"]` when every segment has them, else from the onset roll."""
    if has_target_notes(target_dict_list):
        frames = [first_item(d["velocity_output"], "velocity_output").shape[0] for d in output_dict_list]
        return notes_from_targets(target_dict_list, frames)
    return notes_from_onset_roll(target_dict_list)


def true_note_spans(output_dict_list: list[dict], target_dict_list: list[dict], rule: str = RUNS) -> list[Note]:
    """The true notes of one excerpt under a note rule (RUNS, RUNS_SPLIT, RUNS_EDGES or EVENTS)."""
    if rule == EVENTS:
        return event_notes(output_dict_list, target_dict_list)
    velocity = concatenate_segments(target_dict_list, "velocity_roll")  # (T, 88)
    if rule == RUNS_SPLIT:
        return paper_note_spans(velocity, concatenate_segments(target_dict_list, "onset_roll"))
    if rule not in (RUNS, RUNS_EDGES):
        raise ValueError(f"unknown note rule {rule!r}")
    return paper_note_spans(velocity, keep_edges=rule == RUNS_EDGES)


def key_down_spans(spans: list[Note], key_down_roll: np.ndarray) -> list[Note]:
    """The same notes with each span cut where the key-down roll (T, 88) of its key first falls silent.

    A span keeps at least its first frame and never grows.
    """
    cut = []
    for key, start, end, velocity in spans:
        silent = np.flatnonzero(key_down_roll[start:end, key] == 0)
        stop = start + (int(silent[0]) if silent.size else end - start)
        cut.append((key, start, max(stop, start + 1), velocity))
    return cut


def note_estimates(outputs: np.ndarray, spans: list[Note], statistic: str = SPAN_MAX, clip: bool = False) -> list[dict]:
    """One dict per note (pitch, start, end, velocity, estimate, error, detected) from (T, 88) outputs in 0..1.

    Outputs <= 1e-4 count as 0 (published); the estimate is 128 x the max over the span
    (SPAN_MAX, KEY_DOWN_MAX: the spans are cut beforehand) or the value at the first frame
    (ONSET_VALUE); `clip` clips it to 1..127 (`raw_estimate` then keeps the unclipped value).
    `detected` (published `classification_check`): some output over the span.
    """
    cleaned = np.where(outputs <= DETECTION_THRESHOLD, 0.0, outputs)  # (T, 88)
    notes = []
    for key, start, end, velocity in spans:
        values = cleaned[start:end, key]
        estimate = float(values[0] if statistic == ONSET_VALUE else values.max()) * VELOCITY_SCALE
        note = {"pitch": key, "start": start, "end": end, "velocity": velocity, "estimate": estimate}
        if clip:
            note["raw_estimate"] = estimate
            note["estimate"] = estimate = float(np.clip(estimate, MIDI_VELOCITY_MIN, MIDI_VELOCITY_MAX))
        note["error"] = abs(estimate - velocity)
        note["detected"] = bool(values.sum() > 0)
        notes.append(note)
    return notes
