"""Warnings for pairs that look wrong: misaligned audio and MIDI, and lengths that differ.

Alignment: a spectral-flux onset curve is computed on the model's frame grid (hop 512 at 16 kHz),
its peaks are picked, and the share of the MIDI's onsets with a peak within TOLERANCE_FRAMES is
measured at the given alignment and at every lag within +-MAX_LAG_SECONDS. The pair is called
misaligned when fewer than MIN_HIT_RATE of the onsets sit on a peak, or when some other lag fits
clearly better: the share at lag 0 is nearer the median over lags (chance, high for dense regular
textures) than the best lag's (below MIN_RELATIVE_FIT of the way). The warning names that lag.
On the synthetic renderer, aligned pieces gave 85-94 % and relative fit >= 0.9; shifts of 0.1-0.7 s
gave relative fit <= 0.3. Length: the audio's duration against the MIDI's last release (shift applied).
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from utils.conventions import FRAMES_PER_SECOND, HOP_LENGTH

log = logging.getLogger(__name__)

N_FFT = 2048
TOLERANCE_FRAMES = 1  # a peak on the onset frame or a neighbour (+-32 ms)
PEAK_WINDOW = 3  # a peak is the largest flux value within +-3 frames ...
PEAK_CONTEXT = 16  # ... and above the mean of the +-16 frames around it
MIN_HIT_RATE = 0.5
MIN_RELATIVE_FIT = 0.5
MAX_LAG_SECONDS = 3.0


def spectral_flux(waveform: np.ndarray) -> np.ndarray:
    """(T,) half-wave rectified log-magnitude flux, frame t = samples around t * HOP_LENGTH."""
    audio = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))  # (samples,)
    window = torch.hann_window(N_FFT)
    spec = torch.stft(audio, N_FFT, HOP_LENGTH, window=window, center=True, return_complex=True).abs()  # (F, T)
    log_spec = torch.log1p(1000.0 * spec)
    flux = torch.relu(log_spec[:, 1:] - log_spec[:, :-1]).sum(0)  # (T - 1,)
    return torch.cat([torch.zeros(1), flux]).numpy()


def flux_peaks(flux: np.ndarray) -> np.ndarray:
    """(T,) bool: local maxima of the flux that rise above their neighbourhood's mean."""
    padded = np.pad(flux, PEAK_WINDOW, mode="constant", constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * PEAK_WINDOW + 1)  # (T, 2W+1)
    kernel = np.ones(2 * PEAK_CONTEXT + 1) / (2 * PEAK_CONTEXT + 1)
    local_mean = np.convolve(flux, kernel, mode="same")
    return (flux >= windows.max(axis=1)) & (flux > local_mean) & (flux > 0)


def hit_rate(onset_frames: np.ndarray, peaks: np.ndarray, lag: int = 0) -> float:
    """Share of onset frames (shifted by `lag` frames) within TOLERANCE_FRAMES of a peak."""
    near = np.convolve(peaks.astype(np.float32), np.ones(2 * TOLERANCE_FRAMES + 1), mode="same") > 0  # (T,)
    frames = np.unique(onset_frames) + lag
    frames = frames[(frames >= 0) & (frames < len(near))]
    return float(near[frames].mean()) if len(frames) else 0.0


def alignment_warning(name: str, waveform: np.ndarray, onsets: np.ndarray) -> str | None:
    """A warning text when most onsets (seconds on the audio clock) are far from flux peaks, else None."""
    peaks = flux_peaks(spectral_flux(waveform))
    frames = np.rint(onsets * FRAMES_PER_SECOND).astype(np.int64)
    max_lag = int(MAX_LAG_SECONDS * FRAMES_PER_SECOND)
    rates = {lag: hit_rate(frames, peaks, lag) for lag in range(-max_lag, max_lag + 1)}
    best = max(rates, key=lambda lag: (rates[lag], -abs(lag)))
    rate, chance = rates[0], float(np.median(list(rates.values())))
    fit = (rate - chance) / (rates[best] - chance) if rates[best] > chance else 1.0
    if rate >= MIN_HIT_RATE and fit >= MIN_RELATIVE_FIT:
        return None
    return (f"{name}: audio and MIDI look misaligned: only {rate:.0%} of the onsets lie within "
            f"{TOLERANCE_FRAMES / FRAMES_PER_SECOND * 1000:.0f} ms of a spectral-flux peak "
            f"(chance {chance:.0%}); shifting the MIDI by {best / FRAMES_PER_SECOND:+.2f} s more gives {rates[best]:.0%} (shift=SECONDS)")


def length_warning(name: str, audio_seconds: float, midi_end: float, tolerance: float) -> str | None:
    """A warning text when the audio and the MIDI (last release, shift applied) differ by > tolerance s."""
    if abs(audio_seconds - midi_end) <= tolerance:
        return None
    return (f"{name}: lengths differ by {audio_seconds - midi_end:+.1f} s (audio {audio_seconds:.1f} s, "
            f"MIDI ends at {midi_end:.1f} s): is this the same performance?")
