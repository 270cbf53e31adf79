"""Loudness readings: what the recording says about each score note's velocity, read at the note's onset.

DiffVel+'s loudness options (model/loudness.py) hand the network one reading per score note, in
velocity / 128. Two readings, each a fixed line over features of the log-mel at the onset:

- `onset`: the loudness regression itself (utils/evaluation/baselines.py): the total log-energy
  averaged over the ONSET_FRAMES frames from the onset.
- `notes`: that, plus the log-energy of the note's own harmonics (the mel bins within 0.7 semitone of
  its first four partials) over the same frames, and log(number of notes starting within one frame):
  a chord's total energy overstates each of its notes, and the note's own partials tell its notes apart.

Both lines were fitted by least squares on the demo corpus's train split (`onset`: the regression's own,
`python -m utils.estimate.loudness`, pretrained/loudness_regression.json; `notes`: `python -m bench.reading`,
pretrained/note_reading.json) and are fixed here, so that a checkpoint's inputs never move.

The score may run on another clock than the spectrogram: in the paper protocol its frames are 1/31 s
(docs/quirks.md). `score_fps` maps each score frame to the spectrogram frame at the same time, as the
loudness regression baseline maps its labels (utils.evaluation.baselines.features_for_notes).
"""
import torch
import torch.nn.functional as F

from utils.conventions import FRAMES_PER_SECOND, MIDI_VELOCITY_MAX, MIDI_VELOCITY_MIN, N_KEYS, MIN_MIDI, VELOCITY_SCALE
from utils.evaluation.baselines import ONSET_FRAMES

READINGS = ("onset", "notes")
FEATURES = {"onset": ("energy",), "notes": ("energy", "partials", "chord")}
# velocity = weights . features + intercept (pretrained/loudness_regression.json, pretrained/note_reading.json)
LINES = {"onset": ((11.70,), 72.99), "notes": ((10.73, 2.69, -13.75), 85.42)}
PARTIALS = 4  # harmonics read per key
PARTIAL_WIDTH = 0.7  # semitones either side of each harmonic
POWER_FLOOR = 1e-6  # as in log(mel power + 1e-6)


def check_reading(kind: str) -> str:
    if kind not in READINGS:
        raise ValueError(f"model.args.loudness_reading={kind!r}: must be one of {', '.join(READINGS)}")
    return kind


def key_partials(filterbank: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """Per key, 1 on the mel bins whose centre lies within PARTIAL_WIDTH semitones of one of its first
    PARTIALS harmonics (the nearest bin when none does).  filterbank (n_freqs, n_mels) -> (88, n_mels)."""
    freqs = torch.linspace(0, sample_rate / 2, filterbank.shape[0], dtype=torch.float64)
    centres = freqs[filterbank.argmax(0)]  # (n_mels,)
    width = 2 ** (PARTIAL_WIDTH / 12)
    rows = []
    for key in range(N_KEYS):
        f0 = 440.0 * 2 ** ((key + MIN_MIDI - 69) / 12)
        harmonics = torch.tensor([f0 * k for k in range(1, PARTIALS + 1)], dtype=torch.float64)[:, None]
        row = ((centres > harmonics / width) & (centres < harmonics * width)).any(0)
        if not row.any():
            row[torch.argmin((centres - f0).abs())] = True
        rows.append(row)
    return torch.stack(rows).float()


def window_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over [t, t + ONSET_FRAMES) of each frame t, clipped at the end.  (..., T) -> (..., T)."""
    tail = (0, ONSET_FRAMES - 1)
    sums = F.pad(values, tail).unfold(-1, ONSET_FRAMES, 1).sum(-1)
    counts = F.pad(torch.ones_like(values), tail).unfold(-1, ONSET_FRAMES, 1).sum(-1)
    return sums / counts


def audio_frames(score_frames: int, spec_frames: int, score_fps, device) -> torch.Tensor:
    """Spectrogram frame at the time of each score frame.  score_fps float or (B,) -> (1 or B, T) long."""
    fps = torch.as_tensor(score_fps, dtype=torch.float64, device=device).reshape(-1, 1)  # (1 or B, 1)
    times = torch.arange(score_frames, dtype=torch.float64, device=device) / fps  # (1 or B, T) seconds
    return torch.round(times * FRAMES_PER_SECOND).long().clamp(0, spec_frames - 1)


def features(log_mel: torch.Tensor, starts: torch.Tensor, score_fps=FRAMES_PER_SECOND, kind: str = "onset",
             partials: torch.Tensor | None = None) -> torch.Tensor:
    """The reading's features at every score frame.  log_mel (B, n_mels, T_spec) log(power + 1e-6),
    starts (B, 88, T) the score notes' first cells -> (B, len(FEATURES[kind]), 88, T)."""
    batch, _, frames = starts.shape
    index = audio_frames(frames, log_mel.shape[-1], score_fps, log_mel.device).expand(batch, -1)  # (B, T)
    energy = window_mean(torch.logsumexp(log_mel.float(), dim=1))  # (B, T_spec)
    columns = [torch.gather(energy, 1, index)[:, None].expand(-1, N_KEYS, -1)]  # (B, 88, T)
    if kind == "notes":
        if partials is None:
            raise ValueError("the notes reading needs the key partials (key_partials)")
        power = torch.einsum("km,bmt->bkt", partials.to(log_mel.device, torch.float32), log_mel.float().exp())  # (B, 88, T_spec)
        level = torch.log(window_mean(power) + POWER_FLOOR)
        columns.append(torch.gather(level, 2, index[:, None].expand(-1, N_KEYS, -1)))
        count = F.pad(starts.float().sum(1), (1, 1)).unfold(-1, 3, 1).sum(-1)  # (B, T) notes starting within 1 frame
        columns.append(torch.log(count.clamp(min=1.0))[:, None].expand(-1, N_KEYS, -1))
    return torch.stack(columns, dim=1)


def velocity(values: torch.Tensor, kind: str) -> torch.Tensor:
    """The line of `kind` over features (B, F, 88, T), clamped to MIDI velocity, / 128 -> (B, 88, T)."""
    weights, intercept = LINES[kind]
    line = torch.tensor(weights, dtype=values.dtype, device=values.device).view(1, -1, 1, 1)
    estimate = (values * line).sum(1) + intercept
    return estimate.clamp(MIDI_VELOCITY_MIN, MIDI_VELOCITY_MAX) / VELOCITY_SCALE
