"""The optional PNG: estimated velocities over the spectrogram (top) and over the piano roll (bottom)."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from utils.conventions import HOP_LENGTH, SAMPLE_RATE  # noqa: E402

N_FFT = 2048
MAX_HZ = 4000.0
MIN_HZ = 25.0  # below A0 (27.5 Hz)


def _spectrogram(waveform: np.ndarray) -> tuple[np.ndarray, float]:
    """(F, T) log magnitude up to MAX_HZ, and the frequency step in Hz."""
    audio = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))
    spec = torch.stft(audio, N_FFT, HOP_LENGTH, window=torch.hann_window(N_FFT), return_complex=True).abs()
    step = SAMPLE_RATE / N_FFT
    return torch.log1p(100.0 * spec[: int(MAX_HZ / step)]).numpy(), step


def _note_arrays(results, shift: float):
    """onset, offset (audio clock), pitch, new velocity, estimated flag: each (N,)."""
    onset = np.array([r.note.onset for r in results]) + shift
    offset = np.array([r.note.offset for r in results]) + shift
    pitch = np.array([r.note.pitch for r in results])
    velocity = np.array([r.new_velocity for r in results])
    estimated = np.array([r.estimated for r in results], dtype=bool)
    return onset, offset, pitch, velocity, estimated


def plot_png(waveform: np.ndarray, results, shift: float, title: str) -> bytes:
    """PNG bytes of the figure (nothing is written here)."""
    seconds = len(waveform) / SAMPLE_RATE
    spec, step = _spectrogram(waveform)
    onset, offset, pitch, velocity, estimated = _note_arrays(results, shift)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(min(40.0, 6.0 + seconds / 4), 7), sharex=True)
    times = np.arange(spec.shape[1]) * HOP_LENGTH / SAMPLE_RATE  # (T,)
    top.pcolormesh(times, np.arange(1, spec.shape[0]) * step, spec[1:], cmap="gray_r", shading="auto", rasterized=True)
    top.set_yscale("log")
    top.set_ylim(MIN_HZ, MAX_HZ)
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    shown = estimated & (f0 < MAX_HZ)
    points = top.scatter(onset[shown], f0[shown], c=velocity[shown], cmap="viridis", vmin=1, vmax=127, s=12)
    top.set(ylabel="Hz", title=f"{title}: estimated velocity at each onset (note fundamental)")
    segments = [[(a, p), (b, p)] for a, b, p in zip(onset, np.maximum(offset, onset + 0.02), pitch)]
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgray")
    lines = LineCollection(segments, linewidths=3, cmap=cmap, norm=plt.Normalize(1, 127))
    lines.set_array(np.where(estimated, velocity, np.nan))
    bottom.add_collection(lines)
    bottom.set(xlim=(0, seconds), ylim=(pitch.min() - 2, pitch.max() + 2), xlabel="seconds (audio)", ylabel="MIDI pitch",
               title="piano roll coloured by the new velocity (grey: kept unchanged)")
    fig.colorbar(points, ax=[top, bottom], label="MIDI velocity")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()
