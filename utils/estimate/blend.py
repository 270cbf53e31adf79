"""`method=blend` and `method=unheard`: the network's velocity of each note blended with the loudness regression's.

    velocity = round(w x network + (1 - w) x loudness), clipped to 1..127

with w = `blend_weight`. The network reads timbre and the score as well as the level, and is the better
of the two on recordings of its training piano; the loudness regression reads only the level at the
onset, and is the better on a piano unlike the training SoundFont. Their errors differ enough that the
blend beats the network alone on both kinds of validation recordings.

With `blend_level=regression` the blend of each recording is then shifted by one amount so that its mean
is the regression's: the network sets how the notes differ, the regression how loud the recording is
(`at_level`). Each method has its preset (PRESETS), chosen on validation sets before any test set was
scored: `blend`, the shipped DiffVel+ at w = 0.55 and its own level (docs/experiments.md, "Run B");
`unheard`, the DiffVel+ trained to hear only the level beside its notes reading (run ZD) at w = 0.80 and
the regression's level, for pianos the network has not heard (run ZB).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from utils.conventions import MIDI_VELOCITY_MAX, MIDI_VELOCITY_MIN
from utils.estimate.errors import EstimateError
from utils.estimate.loudness import LoudnessRegression

OWN_LEVEL, REGRESSION_LEVEL = "own", "regression"
LEVELS = (OWN_LEVEL, REGRESSION_LEVEL)


@dataclass(frozen=True)
class Preset:
    """A blend method's defaults: the network's weight, whose level, the shipped checkpoint (in pretrained/)."""

    weight: float
    level: str
    checkpoint: str


PRESETS = {"blend": Preset(0.55, OWN_LEVEL, "diffvel_plus.ckpt"),
           "unheard": Preset(0.80, REGRESSION_LEVEL, "diffvel_plus_unheard.ckpt")}


@dataclass(frozen=True)
class Blend:
    """A network (DiffVel or DiffVel+), a loudness fit, the network's weight w in [0, 1] and whose level."""

    network: object
    loudness: LoudnessRegression
    weight: float
    level: str = OWN_LEVEL


def check_weight(weight) -> float:
    """`weight` as a float in [0, 1]; EstimateError naming the key otherwise."""
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise EstimateError(f"estimate_velocity: blend_weight={weight} must be a number in [0, 1]") from None
    if not 0.0 <= value <= 1.0:
        raise EstimateError(f"estimate_velocity: blend_weight={weight} must be in [0, 1]")
    return value


def check_level(level) -> str:
    """`level` if it is one of LEVELS; EstimateError naming the key otherwise."""
    if level not in LEVELS:
        raise EstimateError(f"estimate_velocity: blend_level={level} must be one of {', '.join(LEVELS)}")
    return level


def at_level(values, reference) -> np.ndarray:
    """(J,) `values` shifted by one amount so that their mean is `reference`'s (same notes, one recording):
    the shape of one reading at the level of another (docs/experiments.md, run ZB)."""
    values = np.asarray(values, dtype=np.float64)
    return values - values.mean() + np.asarray(reference, dtype=np.float64).mean() if values.size else values


def blend_velocities(network: np.ndarray, loudness: np.ndarray, weight: float, level: str = OWN_LEVEL) -> np.ndarray:
    """(J,) MIDI velocities of one recording's notes: round(weight x network + (1 - weight) x loudness),
    at the regression's mean when level=regression, clipped to 1..127."""
    loudness = np.asarray(loudness, dtype=np.float64)
    mixed = weight * np.asarray(network, dtype=np.float64) + (1.0 - weight) * loudness
    if level == REGRESSION_LEVEL:
        mixed = at_level(mixed, loudness)
    return np.clip(np.rint(mixed), MIDI_VELOCITY_MIN, MIDI_VELOCITY_MAX).astype(np.int64)
