"""A tiny synthetic MAESTRO v2.0.0 layout (tone audio + MIDI + metadata) for the MAESTRO tests."""
import csv
import json
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile

from utils.conventions import SAMPLE_RATE, SEGMENT_SAMPLES
from utils.data.maestro import MAESTRO

CONFIG_FILE = Path(__file__).resolve().parent.parent / "config" / "dataset" / "MAESTRO.yaml"
SHORT = 16384  # a 32-frame crop keeps these tests fast
SOURCE_RATE = 44100
COLUMNS = ["canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename", "duration"]


def _notes(duration, first_pitch):
    """A 0.25 s note every 0.5 s, pitches and velocities varying."""
    starts = np.arange(0.1, duration - 0.3, 0.5)
    return [(start, start + 0.25, first_pitch + 3 * i % 40, 20 + 7 * i % 100) for i, start in enumerate(starts)]


def _write_midi(path, notes):
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(velocity=v, pitch=p, start=s, end=e) for s, e, p, v in notes]
    midi.instruments.append(piano)
    midi.write(str(path))


def _tone_audio(notes, duration, rate, channels):
    """Sines that sound exactly during the notes; channel c is scaled by 1 / (c + 1)."""
    time = np.arange(int(duration * rate)) / rate
    signal = np.zeros_like(time)
    for start, end, pitch, _ in notes:
        inside = (time >= start) & (time < end)
        signal[inside] = 0.5 * np.sin(2 * np.pi * 440 * 2 ** ((pitch - 69) / 12) * time[inside])
    return np.stack([signal / (c + 1) for c in range(channels)], axis=1).astype(np.float32)


def _add_piece(dataset_dir, rows, split, name, duration=3.0, rate=SOURCE_RATE, channels=2, ext="wav", pitch=40):
    year = {"train": "2004", "validation": "2008", "test": "2009"}[split]
    (dataset_dir / year).mkdir(parents=True, exist_ok=True)
    notes = _notes(duration, pitch)
    audio_name, midi_name = f"{year}/{name}.{ext}", f"{year}/{name}.midi"
    soundfile.write(dataset_dir / audio_name, _tone_audio(notes, duration, rate, channels), rate, subtype="PCM_16")
    _write_midi(dataset_dir / midi_name, notes)
    rows.append({"canonical_composer": "Synth", "canonical_title": name, "split": split, "year": int(year),
                 "midi_filename": midi_name, "audio_filename": audio_name, "duration": duration})


def _write_metadata(dataset_dir, rows, kinds=("json", "csv")):
    if "json" in kinds:
        (dataset_dir / "maestro-v2.0.0.json").write_text(json.dumps(rows))
    if "csv" in kinds:
        with open(dataset_dir / "maestro-v2.0.0.csv", "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)


def _build_layout(root):
    """root/maestro-v2.0.0 with 3 train pieces (one a 16 kHz mono .flac), 1 validation, 1 long test piece."""
    dataset_dir = root / "maestro-v2.0.0"
    rows = []
    _add_piece(dataset_dir, rows, "train", "train_a", pitch=40)
    _add_piece(dataset_dir, rows, "train", "train_b", duration=4.0, pitch=50)
    _add_piece(dataset_dir, rows, "train", "train_c", rate=SAMPLE_RATE, channels=1, ext="flac", pitch=60)
    _add_piece(dataset_dir, rows, "validation", "val_a", pitch=45)
    _add_piece(dataset_dir, rows, "test", "test_a", duration=SEGMENT_SAMPLES / SAMPLE_RATE + 1.0, pitch=55)
    _write_metadata(dataset_dir, rows)
    return dataset_dir, rows


def _short(root, **options):
    return MAESTRO(root, **{"groups": ["train"], "sequence_length": SHORT, **options})
