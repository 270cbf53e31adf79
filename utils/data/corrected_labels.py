"""The corrected SMD test labels: every note of the MIDI events, re-strikes kept apart.

:func:`parse_notes` and :func:`parse_pedals` read the MIDI event strings of an SMD excerpt (see
:mod:`utils.data.target_processor`); :func:`render_segment` renders them at any frame rate with the
training (AudioLoader) frame convention.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from utils.conventions import MIN_MIDI, N_KEYS, SUSTAIN_THRESHOLD
from utils.data.target_processor import note_change, pedal_value, regression_roll


def parse_pedals(midi_events: Sequence[str], midi_event_times: np.ndarray) -> np.ndarray:
    """Sustain-pedal presses ``(P, 2)`` float64 ``(press_s, release_s)``; an unreleased press ends at
    the last event time."""
    times = np.asarray(midi_event_times, dtype=np.float64)
    presses, press = [], None
    for event, time in zip(midi_events, times):
        value = pedal_value(event)
        if value is None:
            continue
        if value >= SUSTAIN_THRESHOLD and press is None:
            press = time
        elif value < SUSTAIN_THRESHOLD and press is not None:
            presses.append((press, time))
            press = None
    if press is not None:
        presses.append((press, times[-1]))
    return np.asarray(presses, dtype=np.float64).reshape(-1, 2)


def parse_notes(midi_events: Sequence[str], midi_event_times: np.ndarray,
                extend_pedal: bool = True) -> np.ndarray:
    """All notes of the events: ``(N, 4)`` float64 rows ``(onset_s, offset_s, midi_note, velocity)``,
    sorted by onset (then pitch).

    A note ends at its key's next note-off, or at its next strike when the key is struck again
    first (no merging: every strike is a note; of two strikes at the same instant, the later one is
    kept). With ``extend_pedal`` an end that falls while the pedal is down (press <= t < release)
    moves to the release, but never past the key's next strike. Notes still open at the last event
    end there.
    """
    times = np.asarray(midi_event_times, dtype=np.float64)
    pedals = parse_pedals(midi_events, times) if extend_pedal else np.zeros((0, 2))
    open_notes: dict[int, tuple[float, int]] = {}  # midi_note -> (onset_s, velocity)
    notes: list[tuple[float, float, int, int]] = []

    def close(midi_note: int, end: float, restruck: bool) -> None:
        onset, velocity = open_notes.pop(midi_note)
        if restruck and end <= onset:
            return  # two strikes at the same instant: keep the later
        inside = (pedals[:, 0] <= end) & (end < pedals[:, 1])
        if inside.any():
            end = float(pedals[inside, 1].max())
        notes.append((onset, end, midi_note, velocity))

    for event, time in zip(midi_events, times):
        change = note_change(event)
        if change is None:
            continue
        midi_note, velocity = change
        if velocity > 0:
            if midi_note in open_notes:
                close(midi_note, float(time), restruck=True)
            open_notes[midi_note] = (float(time), velocity)
        elif midi_note in open_notes:
            close(midi_note, float(time), restruck=False)
    for midi_note in list(open_notes):
        close(midi_note, float(times[-1]), restruck=False)

    table = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    _cut_at_next_strike(table)
    return table[np.lexsort((table[:, 2], table[:, 0]))]


def _cut_at_next_strike(table: np.ndarray) -> None:
    """In place: a pedal-extended end never passes the next strike of the same key."""
    for midi_note in np.unique(table[:, 2]):
        rows = np.flatnonzero(table[:, 2] == midi_note)
        rows = rows[np.argsort(table[rows, 0], kind="stable")]
        table[rows[:-1], 1] = np.minimum(table[rows[:-1], 1], table[rows[1:], 0])


def render_segment(notes: np.ndarray, pedals: np.ndarray, start_time: float, frames: int,
                   frames_per_second: float) -> dict[str, np.ndarray]:
    """Corrected labels of the ``frames`` frames starting at ``start_time``.

    Frame of time t: ``round((t - start_time) * frames_per_second)``. A note covers frames
    ``[onset_frame, offset_frame)`` (at least one frame) clipped to the segment, as in the
    training labels. Returns float64 rolls ``onset_roll``, ``offset_roll``, ``frame_roll``,
    ``velocity_roll`` (raw 0..127), ``mask_roll`` (0 over notes struck before the segment),
    ``reg_onset_roll``, ``reg_offset_roll`` (frames, 88), ``pedal_frame_roll`` (frames,) and
    ``notes`` (N, 4) ``(key_index, onset_frame, offset_frame, velocity)`` of the notes whose onset
    frame lies in the segment (later rows overwrite earlier ones in the rolls).
    """
    shape = (frames, N_KEYS)
    onset_roll, offset_roll, frame_roll = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    velocity_roll, mask_roll = np.zeros(shape), np.ones(shape)
    reg_onset_roll, reg_offset_roll = np.ones(shape), np.ones(shape)
    segment_notes = []
    for onset, offset, midi_note, velocity in notes:
        key = int(midi_note) - MIN_MIDI
        if not 0 <= key < N_KEYS:
            continue
        onset_frame = int(round((onset - start_time) * frames_per_second))
        offset_frame = max(int(round((offset - start_time) * frames_per_second)), onset_frame + 1)
        if offset_frame <= 0 or onset_frame >= frames:
            continue
        first, last = max(onset_frame, 0), min(offset_frame, frames)
        frame_roll[first:last, key] = 1
        velocity_roll[first:last, key] = velocity
        if offset_frame < frames:
            offset_roll[offset_frame, key] = 1
            reg_offset_roll[offset_frame, key] = (offset - start_time) - offset_frame / frames_per_second
        if onset_frame < 0:
            mask_roll[first:last, key] = 0
            continue
        onset_roll[onset_frame, key] = 1
        reg_onset_roll[onset_frame, key] = (onset - start_time) - onset_frame / frames_per_second
        segment_notes.append((key, onset_frame, last, velocity))
    for key in range(N_KEYS):
        reg_onset_roll[:, key] = regression_roll(reg_onset_roll[:, key], frames_per_second)
        reg_offset_roll[:, key] = regression_roll(reg_offset_roll[:, key], frames_per_second)

    pedal_frame_roll = np.zeros(frames)
    for press, release in pedals:
        first = max(int(round((press - start_time) * frames_per_second)), 0)
        last = min(int(round((release - start_time) * frames_per_second)), frames)
        pedal_frame_roll[first:last] = 1

    return {"onset_roll": onset_roll, "offset_roll": offset_roll, "frame_roll": frame_roll,
            "velocity_roll": velocity_roll, "mask_roll": mask_roll, "reg_onset_roll": reg_onset_roll,
            "reg_offset_roll": reg_offset_roll, "pedal_frame_roll": pedal_frame_roll,
            "notes": np.asarray(segment_notes, dtype=np.float64).reshape(-1, 4)}
