"""Training-time augmentation of the mel power: a random spectral tilt, a random smooth EQ and a random
velocity-dependent brightness per item.

A piano's brightness rises with velocity, and a network that has heard a few pianos can read a
brighter piano as louder playing. A tilt or EQ drawn afresh for every training crop makes the absolute
spectral balance unreliable, so what stays informative is the level (with `absolute_level`) and how
bright a note is against the rest of its crop. The velocity-dependent brightness goes further: it
changes how much brighter the crop's piano gets as it is played louder, so that only the level and the
brightness of a note against the crop's other notes stay informative. All three act on the mel power
before the log, so silent cells stay silent, and only in training.
"""
from contextlib import contextmanager

import torch
import torch.nn as nn

from utils.conventions import MIDI_VELOCITY_MAX, MIDI_VELOCITY_MIN, VELOCITY_SCALE

EQ_POINTS = 8  # anchors of the random EQ, evenly spaced over the mel bins (about 29 bins apart for 229)


def _check_db(key: str, max_db: float) -> float:
    if not max_db >= 0:
        raise ValueError(f"model.args.{key}={max_db}: must be >= 0")
    return float(max_db)


def _db_to_gain(db: torch.Tensor) -> torch.Tensor:
    return 10.0 ** (db / 10.0)


class SpectralTilt(nn.Module):
    """Multiply each item's mel power by a gain linear in the mel bin, in dB: -s at the lowest bin,
    +s at the highest, 0 in the middle, with s uniform in [-max_db, max_db] per item."""

    def __init__(self, max_db: float):
        super().__init__()
        self.max_db = _check_db("tilt_db", max_db)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        # power (B, n_mels, T) -> (B, n_mels, T)
        if not self.training or self.max_db == 0:
            return power
        slope = (torch.rand(power.shape[0], 1, 1, device=power.device) * 2 - 1) * self.max_db  # (B, 1, 1)
        position = torch.linspace(-1.0, 1.0, power.shape[1], device=power.device).view(1, -1, 1)  # (1, n_mels, 1)
        return power * _db_to_gain(slope * position)


class RandomEq(nn.Module):
    """Multiply each item's mel power by a smooth random gain curve, in dB: EQ_POINTS anchors evenly
    spaced over the mel bins, each uniform in [-max_db, max_db] per item, linearly interpolated between
    them. Unlike the tilt, it moves the middle bands too, where a piano's brightness changes most."""

    def __init__(self, max_db: float):
        super().__init__()
        self.max_db = _check_db("eq_db", max_db)

    def curve(self, items: int, n_mels: int, device=None) -> torch.Tensor:
        """Random gains in dB.  -> (items, n_mels)"""
        anchors = (torch.rand(items, 1, EQ_POINTS, device=device) * 2 - 1) * self.max_db  # (B, 1, P)
        return nn.functional.interpolate(anchors, size=n_mels, mode="linear", align_corners=True)[:, 0]

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        # power (B, n_mels, T) -> (B, n_mels, T)
        if not self.training or self.max_db == 0:
            return power
        return power * _db_to_gain(self.curve(power.shape[0], power.shape[1], power.device)).unsqueeze(-1)


class VelocityBrightness(nn.Module):
    """Re-voice each item's piano: multiply its mel power by a gain, in dB, of s x (2 v(t) - 1) x r(f), where
    v(t) is the highest velocity / 128 sounding at frame t (held through frames where no note sounds),
    r(f) rises linearly from 0 at the lowest mel bin to 1 at the highest, and s is uniform in
    [-max_db, max_db] per item. With s > 0 the piano brightens more with velocity than the one that was
    rendered, with s < 0 less (or darkens). It needs the item's velocity roll, given with `given`."""

    def __init__(self, max_db: float):
        super().__init__()
        self.max_db = _check_db("brightness_db", max_db)
        self.velocity = None  # (B, T, 88) velocity / 128, set by `given` for one training step

    @contextmanager
    def given(self, velocity: torch.Tensor):
        """Use `velocity` (B, T, 88) for the spectrograms computed inside the block."""
        self.velocity = velocity
        try:
            yield self
        finally:
            self.velocity = None

    @staticmethod
    def loudness_curve(velocity: torch.Tensor, frames: int) -> torch.Tensor:
        """2 v - 1 per frame, v held through silent frames, 0 before the first note.  (B, T', 88) -> (B, frames)."""
        loudest = velocity.amax(dim=-1)  # (B, T')
        if loudest.shape[-1] < frames:
            loudest = nn.functional.pad(loudest, (0, frames - loudest.shape[-1]))
        loudest = loudest[:, :frames]
        sounding = loudest > 0
        index = torch.arange(frames, device=loudest.device).expand_as(loudest)
        last_sounding = torch.where(sounding, index, torch.zeros_like(index)).cummax(dim=-1).values  # (B, frames)
        held = loudest.gather(-1, last_sounding)
        return torch.where(held > 0, 2 * held - 1, torch.zeros_like(held))

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        # power (B, n_mels, T) -> (B, n_mels, T)
        if not self.training or self.max_db == 0 or self.velocity is None:
            return power
        curve = self.loudness_curve(self.velocity.to(power.dtype), power.shape[-1]).unsqueeze(1)  # (B, 1, T)
        slope = (torch.rand(power.shape[0], 1, 1, device=power.device) * 2 - 1) * self.max_db  # (B, 1, 1)
        rise = torch.linspace(0.0, 1.0, power.shape[1], device=power.device).view(1, -1, 1)  # (1, n_mels, 1)
        return power * _db_to_gain(slope * curve * rise)


class LevelShift(nn.Module):
    """Play each training crop louder or softer: scale its audio by g dB, g uniform in [-max_db, max_db]
    per item, and move every sounding note's velocity by rate x g MIDI units (kept within 1..127). The
    level then reads as playing at `rate` velocity units per dB, the loudness regression's rate (its
    slope, 11.70 per unit of log power, is 2.69 per dB), where the corpus's own random gain per piece,
    with unchanged velocities, teaches the network to discount part of it."""

    def __init__(self, max_db: float, rate: float):
        super().__init__()
        self.max_db = _check_db("level_shift_db", max_db)
        self.rate = _check_db("level_shift_rate", rate)

    def forward(self, audio: torch.Tensor, velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # audio (B, L), velocity (B, T, 88) velocity / 128 -> the same shapes
        if not self.training or self.max_db == 0:
            return audio, velocity
        gain_db = (torch.rand(audio.shape[0], 1, device=audio.device) * 2 - 1) * self.max_db  # (B, 1)
        shift = (self.rate * gain_db / VELOCITY_SCALE).unsqueeze(-1)  # (B, 1, 1)
        moved = (velocity + shift).clamp(MIDI_VELOCITY_MIN / VELOCITY_SCALE, MIDI_VELOCITY_MAX / VELOCITY_SCALE)
        return audio * 10.0 ** (gain_db / 20.0), torch.where(velocity > 0, moved, velocity)
