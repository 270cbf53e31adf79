"""DiffVel+'s band view of the spectrogram: the mel power pooled into a few wide bands.

The network reads velocity from how loud and how bright each note sounds, and how much brighter a piano
gets with velocity differs from piano to piano. A network that has learnt one piano's brightness misreads
another's (docs/experiments.md, "Run N"). Pooling the mel power into `bands` wide bands of consecutive mel bins (each
bin then holds its band's mean power) keeps the level and the coarse balance and drops the detail that
carries a particular piano's timbre; `bands: 1` leaves only the level per frame, the loudness regression's
cue (utils/evaluation/baselines.py). Unlike the augmentations of model/augment.py it acts in training and
in inference alike, so a checkpoint trained with it must be run with it (it is a saved hyperparameter).
"""
import torch
import torch.nn as nn


def check_bands(bands: int, n_mels: int) -> int:
    """`bands` itself, or a ValueError naming the key: 0 (off) or 1..n_mels."""
    if isinstance(bands, bool) or not isinstance(bands, int) or not 0 <= bands <= n_mels:
        raise ValueError(f"model.args.mel_bands={bands!r}: must be an integer from 0 (off) to {n_mels}")
    return bands


class MelBands(nn.Module):
    """Replace each mel bin's power by the mean power of its band: `bands` runs of consecutive bins, as
    equal in size as the bin count allows. 0 passes the power through."""

    def __init__(self, bands: int, n_mels: int):
        super().__init__()
        self.bands = check_bands(bands, n_mels)
        self.sizes = torch.diff(torch.linspace(0, n_mels, bands + 1).round().long()).tolist()  # bins per band (none for 0)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        # power (B, n_mels, T) -> (B, n_mels, T)
        if self.bands == 0:
            return power
        means = [band.mean(dim=1, keepdim=True) for band in torch.split(power, self.sizes, dim=1)]  # bands x (B, 1, T)
        return torch.cat([m.expand(-1, size, -1) for m, size in zip(means, self.sizes)], dim=1)
