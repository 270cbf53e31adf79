"""Spectrogram and roll scaling: the paper's per-item min-max, and DiffVel+'s fixed level map."""
import math

import torch

LOG_MEL_EPSILON = 1e-6  # the published log(mel + 1e-6)
LOG_MEL_FLOOR = math.log(LOG_MEL_EPSILON)  # the log-mel of silence (-13.82)
# The median 640-frame maximum of log-mel in the demo-style training corpus (measured on 60 of its 240
# pieces; on all of them, `python -m bench.levels --root data/synth_demo_free`, 1.55, 1 %-99 %:
# 0.48-2.68), so that a typical crop maps as min-max maps it.
LOG_MEL_REFERENCE = 1.56


def log_mel(power: torch.Tensor) -> torch.Tensor:
    """log(mel power + 1e-6), as published.  (B, n_mels, T) -> (B, n_mels, T)."""
    return torch.log(power + LOG_MEL_EPSILON)


def fixed_level(spec: torch.Tensor) -> torch.Tensor:
    """Log-mel mapped by one fixed affine map (silence -> 0, LOG_MEL_REFERENCE -> 1), so the absolute
    level survives: a crop 6 dB quieter stays lower, where min-max would stretch it back to 1."""
    return (spec - LOG_MEL_FLOOR) / (LOG_MEL_REFERENCE - LOG_MEL_FLOOR)


def log_mel_of_level(spec: torch.Tensor) -> torch.Tensor:
    """The inverse of fixed_level: the log-mel itself.  (B, n_mels, T) -> (B, n_mels, T)."""
    return spec * (LOG_MEL_REFERENCE - LOG_MEL_FLOOR) + LOG_MEL_FLOOR


class MinMaxNormalization:
    """Scale each item of a batch to [low, high].

    `imagewise` (the paper's choice) uses one min and max per item over all of its cells;
    `framewise` uses one per frame (dim 1). An item whose max equals its min (an empty roll)
    becomes `low` everywhere, as in the published code (0/0 -> NaN -> low).
    """

    MODES = ("imagewise", "framewise")

    def __init__(self, low: float, high: float, mode: str = "imagewise"):
        if mode not in self.MODES:
            raise ValueError(f"normalisation mode {mode!r} is not one of {self.MODES}")
        self.low, self.high, self.mode = float(low), float(high), mode

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, H, W)
        if self.mode == "imagewise":
            x_max = x.flatten(1).max(1, keepdim=True)[0].unsqueeze(1)  # (B, 1, 1)
            x_min = x.flatten(1).min(1, keepdim=True)[0].unsqueeze(1)  # (B, 1, 1)
        else:
            x_max = x.max(1, keepdim=True)[0]  # (B, 1, W)
            x_min = x.min(1, keepdim=True)[0]  # (B, 1, W)
        scaled = (x - x_min) / (x_max - x_min) * (self.high - self.low) + self.low
        return torch.nan_to_num(scaled, nan=self.low)
