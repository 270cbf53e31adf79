"""Any audio soundfile reads (wav, flac, ogg, ...; any rate; mono or stereo) -> 16 kHz mono float32."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile

from utils.data.audio_io import resample_to_mono
from utils.conventions import SAMPLE_RATE
from utils.estimate.errors import EstimateError

log = logging.getLogger(__name__)

SILENCE_PEAK = 1e-4  # a recording whose absolute peak stays below this (-80 dBFS) is called silent


def read_audio(path: str | Path) -> np.ndarray:
    """The whole file as (samples,) float32 mono at SAMPLE_RATE (channels averaged, then resampled).

    Raises EstimateError naming the file when it is missing, unreadable, empty or silent.
    """
    path = Path(path)
    if not path.is_file():
        raise EstimateError(f"{path}: audio file not found")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise EstimateError(f"{path}: not a readable audio file ({error})") from None
    if len(data) == 0:
        raise EstimateError(f"{path}: the audio file holds no samples")
    if not np.all(np.isfinite(data)):
        raise EstimateError(f"{path}: the audio holds NaN or infinite samples")
    if float(np.abs(data).max()) < SILENCE_PEAK:
        raise EstimateError(f"{path}: the audio is silent (peak below {SILENCE_PEAK:g})")
    if rate != SAMPLE_RATE or data.shape[1] != 1:
        log.info("%s: %d Hz, %d channel(s) -> %d Hz mono", path.name, rate, data.shape[1], SAMPLE_RATE)
    return resample_to_mono(data, rate, SAMPLE_RATE)  # (samples',)
