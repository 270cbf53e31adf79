"""Fitness check of a renderer: does loudness (and brightness) rise with MIDI velocity?

Renders isolated notes over a grid of velocities for a few pitches, measures the RMS level (dB
full scale) and the spectral centroid of the first 200 ms after the onset, and checks that the
loudness rises strictly with velocity for every pitch.

    python -m utils.synth.loudness --renderer fluidsynth
    python -m utils.synth.loudness --renderer additive
    python -m utils.synth.loudness --soundfont /etc/timidity/freepats.cfg   # one corpus voice
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np
import pretty_midi

from utils import tables
from utils.synth.render import RENDERERS, Renderer, RendererUnavailable, make_renderer
from utils.synth.timidity import voice_renderer

DEFAULT_VELOCITIES = tuple(range(8, 128, 8)) + (127,)
DEFAULT_PITCHES = (36, 60, 84)
WINDOW_SECONDS = 0.2
NOTE_SECONDS = 0.5
LEAD_SECONDS = 0.05  # the onset sits a little after 0 so the synth starts cleanly


@dataclass(frozen=True)
class NoteMeasure:
    pitch: int
    velocity: int
    loudness_db: float  # RMS of the first WINDOW_SECONDS, dB full scale
    centroid_hz: float  # spectral centroid of the same window


def isolated_note(pitch: int, velocity: int, seconds: float = NOTE_SECONDS) -> pretty_midi.PrettyMIDI:
    """A one-note MIDI file: `pitch` at `velocity`, held `seconds`, no pedal."""
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes.append(pretty_midi.Note(velocity, pitch, LEAD_SECONDS, LEAD_SECONDS + seconds))
    midi.instruments.append(piano)
    return midi


def loudness_db(mono: np.ndarray) -> float:
    """RMS level of a (n,) signal in dB full scale (floor at -200 dB for silence)."""
    return float(20.0 * np.log10(max(np.sqrt(np.mean(np.square(mono, dtype=np.float64))), 1e-10)))


def spectral_centroid(mono: np.ndarray, sample_rate: int) -> float:
    """Power-weighted mean frequency (Hz) of a Hann-windowed (n,) signal.

    Power (not magnitude) weighting keeps the 16-bit noise floor of very soft notes from
    dominating the centroid.
    """
    power = np.abs(np.fft.rfft(mono * np.hanning(mono.size))) ** 2
    freqs = np.fft.rfftfreq(mono.size, 1.0 / sample_rate)
    return float((freqs * power).sum() / max(power.sum(), 1e-30))


def note_window(renderer: Renderer, pitch: int, velocity: int,
                note_seconds: float = NOTE_SECONDS, window_seconds: float = WINDOW_SECONDS) -> np.ndarray:
    """The first `window_seconds` after the onset of one rendered isolated note, mono.  -> (n,)"""
    audio = renderer.render(isolated_note(pitch, velocity, note_seconds), label=f"note {pitch} v{velocity}")
    onset = int(round(LEAD_SECONDS * renderer.sample_rate))
    return audio.mean(0)[onset:onset + int(round(window_seconds * renderer.sample_rate))]


def measure_note(renderer: Renderer, pitch: int, velocity: int,
                 note_seconds: float = NOTE_SECONDS, window_seconds: float = WINDOW_SECONDS) -> NoteMeasure:
    """Render one isolated note and measure its first `window_seconds` after the onset."""
    window = note_window(renderer, pitch, velocity, note_seconds, window_seconds)
    return NoteMeasure(pitch, velocity, loudness_db(window), spectral_centroid(window, renderer.sample_rate))


def measure_grid(renderer: Renderer, velocities=DEFAULT_VELOCITIES, pitches=DEFAULT_PITCHES,
                 note_seconds: float = NOTE_SECONDS) -> list[NoteMeasure]:
    return [measure_note(renderer, p, v, note_seconds) for p in pitches for v in velocities]


def non_monotonic(measures: list[NoteMeasure]) -> list[str]:
    """Descriptions of every place where loudness fails to rise strictly with velocity, per pitch."""
    problems = []
    for pitch in sorted({m.pitch for m in measures}):
        row = sorted((m for m in measures if m.pitch == pitch), key=lambda m: m.velocity)
        for low, high in zip(row, row[1:]):
            if not high.loudness_db > low.loudness_db:
                problems.append(f"pitch {pitch}: velocity {high.velocity} ({high.loudness_db:.2f} dB) is not louder "
                                f"than velocity {low.velocity} ({low.loudness_db:.2f} dB)")
    return problems


def markdown_table(measures: list[NoteMeasure]) -> str:
    """Velocity | loudness dB | centroid Hz, each averaged over the pitches, plus per-pitch dB columns."""
    pitches = sorted({m.pitch for m in measures})
    header = ["velocity", "loudness dB (mean)", "centroid Hz (mean)"] + [f"dB @ {p}" for p in pitches]
    cells = []
    for velocity in sorted({m.velocity for m in measures}):
        row = {m.pitch: m for m in measures if m.velocity == velocity}
        mean_db = np.mean([m.loudness_db for m in row.values()])
        mean_centroid = np.mean([m.centroid_hz for m in row.values()])
        cells.append([velocity, f"{mean_db:.1f}", f"{mean_centroid:.0f}"]
                     + [f"{row[p].loudness_db:.1f}" for p in pitches])
    return tables.markdown_table(header, cells, "r" * len(header))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renderer", choices=RENDERERS, default="auto")
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--pitches", type=int, nargs="+", default=list(DEFAULT_PITCHES))
    parser.add_argument("--velocities", type=int, nargs="+", default=list(DEFAULT_VELOCITIES))
    parser.add_argument("--soundfont", help="one corpus voice instead of --renderer: a SoundFont (FluidSynth) "
                                            "a TiMidity++ .cfg or a sample folder")
    args = parser.parse_args(argv)
    try:
        renderer = (voice_renderer(args.soundfont, args.sample_rate) if args.soundfont
                    else make_renderer(args.renderer, args.sample_rate))
    except RendererUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    measures = measure_grid(renderer, args.velocities, args.pitches)
    voice = f" ({args.soundfont})" if args.soundfont else ""
    print(f"Renderer: {renderer.name}{voice}, {args.sample_rate} Hz, first {WINDOW_SECONDS * 1000:.0f} ms of each note\n")
    print(markdown_table(measures))
    problems = non_monotonic(measures)
    print("\nLoudness rises monotonically with velocity: " + ("yes" if not problems else "NO"))
    for problem in problems:
        print("  " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
