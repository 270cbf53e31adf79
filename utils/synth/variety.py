"""Per-piece acoustic variety for the synthetic corpus: SoundFont, gain, spectral tilt and a small room.

A corpus rendered with one SoundFont at one fixed gain lets a model tie velocity to one absolute
level. These options draw, per piece and from the piece's own seed, one SoundFont out of a list,
a gain, a first-order spectral tilt and a short synthetic room, within ranges kept mild on purpose:

- gain within +-`gain_db` (default range cap 12 dB): a few dB is the spread of recording levels
  between sessions; much more would make loudness useless as a cue (in FluidSynth's General MIDI
  pianos 6 dB is about 25 velocity units);
- tilt within +-`eq_db` dB per decade around 1 kHz (cap 6): microphone placement and piano voicing;
- room: an exponentially decaying noise tail (RT60 0.2-0.6 s) mixed at up to `room` (cap 0.5) wet.
- free velocity: a fraction `free_velocity` (cap 1) of the notes get a velocity drawn uniformly from
  FREE_VELOCITY_RANGE, independent of the score. The generator ties velocity to the score (phrase
  curves, voices, accents), so a model given the score can learn that prior instead of listening;
  real performances do not follow it. The audio is rendered from the changed MIDI, so labels and
  sound agree.
All four are off by default, so the default corpus is unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve, lfilter

LIMITS = {"gain_db": 12.0, "eq_db": 6.0, "room": 0.5, "free_velocity": 1.0}
FREE_VELOCITY_RANGE = (10, 120)  # inclusive; most of MAESTRO's notes lie inside it


@dataclass(frozen=True)
class Variation:
    """What one piece gets: its SoundFont (None: the default) and the audio treatment."""

    soundfont: str | None
    gain_db: float
    tilt_db: float
    room_mix: float
    rt60: float


def check_ranges(gain_db: float, eq_db: float, room: float, soundfonts, free_velocity: float = 0.0) -> None:
    """One-line ValueError for an out-of-range option or a SoundFont that is not a file."""
    for name, value in (("gain_db", gain_db), ("eq_db", eq_db), ("room", room), ("free_velocity", free_velocity)):
        if not 0 <= value <= LIMITS[name]:
            raise ValueError(f"{name}={value}: must be within 0..{LIMITS[name]:g}")
    for path in soundfonts:
        if not (Path(path).is_file() or Path(path).is_dir()):
            raise ValueError(f"{path}: SoundFont or sample folder not found (soundfonts option)")


def draw(seed: int, soundfonts, gain_db: float, eq_db: float, room: float) -> Variation:
    """The variation of the piece with generator seed `seed` (independent of the notes' stream)."""
    rng = np.random.default_rng([seed, 7919])
    soundfont = str(soundfonts[rng.integers(len(soundfonts))]) if soundfonts else None
    return Variation(soundfont, float(rng.uniform(-gain_db, gain_db)), float(rng.uniform(-eq_db, eq_db)),
                     float(rng.uniform(0, room)), float(rng.uniform(0.2, 0.6)))


def free_velocities(midi, fraction: float, seed: int) -> int:
    """Give each note of `midi` (pretty_midi), with probability `fraction`, a velocity drawn uniformly
    from FREE_VELOCITY_RANGE, from the piece's own stream; returns how many notes changed."""
    if fraction <= 0:
        return 0
    rng = np.random.default_rng([seed, 104729])
    low, high = FREE_VELOCITY_RANGE
    changed = 0
    for instrument in midi.instruments:
        for note in instrument.notes:
            if rng.random() < fraction:
                note.velocity = int(rng.integers(low, high + 1))
                changed += 1
    return changed


def _tilt(audio: np.ndarray, tilt_db: float, sample_rate: int) -> np.ndarray:
    """Add `tilt_db` x (high-passed part) : a gentle first-order shelf around 1 kHz."""
    if tilt_db == 0:
        return audio
    pole = np.exp(-2 * np.pi * 1000.0 / sample_rate)
    low = lfilter([1 - pole], [1, -pole], audio, axis=-1)  # one-pole low-pass
    high = audio - low
    return low + high * 10 ** (tilt_db / 20)


def _room(audio: np.ndarray, mix: float, rt60: float, seed: int, sample_rate: int) -> np.ndarray:
    if mix == 0:
        return audio
    rng = np.random.default_rng([seed, 104729])
    length = int(rt60 * sample_rate)
    decay = np.exp(-6.9 * np.arange(length) / length)  # -60 dB at rt60
    response = rng.standard_normal(length) * decay
    response /= np.sqrt(np.sum(response ** 2))
    wet = np.stack([fftconvolve(channel, response)[: audio.shape[-1]] for channel in audio])
    return (1 - mix) * audio + mix * wet


def apply(audio: np.ndarray, variation: Variation, seed: int, sample_rate: int) -> np.ndarray:
    """(channels, samples) float audio with tilt, room and gain applied; float32, clipped to int16 range."""
    treated = _room(_tilt(audio, variation.tilt_db, sample_rate), variation.room_mix, variation.rt60, seed,
                    sample_rate)
    treated = treated * 10 ** (variation.gain_db / 20)
    return np.clip(treated, -1.0, 32767 / 32768).astype(np.float32)
