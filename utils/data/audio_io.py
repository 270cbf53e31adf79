"""Audio reading for training: 16 kHz mono float32, resampled once into a .flac cache, read by crops.

* :func:`ensure_resampled` makes (once) a 16 kHz mono 16-bit FLAC copy of a source file, beside it
  as ``<stem>.flac`` like the paper's loader (AudioLoader), or under a cache folder when the source
  folder is read-only. A source already at 16 kHz is used as it is.
* :func:`read_crop` seeks to a sample and decodes only the samples of one crop.
"""
from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional

from utils.atomic import atomic_path
from utils.conventions import SAMPLE_RATE

log = logging.getLogger(__name__)

CACHE_ENV_VAR = "DIFFVEL_CACHE"  # overrides the default cache folder
_PCM16_MAX = 1.0 - 1.0 / 32768  # largest value a 16-bit file stores


class AudioFileError(ValueError):
    """An audio file that cannot be used: unreadable, corrupt, truncated or too short."""


def default_cache_dir() -> Path:
    """``$DIFFVEL_CACHE``, else ``$XDG_CACHE_HOME/diffvel``, else ``~/.cache/diffvel``."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "diffvel"


def _folder_is_writable(folder: Path) -> bool:
    """Whether new files can be created in ``folder`` (False on read-only mounts)."""
    return os.access(folder, os.W_OK)


def cache_path_for(source: str | os.PathLike, suffix: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where a file derived from ``source`` (its stem + ``suffix``) is cached.

    With ``cache_dir`` None: beside the source when its folder is writable, else under
    :func:`default_cache_dir`. Under a cache folder the source's absolute path is mirrored, so two
    sources never share a cache file.
    """
    source = Path(source).resolve()
    if cache_dir is None:
        if _folder_is_writable(source.parent):
            return source.with_name(source.stem + suffix)
        cache_dir = default_cache_dir()
    mirrored = Path(cache_dir) / source.parent.relative_to(source.anchor)
    return mirrored / (source.stem + suffix)


def _check_wav_complete(path: Path) -> None:
    """Raise :class:`AudioFileError` if a RIFF/WAVE file holds less data than its header declares.

    libsndfile silently shortens such files, which would misalign audio and labels.
    """
    file_size = path.stat().st_size
    with open(path, "rb") as wav:
        header = wav.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return  # not plain RIFF/WAVE (e.g. RF64): libsndfile's own checks apply
        position = 12
        while position + 8 <= file_size:
            wav.seek(position)
            chunk_id, chunk_size = struct.unpack("<4sI", wav.read(8))
            if chunk_id == b"data":
                if position + 8 + chunk_size > file_size:
                    raise AudioFileError(f"{path}: truncated WAV, header declares {chunk_size} data bytes "
                                         f"but only {file_size - position - 8} are present")
                return
            position += 8 + chunk_size + (chunk_size & 1)


def audio_info(path: str | os.PathLike):
    """soundfile.info of ``path``, with errors turned into :class:`AudioFileError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: audio file not found")
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioFileError(f"{path}: not a readable audio file ({error})") from error
    if info.format == "WAV":
        _check_wav_complete(path)
    return info


def _read_all(path: Path) -> tuple[np.ndarray, int]:
    """Decode a whole file to float32 ``(samples, channels)``; a short read means truncation."""
    try:
        with soundfile.SoundFile(str(path)) as audio_file:
            expected = audio_file.frames
            data = audio_file.read(dtype="float32", always_2d=True)
            rate = audio_file.samplerate
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioFileError(f"{path}: corrupt or truncated audio ({error})") from error
    if len(data) < expected:
        raise AudioFileError(f"{path}: truncated audio, decoded {len(data)} of {expected} samples")
    return data, rate


def resample_to_mono(data: np.ndarray, source_rate: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``(samples, channels)`` float32 at ``source_rate`` -> ``(samples',)`` float32 mono at ``sample_rate``.

    Channels are averaged, then resampled with torchaudio's windowed-sinc resampler (the one the
    paper's inference code uses).
    """
    mono = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)))  # (samples,)
    if source_rate != sample_rate:
        mono = torchaudio.functional.resample(mono, source_rate, sample_rate)
    return mono.numpy()


def _cache_is_valid(cache: Path, source: Path, source_info, sample_rate: int) -> bool:
    """A cache is valid if newer than its source, 16 kHz mono and as long as the source."""
    if not cache.is_file() or cache.stat().st_mtime < source.stat().st_mtime:
        return False
    try:
        info = soundfile.info(str(cache))
    except (soundfile.LibsndfileError, RuntimeError):
        return False
    expected = source_info.frames * sample_rate / source_info.samplerate
    tolerance = sample_rate // 100  # other resamplers (e.g. AudioLoader's pydub) round lengths differently
    return info.samplerate == sample_rate and info.channels == 1 and abs(info.frames - expected) <= tolerance


def _write_flac_atomically(path: Path, mono: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit FLAC through a temporary file in the same folder, then rename it into place."""
    with atomic_path(path) as temporary:
        clipped = np.clip(mono, -1.0, _PCM16_MAX)
        soundfile.write(str(temporary), clipped, sample_rate, subtype="PCM_16", format="FLAC")


def _check_tail_decodes(path: Path, info) -> None:
    """Decode the last samples of a compressed file: a truncated FLAC fails there, cheaply."""
    try:
        with soundfile.SoundFile(str(path)) as audio_file:
            audio_file.seek(max(info.frames - 1024, 0))
            tail = audio_file.read(dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioFileError(f"{path}: corrupt or truncated audio ({error})") from error
    if len(tail) < min(info.frames, 1024):
        raise AudioFileError(f"{path}: truncated audio, its last samples cannot be decoded")


def ensure_resampled(
    source: str | os.PathLike, cache_dir: str | os.PathLike | None = None, sample_rate: int = SAMPLE_RATE
) -> Path:
    """Path of a ``sample_rate`` copy of ``source``, creating the FLAC cache on first use.

    A source already at ``sample_rate`` is returned as is (read_crop mixes its channels). Otherwise
    the cache (see :func:`cache_path_for`; ``<stem>.flac``, or ``<stem>.<rate>Hz.flac`` when the source
    is itself a .flac) is reused when valid (newer than the source, mono, at ``sample_rate``, as long
    as the source; so AudioLoader's own 16 kHz .flac files are reused), else written. Raises :class:`AudioFileError` for an
    unreadable, corrupt or truncated source.
    """
    source = Path(source)
    info = audio_info(source)
    if info.samplerate == sample_rate:
        _check_tail_decodes(source, info)
        return source
    suffix = f".{sample_rate}Hz.flac" if source.suffix.lower() == ".flac" else ".flac"
    cache = cache_path_for(source, suffix, cache_dir)
    if _cache_is_valid(cache, source, info, sample_rate):
        return cache
    log.info("resampling %s -> %s", source, cache)
    data, rate = _read_all(source)
    _write_flac_atomically(cache, resample_to_mono(data, rate, sample_rate), sample_rate)
    return cache


def read_crop(path: str | os.PathLike, begin: int, length: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Samples ``[begin, begin + length)`` of ``path`` as float32 mono ``(length,)``, decoding only those.

    Raises :class:`AudioFileError` naming the file when it is not at ``sample_rate``, is shorter than
    the crop, or cannot be decoded there (corrupt/truncated).
    """
    path = Path(path)
    try:
        with soundfile.SoundFile(str(path)) as audio_file:
            if audio_file.samplerate != sample_rate:
                raise AudioFileError(f"{path}: sample rate {audio_file.samplerate} Hz, expected {sample_rate} Hz")
            if begin < 0 or begin + length > audio_file.frames:
                raise AudioFileError(f"{path}: audio too short for a crop of {length} samples at sample {begin} "
                                     f"(file has {audio_file.frames} samples)")
            audio_file.seek(begin)
            data = audio_file.read(length, dtype="float32", always_2d=True)  # (length, channels)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioFileError(f"{path}: corrupt or truncated audio ({error})") from error
    if len(data) < length:
        raise AudioFileError(f"{path}: truncated audio, read {len(data)} of {length} samples at sample {begin}")
    return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
