"""Consistency checks of an SMD excerpt's MIDI events (used by utils/data/smd.py when reading and writing).

Every note and control event must carry whole numbers in 0..127 (a note's velocity 1..127, 0 = note
off), and the MIDI must not go on after the audio: a note starting at or after the end of the audio
would be scored against silence.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from utils.data.target_processor import parse_message

MIDI_AFTER_AUDIO_TOLERANCE = 1.0  # seconds a release or pedal event may follow the end of the audio
_FIELDS = {"note_on": ("note", "velocity"), "note_off": ("note", "velocity"), "control_change": ("control", "value")}


def _event_values(index: int, event: str) -> tuple[str, dict[str, int]]:
    """(type, integer fields) of a note or control event; ValueError naming the event if unparsable."""
    kind, fields = parse_message(event)
    values = {}
    for key in _FIELDS.get(kind, ()):
        text = fields.get(key)
        if text is None or not text.isdigit() or int(text) > 127:
            hint = " (1..127 for a note, 0 = note off)" if key == "velocity" else ""
            raise ValueError(f"midi_event {index} ({event.strip()!r}): {key}={text} is not a whole number in 0..127{hint}")
        values[key] = int(text)
    return kind, values


def note_onsets(midi_events: Sequence[str], midi_event_times: np.ndarray) -> np.ndarray:
    """Times (s) of the note_on events with velocity > 0, after checking every note and control event."""
    onsets = []
    for index, (event, time) in enumerate(zip(midi_events, midi_event_times)):
        kind, values = _event_values(index, event)
        if kind == "note_on" and values["velocity"] > 0:
            onsets.append(time)
    return np.asarray(onsets, dtype=np.float64)


def length_mismatch(audio_seconds: float, onsets: np.ndarray, midi_event_times: np.ndarray) -> str | None:
    """A one-line problem when the MIDI goes on after the audio has ended, else None."""
    midi_end = float(np.max(midi_event_times))
    if onsets.max() < audio_seconds and midi_end <= audio_seconds + MIDI_AFTER_AUDIO_TOLERANCE:
        return None
    return (f"audio lasts {audio_seconds:.2f} s but the MIDI {midi_end:.2f} s (last note at {onsets.max():.2f} s); "
            "pack with utils.pack_smd --trim-midi to drop the notes after the audio")
