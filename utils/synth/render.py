"""Offline MIDI -> audio rendering with a fixed gain: FluidSynth + a sampled piano, or a numpy fallback.

Both renderers return float32 stereo audio of shape (2, samples) in [-1, 1] and never normalise a
file's peak, so a louder performance gives louder audio (the cue DiffVel learns). Clipping is
counted and logged as a warning instead.

* `FluidSynthRenderer`: pyfluidsynth + the system libfluidsynth + a General MIDI SoundFont
  (acoustic grand piano, bank 0 preset 0), reverb and chorus off. The MIDI events are sent in time
  order and the synth is run with `get_samples` between them (sample-accurate), no audio driver.
* `AdditiveRenderer`: pure numpy. Inharmonic partials whose level AND spectral slope follow the
  velocity, a two-stage decay that is faster for high keys and high partials, a hammer-noise
  transient, damper release, and sustain-pedal (CC64) hold.

`make_renderer("auto")` picks FluidSynth when everything it needs is present and otherwise logs a
warning naming the missing piece and falls back to the additive renderer.
"""
from __future__ import annotations

import logging
import math
import os
import zlib
from pathlib import Path
from typing import Protocol

import numpy as np
import pretty_midi

from utils.conventions import SUSTAIN_CONTROL as PEDAL_CC

logger = logging.getLogger(__name__)

RENDERERS = ("auto", "fluidsynth", "additive")
RELEASE_TAIL_SECONDS = 1.0  # rendered after the last MIDI event when no duration is given
FLUIDSYNTH_GAIN = 0.9  # fixed synth.gain for every file (never per-file normalisation)
ADDITIVE_GAIN = 0.06  # fixed output gain of the additive renderer
SOUNDFONT_ENV = "DIFFVEL_SOUNDFONT"
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf3/MuseScore_General.sf3",  # Debian musescore-general-soundfont-small
    "/usr/share/sounds/sf2/MuseScore_General.sf2",  # Debian musescore-general-soundfont
    "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",  # Debian/Ubuntu fluid-soundfont-gm
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",  # Fedora, Arch
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/local/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
)


class RendererUnavailable(RuntimeError):
    """The requested renderer cannot run on this machine (message says what is missing)."""


class Renderer(Protocol):
    name: str
    sample_rate: int

    def render(self, midi: pretty_midi.PrettyMIDI, duration: float | None = None,
               label: str = "performance") -> np.ndarray:
        """Return (2, samples) float32 audio; `duration` in seconds, default last event + tail."""


def find_soundfont() -> Path | None:
    """The SoundFont to use: $DIFFVEL_SOUNDFONT if set, else the first standard path that exists."""
    override = os.environ.get(SOUNDFONT_ENV)
    if override:
        if not Path(override).is_file():
            raise RendererUnavailable(f"{override}: ${SOUNDFONT_ENV} does not name an existing SoundFont file")
        return Path(override)
    for candidate in SOUNDFONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def _num_samples(midi: pretty_midi.PrettyMIDI, duration: float | None, sample_rate: int) -> int:
    if duration is None:
        duration = midi.get_end_time() + RELEASE_TAIL_SECONDS
    return int(math.ceil(duration * sample_rate))


def _warn_if_clipped(audio: np.ndarray, label: str, renderer: str) -> None:
    clipped = int(np.count_nonzero(np.abs(audio) >= 32767 / 32768))
    if clipped:
        logger.warning("%s: %d samples (%.4f %%) clipped by the %s renderer; lower its fixed gain",
                       label, clipped, 100.0 * clipped / audio.size, renderer)


def _piano_notes(midi: pretty_midi.PrettyMIDI) -> list[pretty_midi.Note]:
    return sorted((n for inst in midi.instruments if not inst.is_drum for n in inst.notes),
                  key=lambda n: (n.start, n.pitch))


def _control_changes(midi: pretty_midi.PrettyMIDI) -> list[pretty_midi.ControlChange]:
    return sorted((c for inst in midi.instruments if not inst.is_drum for c in inst.control_changes),
                  key=lambda c: c.time)


def pedal_intervals(changes: list[pretty_midi.ControlChange]) -> tuple[np.ndarray, np.ndarray]:
    """Times of pedal presses and releases (value >= 64 is down), as two sorted arrays."""
    downs, ups, down = [], [], False
    for change in changes:
        if change.number != PEDAL_CC:
            continue
        pressed = change.value >= 64
        if pressed and not down:
            downs.append(change.time)
        elif down and not pressed:
            ups.append(change.time)
        down = pressed
    if down:
        ups.append(np.inf)
    return np.asarray(downs), np.asarray(ups)


def sounding_end(note: pretty_midi.Note, downs: np.ndarray, ups: np.ndarray) -> float:
    """Key release, or the next pedal release when the pedal is down at key release."""
    for down, up in zip(downs, ups):
        if down <= note.end < up:
            return float(up)
    return note.end


class FluidSynthRenderer:
    """Sampled piano via FluidSynth (see module docstring)."""

    name = "fluidsynth"

    def __init__(self, sample_rate: int, soundfont: str | Path | None = None, gain: float = FLUIDSYNTH_GAIN):
        try:
            import fluidsynth  # raises ImportError when the libfluidsynth system library is missing too
        except (ImportError, OSError) as error:
            raise RendererUnavailable(f"pyfluidsynth or the libfluidsynth system library is missing ({error})") from error
        self._fluidsynth = fluidsynth
        self.soundfont = Path(soundfont) if soundfont else find_soundfont()
        if self.soundfont is None:
            raise RendererUnavailable("no SoundFont found (looked at $" + SOUNDFONT_ENV + " and "
                                      + ", ".join(SOUNDFONT_CANDIDATES) + ")")
        if not self.soundfont.is_file():
            raise RendererUnavailable(f"{self.soundfont}: SoundFont file not found")
        self.sample_rate = int(sample_rate)
        self.gain = float(gain)
        self._synth = None
        self._soundfont_id = None

    def _fresh_synth(self):
        """Create the synth once (loading the SoundFont is the slow part), then reset it per file."""
        if self._synth is None:
            synth = self._fluidsynth.Synth(gain=self.gain, samplerate=float(self.sample_rate),
                                           **{"synth.reverb.active": 0, "synth.chorus.active": 0,
                                              "synth.cpu-cores": 1})
            self._soundfont_id = synth.sfload(str(self.soundfont))
            if self._soundfont_id == -1:
                synth.delete()
                raise RendererUnavailable(f"{self.soundfont}: FluidSynth could not load this SoundFont")
            self._synth = synth
        else:
            self._synth.system_reset()
            self._synth.get_samples(self.sample_rate // 2)  # let any leftover voice die out
        self._synth.program_select(0, self._soundfont_id, 0, 0)
        return self._synth

    def render(self, midi: pretty_midi.PrettyMIDI, duration: float | None = None,
               label: str = "performance") -> np.ndarray:
        synth = self._fresh_synth()

        def to_sample(seconds: float) -> int:
            return int(round(seconds * self.sample_rate))

        # (sample, order, action): at equal times note-offs go first, then pedal, then note-ons.
        events = []
        for note in _piano_notes(midi):
            events.append((to_sample(note.start), 2, synth.noteon, (0, note.pitch, note.velocity)))
            events.append((to_sample(note.end), 0, synth.noteoff, (0, note.pitch)))
        for change in _control_changes(midi):
            events.append((to_sample(change.time), 1, synth.cc, (0, change.number, change.value)))
        events.sort(key=lambda event: (event[0], event[1]))

        total = _num_samples(midi, duration, self.sample_rate)
        chunks, position = [], 0
        for sample, _, action, args in events:
            sample = min(sample, total)
            if sample > position:
                chunks.append(synth.get_samples(sample - position))
                position = sample
            action(*args)
        if total > position:
            chunks.append(synth.get_samples(total - position))
        interleaved = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)  # (2 * samples,)
        audio = interleaved.reshape(-1, 2).T.astype(np.float32) / 32768.0  # (2, samples)
        _warn_if_clipped(audio, label, self.name)
        return audio


class AdditiveRenderer:
    """Pip-only piano-like renderer (see module docstring). Deterministic."""

    name = "additive"
    max_partials = 16

    def __init__(self, sample_rate: int, gain: float = ADDITIVE_GAIN):
        self.sample_rate = int(sample_rate)
        self.gain = float(gain)

    @staticmethod
    def _decay_seconds(pitch: int) -> float:
        """Time constant of the slow decay stage: long in the bass, short in the treble."""
        return float(np.clip(2.5 * 2.0 ** (-(pitch - 60) / 20.0), 0.35, 9.0))

    def _note_wave(self, note: pretty_midi.Note, sounding: float, n_samples: int) -> np.ndarray:
        """(n,) float32 waveform of one note starting at its onset."""
        sr = self.sample_rate
        x = note.velocity / 127.0
        f0 = 440.0 * 2.0 ** ((note.pitch - 69) / 12.0)
        inharmonicity = 2e-4 * 2.0 ** ((note.pitch - 60) / 18.0)
        tau = self._decay_seconds(note.pitch)
        t = np.arange(n_samples, dtype=np.float32) / sr  # (n,)

        k = np.arange(1, self.max_partials + 1, dtype=np.float32)  # (K,)
        freqs = k * f0 * np.sqrt(1.0 + inharmonicity * k ** 2)
        k, freqs = k[freqs < 0.45 * sr], freqs[freqs < 0.45 * sr]
        slope = 3.2 - 2.4 * x  # soft notes: steep roll-off (dull); loud notes: flat (bright)
        amplitudes = k ** -slope * (1.0 + 0.3 * np.cos(np.pi * k * 0.13))  # hammer position comb
        partial_tau = (tau / (1.0 + 0.25 * (k - 1)))[:, None]  # (K, 1) high partials die first
        envelope = 0.55 * np.exp(-t / (0.2 * partial_tau)) + 0.45 * np.exp(-t / partial_tau)  # (K, n)
        wave = (amplitudes[:, None] * envelope * np.sin(2 * np.pi * freqs[:, None] * t)).sum(0)

        seed = zlib.crc32(f"{note.pitch}:{note.start:.6f}".encode())
        noise = np.random.default_rng(seed).standard_normal(min(n_samples, int(0.02 * sr))).astype(np.float32)
        wave[: noise.size] += 0.15 * x * noise * np.exp(-np.arange(noise.size) / (0.003 * sr))

        wave *= np.minimum(1.0, t / 0.002)  # 2 ms attack
        release = sounding - note.start
        damper = 0.06 + 0.1 * (108 - note.pitch) / 87  # low strings ring longer after the damper
        wave *= np.where(t < release, 1.0, np.exp(-(t - release) / damper)).astype(np.float32)
        return (x ** 1.8) * wave  # fixed scale: brighter notes also carry more energy

    def render(self, midi: pretty_midi.PrettyMIDI, duration: float | None = None,
               label: str = "performance") -> np.ndarray:
        sr = self.sample_rate
        total = _num_samples(midi, duration, sr)
        notes = _piano_notes(midi)
        downs, ups = pedal_intervals(_control_changes(midi))
        next_onset: dict[int, float] = {}
        audio = np.zeros((2, total), dtype=np.float32)  # (2, samples)
        for note in reversed(notes):
            sounding = min(sounding_end(note, downs, ups), next_onset.get(note.pitch, np.inf))
            next_onset[note.pitch] = note.start
            start = int(round(note.start * sr))
            if start >= total:
                continue
            natural = 8.0 * self._decay_seconds(note.pitch)  # about -70 dB by then
            length = min(total - start, int(min(sounding - note.start + 0.6, natural) * sr) + 1)
            wave = self._note_wave(note, sounding, length)
            pan = 0.5 + 0.3 * (note.pitch - 64.5) / 43.5  # low keys left, high keys right
            audio[0, start:start + length] += math.cos(pan * math.pi / 2) * math.sqrt(2) * wave
            audio[1, start:start + length] += math.sin(pan * math.pi / 2) * math.sqrt(2) * wave
        audio *= self.gain
        _warn_if_clipped(audio, label, self.name)
        return np.clip(audio, -1.0, 32767 / 32768)


def make_renderer(kind: str = "auto", sample_rate: int = 44100, soundfont: str | Path | None = None) -> Renderer:
    """Build a renderer: "fluidsynth", "additive", or "auto" (FluidSynth, else additive with a warning)."""
    if kind not in RENDERERS:
        raise ValueError(f"renderer {kind!r}: expected one of {', '.join(RENDERERS)}")
    if kind == "additive":
        return AdditiveRenderer(sample_rate)
    try:
        return FluidSynthRenderer(sample_rate, soundfont)
    except RendererUnavailable as error:
        if kind == "fluidsynth":
            raise
        logger.warning("FluidSynth renderer unavailable: %s; falling back to the additive numpy renderer", error)
        return AdditiveRenderer(sample_rate)


def to_output_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """(2, n) stereo -> (n, channels) for soundfile: stereo as is, or the mono mean."""
    if channels == 2:
        return audio.T
    if channels == 1:
        return audio.mean(0)[:, None]
    raise ValueError(f"channels={channels}: expected 1 or 2")
