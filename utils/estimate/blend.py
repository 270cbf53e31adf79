"""`method=blend`: the network's velocity of each note blended with the loudness regression's.

    velocity = round(w x network + (1 - w) x loudness), clipped to 1..127

with w = `blend_weight`. The network reads timbre and the score as well as the level, and is the better
of the two on recordings of its training piano; the loudness regression reads only the level at the
onset, and is the better on a piano unlike the training SoundFont. Their errors differ enough that the
blend beats the network alone on both kinds of validation recordings. The default weight
(config/estimate.yaml) is the one with the lowest mean error over the two validation sets val13 (the
training piano) and valvoices (two voices no training used), chosen before any test set was scored
(docs/experiments.md, "Run B").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from utils.conventions import MIDI_VELOCITY_MAX, MIDI_VELOCITY_MIN
from utils.estimate.errors import EstimateError
from utils.estimate.loudness import LoudnessRegression


@dataclass(frozen=True)
class Blend:
    """A network (DiffVel or DiffVel+) and a loudness fit, and the network's weight w in [0, 1]."""

    network: object
    loudness: LoudnessRegression
    weight: float


def check_weight(weight) -> float:
    """`weight` as a float in [0, 1]; EstimateError naming the key otherwise."""
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise EstimateError(f"estimate_velocity: blend_weight={weight} must be a number in [0, 1]") from None
    if not 0.0 <= value <= 1.0:
        raise EstimateError(f"estimate_velocity: blend_weight={weight} must be in [0, 1]")
    return value


def blend_velocities(network: np.ndarray, loudness: np.ndarray, weight: float) -> np.ndarray:
    """(J,) MIDI velocities: round(weight x network + (1 - weight) x loudness), clipped to 1..127."""
    mixed = weight * np.asarray(network, dtype=np.float64) + (1.0 - weight) * np.asarray(loudness, dtype=np.float64)
    return np.clip(np.rint(mixed), MIDI_VELOCITY_MIN, MIDI_VELOCITY_MAX).astype(np.int64)
