"""Note pooling: one value per score note, the mean of the network's output over the note's cells.

A note's velocity is one number, but the network predicts one per frame, and the evaluation reads
the maximum over the note's frames, which rises with the frame-to-frame noise of a long note. Pooling
replaces every cell of a score note by the mean over that note, so the output is constant per note
(the evaluation's max then reads that mean) and the loss trains the mean, not each frame.

A score note is a run of frames where the score's frame roll is on, split where its onset roll is on
(a re-struck key). Cells outside every note keep the network's output.
"""
import torch

from utils.conventions import N_KEYS


def rising_edges(frame: torch.Tensor) -> torch.Tensor:
    """Onsets read off a frame roll (B, 88, T): cells on whose previous frame is off.

    A re-struck note with no gap in the frame roll gets no onset: the true onset roll is better.
    """
    previous = torch.nn.functional.pad(frame[..., :-1], (1, 0))
    return ((frame > 0) & (previous <= 0)).to(frame.dtype)


def note_starts(frame: torch.Tensor, onset: torch.Tensor) -> torch.Tensor:
    """The first cell of every score note: on, and an onset or a rising edge.  (B, 88, T) x 2 -> bool (B, 88, T)."""
    return (frame > 0) & ((onset > 0) | (rising_edges(frame) > 0))


def note_ids(frame: torch.Tensor, onset: torch.Tensor) -> torch.Tensor:
    """Note number per cell, 1.. along each key's time axis, 0 outside notes.  (B, 88, T) x 2 -> (B, 88, T)."""
    return torch.cumsum(note_starts(frame, onset).long(), dim=-1) * (frame > 0).long()


def note_sums(values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Every cell set to the sum over its note's cells (cells outside notes: their sum, unused).
    values (B, 88, T) float32, ids (B, 88, T) from note_ids -> (B, 88, T)."""
    frames = values.shape[-1]
    rows = torch.arange(ids.shape[0] * N_KEYS, device=ids.device).view(-1, N_KEYS, 1)  # (B, 88, 1)
    slots = (rows * (frames + 1) + ids).flatten()  # one slot per (item, key, note); note 0 = outside notes
    size = ids.shape[0] * N_KEYS * (frames + 1)
    return values.new_zeros(size).index_add(0, slots, values.flatten())[slots].view_as(values)


def note_means(values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Every cell set to the mean of its note's cells (cells outside notes: their mean, unused).  (B, 88, T) x 2."""
    return note_sums(values, ids) / note_sums(torch.ones_like(values), ids).clamp(min=1)


def pool_notes(x0: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """x0 (B, 1, T, 88) with every score note's cells set to their mean; score (B, 176, T) = frame + onset rolls."""
    values = x0.squeeze(1).transpose(1, 2).float()  # (B, 88, T); float32 sums, also under bf16 autocast
    frames = values.shape[-1]
    ids = note_ids(score[:, :N_KEYS, :frames], score[:, N_KEYS:, :frames])  # (B, 88, T)
    pooled = torch.where(ids > 0, note_means(values, ids), values)  # (B, 88, T)
    return pooled.to(x0.dtype).transpose(1, 2).unsqueeze(1)  # (B, 1, T, 88)
