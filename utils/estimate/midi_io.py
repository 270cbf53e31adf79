"""Notes with absolute times from any MIDI file, and the same file with only note_on velocities changed.

Reading uses mido: type 0 and type 1 files, any number of tracks, tempo changes anywhere (the tempo
map is merged over all tracks, as mido plays a file). Each note keeps its place in the file (track
and message index), so the output changes exactly the velocity of that note_on message. A note_on
with velocity 0 is a note-off and is never touched.

Writing patches the velocity bytes in the original file bytes (utils/estimate/smf_bytes.py), so
everything else stays byte-for-byte; files that walk does not understand are re-encoded by mido
with only the note_on messages' velocities changed (same messages, same order, same delta times).
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from utils.estimate.errors import EstimateError
from utils.estimate.smf_bytes import velocity_offsets

log = logging.getLogger(__name__)

DRUM_CHANNEL = 9  # General MIDI channel 10, counted from 0
SUSTAIN_CONTROL = 64  # CC64, the damper pedal; values >= 64 mean down
SUSTAIN_THRESHOLD = 64
DEFAULT_TEMPO = 500000  # microseconds per beat until the first set_tempo


@dataclass(frozen=True)
class Note:
    """One note of a MIDI file: where its note_on is, and its times in ticks and seconds."""

    track: int
    index: int  # message index of the note_on in its track
    channel: int
    pitch: int
    velocity: int
    onset_tick: int
    offset_tick: int
    onset: float  # seconds
    offset: float  # seconds


@dataclass
class MidiScore:
    """A MIDI file as read: its bytes, mido's parse, its notes (file order) and its pedal presses."""

    path: Path
    data: bytes
    midi: mido.MidiFile
    notes: list[Note]
    pedals: np.ndarray  # (P, 2) float64 (press_s, release_s), non-drum CC64 of all tracks


class TempoMap:
    """Ticks -> seconds over a merged list of (tick, tempo) changes."""

    def __init__(self, changes: list[tuple[int, int]], ticks_per_beat: int):
        ticks, tempos = [0], [DEFAULT_TEMPO]
        for tick, tempo in sorted(changes, key=lambda change: change[0]):
            if tick == ticks[-1]:
                tempos[-1] = tempo
            else:
                ticks.append(tick)
                tempos.append(tempo)
        self.ticks = np.asarray(ticks, dtype=np.int64)  # (C,)
        self.seconds_per_tick = np.asarray(tempos, dtype=np.float64) * 1e-6 / ticks_per_beat  # (C,)
        self.starts = np.concatenate([[0.0], np.cumsum(np.diff(self.ticks) * self.seconds_per_tick[:-1])])  # (C,)

    def seconds(self, tick: int) -> float:
        i = int(np.searchsorted(self.ticks, tick, side="right")) - 1
        return float(self.starts[i] + (tick - self.ticks[i]) * self.seconds_per_tick[i])


def _absolute_ticks(track) -> list[int]:
    ticks, now = [], 0
    for message in track:
        now += message.time
        ticks.append(now)
    return ticks


def parse_bytes(path: Path, data: bytes) -> mido.MidiFile:
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except Exception as error:  # mido raises OSError, EOFError, KeyError, ValueError... on bad data
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise EstimateError(f"{path}: not a readable MIDI file ({detail})") from None
    if midi.type == 2:
        raise EstimateError(f"{path}: type 2 MIDI files (independent sequences) are not supported")
    if midi.ticks_per_beat <= 0:
        raise EstimateError(f"{path}: SMPTE time division is not supported")
    return midi


def _track_notes(t: int, track, ticks: list[int]) -> list[tuple]:
    """(track, index, channel, pitch, velocity, onset_tick, offset_tick) of one track's notes.

    A note ends at the next note_off / zero-velocity note_on of its channel and key, or at its
    key's next strike; a note never released ends at the track's last event.
    """
    open_notes: dict[tuple[int, int], tuple[int, int]] = {}  # (channel, pitch) -> (index, velocity)
    notes = []

    def close(key, tick):
        index, velocity = open_notes.pop(key)
        notes.append((t, index, key[0], key[1], velocity, ticks[index], tick))

    for i, message in enumerate(track):
        if message.type not in ("note_on", "note_off"):
            continue
        key = (message.channel, message.note)
        if key in open_notes:
            close(key, ticks[i])
        if message.type == "note_on" and message.velocity > 0:
            open_notes[key] = (i, message.velocity)
    for key in list(open_notes):
        close(key, ticks[-1])
    return notes


def _pedals(midi: mido.MidiFile, all_ticks: list[list[int]], tempo: TempoMap) -> np.ndarray:
    """(P, 2) sustain-pedal presses in seconds, merged over tracks and non-drum channels."""
    changes = sorted(
        (ticks[i], message.value >= SUSTAIN_THRESHOLD)
        for track, ticks in zip(midi.tracks, all_ticks) for i, message in enumerate(track)
        if message.type == "control_change" and message.control == SUSTAIN_CONTROL and message.channel != DRUM_CHANNEL
    )
    presses, down_since = [], None
    for tick, down in changes:
        if down and down_since is None:
            down_since = tick
        elif not down and down_since is not None:
            presses.append((tempo.seconds(down_since), tempo.seconds(tick)))
            down_since = None
    if down_since is not None:
        last = max((ticks[-1] for ticks in all_ticks if ticks), default=down_since)
        presses.append((tempo.seconds(down_since), tempo.seconds(last)))
    return np.asarray(presses, dtype=np.float64).reshape(-1, 2)


def read_midi(path: str | Path) -> MidiScore:
    """Read a MIDI file; raise EstimateError for a missing, unreadable or note-less file."""
    path = Path(path)
    if not path.is_file():
        raise EstimateError(f"{path}: MIDI file not found")
    data = path.read_bytes()
    midi = parse_bytes(path, data)
    all_ticks = [_absolute_ticks(track) for track in midi.tracks]
    tempo = TempoMap([(ticks[i], m.tempo) for track, ticks in zip(midi.tracks, all_ticks)
                      for i, m in enumerate(track) if m.type == "set_tempo"], midi.ticks_per_beat)
    rows = [row for t, (track, ticks) in enumerate(zip(midi.tracks, all_ticks)) for row in _track_notes(t, track, ticks)]
    if not rows:
        raise EstimateError(f"{path}: the MIDI file has no notes (no note_on with velocity > 0)")
    rows.sort(key=lambda row: (row[0], row[1]))  # file order
    notes = [Note(*row, onset=tempo.seconds(row[5]), offset=tempo.seconds(row[6])) for row in rows]
    return MidiScore(path, data, midi, notes, _pedals(midi, all_ticks, tempo))


def _patched_bytes(score: MidiScore, velocities: dict[tuple[int, int], int]) -> bytes | None:
    """The file bytes with the velocity byte of each (track, index) note_on replaced; None if unsure."""
    offsets = velocity_offsets(score.data)
    if offsets is None or [len(t) for t in offsets] != [len(t) for t in score.midi.tracks]:
        return None
    data = bytearray(score.data)
    for (t, i), velocity in velocities.items():
        event, message = offsets[t][i], score.midi.tracks[t][i]
        if event is None or event[0] >> 4 != 0x9 or event[1] != message.note or data[event[2]] != message.velocity:
            return None
        data[event[2]] = velocity
    return bytes(data)


def _mido_bytes(score: MidiScore, velocities: dict[tuple[int, int], int]) -> bytes:
    """The file re-encoded by mido with only the given note_on velocities changed."""
    midi = mido.MidiFile(file=io.BytesIO(score.data))  # a fresh copy: the read one stays as read
    for (t, i), velocity in velocities.items():
        midi.tracks[t][i] = midi.tracks[t][i].copy(velocity=velocity)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def with_velocities(score: MidiScore, velocities: dict[tuple[int, int], int]) -> bytes:
    """Bytes of the MIDI file with new velocities (1..127) for the note_on at each (track, index)."""
    for key, velocity in velocities.items():
        if not 1 <= int(velocity) <= 127:
            raise ValueError(f"velocity {velocity} of note {key} is outside 1..127")
    velocities = {key: int(v) for key, v in velocities.items()}
    patched = _patched_bytes(score, velocities)
    if patched is None:
        log.info("%s: unusual MIDI byte layout, the output is re-encoded by mido (same messages)", score.path)
        return _mido_bytes(score, velocities)
    return patched
