"""Two reference points for DiffVel, scored on exactly the notes the model is scored on.

- `mean`: every note gets the training set's mean MIDI velocity.
- `loudness`: velocity = slope * log-energy + intercept, fitted by least squares on the training
  notes, where log-energy is log(sum over mel bands of the mel power) averaged over the
  ONSET_FRAMES spectrogram frames starting at the note's onset. Polyphony and decay blur this
  cue, so it is the floor a learned model has to beat.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import soundfile
import torch
import torchaudio
from tqdm.auto import tqdm

from utils.data.audio_io import ensure_resampled
from utils.conventions import FRAMES_PER_SECOND, MIDI_VELOCITY_MAX, MIDI_VELOCITY_MIN, SAMPLE_RATE, SEGMENT_FRAMES
from utils.data.maestro import find_dataset_dir, read_metadata
from utils.data.midi_labels import parse_midi

log = logging.getLogger(__name__)

ONSET_FRAMES = 3  # spectrogram frames (96 ms) averaged after each onset


class FrameLogEnergy:
    """log(total mel power) per spectrogram frame, with the model's spectrogram settings."""

    def __init__(self, spec_args: dict):
        self.mel = torchaudio.transforms.MelSpectrogram(**spec_args)

    def __call__(self, waveform: np.ndarray) -> np.ndarray:
        # waveform (L,) float32 at SAMPLE_RATE -> (T,) with T = L // hop + 1
        with torch.inference_mode():
            power = self.mel(torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)))  # (n_mels, T)
        return torch.log(power.sum(0) + 1e-6).numpy()


def onset_features(log_energy: np.ndarray, onset_frames) -> np.ndarray:
    """Mean log-energy over [onset, onset + ONSET_FRAMES) for each onset frame (clipped to the signal)."""
    last = len(log_energy) - 1
    starts = np.clip(np.asarray(onset_frames, dtype=np.int64), 0, last)
    return np.array([log_energy[s:min(s + ONSET_FRAMES, last + 1)].mean() for s in starts])


def loudness_velocity(features, slope: float, intercept: float) -> np.ndarray:
    """The loudness regression: slope x onset log-energy + intercept, clipped to MIDI velocity 1..127."""
    return np.clip(slope * np.asarray(features) + intercept, MIDI_VELOCITY_MIN, MIDI_VELOCITY_MAX)


@dataclass
class VelocityBaselines:
    """Fitted baseline parameters (MIDI velocity units)."""

    mean_velocity: float
    slope: float
    intercept: float
    n_training_notes: int

    def predict_mean(self, n_notes: int) -> np.ndarray:
        return np.full(n_notes, self.mean_velocity)

    def predict_loudness(self, features) -> np.ndarray:
        return loudness_velocity(features, self.slope, self.intercept)


def fit_baselines(maestro_root, spec_args: dict, split: str = "train") -> VelocityBaselines:
    """Fit both baselines on every note of a MAESTRO-layout split (the synthetic corpus or MAESTRO)."""
    dataset_dir = find_dataset_dir(maestro_root)
    rows = [row for row in read_metadata(dataset_dir) if row["split"] == split]
    if not rows:
        raise ValueError(f"{dataset_dir}: no {split!r} pieces to fit the baselines on")
    energy = FrameLogEnergy(spec_args)
    features, velocities = [], []
    for row in tqdm(rows, desc=f"baselines: {split} notes", unit="piece", leave=False):
        audio, rate = soundfile.read(str(ensure_resampled(dataset_dir / row["audio_filename"])), dtype="float32")
        if audio.ndim == 2:
            audio = audio.mean(axis=1)
        if rate != SAMPLE_RATE:
            raise ValueError(f"{row['audio_filename']}: expected {SAMPLE_RATE} Hz after resampling, got {rate}")
        notes = parse_midi(dataset_dir / row["midi_filename"])  # (N, 4) onset, offset, pitch, velocity
        onset_frames = np.round(notes[:, 0] * FRAMES_PER_SECOND).astype(np.int64)
        features.append(onset_features(energy(audio), onset_frames))
        velocities.append(notes[:, 3])
    features, velocities = np.concatenate(features), np.concatenate(velocities)
    slope, intercept = np.polyfit(features, velocities, 1)
    log.info("baselines on %d notes: mean %.1f, velocity = %.2f * log-energy + %.1f",
             len(velocities), velocities.mean(), slope, intercept)
    return VelocityBaselines(float(velocities.mean()), float(slope), float(intercept), len(velocities))


def features_for_notes(segments, notes: list[dict], spec_args: dict, label_fps: float) -> np.ndarray:
    """Onset log-energy of evaluated notes (`start` in frames of the concatenated segments).

    `label_fps` is the frame rate of those frames (31 in the paper protocol, 31.25 corrected): each
    onset is mapped to the spectrogram frame of its own segment at the same time.
    """
    energy = FrameLogEnergy(spec_args)
    per_segment = [energy(segment.waveform) for segment in segments]  # each (641,)
    features = np.empty(len(notes))
    for i, note in enumerate(notes):
        index, local = divmod(int(note["start"]), SEGMENT_FRAMES)
        frame = int(round(local / label_fps * FRAMES_PER_SECOND))
        features[i] = onset_features(per_segment[min(index, len(per_segment) - 1)], [frame])[0]
    return features
