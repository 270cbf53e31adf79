"""Seeded generator of expressive piano performances as MIDI.

A piece is a chain of 2-4 bar phrases in one key. Each phrase picks a texture (melody over block
chords, melody over an Alberti bass, scale runs, arpeggios, repeated notes, a chorale) and a
dynamic shape (crescendo, diminuendo, arch, flat) at a random level, so velocities cover 1..127.
The melody is voiced above the accompaniment, some notes are accented, the sustain pedal (CC64)
is changed with the harmony, and the beat grid is warped by a smooth rubato with phrase-final
ritardandi. The same seed always gives the same MIDI bytes.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pretty_midi

from utils.conventions import MAX_MIDI, MIN_MIDI
from utils.conventions import SUSTAIN_CONTROL as PEDAL_CC

TAIL_SECONDS = 1.5  # silence kept after the last release so the audio can ring out
LEAD_IN_SECONDS = 0.4
MIN_NOTE_SECONDS = 0.03

KEY_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MAJOR = [0, 2, 4, 5, 7, 9, 11]
MINOR = [0, 2, 3, 5, 7, 8, 11]  # harmonic minor: a leading tone for the dominant
PROGRESSIONS = [[0, 3, 4, 0], [0, 5, 1, 4], [0, 4, 5, 3], [5, 3, 4, 0], [0, 1, 4, 0], [3, 4, 2, 5]]
TEXTURES = ["melody_chords", "alberti", "scale_run", "arpeggio", "repeated", "chorale"]


@dataclass(frozen=True)
class Piece:
    """One generated performance and a human-readable title for the metadata."""

    midi: pretty_midi.PrettyMIDI
    title: str


@dataclass
class _Note:
    start: float  # beats
    length: float  # beats
    pitch: int
    velocity: float
    lead: float = 0.0  # seconds played ahead of the beat (melody lead)


class _Score:
    """Notes and pedal changes in beat units, built phrase by phrase."""

    def __init__(self, rng: np.random.Generator, scale: list[int], beats_per_bar: int):
        self.rng = rng
        self.scale = scale
        self.beats_per_bar = beats_per_bar
        self.notes: list[_Note] = []
        self.pedal: list[tuple[float, int]] = []  # (beat, CC64 value)

    # --- pitch helpers -------------------------------------------------------------------------
    def chord_classes(self, degree: int) -> set[int]:
        return {self.scale[(degree + step) % 7] for step in (0, 2, 4)}

    def chord_pitches(self, degree: int, low: int, high: int) -> list[int]:
        classes = self.chord_classes(degree)
        return [p for p in range(max(low, MIN_MIDI), min(high, MAX_MIDI) + 1) if p % 12 in classes]

    def scale_pitches(self, low: int, high: int) -> list[int]:
        classes = set(self.scale)
        return [p for p in range(max(low, MIN_MIDI), min(high, MAX_MIDI) + 1) if p % 12 in classes]

    # --- dynamics ------------------------------------------------------------------------------
    def dynamic_curve(self, n_beats: float):
        """Return level(beat) in [0, 1] for one phrase: a random level and shape."""
        rng = self.rng
        level = rng.uniform(0.03, 0.97)
        shape = rng.choice(["crescendo", "diminuendo", "arch", "flat"])
        span = rng.uniform(0.2, 0.5)
        if shape == "crescendo":
            start, end = level - span / 2, level + span / 2
            return lambda b: float(np.clip(start + (end - start) * b / n_beats, 0.0, 1.0))
        if shape == "diminuendo":
            start, end = level + span / 2, level - span / 2
            return lambda b: float(np.clip(start + (end - start) * b / n_beats, 0.0, 1.0))
        if shape == "arch":
            return lambda b: float(np.clip(level - span / 2 + span * np.sin(np.pi * b / n_beats), 0.0, 1.0))
        return lambda b: level

    def add(self, start: float, length: float, pitch: int, level: float, voice_offset: float,
            accent_prob: float = 0.06, lead: float = 0.0) -> None:
        """Add a note whose velocity comes from the phrase level, its voice, an accent and jitter."""
        if not MIN_MIDI <= pitch <= MAX_MIDI:
            return
        velocity = 6 + 116 * level + voice_offset + self.rng.normal(0.0, 4.0)
        if self.rng.random() < accent_prob:
            velocity += self.rng.uniform(12, 25)
        self.notes.append(_Note(start, length, pitch, velocity, lead))

    def pedal_change(self, beat: float) -> None:
        """Legato pedalling: release just after the new harmony sounds, then press again."""
        self.pedal.append((beat + 0.06, 0))
        self.pedal.append((beat + 0.25, int(self.rng.integers(100, 128))))

    def pedal_off(self, beat: float) -> None:
        self.pedal.append((beat, 0))

    # --- textures (each fills `bars` bars from `start`, one harmony per bar) ------------------
    def melody(self, start: float, degrees: list[int], level, subdivision: float, low: int, high: int):
        pitches = self.scale_pitches(low, high)
        index = int(self.rng.integers(len(pitches) // 3, 2 * len(pitches) // 3))
        beat, end = start, start + len(degrees) * self.beats_per_bar
        while beat < end - 1e-6:
            length = subdivision * float(self.rng.choice([1, 1, 1, 2, 2, 3]))
            length = min(length, end - beat)
            degree = degrees[int((beat - start) // self.beats_per_bar)]
            if (beat - start) % 1 == 0 and self.rng.random() < 0.6:  # land on chord tones on beats
                tones = [i for i, p in enumerate(pitches) if p % 12 in self.chord_classes(degree)]
                index = min(tones, key=lambda i: abs(i - index))
            pitch = pitches[index]
            self.add(beat, length * self.rng.uniform(0.85, 1.0), pitch, level(beat - start), 12,
                     lead=self.rng.uniform(0.0, 0.025))
            index = int(np.clip(index + self.rng.choice([-2, -1, -1, 1, 1, 2, 0]), 0, len(pitches) - 1))
            beat += length

    def bass(self, start: float, degree: int, level, length: float):
        options = self.chord_pitches(degree, 24, 52)
        root = [p for p in options if p % 12 == self.scale[degree % 7]]
        self.add(start, length, int(self.rng.choice(root or options)), level(0), -8)

    def texture_melody_chords(self, start, degrees, level):
        self.melody(start, degrees, level, float(self.rng.choice([0.5, 1.0])), 62, 90)
        for bar, degree in enumerate(degrees):
            bar_start = start + bar * self.beats_per_bar
            self.pedal_change(bar_start)
            self.bass(bar_start, degree, lambda _: level(bar * self.beats_per_bar), self.beats_per_bar)
            chord = self.chord_pitches(degree, 48, 62)
            for beat in range(1, self.beats_per_bar):
                for pitch in chord[-3:]:
                    self.add(bar_start + beat, 0.8, pitch, level(bar * self.beats_per_bar + beat), -14)

    def texture_alberti(self, start, degrees, level):
        self.melody(start, degrees, level, 1.0, 64, 92)
        for bar, degree in enumerate(degrees):
            bar_start = start + bar * self.beats_per_bar
            self.pedal_change(bar_start)
            low, mid, high = (self.chord_pitches(degree, 43, 62) + [0, 0, 0])[:3]
            for step in range(2 * self.beats_per_bar):
                pitch = [low, high, mid, high][step % 4]
                self.add(bar_start + step / 2, 0.5, pitch, level(bar * self.beats_per_bar + step / 2), -16,
                         accent_prob=0.02)

    def texture_scale_run(self, start, degrees, level):
        self.pedal_off(start)
        span_low = int(self.rng.integers(28, 72))
        pitches = self.scale_pitches(span_low, span_low + int(self.rng.integers(14, 30)))
        step = float(self.rng.choice([0.25, 1 / 3]))
        n_steps = int(round(len(degrees) * self.beats_per_bar / step))
        cycle = pitches + pitches[-2:0:-1]  # up then down
        octave_double = self.rng.random() < 0.5
        for i in range(n_steps):
            pitch = cycle[i % len(cycle)]
            # runs swell towards the top of the scale and fall away on the way down
            height = (pitch - pitches[0]) / max(1, pitches[-1] - pitches[0])
            phrase_level = float(np.clip(level(i * step) + 0.15 * (height - 0.5), 0.0, 1.0))
            self.add(start + i * step, step * 0.9, pitch, phrase_level, 0, accent_prob=0.03)
            if octave_double:
                self.add(start + i * step, step * 0.9, pitch - 12, phrase_level, -10, accent_prob=0.0)

    def texture_arpeggio(self, start, degrees, level):
        step = float(self.rng.choice([0.25, 1 / 3, 0.5]))
        for bar, degree in enumerate(degrees):
            bar_start = start + bar * self.beats_per_bar
            self.pedal_change(bar_start)
            pitches = self.chord_pitches(degree, int(self.rng.integers(36, 52)), int(self.rng.integers(72, 101)))
            cycle = pitches + pitches[-2:0:-1]
            for i in range(int(round(self.beats_per_bar / step))):
                pitch = cycle[i % len(cycle)]
                self.add(bar_start + i * step, step * 2, pitch, level(bar * self.beats_per_bar + i * step),
                         4 if i % len(cycle) == len(pitches) - 1 else -4)

    def texture_repeated(self, start, degrees, level):
        self.pedal_off(start)
        step = float(self.rng.choice([0.25, 0.5]))
        for bar, degree in enumerate(degrees):
            tones = self.chord_pitches(degree, 55, 84)
            pitch = int(self.rng.choice(tones))
            dyad = self.rng.random() < 0.5
            for i in range(int(round(self.beats_per_bar / step))):
                beat = start + bar * self.beats_per_bar + i * step
                accent = 14 if i % int(round(1 / step)) == 0 else 0  # metric accent on each beat
                phrase_level = level(bar * self.beats_per_bar + i * step)
                self.add(beat, step * 0.5, pitch, phrase_level, accent - 4, accent_prob=0.04)
                if dyad:
                    self.add(beat, step * 0.5, pitch - 12, phrase_level, accent - 12, accent_prob=0.0)

    def texture_chorale(self, start, degrees, level):
        length = float(self.rng.choice([1.0, 2.0]))
        for bar, degree in enumerate(degrees):
            for offset in np.arange(0.0, self.beats_per_bar, length):
                beat = start + bar * self.beats_per_bar + offset
                self.pedal_change(beat)
                chord_level = level(bar * self.beats_per_bar + offset)
                upper = self.chord_pitches(degree, 55, 84)
                top_index = int(self.rng.integers(3, len(upper)))
                for pitch in upper[top_index - 3:top_index]:
                    self.add(beat, length, pitch, chord_level, -6)
                self.add(beat, length, upper[top_index], chord_level, 10, lead=0.015)  # voiced top
                self.bass(beat, degree, lambda _: chord_level, length)


def _beat_durations(rng: np.random.Generator, n_beats: int, bpm: float, phrase_ends: list[int]) -> np.ndarray:
    """Seconds per beat: a smooth random tempo curve (+-10 %) with a ritardando into each phrase end."""
    beats = np.arange(n_beats)
    warp = np.zeros(n_beats)
    for period in (7.0, 13.0, 29.0):
        warp += rng.uniform(0.02, 0.045) * np.sin(2 * np.pi * beats / period + rng.uniform(0, 2 * np.pi))
    for end in phrase_ends:
        for back in range(1, 3):
            if 0 <= end - back < n_beats:
                warp[end - back] += rng.uniform(0.05, 0.15) / back
    return 60.0 / bpm * np.exp(warp)


def generate_performance(seconds: float, seed: int) -> Piece:
    """Generate a performance lasting about `seconds` (last release + TAIL_SECONDS of silence)."""
    if seconds < 5.0:
        raise ValueError(f"seconds={seconds}: a performance needs at least 5 s")
    rng = np.random.default_rng(seed)
    tonic = int(rng.integers(0, 12))
    is_major = bool(rng.random() < 0.6)
    scale = [(tonic + step) % 12 for step in (MAJOR if is_major else MINOR)]
    beats_per_bar = int(rng.choice([3, 4]))
    bpm = float(rng.uniform(70, 128))
    score = _Score(rng, scale, beats_per_bar)

    n_beats_needed = int(seconds * bpm / 60 * 1.3) + 4 * beats_per_bar
    beat, phrase_ends = 0.0, []
    while beat < n_beats_needed:
        bars = int(rng.integers(2, 5))
        progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
        degrees = [progression[i % len(progression)] for i in range(bars - 1)] + [0]
        texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
        getattr(score, f"texture_{texture}")(beat, degrees, score.dynamic_curve(bars * beats_per_bar))
        beat += bars * beats_per_bar
        phrase_ends.append(int(beat))

    durations = _beat_durations(rng, int(beat) + 1, bpm, phrase_ends)
    beat_times = LEAD_IN_SECONDS + np.concatenate([[0.0], np.cumsum(durations)])

    def to_seconds(b: float) -> float:
        return float(np.interp(b, np.arange(len(beat_times)), beat_times))

    last_release = seconds - TAIL_SECONDS
    piano = pretty_midi.Instrument(program=0, name="Synthetic piano")
    for note in score.notes:
        start = to_seconds(note.start) - note.lead + rng.normal(0.0, 0.006)
        end = min(to_seconds(note.start + note.length), last_release)
        if start < last_release - MIN_NOTE_SECONDS:
            velocity = int(np.clip(round(note.velocity), 1, 127))
            piano.notes.append(pretty_midi.Note(velocity, note.pitch, max(start, 0.0), end))
    piano.notes = _remove_overlaps(piano.notes)
    for b, value in sorted(score.pedal, key=lambda event: event[0]):
        t = to_seconds(b)
        if t < last_release:
            piano.control_changes.append(pretty_midi.ControlChange(PEDAL_CC, value, t))
    piano.control_changes.append(pretty_midi.ControlChange(PEDAL_CC, 0, last_release))

    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    midi.instruments.append(piano)
    title = f"Synthetic Study in {KEY_NAMES[tonic]} {'major' if is_major else 'minor'}, seed {seed}"
    return Piece(midi, title)


def _remove_overlaps(notes: list[pretty_midi.Note]) -> list[pretty_midi.Note]:
    """Cut each note before the next onset of the same key; drop notes left too short."""
    notes = sorted(notes, key=lambda n: (n.start, n.pitch))
    kept, next_start = [], {}
    for note in reversed(notes):
        if note.pitch in next_start:
            note.end = min(note.end, next_start[note.pitch] - 0.01)
        next_start[note.pitch] = note.start
        if note.end - note.start >= MIN_NOTE_SECONDS:
            kept.append(note)
    return kept[::-1]


def midi_bytes(midi: pretty_midi.PrettyMIDI) -> bytes:
    """The Standard MIDI File bytes pretty_midi writes for `midi`."""
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()
