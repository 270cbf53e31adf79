"""The note rule: one velocity per note from the model's output over that note.

The model's velocity roll (640, 88) in [0, 1] holds, for DiffVel+ (absolute targets), velocity / 128
on every frame of a note's sounding span (onset frame to the pedal-extended release), as in training.
A rule reduces the output over those frames to one number; 128 x that number, rounded and clipped to
1..127, is the note's new MIDI velocity. Measured with `python -m bench.note_rule` (docs/estimate.md)
on the shipped checkpoint and the demo's synthetic test set, head is best (MAE 8.15 against 8.51 mean,
8.59 median, 9.10 max, 9.41 onset), so it is DEFAULT_RULE. The paper's evaluation rule is max.
"""
from __future__ import annotations

import numpy as np

from utils.conventions import MIDI_VELOCITY_MAX, MIDI_VELOCITY_MIN, VELOCITY_SCALE

HEAD_FRAMES = 4  # the "head" rule averages the first 4 frames (128 ms) of a note


def _head(values: np.ndarray) -> float:
    return float(np.mean(values[:HEAD_FRAMES]))


RULES = {
    "onset": lambda values: float(values[0]),  # the onset frame
    "head": _head,  # mean of the first HEAD_FRAMES frames
    "max": lambda values: float(np.max(values)),
    "mean": lambda values: float(np.mean(values)),
    "median": lambda values: float(np.median(values)),
}
DEFAULT_RULE = "head"


def note_values(roll: np.ndarray, key: int, first: int, last: int) -> np.ndarray:
    """Model output of one key over frames [first, last) of a segment's roll (640, 88) -> (n,), n >= 1."""
    last = max(last, first + 1)
    return roll[first:last, key]


def resolve_rule(rule: str | None) -> str:
    """The rule named (None: DEFAULT_RULE); ValueError for an unknown name."""
    rule = DEFAULT_RULE if rule is None else rule
    if rule not in RULES:
        raise ValueError(f"note_rule={rule!r} is not one of {', '.join(RULES)}")
    return rule


def apply_rule(rule: str | None, values: np.ndarray) -> float:
    """The rule's value in the model's [0, 1] scale."""
    return RULES[resolve_rule(rule)](values)


def to_midi_velocity(value: float) -> int:
    """Model scale -> MIDI velocity 1..127 (0 would turn the note_on into a note-off)."""
    return int(np.clip(round(value * VELOCITY_SCALE), MIDI_VELOCITY_MIN, MIDI_VELOCITY_MAX))
