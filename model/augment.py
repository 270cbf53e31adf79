"""Training-time augmentation of the mel power: a random spectral tilt per item.

A piano's brightness rises with velocity, and a network that has heard a few pianos can read a
brighter piano as louder playing. A tilt drawn afresh for every training crop makes the absolute
spectral balance unreliable, so what stays informative is the level (with `absolute_level`) and how
bright a note is against the rest of its crop. Applied to the mel power before the log, so silent
cells stay silent.
"""
import torch
import torch.nn as nn


class SpectralTilt(nn.Module):
    """Multiply each item's mel power by a gain linear in the mel bin, in dB: -s at the lowest bin,
    +s at the highest, 0 in the middle, with s uniform in [-max_db, max_db] per item."""

    def __init__(self, max_db: float):
        super().__init__()
        if not max_db >= 0:
            raise ValueError(f"model.args.tilt_db={max_db}: must be >= 0")
        self.max_db = float(max_db)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        # power (B, n_mels, T) -> (B, n_mels, T)
        if not self.training or self.max_db == 0:
            return power
        slope = (torch.rand(power.shape[0], 1, 1, device=power.device) * 2 - 1) * self.max_db  # (B, 1, 1)
        position = torch.linspace(-1.0, 1.0, power.shape[1], device=power.device).view(1, -1, 1)  # (1, n_mels, 1)
        return power * 10.0 ** (slope * position / 10.0)
