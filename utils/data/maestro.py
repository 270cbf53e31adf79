"""MAESTRO v2.0.0 training dataset: random 20.48 s crops of audio with their score/velocity rolls.

Reads the official layout ``<root>/maestro-v2.0.0/{maestro-v2.0.0.json|.csv, <year>/*.wav, *.midi}``
and behaves like the loader the paper trained with (AudioLoader's MAESTRO with sampling_rate=16000),
with deterministic crops and a clear report of unusable files. See docs/maestro.md.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from utils.data.audio_io import AudioFileError, audio_info, cache_path_for, ensure_resampled, read_crop
from utils.conventions import FRAMES_PER_SECOND, HOP_LENGTH, MAX_MIDI, MIN_MIDI, PAPER_TEST_FPS, SAMPLE_RATE, SEGMENT_SAMPLES
from utils.data.download import MAESTRO_V2_FOLDER, download_maestro
from utils.data.label_drift import paper_timed_rolls
from utils.data.midi_labels import MidiLabelError, load_note_table, segment_rolls

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
METADATA_NAMES = (f"{MAESTRO_V2_FOLDER}.json", f"{MAESTRO_V2_FOLDER}.csv")  # first one present is read
REQUIRED_COLUMNS = ("split", "midi_filename", "audio_filename")
NOTE_TABLE_SUFFIX = ".tsv.npy"  # label-table cache name: <midi stem>.tsv.npy
_SKIP_REASONS_SHOWN = 5  # how many skip reasons the one warning lists


class MaestroLayoutError(FileNotFoundError):
    """The MAESTRO folder, its metadata, a requested split, or every usable file is missing."""


@dataclass(frozen=True)
class Piece:
    """One usable recording: where to read it and how long it is at the training rate."""

    audio_path: Path  # the source recording listed in the metadata
    readable_audio_path: Path  # the 16 kHz file crops are read from (source or its .flac cache)
    midi_path: Path
    note_table_path: Path  # .npy cache of the note table
    n_samples: int  # length at the training sample rate


def find_dataset_dir(root: str | os.PathLike) -> Path:
    """The folder holding the metadata: ``root/maestro-v2.0.0`` or ``root`` itself."""
    root = Path(root)
    if not root.is_dir():
        raise MaestroLayoutError(f"{root}: MAESTRO root folder not found (set download=True to download it)")
    for candidate in (root / MAESTRO_V2_FOLDER, root):
        if any((candidate / name).is_file() for name in METADATA_NAMES):
            return candidate
    raise MaestroLayoutError(f"{root}: no {MAESTRO_V2_FOLDER}/{METADATA_NAMES[0]} or "
                             f"{MAESTRO_V2_FOLDER}/{METADATA_NAMES[1]} found (set download=True to download it)")


def read_metadata(dataset_dir: str | os.PathLike) -> list[dict]:
    """Rows of the MAESTRO metadata (.json if present, else .csv) as dicts with at least REQUIRED_COLUMNS.

    The JSON may be a list of records (v2.0.0) or a dict of columns (v3.0.0 style).
    """
    dataset_dir = Path(dataset_dir)
    path = next(dataset_dir / name for name in METADATA_NAMES if (dataset_dir / name).is_file())
    try:
        if path.suffix == ".json":
            with open(path, encoding="utf-8") as stream:
                content = json.load(stream)
            if isinstance(content, dict):  # {column: {row_id: value}}
                row_ids = list(next(iter(content.values()), {}))
                content = [{column: values[row_id] for column, values in content.items()} for row_id in row_ids]
            rows = list(content)
        else:
            with open(path, newline="", encoding="utf-8") as stream:
                rows = list(csv.DictReader(stream))
    except (ValueError, UnicodeDecodeError, csv.Error, TypeError, KeyError, AttributeError) as error:
        raise MaestroLayoutError(f"{path}: unreadable metadata ({type(error).__name__}: {error})") from error
    for number, row in enumerate(rows):
        missing = [column for column in REQUIRED_COLUMNS if not isinstance(row, dict) or column not in row]
        if missing:
            raise MaestroLayoutError(f"{path}: row {number} lacks column(s) {missing}")
    return rows


class MAESTRO(Dataset):
    """Random crops of MAESTRO v2.0.0 recordings with their training labels.

    Args:
        root: folder containing ``maestro-v2.0.0/`` (or that folder itself).
        groups: split name(s) among ``train``, ``validation``, ``test``.
        sequence_length: crop length in samples at ``sampling_rate`` (a multiple of ``hop_length``).
        seed: crop seed; the crop of item ``index`` depends only on (seed, epoch, index).
        hop_length, sampling_rate: label frame hop and audio rate (the model's: 512, 16000).
        min_midi, max_midi: key range of the rolls.
        download: download and extract MAESTRO v2.0.0 into ``root`` when it is not there.
        cache_dir: where resampled audio and label tables are cached; None = beside the sources when
            writable, else the user cache folder (utils.data.audio_io.default_cache_dir).
        frame_aligned_crops: start crops on a frame boundary (a multiple of hop_length). False, as
            published, lets the audio start up to hop_length - 1 samples after the labels' first frame.
        crops_per_epoch: items per recording and epoch (1, as published: an epoch is one crop of each
            recording). k > 1 makes an epoch k independent random crops of every recording, so a small
            corpus still gives full-length epochs (fewer loader restarts between them).
        paper_label_prob: probability that an item's labels are on the paper's 31 frames/s test clock
            (utils.data.label_drift; 0, as published). Drawn per (seed, epoch, index).

    Items are dicts: ``audio`` (sequence_length,) float32, ``frame``/``onset``/``offset``/``velocity``
    (sequence_length // hop_length, keys) float32 tensors, and ``path`` (the source audio file).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        groups: str | Iterable[str] = ("train",),
        sequence_length: int = SEGMENT_SAMPLES,
        seed: int = 42,
        hop_length: int = HOP_LENGTH,
        sampling_rate: int = SAMPLE_RATE,
        min_midi: int = MIN_MIDI,
        max_midi: int = MAX_MIDI,
        download: bool = False,
        cache_dir: str | os.PathLike | None = None,
        frame_aligned_crops: bool = False,
        crops_per_epoch: int = 1,
        paper_label_prob: float = 0.0,
    ):
        self.groups = [groups] if isinstance(groups, str) else list(groups)
        unknown = [group for group in self.groups if group not in SPLITS]
        if unknown or not self.groups:
            raise ValueError(f"MAESTRO groups {self.groups}: unknown split(s) {unknown}; "
                             f"choose from {list(SPLITS)}")
        if sequence_length <= 0 or sequence_length % hop_length:
            raise ValueError(f"sequence_length={sequence_length} must be a positive multiple of hop_length={hop_length}")
        self.sequence_length = int(sequence_length)
        self.seed = int(seed)
        self.hop_length = int(hop_length)
        self.sampling_rate = int(sampling_rate)
        self.min_midi, self.max_midi = int(min_midi), int(max_midi)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.frame_aligned_crops = bool(frame_aligned_crops)
        if int(crops_per_epoch) < 1 or int(crops_per_epoch) != crops_per_epoch:
            raise ValueError(f"crops_per_epoch={crops_per_epoch}: must be a positive integer")
        self.crops_per_epoch = int(crops_per_epoch)
        if not 0.0 <= paper_label_prob <= 1.0:
            raise ValueError(f"paper_label_prob={paper_label_prob}: must be in [0, 1]")
        self.paper_label_prob = float(paper_label_prob)
        # Shared with DataLoader workers (also persistent ones), so set_epoch reaches them.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

        if download and not self._has_metadata(Path(root)):
            download_maestro(root)
        self.dataset_dir = find_dataset_dir(root)
        self.pieces, self.skipped = self._prepare(read_metadata(self.dataset_dir))

    @staticmethod
    def _has_metadata(root: Path) -> bool:
        return any((folder / name).is_file() for folder in (root / MAESTRO_V2_FOLDER, root) for name in METADATA_NAMES)

    def _prepare(self, rows: list[dict]) -> tuple[list[Piece], list[tuple[str, str]]]:
        """Check every listed recording of the requested splits, building caches; skip unusable ones."""
        selected = []
        for group in self.groups:
            group_rows = sorted((row["audio_filename"], row["midi_filename"]) for row in rows if row["split"] == group)
            if not group_rows:
                raise MaestroLayoutError(f"{self.dataset_dir}: metadata lists no recordings for split {group!r}")
            selected.extend(group_rows)

        pieces, skipped = [], []
        for audio_name, midi_name in tqdm(selected, desc=f"preparing MAESTRO {'+'.join(self.groups)}", unit="file"):
            try:
                pieces.append(self._prepare_piece(self.dataset_dir / audio_name, self.dataset_dir / midi_name))
            except (FileNotFoundError, AudioFileError, MidiLabelError) as error:
                log.info("skipping %s: %s", audio_name, error)
                skipped.append((audio_name, str(error)))
        if skipped:
            shown = "; ".join(reason for _, reason in skipped[:_SKIP_REASONS_SHOWN])
            log.warning("MAESTRO %s: skipped %d of %d files (%s%s)", "+".join(self.groups), len(skipped),
                        len(selected), shown, "; ..." if len(skipped) > _SKIP_REASONS_SHOWN else "")
        if not pieces:
            raise MaestroLayoutError(f"{self.dataset_dir}: no usable recording in split(s) {self.groups} "
                                     f"({len(skipped)} skipped; first: {skipped[0][1]})")
        return pieces, skipped

    def _prepare_piece(self, audio_path: Path, midi_path: Path) -> Piece:
        """Validate one recording and build its caches; raises the error that makes it unusable."""
        for path, kind in ((audio_path, "audio"), (midi_path, "MIDI")):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: {kind} file listed in the metadata is missing")
        note_table_path = cache_path_for(midi_path, NOTE_TABLE_SUFFIX, self.cache_dir)
        notes = load_note_table(midi_path, note_table_path)
        keys = notes[:, 2]
        if keys.min() < self.min_midi or keys.max() > self.max_midi:
            raise MidiLabelError(f"{midi_path}: MIDI notes outside the key range {self.min_midi}..{self.max_midi}")
        readable = ensure_resampled(audio_path, self.cache_dir, self.sampling_rate)
        n_samples = audio_info(readable).frames
        if n_samples <= self.sequence_length:
            raise AudioFileError(f"{audio_path}: audio too short, {n_samples} samples at {self.sampling_rate} Hz "
                                 f"for crops of {self.sequence_length}")
        return Piece(audio_path, readable, midi_path, note_table_path, n_samples)

    def set_epoch(self, epoch: int) -> None:
        """Select the crops of ``epoch`` (the crop of an item depends on seed, epoch and index)."""
        self._epoch.fill_(int(epoch))

    def crop_begin(self, index: int) -> int:
        """First sample of item ``index``'s crop: uniform in [0, n_samples - sequence_length), as published
        (rounded down to a frame boundary with ``frame_aligned_crops``)."""
        generator = np.random.default_rng([self.seed, int(self._epoch), index])
        begin = int(generator.integers(self.pieces[index % len(self.pieces)].n_samples - self.sequence_length))
        return begin - begin % self.hop_length if self.frame_aligned_crops else begin

    def paper_timed(self, index: int) -> bool:
        """Whether item ``index`` of this epoch has its labels on the paper's test clock."""
        if self.paper_label_prob == 0.0:
            return False
        return bool(np.random.default_rng([self.seed, int(self._epoch), index, 1]).random() < self.paper_label_prob)

    def __len__(self) -> int:
        return len(self.pieces) * self.crops_per_epoch

    def __getitem__(self, index: int) -> dict:
        if index >= len(self):  # (the modulo below would wrap: iterating the dataset would never end)
            raise IndexError(f"item {index} of a dataset of {len(self)} items")
        piece = self.pieces[index % len(self.pieces)]  # item index -> recording; the crop depends on index
        begin = self.crop_begin(index)
        audio = read_crop(piece.readable_audio_path, begin, self.sequence_length, self.sampling_rate)  # (S,)
        notes = load_note_table(piece.midi_path, piece.note_table_path)  # (N, 4)
        paper_timed = self.paper_timed(index)
        label_rolls = paper_timed_rolls if paper_timed else segment_rolls
        rolls = label_rolls(notes, begin, piece.n_samples, self.sequence_length, self.hop_length,
                            self.sampling_rate, self.min_midi, self.max_midi)  # each (S // hop, keys)
        item = {name: torch.from_numpy(roll) for name, roll in rolls.items()}
        item["audio"] = torch.from_numpy(audio)
        item["score_fps"] = torch.tensor(float(PAPER_TEST_FPS if paper_timed else FRAMES_PER_SECOND))  # the labels' clock
        item["path"] = str(piece.audio_path)
        return item
