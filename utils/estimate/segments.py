"""Overlapping 20.48 s segments over a whole piece, their score rolls, and which segment judges each note.

Frames are on the model's grid: frame of time t = round(t * FRAMES_PER_SECOND) from the audio's
start. Segment k starts at frame k * hop_frames (hop_frames = 320, half a segment, by default) and
spans SEGMENT_FRAMES (640) frames, i.e. samples [start * HOP_LENGTH, + SEGMENT_SAMPLES), zero-padded
after the audio's end. Every note is judged in the segment where its onset frame is farthest from
both edges, so with half-segment hops no note closer than a quarter segment (5.12 s) to an edge is
judged there, except at the very start and end of the piece.

Score rolls follow the training labels (utils/data/midi_labels.py): a note covers frames
[round(onset * fps), round(end * fps)) (at least one frame), where `end` is its release moved to the
next pedal release when the sustain pedal is down then, never past the key's next strike; the onset
roll is 1 on its first frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from utils.conventions import FRAMES_PER_SECOND, HOP_LENGTH, N_KEYS, SEGMENT_FRAMES, SEGMENT_SAMPLES


@dataclass
class ScoreNotes:
    """The notes the model judges, on the audio's clock (shift applied)."""

    onset: np.ndarray  # (N,) seconds
    end: np.ndarray  # (N,) seconds, pedal-extended release
    key: np.ndarray  # (N,) int, 0 = MIDI 21

    @property
    def onset_frame(self) -> np.ndarray:  # (N,) int64
        return np.rint(self.onset * FRAMES_PER_SECOND).astype(np.int64)

    @property
    def end_frame(self) -> np.ndarray:  # (N,) int64, exclusive, at least onset_frame + 1
        return np.maximum(np.rint(self.end * FRAMES_PER_SECOND).astype(np.int64), self.onset_frame + 1)


def sounding_ends(onsets: np.ndarray, offsets: np.ndarray, pitches: np.ndarray, pedals: np.ndarray) -> np.ndarray:
    """(N,) releases moved to the pedal's release when it is down then, cut at the key's next strike.

    onsets, offsets (N,) seconds; pitches (N,); pedals (P, 2) (press_s, release_s).
    """
    ends = np.asarray(offsets, dtype=np.float64).copy()
    for i, end in enumerate(ends):
        inside = (pedals[:, 0] <= end) & (end < pedals[:, 1])
        if inside.any():
            ends[i] = float(pedals[inside, 1].max())
    for pitch in np.unique(pitches):
        rows = np.flatnonzero(pitches == pitch)
        rows = rows[np.argsort(onsets[rows], kind="stable")]
        ends[rows[:-1]] = np.minimum(ends[rows[:-1]], np.maximum(onsets[rows[1:]], onsets[rows[:-1]]))
    return np.maximum(ends, onsets)


def segment_starts(n_samples: int, hop_frames: int) -> np.ndarray:
    """(K,) start frames k * hop_frames of segments covering `n_samples` of audio (K >= 1)."""
    if not 0 < hop_frames <= SEGMENT_FRAMES:
        raise ValueError(f"hop of {hop_frames} frames: must be in 1..{SEGMENT_FRAMES}")
    n_frames = (n_samples - 1) // HOP_LENGTH + 1
    extra = max(0, n_frames - SEGMENT_FRAMES)
    return np.arange(0, -(-extra // hop_frames) + 1, dtype=np.int64) * hop_frames


def assign_segments(onset_frames: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(N,) index of the segment whose edges are farthest from each onset frame (N,).

    Onsets before the first or after the last segment go to the nearest one (ties: the earlier).
    """
    local = onset_frames[:, None] - starts[None, :]  # (N, K)
    margin = np.minimum(local, SEGMENT_FRAMES - 1 - local)  # (N, K), negative outside the segment
    return np.argmax(margin, axis=1)


def score_rolls(notes: ScoreNotes, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame and onset rolls, each (640, 88) float32, of the segment starting at frame `start`."""
    frame = np.zeros((SEGMENT_FRAMES, N_KEYS), dtype=np.float32)
    onset = np.zeros((SEGMENT_FRAMES, N_KEYS), dtype=np.float32)
    first, last = notes.onset_frame - start, notes.end_frame - start  # (N,)
    for i in np.flatnonzero((last > 0) & (first < SEGMENT_FRAMES)):
        frame[max(first[i], 0):min(last[i], SEGMENT_FRAMES), notes.key[i]] = 1
        if first[i] >= 0:
            onset[first[i], notes.key[i]] = 1
    return frame, onset


def audio_segment(waveform: np.ndarray, start: int) -> np.ndarray:
    """(SEGMENT_SAMPLES,) float32 audio of the segment starting at frame `start`, zero-padded."""
    begin = start * HOP_LENGTH
    chunk = waveform[begin:begin + SEGMENT_SAMPLES]
    segment = np.zeros(SEGMENT_SAMPLES, dtype=np.float32)
    segment[:len(chunk)] = chunk
    return segment


def note_span(notes: ScoreNotes, i: int, start: int) -> tuple[int, int]:
    """Frames [first, last) of note i inside the segment starting at `start` (at least one frame)."""
    first = int(np.clip(notes.onset_frame[i] - start, 0, SEGMENT_FRAMES - 1))
    last = int(np.clip(notes.end_frame[i] - start, first + 1, SEGMENT_FRAMES))
    return first, last
