"""MAESTRO training labels: MIDI -> note table -> onset/offset/frame/velocity rolls of one crop.

Reproduces the labels the paper trained on (AudioLoader's MAESTRO loader, commit d36203b):

* :func:`parse_midi` turns a MIDI file into a note table with rows
  ``(onset_s, offset_s, midi_note, velocity)``. A note's end is the next event of the same pitch
  (its note-off, or a re-strike); if the sustain pedal (CC64 >= 64) is down at that moment, the end
  moves to the next pedal release.
* :func:`segment_rolls` cuts the labels of one training crop out of that table, frame by frame at
  ``sample_rate / hop_length`` frames per second, with the published quirks (see the function).
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import mido
import numpy as np

from utils.atomic import atomic_path
from utils.conventions import (HOP_LENGTH, MAX_MIDI, MIN_MIDI, SAMPLE_RATE, SEGMENT_SAMPLES, SUSTAIN_CONTROL,
                               SUSTAIN_THRESHOLD, VELOCITY_SCALE)

log = logging.getLogger(__name__)


# Event kinds of the intermediate event list built by parse_midi.
_NOTE, _PEDAL_DOWN, _PEDAL_UP = 0, 1, 2

# Values of the integer label roll, as in AudioLoader's tsv2roll.
_OFFSET_LABEL, _SUSTAIN_LABEL, _ONSET_LABEL = 1, 2, 3


class MidiLabelError(ValueError):
    """A MIDI file that cannot give training labels (corrupt, empty, or notes off the keyboard)."""


def _midi_events(midi: mido.MidiFile) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flatten a MIDI file into note and pedal-change events, in playing order.

    Returns parallel arrays ``time`` (s, float64), ``kind`` (_NOTE/_PEDAL_DOWN/_PEDAL_UP), ``note``
    (-1 for pedal events), ``velocity`` (0 for note-offs and pedal events) and ``sustained`` (pedal
    state when a note event happened).
    """
    times, kinds, notes, velocities, sustained = [], [], [], [], []
    now = 0.0
    pedal_down = False
    for message in midi:  # merged tracks, delta times already in seconds
        now += message.time
        if message.type == "control_change" and message.control == SUSTAIN_CONTROL:
            down = message.value >= SUSTAIN_THRESHOLD
            if down != pedal_down:
                pedal_down = down
                times.append(now)
                kinds.append(_PEDAL_DOWN if down else _PEDAL_UP)
                notes.append(-1)
                velocities.append(0)
                sustained.append(False)
        if message.type in ("note_on", "note_off"):
            times.append(now)
            kinds.append(_NOTE)
            notes.append(message.note)
            velocities.append(message.velocity if message.type == "note_on" else 0)
            sustained.append(pedal_down)
    return (np.asarray(times, dtype=np.float64), np.asarray(kinds, dtype=np.int64),
            np.asarray(notes, dtype=np.int64), np.asarray(velocities, dtype=np.int64),
            np.asarray(sustained, dtype=bool))


def _next_indices(kind: np.ndarray, note: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every event i: the index of the next event (> i) of the same pitch and of the next pedal
    release, or -1 when there is none."""
    n_events = len(kind)
    next_same_note = np.full(n_events, -1, dtype=np.int64)
    next_pedal_up = np.full(n_events, -1, dtype=np.int64)
    last_seen: dict[int, int] = {}
    following_pedal_up = -1
    for i in range(n_events - 1, -1, -1):
        next_pedal_up[i] = following_pedal_up
        if kind[i] == _NOTE:
            next_same_note[i] = last_seen.get(int(note[i]), -1)
            last_seen[int(note[i])] = i
        elif kind[i] == _PEDAL_UP:
            following_pedal_up = i
    return next_same_note, next_pedal_up


def parse_midi(path: str | os.PathLike) -> np.ndarray:
    """Read a MIDI file into a note table ``(N, 4)`` float64 of rows (onset_s, offset_s, note, velocity).

    Every note-on with velocity > 0 starts a note. It ends at the next event of the same pitch (a
    note-off, a zero-velocity note-on or a re-strike), or at the file's last note/pedal event when
    there is none. If the pedal is down at that end and it is not the last event, the end moves to
    the next pedal release (or the last event). Rows are in onset order (ties: file order).

    Raises :class:`MidiLabelError` naming the file when it is not a readable MIDI file, holds no
    notes, or holds notes outside MIN_MIDI..MAX_MIDI.
    """
    name = os.fspath(path)
    try:
        midi = mido.MidiFile(name)
        time, kind, note, velocity, sustained = _midi_events(midi)
    except FileNotFoundError:
        raise
    except Exception as error:  # mido raises OSError, EOFError, KeyError, ValueError... on bad data
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise MidiLabelError(f"{name}: not a readable MIDI file ({detail})") from error

    onsets = np.flatnonzero((kind == _NOTE) & (velocity > 0))
    if len(onsets) == 0:
        raise MidiLabelError(f"{name}: MIDI file has no notes")
    off_keyboard = sorted(set(note[onsets][(note[onsets] < MIN_MIDI) | (note[onsets] > MAX_MIDI)].tolist()))
    if off_keyboard:
        raise MidiLabelError(f"{name}: MIDI notes {off_keyboard} are outside the piano range "
                             f"{MIN_MIDI}..{MAX_MIDI}")

    last = len(kind) - 1
    next_same_note, next_pedal_up = _next_indices(kind, note)
    table = np.empty((len(onsets), 4), dtype=np.float64)
    for row, start in enumerate(onsets):
        end = next_same_note[start]
        if end == -1:  # never released: the last event ends it (the onset itself if it is last)
            end = last
        if end != last and kind[end] == _NOTE and sustained[end]:
            end = next_pedal_up[end] if next_pedal_up[end] != -1 else last
        table[row] = (time[start], time[end], note[start], velocity[start])
    return table


CACHE_MARK = -1.0  # first row of a label cache: (CACHE_MARK, MIDI size, hash high 32 bits, hash low 32 bits)


def _midi_key(midi_path: Path) -> np.ndarray:
    """The key row of a label cache: the MIDI file's size and a 64-bit BLAKE2 hash of its content."""
    content = midi_path.read_bytes()
    digest = int.from_bytes(hashlib.blake2b(content, digest_size=8).digest(), "big")
    return np.array([[CACHE_MARK, len(content), digest >> 32, digest & 0xFFFFFFFF]], dtype=np.float64)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` (.npy) through a temporary file in the same folder."""
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        np.save(stream, array)


def _cached_table(cache_path: Path, key: np.ndarray) -> np.ndarray | None:
    """The note table of a cache written for the MIDI content ``key``, else None."""
    try:
        stored = np.load(cache_path, allow_pickle=False)
    except (OSError, ValueError):
        log.info("%s: unreadable label cache, rebuilding it", cache_path)
        return None
    if stored.ndim == 2 and stored.shape[1] == 4 and len(stored) > 1 and np.array_equal(stored[:1], key):
        return stored[1:]
    log.info("%s: label cache made from other MIDI content, rebuilding it", cache_path)
    return None


def load_note_table(midi_path: str | os.PathLike, cache_path: str | os.PathLike | None = None) -> np.ndarray:
    """:func:`parse_midi`, cached in ``cache_path`` (.npy) when given.

    The cache stores the MIDI file's size and content hash in its first row and is used only when they
    match the MIDI file (modification times are not trusted); otherwise the MIDI file is parsed and the
    cache (re)written atomically.
    """
    midi_path = Path(midi_path)
    if cache_path is None:
        return parse_midi(midi_path)
    cache_path = Path(cache_path)
    key = _midi_key(midi_path)
    if cache_path.is_file():
        table = _cached_table(cache_path, key)
        if table is not None:
            return table
    table = parse_midi(midi_path)
    _atomic_save_npy(cache_path, np.concatenate([key, table]))
    return table


def segment_rolls(
    notes: np.ndarray,
    begin: int,
    audio_length: int,
    sequence_length: int = SEGMENT_SAMPLES,
    hop_length: int = HOP_LENGTH,
    sample_rate: int = SAMPLE_RATE,
    min_midi: int = MIN_MIDI,
    max_midi: int = MAX_MIDI,
) -> dict[str, np.ndarray]:
    """Labels of the crop of ``sequence_length`` samples starting at sample ``begin``.

    ``notes`` is a note table from :func:`parse_midi`; ``audio_length`` (samples) sets the piece's
    frame count ``(audio_length - 1) // hop_length + 1``, where notes are clipped. The crop covers
    frames ``begin // hop_length`` onwards, ``sequence_length // hop_length`` of them (fewer if the
    piece ends first). A note spans frames ``[round(on * fps), round(off * fps))`` with
    ``fps = sample_rate / hop_length``: ``onset`` marks its first frame, ``frame`` the span,
    ``offset`` the frame right after it, and ``velocity`` holds velocity / 128 over the span.
    Later rows overwrite earlier ones. As published, a note shorter than half a frame (same first
    and end frame) leaves only an ``offset`` mark where its onset would be.

    Returns ``onset``, ``offset``, ``frame``, ``velocity``, each float32 ``(frames, keys)``.
    """
    n_keys = max_midi - min_midi + 1
    n_steps = (audio_length - 1) // hop_length + 1  # frames of the whole piece
    first = begin // hop_length
    stop = min(first + sequence_length // hop_length, n_steps)
    n_frames = max(stop - first, 0)
    labels = np.zeros((n_frames, n_keys), dtype=np.int8)  # (T, 88) 3 onset / 2 sustain / 1 offset
    velocity = np.zeros((n_frames, n_keys), dtype=np.float32)  # (T, 88) raw MIDI velocity

    frames_per_second = sample_rate / hop_length
    # Frame indices of every note; np.rint rounds half to even like Python's round().
    lefts = np.rint(notes[:, 0] * frames_per_second).astype(np.int64)
    frame_rights = np.minimum(n_steps, np.rint(notes[:, 1] * frames_per_second).astype(np.int64))
    last_written = np.maximum(np.minimum(n_steps, lefts + 1), np.minimum(n_steps, frame_rights + 1))  # exclusive
    touching = (lefts < stop) & (last_written > first)
    for row in np.flatnonzero(touching):  # in table order: later notes overwrite earlier ones
        left, frame_right = int(lefts[row]), int(frame_rights[row])
        onset_right = min(n_steps, left + 1)
        offset_right = min(n_steps, frame_right + 1)
        key = int(notes[row, 2]) - min_midi
        note_velocity = notes[row, 3]
        # Same write order as the published tsv2roll: onset, then sustain, then offset.
        for start, end, value in ((left, onset_right, _ONSET_LABEL), (onset_right, frame_right, _SUSTAIN_LABEL),
                                  (frame_right, offset_right, _OFFSET_LABEL)):
            lo, hi = max(start, first), min(end, stop)
            if lo < hi:
                labels[lo - first:hi - first, key] = value
        lo, hi = max(left, first), min(frame_right, stop)
        if lo < hi:
            velocity[lo - first:hi - first, key] = note_velocity

    return {
        "onset": (labels == _ONSET_LABEL).astype(np.float32),
        "offset": (labels == _OFFSET_LABEL).astype(np.float32),
        "frame": (labels > _OFFSET_LABEL).astype(np.float32),
        "velocity": velocity / np.float32(VELOCITY_SCALE),
    }
