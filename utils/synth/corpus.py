"""Write the synthetic corpus in the on-disk formats of MAESTRO v2.0.0 and of the SMD .h5 test set.

Layout under OUT:

* ``maestro-v2.0.0/maestro-v2.0.0.json`` (a list of row dicts, as the official v2.0.0 file) and
  ``maestro-v2.0.0/maestro-v2.0.0.csv`` with columns canonical_composer, canonical_title, split,
  year, midi_filename, audio_filename, duration;
* ``maestro-v2.0.0/<year>/<stem>.wav`` (16-bit PCM, 44.1 kHz stereo or 16 kHz mono) and ``.midi``;
* ``smd_src/<name>.wav`` + ``<name>.mid``: separate test pieces, packed by utils.data.pack_smd into
  ``smd_h5/<name>.h5``;
* ``synth_config.json``: the generation settings, checked on re-runs so that a folder never mixes
  pieces made with different settings.

Every file is written atomically and pieces already on disk are skipped, so an interrupted run can
simply be started again, and larger counts extend an existing corpus.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from utils.atomic import atomic_path
from utils.conventions import SEGMENT_SECONDS
from utils.synth.performance import generate_performance
from utils.synth.performances import load_performances, performance_window
from utils.synth import variety
from utils.synth.render import Renderer, make_renderer, to_output_channels
from utils.synth.timidity import voice_renderer

logger = logging.getLogger(__name__)

MAESTRO_FOLDER = "maestro-v2.0.0"
SMD_SOURCE_FOLDER = "smd_src"
SMD_H5_FOLDER = "smd_h5"
CONFIG_NAME = "synth_config.json"
COLUMNS = ("canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename", "duration")
COMPOSER = "Synthetic"
SPLIT_CODES = {"train": 0, "validation": 1, "test": 2, "smd": 3}  # mixed into each piece's seed
YEARS = (2004, 2006, 2008, 2009, 2011, 2013, 2014, 2015, 2017, 2018)  # MAESTRO's recording years
OUTPUT_FORMATS = {44100: 2, 16000: 1}  # sample rate -> channels (MAESTRO-like stereo, or model-rate mono)
MIN_SECONDS = SEGMENT_SECONDS + 2.0  # every audio must hold one 20.48 s crop with a margin


@dataclass(frozen=True)
class CorpusConfig:
    """How many pieces of which length, and how to make them."""

    n_train: int = 24
    n_val: int = 4
    n_test: int = 4
    n_smd: int = 6
    seconds: float = 40.0  # MAESTRO-layout pieces
    smd_seconds: float = 45.0  # SMD test excerpts
    seed: int = 0
    renderer: str = "auto"
    sample_rate: int = 44100
    soundfonts: tuple = ()  # a SoundFont per piece drawn from these (FluidSynth); () = the default one
    gain_db: float = 0.0  # per-piece gain within +-gain_db (utils/synth/variety.py)
    eq_db: float = 0.0  # per-piece spectral tilt within +-eq_db
    room: float = 0.0  # per-piece synthetic room, wet mix up to `room`
    free_velocity: float = 0.0  # fraction of notes whose velocity is drawn independently of the score
    performances: tuple = ()  # performance MIDI files or folders (utils/synth/performances.py)
    performance_fraction: float = 0.0  # fraction of pieces cut from `performances` instead of generated

    def check(self) -> None:
        for name in ("n_train", "n_val", "n_test", "n_smd"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}: counts must be >= 0")
        if self.n_train + self.n_val + self.n_test == 0:
            raise ValueError("n_train + n_val + n_test is 0: the MAESTRO layout needs at least one piece")
        for name in ("seconds", "smd_seconds"):
            if getattr(self, name) < MIN_SECONDS:
                raise ValueError(f"{name}={getattr(self, name)}: pieces must last at least {MIN_SECONDS:.2f} s "
                                 f"(one {SEGMENT_SECONDS} s crop plus a margin)")
        if self.sample_rate not in OUTPUT_FORMATS:
            raise ValueError(f"sample_rate={self.sample_rate}: expected one of {sorted(OUTPUT_FORMATS)}")
        variety.check_ranges(self.gain_db, self.eq_db, self.room, self.soundfonts, self.free_velocity)
        if not 0 <= self.performance_fraction <= 1:
            raise ValueError(f"performance_fraction={self.performance_fraction}: must be within 0..1")
        if bool(self.performances) != (self.performance_fraction > 0):
            raise ValueError("performances and performance_fraction go together: give both or neither")


TINY = CorpusConfig(n_train=2, n_val=1, n_test=1, n_smd=2, seconds=25.0, smd_seconds=25.0)


@dataclass(frozen=True)
class PieceSpec:
    split: str  # train | validation | test | smd
    index: int
    seed: int  # the generator seed of this piece
    year: int
    stem: str


@dataclass(frozen=True)
class CorpusSummary:
    dataset_dir: Path  # OUT/maestro-v2.0.0
    rows: list  # metadata rows (dicts with COLUMNS)
    smd_files: list  # OUT/smd_h5/*.h5 paths ([] when utils.data.pack_smd is unavailable)
    rendered: int  # pieces rendered by this run
    skipped: int  # pieces already on disk


def piece_specs(config: CorpusConfig) -> list[PieceSpec]:
    """Every piece of the corpus, each with its own seed derived from (config.seed, split, index)."""
    counts = {"train": config.n_train, "validation": config.n_val, "test": config.n_test, "smd": config.n_smd}
    specs = []
    for split, count in counts.items():
        for index in range(count):
            seed = int(np.random.SeedSequence([config.seed, SPLIT_CODES[split], index]).generate_state(1)[0])
            year = YEARS[(index + 3 * SPLIT_CODES[split]) % len(YEARS)]
            if split == "smd":  # SMD-like name: Composer_Title_..._SMD (the packer reads composer/title)
                stem = f"{COMPOSER}_Study-{index:02d}_s{config.seed}_SMD"
            else:
                stem = f"SYNTH-s{config.seed}_{split}_{index:03d}"
            specs.append(PieceSpec(split, index, seed, year, stem))
    return specs


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def _check_config(out_dir: Path, config: CorpusConfig, renderer_name: str) -> None:
    """Refuse to extend a corpus made with other generation settings; record the settings."""
    settings = {key: value for key, value in asdict(config).items() if not key.startswith("n_")}
    settings["soundfonts"] = [str(path) for path in config.soundfonts]
    settings["performances"] = [str(path) for path in config.performances]
    for key in ("soundfonts", "gain_db", "eq_db", "room", "free_velocity", "performances", "performance_fraction"):  # variety options: recorded only when used
        if not settings[key]:
            settings.pop(key)
    settings["renderer"] = renderer_name
    path = out_dir / CONFIG_NAME
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ValueError(f"{path}: unreadable corpus settings ({error})") from None
        changed = {key: (previous.get(key), value) for key, value in settings.items() if previous.get(key) != value}
        if changed:
            details = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changed.items())
            raise ValueError(f"{path}: this corpus was made with other settings ({details}); "
                             f"choose another --out or delete the folder")
    _write_text(path, json.dumps(settings, indent=2) + "\n")


class _Renderers:
    """The corpus renderer, plus one renderer per extra SoundFont, all made before any piece is rendered
    so that a missing program fails first: FluidSynth for a SoundFont, TiMidity++ for a ``.cfg`` file."""

    def __init__(self, default: Renderer, config: CorpusConfig):
        self.default, self.config = default, config
        self.by_soundfont = {str(path): voice_renderer(str(path), config.sample_rate) for path in config.soundfonts}
        self.performances = load_performances(config.performances, MIN_SECONDS)  # [] when none are given

    def render(self, spec: PieceSpec, midi, seconds: float, label: str):
        config = self.config
        variation = variety.draw(spec.seed, config.soundfonts, config.gain_db, config.eq_db, config.room)
        renderer = self.default if variation.soundfont is None else self.by_soundfont[variation.soundfont]
        audio = renderer.render(midi, duration=seconds, label=label)  # (2, samples)
        return variety.apply(audio, variation, spec.seed, config.sample_rate)


def _render_piece(spec: PieceSpec, seconds: float, renderer: _Renderers, channels: int,
                  audio_path: Path, midi_path: Path) -> str:
    """Generate (or cut from a performance), render and write one piece unless both files exist; return its title."""
    piece, real = _piece(spec, seconds, renderer)
    if audio_path.is_file() and midi_path.is_file():
        return piece.title
    if not real:  # real performances keep their velocities
        variety.free_velocities(piece.midi, renderer.config.free_velocity, spec.seed)
    audio = renderer.render(spec, piece.midi, seconds, audio_path.name)  # (2, samples)
    with atomic_path(midi_path) as temporary:
        piece.midi.write(str(temporary))
    with atomic_path(audio_path) as temporary:
        soundfile.write(str(temporary), to_output_channels(audio, channels), renderer.default.sample_rate,
                        subtype="PCM_16", format="WAV")
    return piece.title


def _piece(spec: PieceSpec, seconds: float, renderer: _Renderers):
    """(piece, cut from a real performance?) of one spec; the piece seed decides which."""
    fraction = renderer.config.performance_fraction
    if fraction > 0 and np.random.default_rng([spec.seed, 4111]).random() < fraction:
        return performance_window(renderer.performances, seconds, spec.seed), True
    return generate_performance(seconds, spec.seed), False


def _metadata_texts(rows: list[dict]) -> tuple[str, str]:
    """(json, csv) texts of the metadata rows."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n", buffer.getvalue()


def _pack_smd(source_dir: Path, h5_dir: Path) -> list[Path]:
    try:
        from utils.data.pack_smd import pack_folder
    except ImportError as error:
        logger.warning("utils.data.pack_smd is not importable (%s): %s not packed into %s", error, source_dir, h5_dir)
        return []
    return pack_folder(source_dir, h5_dir, overwrite=False)


def write_corpus(out_dir: str | os.PathLike, config: CorpusConfig = CorpusConfig(),
                 renderer: Renderer | None = None) -> CorpusSummary:
    """Write (or complete) the synthetic corpus under `out_dir`; see the module docstring."""
    config.check()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    renderer = renderer or make_renderer(config.renderer, config.sample_rate)
    if renderer.sample_rate != config.sample_rate:
        raise ValueError(f"renderer rate {renderer.sample_rate} Hz differs from sample_rate={config.sample_rate}")
    renderers = _Renderers(renderer, config)
    _check_config(out_dir, config, renderer.name)
    channels = OUTPUT_FORMATS[config.sample_rate]
    dataset_dir = out_dir / MAESTRO_FOLDER
    source_dir = out_dir / SMD_SOURCE_FOLDER

    rows, rendered, skipped = [], 0, 0
    for spec in tqdm(piece_specs(config), desc="synthetic corpus", unit="piece"):
        if spec.split == "smd":
            audio_path, midi_path = source_dir / f"{spec.stem}.wav", source_dir / f"{spec.stem}.mid"
            seconds = config.smd_seconds
        else:
            audio_path = dataset_dir / str(spec.year) / f"{spec.stem}.wav"
            midi_path = audio_path.with_suffix(".midi")
            seconds = config.seconds
        existed = audio_path.is_file() and midi_path.is_file()
        title = _render_piece(spec, seconds, renderers, channels, audio_path, midi_path)
        skipped, rendered = skipped + existed, rendered + (not existed)
        if spec.split != "smd":
            rows.append({"canonical_composer": COMPOSER, "canonical_title": title, "split": spec.split,
                         "year": spec.year, "midi_filename": midi_path.relative_to(dataset_dir).as_posix(),
                         "audio_filename": audio_path.relative_to(dataset_dir).as_posix(),
                         "duration": soundfile.info(str(audio_path)).duration})

    json_text, csv_text = _metadata_texts(rows)
    _write_text(dataset_dir / f"{MAESTRO_FOLDER}.json", json_text)
    _write_text(dataset_dir / f"{MAESTRO_FOLDER}.csv", csv_text)
    smd_files = _pack_smd(source_dir, out_dir / SMD_H5_FOLDER) if config.n_smd else []
    logger.info("synthetic corpus in %s: %d pieces rendered, %d already present, %d SMD excerpts",
                out_dir, rendered, skipped, len(smd_files))
    return CorpusSummary(dataset_dir, rows, smd_files, rendered, skipped)
