"""The SMD test set: one .h5 file per excerpt, and its 20.48 s test segments under two protocols.

File format (as read by the paper's run_test.py, written by Kong et al.'s packing code):

* dataset ``waveform``: int16 (samples,), mono audio at ``SAMPLE_RATE``;
* dataset ``midi_event``: bytes (events,), the ``str()`` of each mido message of the piano track;
* dataset ``midi_event_time``: float (events,), absolute time of each event in seconds (float32 as
  stored; the labels depend on that precision);
* attribute ``duration``: seconds; optional attributes (``composer``, ``title``, ...).

:func:`paper_segments` yields the segments exactly as the paper's test did (labels at 31 frames/s,
636 -> 640 frame adjustment, pedal roll doubled); :func:`corrected_segments` yields labels on the
model's own 31.25 frames/s grid with the note list of each segment. See docs/smd.md.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import h5py
import numpy as np

from utils.atomic import atomic_path
from utils.conventions import (
    FRAMES_PER_SECOND,
    PAPER_TEST_FPS,
    SAMPLE_RATE,
    SEGMENT_FRAMES,
    SEGMENT_SAMPLES,
    SEGMENT_SECONDS,
)
from utils.data.corrected_labels import parse_notes, parse_pedals, render_segment
from utils.data.smd_checks import length_mismatch, note_onsets
from utils.data.target_processor import TargetProcessor

PAPER_INT16_SCALE = 32767.0  # the paper's int16_to_float32 divides by 32767
INT16_SCALE = 32768.0  # torchaudio / soundfile normalisation, as the training audio was read
MIN_EVENT_WIDTH = 100  # Kong et al. store midi_event as fixed-width 'S100' bytes
ADJUSTED_KEYS = ("frame_roll", "velocity_roll", "onset_roll", "pedal_frame_roll")  # published adjust621_640
ADJUST_COPY_FRAMES = 4  # 636 + 4 = 640


class SMDFileError(ValueError):
    """An SMD .h5 file (or the data to write one) that does not follow the format."""


class SMDFileNotFoundError(FileNotFoundError):
    """A missing SMD file or folder."""


@dataclass
class SMDExcerpt:
    """One SMD excerpt as stored in its .h5 file."""

    name: str  # file stem
    waveform: np.ndarray  # (samples,) int16 at SAMPLE_RATE
    midi_events: list[str]  # str() of each mido message
    midi_event_times: np.ndarray  # (events,) seconds, dtype as stored (float32)
    duration: float  # seconds
    attrs: dict = field(default_factory=dict)  # every other attribute


@dataclass
class Segment:
    """One 20.48 s test segment: model input, ground truth and score condition."""

    index: int
    start_time: float  # seconds, unshifted
    waveform: np.ndarray  # (SEGMENT_SAMPLES,) float32
    target: dict  # rolls with a leading batch dim 1 (float32); see paper_/corrected_segments
    score_roll: np.ndarray  # (frames, 88) float32 frame roll from start_time + shift
    score_onset: np.ndarray | None = None  # (frames, 88) float32 onset roll of the same score (DiffVelPlus)
    score_fps: float = FRAMES_PER_SECOND  # the score rolls' clock (PAPER_TEST_FPS in the paper protocol)


def _validate(name: str, waveform: np.ndarray, midi_events: Sequence[str], midi_event_times: np.ndarray,
              duration: float) -> None:
    """Raise SMDFileError naming ``name`` for anything read_excerpt/write_excerpt must refuse."""
    if waveform.dtype != np.int16 or waveform.ndim != 1:
        raise SMDFileError(f"{name}: waveform must be 1-D int16, got {waveform.dtype} {waveform.shape}")
    if len(waveform) == 0:
        raise SMDFileError(f"{name}: waveform is empty")
    if midi_event_times.ndim != 1 or midi_event_times.dtype.kind != "f":
        raise SMDFileError(f"{name}: midi_event_time must be 1-D float, got "
                           f"{midi_event_times.dtype} {midi_event_times.shape}")
    if len(midi_events) != len(midi_event_times):
        raise SMDFileError(f"{name}: {len(midi_events)} midi_event but {len(midi_event_times)} midi_event_time")
    if not np.all(np.isfinite(midi_event_times)) or np.any(np.diff(midi_event_times) < 0):
        raise SMDFileError(f"{name}: midi_event_time must be finite and non-decreasing")
    if not (np.isfinite(duration) and duration > 0):
        raise SMDFileError(f"{name}: duration must be a positive number, got {duration}")
    try:
        onsets = note_onsets(midi_events, midi_event_times)
    except ValueError as error:
        raise SMDFileError(f"{name}: {error}") from None
    if len(onsets) == 0:
        raise SMDFileError(f"{name}: no notes (no note_on with velocity > 0 in midi_event)")
    problem = length_mismatch(len(waveform) / SAMPLE_RATE, onsets, midi_event_times)
    if problem:
        raise SMDFileError(f"{name}: {problem}")


def read_excerpt(path: str | os.PathLike) -> SMDExcerpt:
    """Read and check one SMD .h5 file (whole file in memory: excerpts are a few MB)."""
    path = Path(path)
    if not path.is_file():
        raise SMDFileNotFoundError(f"{path}: file not found")
    try:
        hf = h5py.File(path, "r")
    except OSError as error:
        raise SMDFileError(f"{path}: not an HDF5 file or truncated ({error})") from None
    with hf:
        for dataset in ("waveform", "midi_event", "midi_event_time"):
            if dataset not in hf or not isinstance(hf[dataset], h5py.Dataset):
                raise SMDFileError(f"{path}: missing dataset '{dataset}'")
        if "duration" not in hf.attrs:
            raise SMDFileError(f"{path}: missing attribute 'duration'")
        try:
            waveform = hf["waveform"][()]
            raw_events = hf["midi_event"][()]
            midi_event_times = hf["midi_event_time"][()]
            attrs = {key: _plain(value) for key, value in hf.attrs.items()}
        except (OSError, ValueError, TypeError) as error:
            raise SMDFileError(f"{path}: cannot read data, file truncated or corrupt ({error})") from None
    raw_events = np.asarray(raw_events)
    if raw_events.ndim != 1 or raw_events.dtype.kind not in "SOU":
        raise SMDFileError(f"{path}: midi_event must be 1-D strings, got {raw_events.dtype} {raw_events.shape}")
    midi_events = _decoded(path, raw_events)
    try:
        duration = float(attrs.pop("duration"))
    except (TypeError, ValueError):
        raise SMDFileError(f"{path}: attribute 'duration' is not a number") from None
    waveform, midi_event_times = np.asarray(waveform), np.asarray(midi_event_times)
    _validate(str(path), waveform, midi_events, midi_event_times, duration)
    return SMDExcerpt(path.stem, waveform, midi_events, midi_event_times, duration, attrs)


def _decoded(path: Path, raw_events: np.ndarray) -> list[str]:
    """midi_event entries as text; SMDFileError naming the first entry that is not UTF-8."""
    events = []
    for index, event in enumerate(raw_events):
        try:
            events.append(event.decode() if isinstance(event, bytes) else str(event))
        except UnicodeDecodeError:
            raise SMDFileError(f"{path}: midi_event {index} is not UTF-8 text ({bytes(event[:40])!r})") from None
    return events


def _plain(value):
    """h5py attribute -> plain Python value (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_excerpt(path: str | os.PathLike, waveform_int16: np.ndarray, midi_events: Sequence[str],
                  midi_event_times: np.ndarray, duration: float, **attrs) -> Path:
    """Write one SMD .h5 file atomically (temp file in the same folder, then os.replace).

    ``midi_event_times`` is stored as float32, like the published files; ``attrs`` values must be
    numbers or strings.
    """
    path = Path(path)
    waveform = np.asarray(waveform_int16)
    times = np.asarray(midi_event_times)
    if times.dtype.kind not in "fiu":
        raise SMDFileError(f"{path}: midi_event_times must be numbers, got {times.dtype}")
    times = times.astype(np.float32)  # stored precision, checked as stored
    midi_events = list(midi_events)
    _validate(str(path), waveform, midi_events, times, float(duration))
    encoded = [event.encode() for event in midi_events]
    width = max(MIN_EVENT_WIDTH, max(len(e) for e in encoded))
    with atomic_path(path) as temporary, h5py.File(temporary, "w") as hf:
        hf.create_dataset("waveform", data=waveform, dtype=np.int16)
        hf.create_dataset("midi_event", data=np.array(encoded, dtype=f"S{width}"))
        hf.create_dataset("midi_event_time", data=times)
        hf.attrs["duration"] = float(duration)
        for key, value in attrs.items():
            hf.attrs[key] = value
    return path


def list_excerpts(root: str | os.PathLike) -> list[Path]:
    """Sorted .h5 files directly inside ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise SMDFileNotFoundError(f"{root}: SMD folder not found")
    paths = sorted(p for p in root.iterdir() if p.suffix == ".h5" and p.is_file())
    if not paths:
        raise SMDFileNotFoundError(f"{root}: no .h5 files in the SMD folder")
    return paths


def _as_excerpt(path_or_excerpt: str | os.PathLike | SMDExcerpt) -> SMDExcerpt:
    if isinstance(path_or_excerpt, SMDExcerpt):
        return path_or_excerpt
    return read_excerpt(path_or_excerpt)


def _audio_segment(waveform: np.ndarray, start_time: float, scale: float) -> np.ndarray:
    """(SEGMENT_SAMPLES,) float32 from sample int(start_time * SAMPLE_RATE), zero-padded at the end."""
    start_sample = int(start_time * SAMPLE_RATE)
    chunk = waveform[start_sample: start_sample + SEGMENT_SAMPLES]
    segment = np.zeros(SEGMENT_SAMPLES, dtype=np.float32)
    segment[: len(chunk)] = (chunk / scale).astype(np.float32)
    return segment


def adjust_636_to_640(batch_targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The published ``adjust621_640``: append a copy of the last 4 frames of the onset, frame,
    velocity and pedal rolls (other rolls keep 636 frames).

    The pedal roll is (1, 636): its "last 4 rows" are the whole array and it is concatenated along
    axis 1, so it becomes (1, 1272), as published.
    """
    adjusted = dict(batch_targets)
    for key in ADJUSTED_KEYS:
        roll = batch_targets[key]
        if key == "pedal_frame_roll":
            tail = roll[-ADJUST_COPY_FRAMES:, :]  # (1, 636): rows, not frames
        else:
            tail = roll[:, -ADJUST_COPY_FRAMES:, :]  # (1, 4, 88)
        adjusted[key] = np.concatenate((roll, tail), axis=1)
    return adjusted


def _collate(targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add the batch dim 1 and cast to float32, as the published collate_fn did."""
    return {key: np.array([roll], dtype=np.float32) for key, roll in targets.items()}


def paper_segments(path_or_excerpt: str | os.PathLike | SMDExcerpt, shift: float = 0.0,
                   frames_per_second: float = PAPER_TEST_FPS) -> Iterator[Segment]:
    """The segments of one excerpt exactly as the paper's run_test.py ``error_gen`` built them.

    Start times 0, 20.48, 40.96, ... (accumulated; the published main() sets test_hopseconds to
    the segment length) while ``start_time < duration``. Audio from the unshifted start, divided
    by 32767, zero-padded at the end. ``target``: the TargetProcessor rolls of the unshifted start
    (pedal-extended), float32 with batch dim 1, after :func:`adjust_636_to_640`: onset_roll,
    frame_roll, velocity_roll (1, 640, 88); pedal_frame_roll (1, 1272); offset_roll, mask_roll,
    reg_onset_roll, reg_offset_roll (1, 636, 88); pedal onset/offset rolls (1, 636).
    ``score_roll``: the adjusted frame_roll of ``start_time + shift``, (640, 88) at 31 fps.
    """
    excerpt = _as_excerpt(path_or_excerpt)
    processor = TargetProcessor(SEGMENT_SECONDS, frames_per_second)
    start_time, index = 0, 0  # int 0 first, as published
    while start_time < excerpt.duration:
        targets = published_targets(processor, excerpt, start_time)
        score = published_targets(processor, excerpt, start_time + shift)
        yield Segment(index, float(start_time), _audio_segment(excerpt.waveform, start_time, PAPER_INT16_SCALE),
                      targets, score["frame_roll"][0], score["onset_roll"][0], float(frames_per_second))
        start_time += SEGMENT_SECONDS
        index += 1


def published_targets(processor: TargetProcessor, excerpt: SMDExcerpt, start_time: float,
                      extend_pedal: bool = True) -> dict:
    """The paper's labels of the segment at `start_time`: TargetProcessor rolls, collated, 636 -> 640.

    `extend_pedal=False` gives the key-down labels (no sustain tail), for the quirk ablation.
    """
    targets, _, _ = processor.process(start_time, excerpt.midi_event_times, excerpt.midi_events,
                                      extend_pedal=extend_pedal, note_shift=0)
    return adjust_636_to_640(_collate(targets))


def corrected_segments(path_or_excerpt: str | os.PathLike | SMDExcerpt, shift: float = 0.0,
                       extend_pedal: bool = True) -> Iterator[Segment]:
    """The segments of one excerpt under the corrected protocol.

    Same segment starts (``i * 20.48`` s while < duration) and audio segmentation as the paper,
    audio divided by 32768 as the training audio. Labels on the model's own grid: SEGMENT_FRAMES
    (640) frames at FRAMES_PER_SECOND (31.25), nothing copied, from every note of the MIDI events
    (:func:`utils.data.corrected_labels.parse_notes`). ``target``: onset_roll, offset_roll,
    frame_roll, velocity_roll (raw 0..127), mask_roll, reg_onset_roll, reg_offset_roll
    (1, 640, 88) and pedal_frame_roll (1, 640), float32; plus ``notes`` (N, 4) float64
    ``(key_index, onset_frame, offset_frame, velocity)`` of the notes struck in the segment
    (offset exclusive, pedal-extended, clipped to 640). ``score_roll``: the frame_roll of
    ``start_time + shift``, (640, 88).
    """
    excerpt = _as_excerpt(path_or_excerpt)
    notes = parse_notes(excerpt.midi_events, excerpt.midi_event_times, extend_pedal=extend_pedal)
    pedals = parse_pedals(excerpt.midi_events, excerpt.midi_event_times)
    index = 0
    while index * SEGMENT_SECONDS < excerpt.duration:
        start_time = index * SEGMENT_SECONDS
        rolls = render_segment(notes, pedals, start_time, SEGMENT_FRAMES, FRAMES_PER_SECOND)
        segment_notes = rolls.pop("notes")
        target = _collate(rolls)
        target["notes"] = segment_notes
        score = render_segment(notes, pedals, start_time + shift, SEGMENT_FRAMES, FRAMES_PER_SECOND)
        yield Segment(index, start_time, _audio_segment(excerpt.waveform, start_time, INT16_SCALE),
                      target, score["frame_roll"].astype(np.float32), score["onset_roll"].astype(np.float32))
        index += 1
