"""Per-note results, the CSV of one pair and the summary lines."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utils.estimate.midi_io import Note

ESTIMATED = "estimated"
CSV_COLUMNS = ("track", "channel", "onset", "offset", "pitch", "old_velocity", "new_velocity", "status")


@dataclass
class NoteResult:
    """One note of the input MIDI and what became of it."""

    note: Note
    status: str  # ESTIMATED, or "kept: <reason>"
    new_velocity: int

    @property
    def estimated(self) -> bool:
        return self.status == ESTIMATED


@dataclass
class FileResult:
    """What one audio/MIDI pair gave."""

    audio: Path
    midi: Path
    out: Path
    csv: Path | None
    plot: Path | None
    notes: list[NoteResult]
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def estimated(self) -> list[NoteResult]:
        return [n for n in self.notes if n.estimated]

    @property
    def mae(self) -> float | None:
        """MAE of the new velocities against the input's, when the input's velocities varied."""
        old = np.array([n.note.velocity for n in self.estimated], dtype=np.float64)
        new = np.array([n.new_velocity for n in self.estimated], dtype=np.float64)
        if len(np.unique(old)) < 2:
            return None
        return float(np.mean(np.abs(new - old)))


def csv_bytes(notes: list[NoteResult]) -> bytes:
    """One row per note of the input MIDI, in file order (times in seconds of the MIDI, unshifted)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for result in notes:
        n = result.note
        writer.writerow([n.track, n.channel, f"{n.onset:.4f}", f"{n.offset:.4f}", n.pitch, n.velocity,
                         result.new_velocity, result.status])
    return buffer.getvalue().encode("utf-8")


def kept_reasons(notes: list[NoteResult]) -> str:
    """'3 kept: drum channel, 1 kept: outside 21..108' or ''."""
    reasons: dict[str, int] = {}
    for result in notes:
        if not result.estimated:
            reasons[result.status] = reasons.get(result.status, 0) + 1
    return ", ".join(f"{count} {status}" for status, count in sorted(reasons.items()))


def file_line(result: FileResult) -> str:
    """`name: N notes estimated (...kept...), T s, MAE vs input velocities X`."""
    parts = [f"{result.midi.name}: {len(result.estimated)} notes estimated"]
    kept = kept_reasons(result.notes)
    if kept:
        parts.append(f"unchanged: {kept}")
    parts.append(f"{result.seconds:.1f} s")
    mae = result.mae
    parts.append(f"MAE vs input velocities {mae:.2f}" if mae is not None else "input velocities all equal, no MAE")
    return ", ".join(parts)


def summary_line(results: list[FileResult], seconds: float) -> str:
    """The run's one summary line."""
    notes = [n for r in results for n in r.estimated]
    kept = sum(len(r.notes) - len(r.estimated) for r in results)
    errors = [abs(n.new_velocity - n.note.velocity) for r in results if r.mae is not None for n in r.estimated]
    line = f"estimate_velocity: {len(results)} file(s), {len(notes)} notes estimated, {kept} kept unchanged, {seconds:.1f} s"
    if errors:
        line += f", MAE vs input velocities {np.mean(errors):.2f} over {len(errors)} notes"
    return line
