"""Pack audio + MIDI pairs (SMD's own distribution) into the SMD .h5 test files.

    python -m utils.data.pack_smd SRC_DIR OUT_DIR [--overwrite] [--trim-midi]

Every ``<name>.wav|.flac`` under SRC_DIR (searched recursively) is paired with the
``<name>.mid|.midi`` of the same stem and written to ``OUT_DIR/<name>.h5``: audio resampled to
SAMPLE_RATE mono int16, the piano track's messages as ``str(mido message)`` with absolute times in
seconds (float32), attributes ``duration`` (seconds of audio), ``composer``/``title`` when known,
``audio_filename``, ``midi_filename``. Format: see utils/data/smd.py and docs/smd.md.

MIDI that goes on after the end of its audio is refused, or with ``--trim-midi`` cut at the audio's
end (notes starting later are dropped, later releases and pedal events moved to the end). An
existing .h5 is kept without ``--overwrite`` only if it reads as a valid SMD file.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

import mido
import numpy as np
import soundfile
from scipy.signal import resample_poly
from tqdm import tqdm

from utils.checks import check_output_dir, report_error
from utils.conventions import SAMPLE_RATE
from utils.data.smd import PAPER_INT16_SCALE, SMDFileError, SMDFileNotFoundError, read_excerpt, write_excerpt
from utils.data.target_processor import parse_message

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac")
MIDI_SUFFIXES = (".mid", ".midi")
DEFAULT_TEMPO = 500000  # microseconds per beat when a MIDI file sets none (120 bpm)


class PackError(ValueError):
    """An input that cannot be packed (corrupt audio/MIDI, unpaired files)."""


def load_audio(path: str | os.PathLike) -> np.ndarray:
    """Audio file -> (samples,) int16 mono at SAMPLE_RATE.

    Channels are averaged, the signal is resampled with a polyphase filter, clipped to [-1, 1]
    and scaled by 32767 (Kong et al.'s float32_to_int16).
    """
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    except (RuntimeError, soundfile.LibsndfileError, OSError) as error:
        raise PackError(f"{path}: cannot read audio ({error})") from None
    if audio.size == 0:
        raise PackError(f"{path}: audio is empty")
    mono = audio.mean(axis=1, dtype=np.float64)
    if rate != SAMPLE_RATE:
        common = math.gcd(int(rate), SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // common, int(rate) // common)
    if np.max(np.abs(mono)) > 1.0:
        log.warning("%s: audio exceeds full scale after resampling; clipped", path)
    return (np.clip(mono, -1.0, 1.0) * PAPER_INT16_SCALE).astype(np.int16)


def _seconds_of_ticks(midi: mido.MidiFile, ticks: np.ndarray) -> np.ndarray:
    """Absolute ticks -> seconds through the file's tempo map (set_tempo of any track)."""
    changes = {0: DEFAULT_TEMPO}
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                changes[tick] = message.tempo
    change_ticks = np.array(sorted(changes))
    seconds_at_change = [0.0]
    for previous, current in zip(change_ticks[:-1], change_ticks[1:]):
        ticks_per_second = midi.ticks_per_beat * (1e6 / changes[previous])
        seconds_at_change.append(seconds_at_change[-1] + (current - previous) / ticks_per_second)
    segment = np.searchsorted(change_ticks, ticks, side="right") - 1  # tempo in force at each tick
    seconds = np.empty(len(ticks), dtype=np.float64)
    for i, (tick, s) in enumerate(zip(ticks, segment)):
        ticks_per_second = midi.ticks_per_beat * (1e6 / changes[change_ticks[s]])
        seconds[i] = seconds_at_change[s] + (tick - change_ticks[s]) / ticks_per_second
    return seconds


def read_midi_events(path: str | os.PathLike) -> tuple[list[str], np.ndarray, str | None]:
    """MIDI file -> (``str(message)`` of the piano track, absolute times (events,) float64 seconds,
    track name or None).

    The piano track is the one track holding notes; when several do, they are merged in time order
    (the ``time=`` in the strings is then the delta of the merged track).
    """
    try:
        midi = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as error:
        raise PackError(f"{path}: corrupt MIDI file ({error})") from None
    if midi.type == 2:
        raise PackError(f"{path}: MIDI type 2 (asynchronous tracks) is not supported")
    note_tracks = [t for t in midi.tracks if any(m.type == "note_on" and m.velocity > 0 for m in t)]
    if not note_tracks:
        raise PackError(f"{path}: no notes in the MIDI file")
    track = note_tracks[0] if len(note_tracks) == 1 else mido.merge_tracks(note_tracks)
    ticks = np.cumsum([message.time for message in track])
    names = [m.name for t in [track] + list(midi.tracks) for m in t if m.type == "track_name" and m.name.strip()]
    return [str(message) for message in track], _seconds_of_ticks(midi, ticks), (names[0] if names else None)


def _note_change(event: str) -> tuple[str, int | None, bool]:
    """(kind, note, starts a note) of a message string; note None for other messages."""
    kind, fields = parse_message(event)
    if kind not in ("note_on", "note_off") or not fields.get("note", "").isdigit():
        return kind, None, False
    return kind, int(fields["note"]), kind == "note_on" and fields.get("velocity", "0") not in ("0",)


def trim_to_audio(midi_events: list[str], times: np.ndarray, seconds: float) -> tuple[list[str], np.ndarray]:
    """Cut the MIDI at the end of the audio: notes starting at or after ``seconds`` are dropped with
    their releases; every other later event (releases, pedal, meta) is moved to ``seconds``."""
    kept_events, kept_times, dropped = [], [], set()
    for event, time in zip(midi_events, times):
        kind, note, starts = _note_change(event)
        if note is not None and starts:
            if time >= seconds:
                dropped.add(note)
                continue
            dropped.discard(note)
        elif note is not None and note in dropped:  # the release of a dropped note
            dropped.discard(note)
            continue
        kept_events.append(event)
        kept_times.append(min(float(time), seconds))
    return kept_events, np.asarray(kept_times, dtype=np.float64)


def title_from_name(stem: str) -> dict[str, str]:
    """SMD names ``Composer_Title_..._Date-SMD`` -> {'composer': ..., 'title': ...} (empty if no '_')."""
    parts = stem.split("_")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return {}
    return {"composer": parts[0], "title": parts[1]}


def pack_pair(audio_path: str | os.PathLike, midi_path: str | os.PathLike, out_path: str | os.PathLike,
              trim_midi: bool = False, **attrs) -> Path:
    """Pack one audio + MIDI pair into ``out_path`` (.h5, written atomically); ``attrs`` override
    the derived attributes; ``trim_midi`` cuts MIDI that outlasts the audio (see :func:`trim_to_audio`)."""
    audio_path, midi_path = Path(audio_path), Path(midi_path)
    for path in (audio_path, midi_path):
        if not path.is_file():
            raise SMDFileNotFoundError(f"{path}: file not found")
    waveform = load_audio(audio_path)
    midi_events, midi_event_times, track_name = read_midi_events(midi_path)
    if trim_midi:
        midi_events, midi_event_times = trim_to_audio(midi_events, midi_event_times, len(waveform) / SAMPLE_RATE)
    derived = {"audio_filename": audio_path.name, "midi_filename": midi_path.name}
    derived.update(title_from_name(audio_path.stem))
    if "title" not in derived and track_name:
        derived["title"] = track_name
    derived.update(attrs)
    try:
        return write_excerpt(out_path, waveform, midi_events, midi_event_times,
                             duration=len(waveform) / SAMPLE_RATE, **derived)
    except SMDFileError as error:
        raise PackError(f"{audio_path.name} + {midi_path.name}: {error}") from None


def find_pairs(src_dir: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(audio, midi) pairs under ``src_dir`` matched by file stem, sorted by stem."""
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise SMDFileNotFoundError(f"{src_dir}: source folder not found")
    audio: dict[str, Path] = {}
    midi: dict[str, Path] = {}
    for path in sorted(src_dir.rglob("*")):
        suffix = path.suffix.lower()
        table = audio if suffix in AUDIO_SUFFIXES else midi if suffix in MIDI_SUFFIXES else None
        if table is None or not path.is_file():
            continue
        if path.stem in table:
            raise PackError(f"{src_dir}: two files for '{path.stem}': {table[path.stem].name}, {path.name}")
        table[path.stem] = path
    unpaired = [f"{p.name} (no MIDI)" for s, p in audio.items() if s not in midi] + \
               [f"{p.name} (no audio)" for s, p in midi.items() if s not in audio]
    if unpaired:
        raise PackError(f"{src_dir}: unpaired files: {', '.join(unpaired)}")
    if not audio:
        raise PackError(f"{src_dir}: no audio + MIDI pairs ({'/'.join(AUDIO_SUFFIXES + MIDI_SUFFIXES)})")
    return [(audio[stem], midi[stem]) for stem in sorted(audio)]


def _check_kept(out_path: Path) -> None:
    """An existing .h5 that packing would keep must be a valid SMD file."""
    try:
        read_excerpt(out_path)
    except SMDFileError as error:
        raise PackError(f"{error} (kept from an earlier run; --overwrite re-packs it)") from None


def pack_folder(src_dir: str | os.PathLike, out_dir: str | os.PathLike, overwrite: bool = False,
                trim_midi: bool = False) -> list[Path]:
    """Pack every pair of ``src_dir`` into ``out_dir/<stem>.h5``; existing files are kept (after
    checking them) unless ``overwrite``. Returns the .h5 paths of all pairs (written or kept)."""
    pairs = find_pairs(src_dir)
    out_dir = check_output_dir("OUT_DIR", out_dir)
    for audio_path, _ in pairs:
        if (out_dir / f"{audio_path.stem}.h5").exists() and not overwrite:
            _check_kept(out_dir / f"{audio_path.stem}.h5")
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = []
    for audio_path, midi_path in tqdm(pairs, desc="packing SMD", unit="file"):
        out_path = out_dir / f"{audio_path.stem}.h5"
        if out_path.exists() and not overwrite:
            log.info("%s exists and is valid, kept", out_path)
        else:
            pack_pair(audio_path, midi_path, out_path, trim_midi=trim_midi)
        outputs.append(out_path)
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pack audio + MIDI pairs into SMD .h5 test files.")
    parser.add_argument("src_dir", help="folder with <name>.wav|.flac and <name>.mid|.midi")
    parser.add_argument("out_dir", help="folder for <name>.h5")
    parser.add_argument("--overwrite", action="store_true", help="re-pack existing .h5 files")
    parser.add_argument("--trim-midi", action="store_true",
                        help="cut MIDI that goes on after the audio ends instead of refusing it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        outputs = pack_folder(args.src_dir, args.out_dir, overwrite=args.overwrite, trim_midi=args.trim_midi)
    except (ValueError, OSError) as error:
        return report_error(error)
    print(f"{len(outputs)} excerpts in {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
