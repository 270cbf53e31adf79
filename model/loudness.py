"""DiffVel+'s loudness reading: the loudness regression's cue handed to the network on every score note.

The one-line loudness regression (utils/evaluation/baselines.py) reads each note's velocity from the
recording's total log-energy over the first ONSET_FRAMES frames from the note's onset, and it reads an
unfamiliar piano better than a network that has learnt one piano's timbre (README, "Run N"). Run N also
showed that the network, given only the level per frame, does not learn that reading itself. This module
hands it over directly: a roll (B, 88, T) that holds, on every cell of a score note, the note's onset
log-energy mapped by the shipped regression's line to velocity / 128 (the network's target units), and
0 outside notes. Two ways to use it:

- as a conditioner (`loudness_conditioner`): each residual block adds a 1x1 convolution of the roll to
  its conditioner; the convolutions start at zero, so a model fine-tuned with them starts exactly where
  its checkpoint was;
- as a residual (`loudness_residual`): the network's x0 is the roll plus the network's output, so the
  network learns a correction of the regression's reading; fine-tuned from a checkpoint whose output
  projection is zeroed (`python -m utils.training.export --zero-output`), it starts as the regression.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from model.note_pooling import note_ids, note_starts, note_sums
from utils.conventions import MIDI_VELOCITY_MAX, MIDI_VELOCITY_MIN, N_KEYS, VELOCITY_SCALE
from utils.evaluation.baselines import ONSET_FRAMES

# The shipped regression's line (pretrained/loudness_regression.json, fitted on the demo corpus's train
# split): velocity = SLOPE x log-energy + INTERCEPT. Fixed here, so that a checkpoint's inputs never move.
REGRESSION_SLOPE = 11.70
REGRESSION_INTERCEPT = 72.99


def frame_log_energy(log_mel: torch.Tensor) -> torch.Tensor:
    """log(total mel power) per frame from log(mel power + 1e-6).  (B, n_mels, T) -> (B, T)."""
    return torch.logsumexp(log_mel.float(), dim=1)


def onset_window_mean(energy: torch.Tensor) -> torch.Tensor:
    """Mean over [t, t + ONSET_FRAMES) of each frame t, the window clipped at the crop's end.  (B, T) -> (B, T)."""
    tail = (0, ONSET_FRAMES - 1)
    sums = F.pad(energy, tail).unfold(-1, ONSET_FRAMES, 1).sum(-1)  # (B, T)
    counts = F.pad(torch.ones_like(energy), tail).unfold(-1, ONSET_FRAMES, 1).sum(-1)  # (B, T)
    return sums / counts


def loudness_roll(log_mel: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """Each score note's regression reading on its cells, 0 elsewhere.
    log_mel (B, n_mels, T), score (B, 176, >= T) frame + onset rolls -> (B, 88, T)."""
    frames = log_mel.shape[-1]
    frame, onset = score[:, :N_KEYS, :frames], score[:, N_KEYS:, :frames]  # (B, 88, T) each
    reading = (REGRESSION_SLOPE * onset_window_mean(frame_log_energy(log_mel)) + REGRESSION_INTERCEPT)
    reading = reading.clamp(MIDI_VELOCITY_MIN, MIDI_VELOCITY_MAX) / VELOCITY_SCALE  # (B, T)
    starts = note_starts(frame, onset).float()  # (B, 88, T)
    ids = note_ids(frame, onset)  # (B, 88, T)
    per_note = note_sums(reading.unsqueeze(1) * starts, ids)  # one start per note: its reading  (B, 88, T)
    return torch.where(ids > 0, per_note, torch.zeros_like(per_note))


class LoudnessConditioner(nn.Module):
    """Per residual block, a zero-initialised 1x1 convolution of the loudness roll.  -> layers x (B, 2C, T)."""

    def __init__(self, channels: int, layers: int):
        super().__init__()
        self.projections = nn.ModuleList(nn.Conv1d(N_KEYS, 2 * channels, 1) for _ in range(layers))
        for projection in self.projections:
            nn.init.zeros_(projection.weight)
            nn.init.zeros_(projection.bias)

    def forward(self, roll: torch.Tensor) -> list[torch.Tensor]:
        # roll (B, 88, T) from loudness_roll
        return [projection(roll.to(projection.weight.dtype)) for projection in self.projections]
