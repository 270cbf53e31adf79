"""Which files to read and write: one pair (audio=, midi=, out=) or a folder of pairs matched by stem.

Outputs: the MIDI at `out` (folder mode: out_dir/<midi file name>), the CSV beside it as
<out stem>.csv unless csv=false (or csv=PATH for a single pair), the PNG as <out stem>.png when
plot=true (or plot=PATH). No output may be one of the inputs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from utils.estimate.errors import EstimateError

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".aifc", ".w64", ".rf64", ".caf")
MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")


@dataclass(frozen=True)
class Job:
    """One audio/MIDI pair and where its outputs go (csv/plot None: not written)."""

    audio: Path
    midi: Path
    out: Path
    csv: Path | None
    plot: Path | None

    @property
    def name(self) -> str:
        return self.midi.name


def _side_output(out: Path, option, suffix: str, single: bool, key: str) -> Path | None:
    """true -> beside `out` with `suffix`; false/None -> None; a path -> that path (single pair only)."""
    if option is None or option is False:
        return None
    if option is True:
        return out.with_suffix(suffix)
    if not single:
        raise EstimateError(f"{key}={option}: in folder mode {key} is true or false (files go beside each output)")
    return Path(str(option))


def _check_outputs(job: Job) -> Job:
    inputs = {job.audio.resolve(), job.midi.resolve()}
    for path in (job.out, job.csv, job.plot):
        if path is not None and path.resolve() in inputs:
            raise EstimateError(f"{path}: an output path equals an input; choose another out (inputs are never overwritten)")
        if path is not None and path.is_dir():
            raise EstimateError(f"{path}: an output path is a folder")
    return job


def single_job(cfg) -> Job:
    """The pair of audio=, midi=, out=."""
    missing = [key for key in ("audio", "midi", "out") if not cfg.get(key)]
    if missing:
        raise EstimateError(f"estimate_velocity: missing {', '.join(k + '=PATH' for k in missing)} "
                            f"(or audio_dir=, midi_dir=, out_dir= for a folder)")
    out = Path(str(cfg.out))
    return _check_outputs(Job(Path(str(cfg.audio)), Path(str(cfg.midi)), out,
                              _side_output(out, cfg.csv, ".csv", True, "csv"),
                              _side_output(out, cfg.plot, ".png", True, "plot")))


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        raise EstimateError(f"{folder}: folder not found")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    found: dict[str, Path] = {}
    for path in files:
        if path.stem in found:
            log.warning("%s: another file with stem %r is already used (%s); skipped", path, path.stem, found[path.stem].name)
            continue
        found[path.stem] = path
    return found


def folder_jobs(cfg) -> list[Job]:
    """Pairs of audio_dir/<stem>.<audio> and midi_dir/<stem>.<mid|midi>, outputs in out_dir."""
    if not cfg.get("out_dir") or not cfg.get("midi_dir"):
        raise EstimateError("estimate_velocity: folder mode needs audio_dir=, midi_dir= and out_dir=")
    audio_dir, midi_dir, out_dir = Path(str(cfg.audio_dir)), Path(str(cfg.midi_dir)), Path(str(cfg.out_dir))
    audio, midi = _by_stem(audio_dir, AUDIO_SUFFIXES), _by_stem(midi_dir, MIDI_SUFFIXES)
    stems = sorted(set(audio) & set(midi))
    if not stems:
        raise EstimateError(f"{audio_dir}, {midi_dir}: no audio and MIDI files with the same name "
                            f"({len(audio)} audio, {len(midi)} MIDI files)")
    for stem in sorted(set(audio) ^ set(midi)):
        log.warning("%s: no matching %s file; skipped", (audio.get(stem) or midi.get(stem)),
                    "MIDI" if stem in audio else "audio")
    jobs = []
    for stem in stems:
        out = out_dir / midi[stem].name
        jobs.append(_check_outputs(Job(audio[stem], midi[stem], out, _side_output(out, cfg.csv, ".csv", False, "csv"),
                                       _side_output(out, cfg.plot, ".png", False, "plot"))))
    return jobs


def jobs_from_config(cfg) -> list[Job]:
    """Folder mode when audio_dir is set, else one pair."""
    return folder_jobs(cfg) if cfg.get("audio_dir") else [single_job(cfg)]
