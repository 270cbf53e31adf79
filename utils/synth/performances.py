"""Real performance MIDI as corpus material: windows cut from recorded human performances.

The generator (performance.py) ties velocity to its own idea of phrasing. Real performances have
other textures, pedalling and dynamics (softer, narrower), and a model trained only on generated
pieces spreads its estimates too wide on them. With `--performances`, a fraction of the corpus
pieces are windows of given performance MIDI files instead: the piece seed picks the file and the
start, the notes inside the window keep their real velocities, and the sustain pedal state at the
window start carries over. The window is rendered like any generated piece (same voices, variety).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi

from utils.conventions import MAX_MIDI, MIN_MIDI, SUSTAIN_CONTROL
from utils.synth.performance import LEAD_IN_SECONDS, TAIL_SECONDS, Piece

MIDI_SUFFIXES = (".mid", ".midi")
MIN_NOTES_PER_WINDOW = 20  # a window with fewer notes is re-drawn (silence teaches nothing)
DRAWS = 20  # tries per piece before giving up on a quiet file


class PerformanceError(ValueError):
    """An unusable performance file or folder (the message names it)."""


@dataclass(frozen=True)
class Performance:
    name: str
    midi: pretty_midi.PrettyMIDI  # one piano track (piano_only)


def piano_only(midi: pretty_midi.PrettyMIDI) -> pretty_midi.PrettyMIDI:
    """One acoustic-piano track: notes (MIN_MIDI..MAX_MIDI, positive length) and controllers of the
    non-drum instruments with a piano program (0-7)."""
    result = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0, name="piano")
    for instrument in midi.instruments:
        if instrument.is_drum or instrument.program >= 8:
            continue
        piano.notes += [n for n in instrument.notes if MIN_MIDI <= n.pitch <= MAX_MIDI and n.end > n.start]
        piano.control_changes += instrument.control_changes
    piano.notes.sort(key=lambda n: (n.start, n.pitch))
    piano.control_changes.sort(key=lambda c: c.time)
    result.instruments.append(piano)
    return result


def midi_files(source: str | Path) -> list[Path]:
    """The .mid/.midi files of a file or folder (sorted); PerformanceError when there are none."""
    source = Path(source)
    if source.is_file():
        files = [source]
    elif source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES)
    else:
        raise PerformanceError(f"{source}: performances not found")
    if not files:
        raise PerformanceError(f"{source}: no .mid or .midi file")
    return files


def load_performances(sources, min_seconds: float) -> list[Performance]:
    """Every performance of `sources` (files or folders); a file that is unreadable, has no piano notes
    or is shorter than `min_seconds` is a PerformanceError naming it."""
    performances = []
    for path in (p for source in sources for p in midi_files(source)):
        try:
            midi = piano_only(pretty_midi.PrettyMIDI(str(path)))
        except Exception as error:  # mido/pretty_midi raise many types on malformed files
            raise PerformanceError(f"{path}: unreadable MIDI ({error})") from None
        notes = midi.instruments[0].notes
        if not notes:
            raise PerformanceError(f"{path}: no piano notes (programs 0-7, keys {MIN_MIDI}-{MAX_MIDI})")
        if notes[-1].end - notes[0].start < min_seconds:
            raise PerformanceError(f"{path}: {notes[-1].end - notes[0].start:.1f} s of notes, shorter than one "
                                   f"{min_seconds:g} s piece")
        performances.append(Performance(path.stem, midi))
    return performances


def window(midi: pretty_midi.PrettyMIDI, start: float, span: float) -> pretty_midi.PrettyMIDI:
    """The notes with onsets in [start, start + span), moved to begin at LEAD_IN_SECONDS and cut at the
    window end; the pedal value in force at `start` opens the window."""
    shift = LEAD_IN_SECONDS - start
    end = start + span
    source = midi.instruments[0]
    piano = pretty_midi.Instrument(program=0, name="piano")
    piano.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start + shift, min(n.end, end) + shift)
                   for n in source.notes if start <= n.start < end]
    pedal = [c for c in source.control_changes if c.number == SUSTAIN_CONTROL]
    before = [c.value for c in pedal if c.time < start]
    piano.control_changes = ([pretty_midi.ControlChange(SUSTAIN_CONTROL, before[-1], 0.0)] if before else []) + [
        pretty_midi.ControlChange(SUSTAIN_CONTROL, c.value, c.time + shift) for c in pedal if start <= c.time < end]
    piano.control_changes.append(pretty_midi.ControlChange(SUSTAIN_CONTROL, 0, end + shift))  # release at the end
    result = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    result.instruments.append(piano)
    return result


def performance_window(performances: list[Performance], seconds: float, seed: int) -> Piece:
    """The window of the piece with seed `seed`: a file and start drawn from the seed, as long as a
    `seconds`-long piece minus its lead-in and release tail; re-drawn while it has too few notes."""
    rng = np.random.default_rng([seed, 4099])
    span = seconds - LEAD_IN_SECONDS - TAIL_SECONDS
    for _ in range(DRAWS):
        chosen = performances[rng.integers(len(performances))]
        notes = chosen.midi.instruments[0].notes
        first, last = notes[0].start, max(notes[0].start, notes[-1].start - span / 2)
        start = float(rng.uniform(first, last))
        midi = window(chosen.midi, start, span)
        if len(midi.instruments[0].notes) >= MIN_NOTES_PER_WINDOW:
            return Piece(midi, f"{chosen.name} from {start:.1f} s")
    raise PerformanceError(f"{chosen.name}: no {span:.0f} s window with {MIN_NOTES_PER_WINDOW} notes in {DRAWS} draws")
