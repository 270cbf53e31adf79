"""One audio/MIDI pair end to end: read, check, segment, sample, apply the note rule, write.

Every output is built in memory first and then written through a temporary file and a rename
(utils/atomic.py), so a failure leaves no half-written file and the inputs are never touched.
"""
from __future__ import annotations

import logging
import time
import zlib

import numpy as np
import torch
from tqdm.auto import tqdm

from utils.atomic import atomic_write_bytes
from utils.conventions import MAX_MIDI, MIN_MIDI, SAMPLE_RATE
from utils.estimate.audio import read_audio
from utils.estimate.blend import Blend, blend_velocities
from utils.estimate.checks import alignment_warning, length_warning
from utils.estimate.errors import EstimateError
from utils.estimate.files import Job
from utils.estimate.loudness import LoudnessRegression
from utils.estimate.midi_io import DRUM_CHANNEL, MidiScore, parse_bytes, read_midi, with_velocities
from utils.estimate.outputs import ESTIMATED, FileResult, NoteResult, csv_bytes
from utils.estimate.rules import apply_rule, note_values, to_midi_velocity
from utils.estimate.segments import (
    ScoreNotes,
    assign_segments,
    audio_segment,
    note_span,
    score_rolls,
    segment_starts,
    sounding_ends,
)

log = logging.getLogger(__name__)


def note_status(pitch: int, channel: int, onset: float, audio_seconds: float) -> str:
    """ESTIMATED, or why the note keeps its velocity (onset on the audio clock, shift applied)."""
    if channel == DRUM_CHANNEL:
        return "kept: drum channel"
    if not MIN_MIDI <= pitch <= MAX_MIDI:
        return f"kept: outside {MIN_MIDI}..{MAX_MIDI}"
    if onset < 0:
        return "kept: before the audio"
    if onset >= audio_seconds:
        return "kept: after the audio"
    return ESTIMATED


def piano_notes(score: MidiScore, shift: float) -> tuple[ScoreNotes, np.ndarray]:
    """ScoreNotes of every non-drum note on the 88 keys (shift applied) and their indices in score.notes."""
    rows = np.array([i for i, n in enumerate(score.notes)
                     if n.channel != DRUM_CHANNEL and MIN_MIDI <= n.pitch <= MAX_MIDI], dtype=np.int64)
    onsets = np.array([score.notes[i].onset for i in rows], dtype=np.float64) + shift
    offsets = np.array([score.notes[i].offset for i in rows], dtype=np.float64) + shift
    pitches = np.array([score.notes[i].pitch for i in rows], dtype=np.int64)
    ends = sounding_ends(onsets, offsets, pitches, score.pedals + shift)
    return ScoreNotes(onsets, ends, pitches - MIN_MIDI), rows


def segment_generator(seed: int, start: int) -> torch.Generator:
    """The noise of the segment starting at frame `start`: depends on the seed and the segment only."""
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}:{start}".encode()))


def sample_rolls(model, waveform: np.ndarray, notes: ScoreNotes, starts: list[int], cfg, desc: str) -> dict:
    """{start frame: velocity roll (640, 88) float32 in [0, 1]} for the given segments."""
    rolls, batch = {}, max(1, int(cfg.batch_segments))
    # the preset's `precision` is the default of run_test.py's precision key; estimate.yaml has its own
    sampling = {key: value for key, value in cfg.task.sampling.items() if key != "precision"}
    with tqdm(total=len(starts), desc=desc, unit="segment", disable=not cfg.progress, leave=False) as bar:
        for i in range(0, len(starts), batch):
            chunk = starts[i:i + batch]
            audio = torch.from_numpy(np.stack([audio_segment(waveform, s) for s in chunk]))  # (B, 327680)
            frame, onset = zip(*(score_rolls(notes, s) for s in chunk))
            out = model.sample(audio, torch.from_numpy(np.stack(frame)), onset_roll=torch.from_numpy(np.stack(onset)),
                               generator=[segment_generator(cfg.seed, s) for s in chunk],
                               precision=cfg.precision, **sampling)  # (B, 1, 640, 88)
            rolls.update({s: r[0].float().cpu().numpy() for s, r in zip(chunk, out)})
            bar.update(len(chunk))
    return rolls


def note_outputs(model, waveform: np.ndarray, notes: ScoreNotes, judged: np.ndarray, cfg, desc: str) -> list[np.ndarray]:
    """The model output (n,) over each note `judged` (indices into `notes`), from the segment where
    its onset is farthest from the edges."""
    starts = segment_starts(len(waveform), int(cfg.hop_frames))
    segment = starts[assign_segments(notes.onset_frame[judged], starts)]  # (J,) start frame per note
    rolls = sample_rolls(model, waveform, notes, sorted(set(segment.tolist())), cfg, desc)
    return [note_values(rolls[int(start)], int(notes.key[i]), *note_span(notes, int(i), int(start)))
            for i, start in zip(judged, segment)]


def estimate_notes(model, waveform: np.ndarray, notes: ScoreNotes, judged: np.ndarray, cfg, desc: str) -> np.ndarray:
    """(J,) MIDI velocities of the notes `judged`: the network's under cfg.note_rule, the loudness
    regression's (method=loudness), or the blend of the two (method=blend, unheard)."""
    if isinstance(model, LoudnessRegression):
        return model.velocities(waveform, notes.onset[judged])
    if isinstance(model, Blend):
        network = estimate_notes(model.network, waveform, notes, judged, cfg, desc)
        loudness = model.loudness.velocities(waveform, notes.onset[judged])
        return blend_velocities(network, loudness, model.weight, model.level)
    outputs = note_outputs(model, waveform, notes, judged, cfg, desc)
    return np.array([to_midi_velocity(apply_rule(cfg.note_rule, values)) for values in outputs], dtype=np.int64)


def _warnings(job: Job, waveform: np.ndarray, notes: ScoreNotes, judged: np.ndarray, cfg) -> list[str]:
    found = [length_warning(job.name, len(waveform) / SAMPLE_RATE, float(notes.end.max()), cfg.length_tolerance)]
    if cfg.check_alignment:
        found.append(alignment_warning(job.name, waveform, notes.onset[judged]))
    for warning in filter(None, found):
        log.warning(warning)
    return [w for w in found if w]


def _results(score: MidiScore, rows: np.ndarray, judged: np.ndarray, velocities: np.ndarray,
             audio_seconds: float, shift: float) -> list[NoteResult]:
    new = {int(rows[i]): int(v) for i, v in zip(judged, velocities)}
    results = []
    for k, note in enumerate(score.notes):
        status = note_status(note.pitch, note.channel, note.onset + shift, audio_seconds)
        results.append(NoteResult(note, status, new.get(k, note.velocity)))
    return results


def _check_output(job: Job, data: bytes, results: list[NoteResult]) -> None:
    """Re-read the output bytes: same notes, same ticks, the new velocities."""
    midi = parse_bytes(job.out, data)
    for r in results:
        message = midi.tracks[r.note.track][r.note.index]
        if message.type != "note_on" or message.note != r.note.pitch or message.velocity != r.new_velocity:
            raise EstimateError(f"{job.out}: internal error, the output MIDI does not hold note {r.note}")


def write_outputs(job: Job, score: MidiScore, results: list[NoteResult], waveform, cfg) -> None:
    """MIDI, CSV and PNG, all built before the first is written."""
    data = with_velocities(score, {(r.note.track, r.note.index): r.new_velocity for r in results if r.estimated})
    _check_output(job, data, results)
    files = {job.out: data}
    if job.csv is not None:
        files[job.csv] = csv_bytes(results)
    if job.plot is not None:
        from utils.estimate.plot import plot_png

        files[job.plot] = plot_png(waveform, results, float(cfg.shift), job.name)
    for path, content in files.items():
        atomic_write_bytes(path, content)


def run_pair(model, job: Job, cfg) -> FileResult:
    """Estimate the velocities of one pair and write its outputs."""
    began = time.perf_counter()
    waveform = read_audio(job.audio)  # (samples,) 16 kHz mono
    score = read_midi(job.midi)
    shift, audio_seconds = float(cfg.shift), len(waveform) / SAMPLE_RATE
    notes, rows = piano_notes(score, shift)
    judged = np.array([i for i, r in enumerate(rows) if 0 <= notes.onset[i] < audio_seconds], dtype=np.int64)
    if len(judged) == 0:
        what = "no piano notes (keys 21..108 off the drum channel)" if len(rows) == 0 else \
            f"no notes start within the audio's 0-{audio_seconds:.1f} s (shift={shift:g})"
        raise EstimateError(f"{job.midi}: {what}")
    warnings = _warnings(job, waveform, notes, judged, cfg)
    velocities = estimate_notes(model, waveform, notes, judged, cfg, desc=job.name)
    results = _results(score, rows, judged, velocities, audio_seconds, shift)
    write_outputs(job, score, results, waveform, cfg)
    return FileResult(job.audio, job.midi, job.out, job.csv, job.plot, results, time.perf_counter() - began, warnings)
