"""DiffVel+'s loudness reading: the loudness regression's cue handed to the network on every score note.

The one-line loudness regression (utils/evaluation/baselines.py) reads each note's velocity from the
recording's total log-energy over the first ONSET_FRAMES frames from the note's onset, and it reads an
unfamiliar piano better than a network that has learnt one piano's timbre (docs/experiments.md, "Run N"). Run N also
showed that the network, given only the level per frame, does not learn that reading itself. This module
hands it over directly: a roll (B, 88, T) that holds, on every cell of a score note, the note's reading
(model/reading.py: `onset`, the regression's own, or `notes`, which also reads the note's partials and
its chord) in velocity / 128 (the network's target units), and 0 outside notes. Two ways to use it:

- as a conditioner (`loudness_conditioner`): each residual block adds a 1x1 convolution of the roll to
  its conditioner; the convolutions start at zero, so a model fine-tuned with them starts exactly where
  its checkpoint was;
- as a residual (`loudness_residual`): the network's x0 is the roll plus the network's output, so the
  network learns a correction of the regression's reading; fine-tuned from a checkpoint whose output
  projection is zeroed (`python -m utils.training.export --zero-output`), it starts as the regression.
  The correction can be centred on each crop's note cells (`centred_on_notes`) or, weighing every note
  the same (`note_weights`), on its notes, with no note below velocity 1 (`floored_on_notes`).
"""
import torch
import torch.nn as nn

from model.note_pooling import note_ids, note_starts, note_sums
from model.reading import features, velocity
from utils.conventions import FRAMES_PER_SECOND, MIDI_VELOCITY_MIN, N_KEYS, VELOCITY_SCALE


def loudness_roll(log_mel: torch.Tensor, score: torch.Tensor, kind: str = "onset", score_fps=FRAMES_PER_SECOND,
                  partials: torch.Tensor | None = None) -> torch.Tensor:
    """Each score note's reading (model/reading.py, `kind`) on its cells, 0 elsewhere. log_mel (B, n_mels, T),
    score (B, 176, >= T) frame + onset rolls on a clock of `score_fps` frames/s (float or (B,)) -> (B, 88, T)."""
    frames = log_mel.shape[-1]
    frame, onset = score[:, :N_KEYS, :frames], score[:, N_KEYS:, :frames]  # (B, 88, T) each
    starts = note_starts(frame, onset)  # (B, 88, T)
    reading = velocity(features(log_mel, starts, score_fps, kind, partials), kind)  # (B, 88, T)
    per_note = note_sums(reading * starts.float(), note_ids(frame, onset))  # one start per note: its reading
    return torch.where(frame > 0, per_note, torch.zeros_like(per_note))


def centred_on_notes(correction: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The correction minus its weighted mean over each item's note cells (weight > 0), on those cells
    (others unchanged). Weight 1 per cell centres the cells; note_weights centres the notes.
    correction (B, 1, T, 88), weight (B, 1, T, 88) -> (B, 1, T, 88)."""
    weight = weight.to(correction.dtype)
    total = weight.sum((1, 2, 3), keepdim=True).clamp(min=torch.finfo(correction.dtype).tiny)
    mean = (correction * weight).sum((1, 2, 3), keepdim=True) / total  # (B, 1, 1, 1); 0 for an item without notes
    return correction - mean * (weight > 0)


def note_weights(ids: torch.Tensor) -> torch.Tensor:
    """1 / (the note's cell count) on each note cell, 0 outside notes, so that every note weighs 1 in a sum.
    ids (B, 88, T) from note_ids -> float (B, 88, T)."""
    cells = note_sums(torch.ones_like(ids, dtype=torch.float32), ids)
    return torch.where(ids > 0, 1.0 / cells, torch.zeros_like(cells))


def floored_on_notes(x0: torch.Tensor, notes: torch.Tensor) -> torch.Tensor:
    """x0 with every note cell at least velocity 1 (MIDI_VELOCITY_MIN / 128): a score note was played.
    x0 (B, 1, T, 88), notes bool (B, 1, T, 88) -> (B, 1, T, 88)."""
    return torch.where(notes, x0.clamp(min=MIDI_VELOCITY_MIN / VELOCITY_SCALE), x0)


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
