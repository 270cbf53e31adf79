"""Fit and score the loudness readings of DiffVel+ (model/reading.py) on their own, without any network.

    python -m bench.reading [--corpus demo_out/data] [--fit-out FILE.json] [--sets NAME=H5_FOLDER ...] [--out FILE.md]

Fits the `notes` reading's line by least squares on every note of the corpus's train split (the notes'
onsets on the spectrogram's own clock; the `onset` reading's line is the loudness regression's), writes it
to --fit-out (JSON, atomically; the line model/reading.py fixes must equal it, tests/test_reading.py), then scores the lines that model/reading.py fixes on every
note of each --sets folder (.h5 excerpts, onsets from the MIDI events): MAE, the mean signed error, the
MAE left once each excerpt's mean error is removed, and the correlation (utils.evaluation.report.bias_split).
"""

from bench.measure import emit_table  # isort: skip  (sets OMP_WAIT_POLICY before torch is imported)

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from bench.accuracy import resolve_sets  # noqa: E402
from model.reading import FEATURES, READINGS, features, key_partials, velocity  # noqa: E402
from utils import tables  # noqa: E402
from utils.atomic import atomic_write_bytes  # noqa: E402
from utils.checks import report_error  # noqa: E402
from utils.conventions import FRAMES_PER_SECOND, MAX_MIDI, MIN_MIDI, N_KEYS, SAMPLE_RATE  # noqa: E402
from utils.data.audio_io import ensure_resampled  # noqa: E402
from utils.data.corrected_labels import parse_notes  # noqa: E402
from utils.data.maestro import find_dataset_dir, read_metadata  # noqa: E402
from utils.data.midi_labels import parse_midi  # noqa: E402
from utils.data.smd import INT16_SCALE, list_excerpts, read_excerpt  # noqa: E402
from utils.demo import spectrogram_args  # noqa: E402
from utils.evaluation.report import bias_split, summary_row  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


class NoteFeatures:
    """Every reading feature of every note of a recording, on the spectrogram's own clock."""

    def __init__(self, spec_args: dict):
        self.mel = torchaudio.transforms.MelSpectrogram(**spec_args)
        self.partials = key_partials(self.mel.mel_scale.fb, spec_args["sample_rate"])

    def __call__(self, waveform: np.ndarray, notes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """waveform (L,) float32, notes (N, >= 4) rows (onset s, offset s, MIDI note, velocity)
        -> (features (n, len(FEATURES["notes"])), velocities (n,)) of the notes on the keyboard."""
        with torch.inference_mode():
            log_mel = torch.log(self.mel(torch.from_numpy(np.ascontiguousarray(waveform)))[None] + 1e-6)  # (1, M, T)
            frames = log_mel.shape[-1]
            notes = notes[(notes[:, 2] >= MIN_MIDI) & (notes[:, 2] <= MAX_MIDI)]
            keys = (notes[:, 2] - MIN_MIDI).astype(np.int64)
            onsets = np.clip(np.round(notes[:, 0] * FRAMES_PER_SECOND).astype(np.int64), 0, frames - 1)
            starts = torch.zeros(1, N_KEYS, frames, dtype=torch.bool)
            starts[0, keys, onsets] = True
            values = features(log_mel, starts, FRAMES_PER_SECOND, "notes", self.partials)  # (1, F, 88, T)
        return values[0][:, keys, onsets].T.numpy(), notes[:, 3].astype(float)


def corpus_notes(corpus: Path, split: str, note_features: NoteFeatures) -> tuple[np.ndarray, np.ndarray]:
    """(features, velocities) of every note of a MAESTRO-layout split."""
    dataset_dir = find_dataset_dir(corpus)
    rows = [row for row in read_metadata(dataset_dir) if row["split"] == split]
    if not rows:
        raise ValueError(f"{dataset_dir}: no {split!r} pieces to fit the readings on")
    pairs = []
    for row in tqdm(rows, desc=f"readings: {split} notes", unit="piece", leave=False):
        audio, rate = soundfile.read(str(ensure_resampled(dataset_dir / row["audio_filename"])), dtype="float32")
        if rate != SAMPLE_RATE:
            raise ValueError(f"{row['audio_filename']}: expected {SAMPLE_RATE} Hz after resampling, got {rate}")
        pairs.append(note_features(audio.mean(axis=1) if audio.ndim == 2 else audio,
                                   parse_midi(dataset_dir / row["midi_filename"])))
    return tuple(np.concatenate(arrays) for arrays in zip(*pairs))


def fit_line(values: np.ndarray, velocities: np.ndarray) -> dict:
    """The notes reading's line by least squares: {"features", "weights", "intercept"}. (The onset
    reading's line is the loudness regression's own, pretrained/loudness_regression.json.)"""
    design = np.c_[values, np.ones(len(values))]
    *weights, intercept = np.linalg.lstsq(design, velocities, rcond=None)[0]
    return {"features": list(FEATURES["notes"]), "weights": [float(w) for w in weights], "intercept": float(intercept)}


def excerpt_notes(folder: Path, note_features: NoteFeatures) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(features, velocities)] per .h5 excerpt of a folder (every MIDI strike)."""
    out = []
    for path in list_excerpts(folder):
        excerpt = read_excerpt(path)
        notes = parse_notes(excerpt.midi_events, excerpt.midi_event_times)
        out.append(note_features(excerpt.waveform.astype(np.float32) / INT16_SCALE, notes))
    return out


def reading_estimates(values: np.ndarray, kind: str) -> np.ndarray:
    """MIDI velocities of notes' features (n, F) by the line model/reading.py fixes for `kind`."""
    columns = torch.from_numpy(values[:, :len(FEATURES[kind])].T.copy())[None, :, None, :]  # (1, F, 1, n)
    return (velocity(columns.double(), kind)[0, 0] * 128).numpy()


def set_rows(label: str, excerpts: list) -> list[list[str]]:
    rows = []
    for kind in READINGS:
        truth = [velocities for _, velocities in excerpts]
        guesses = [reading_estimates(values, kind) for values, _ in excerpts]
        summary = summary_row("corrected", kind, np.concatenate(truth), np.concatenate(guesses))
        split = bias_split(truth, guesses)
        rows.append([label, kind, summary["notes"], f"{summary['MAE']:.2f}", f"{split['bias']:+.2f}",
                     f"{split['centred_MAE']:.2f}", f"{split['correlation']:.2f}"])
    return rows


def shown(path: Path) -> str:
    """The path relative to the repository when it lies inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=REPO / "demo_out" / "data",
                        help="MAESTRO-layout corpus whose train split fits the lines (default: the demo corpus)")
    parser.add_argument("--fit-out", type=Path, help="write the fitted lines here (JSON)")
    parser.add_argument("--sets", nargs="*", default=[], metavar="NAME=H5_FOLDER", help="sets to score the fixed lines on")
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        sets = resolve_sets(args.sets)
        note_features = NoteFeatures(spectrogram_args())
        values, velocities = corpus_notes(args.corpus, "train", note_features)
    except (FileNotFoundError, ValueError) as error:
        return report_error(error)
    line = fit_line(values, velocities)
    print(json.dumps(line))
    if args.fit_out:
        fitted = {**line, "n_notes": int(len(velocities)), "fitted_on": f"{shown(args.corpus)} (train split)"}
        atomic_write_bytes(args.fit_out, (json.dumps(fitted, indent=2) + "\n").encode())
    rows = [row for label, folder in sets.items() for row in set_rows(label, excerpt_notes(folder, note_features))]
    header = ("set", "reading", "notes", "MAE", "mean error", "MAE, excerpt bias removed", "correlation")
    emit_table(tables.markdown_table(header, rows, "llrrrrr"), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
