"""utils/data/maestro.py and utils/data/audio_io.py on a tiny synthetic MAESTRO v2.0.0 layout built in tmp_path."""
import csv
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile
import torch
from torch.utils.data import DataLoader

import utils.data.audio_io as audio_io
import utils.data.maestro as maestro
from utils.data.audio_io import AudioFileError, audio_info, ensure_resampled, read_crop
from utils.conventions import HOP_LENGTH, SAMPLE_RATE, SEGMENT_FRAMES, SEGMENT_SAMPLES
from utils.data.maestro import MAESTRO, MaestroLayoutError
from utils.training.machinery import EpochSampler
from utils.data.midi_labels import parse_midi, segment_rolls

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


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("maestro")
    _build_layout(root)
    return root


@pytest.fixture
def fresh_layout(tmp_path):
    dataset_dir, rows = _build_layout(tmp_path)
    return tmp_path, dataset_dir, rows


def _short(root, **options):
    return MAESTRO(root, **{"groups": ["train"], "sequence_length": SHORT, **options})


# ---------------------------------------------------------------- items, labels, crops


def test_full_length_item_shapes_and_dtypes(layout):
    dataset = MAESTRO(layout, groups="test")
    item = dataset[0]
    assert item["audio"].shape == (SEGMENT_SAMPLES,) and item["audio"].dtype == torch.float32
    for name in ("frame", "onset", "offset", "velocity"):
        assert item[name].shape == (SEGMENT_FRAMES, 88) and item[name].dtype == torch.float32
    assert item["path"] == str(layout / "maestro-v2.0.0" / "2009" / "test_a.wav")
    assert item["frame"].sum() > 0 and 0 < item["velocity"].max() < 1


def test_labels_and_audio_belong_to_the_crop(layout):
    dataset = _short(layout)
    for index, piece in enumerate(dataset.pieces):
        begin = dataset.crop_begin(index)
        assert 0 <= begin < piece.n_samples - SHORT
        item = dataset[index]
        full, rate = soundfile.read(piece.readable_audio_path, dtype="float32")  # (samples,) 16 kHz mono
        assert rate == SAMPLE_RATE and full.ndim == 1 and len(full) == piece.n_samples
        np.testing.assert_array_equal(item["audio"].numpy(), full[begin:begin + SHORT])
        expected = segment_rolls(parse_midi(piece.midi_path), begin, piece.n_samples, SHORT)
        for name, roll in expected.items():
            np.testing.assert_array_equal(item[name].numpy(), roll, err_msg=name)
        # The tones sound in the labelled frames: frame f of the crop is samples [(first + f) * hop, +hop).
        first = begin // HOP_LENGTH
        frames = item["frame"].numpy().any(axis=1)  # (32,)
        for f in range(len(frames)):
            start = (first + f) * HOP_LENGTH
            rms = np.sqrt(np.mean(full[start:start + HOP_LENGTH] ** 2))
            if frames[max(f - 1, 0):f + 2].all():
                assert rms > 0.05, (piece.audio_path.name, f, rms)
            elif not frames[max(f - 2, 0):f + 3].any():
                assert rms < 0.01, (piece.audio_path.name, f, rms)


def test_stereo_is_mixed_to_mono_and_resampled(layout):
    piece = _short(layout).pieces[0]
    assert piece.readable_audio_path == piece.audio_path.with_suffix(".flac")
    info = soundfile.info(piece.readable_audio_path)
    assert (info.samplerate, info.channels) == (SAMPLE_RATE, 1)
    assert abs(info.frames - 3.0 * SAMPLE_RATE) <= 1
    # Left channel 0.5 sin, right 0.25 sin -> mono 0.375 sin, RMS 0.265 inside the first note (0.1-0.35 s).
    inside_note = soundfile.read(piece.readable_audio_path)[0][int(0.15 * SAMPLE_RATE):int(0.3 * SAMPLE_RATE)]
    assert np.sqrt(np.mean(inside_note ** 2)) == pytest.approx(0.375 / np.sqrt(2), rel=0.01)


def test_crops_are_deterministic_per_seed_epoch_and_index(layout):
    first, again, other_seed = _short(layout), _short(layout), _short(layout, seed=7)
    begins = [first.crop_begin(i) for i in range(len(first))]
    assert begins == [again.crop_begin(i) for i in range(len(again))]
    assert begins != [other_seed.crop_begin(i) for i in range(len(other_seed))]
    torch.testing.assert_close(first[1]["audio"], again[1]["audio"], rtol=0, atol=0)
    first.set_epoch(1)
    assert begins != [first.crop_begin(i) for i in range(len(first))]
    first.set_epoch(0)
    assert begins == [first.crop_begin(i) for i in range(len(first))]


def test_frame_aligned_crops_option(layout):
    published, aligned = _short(layout), _short(layout, frame_aligned_crops=True)
    published_begins = [published.crop_begin(i) for i in range(len(published))]
    assert any(begin % HOP_LENGTH for begin in published_begins)
    assert [aligned.crop_begin(i) for i in range(len(aligned))] == [b - b % HOP_LENGTH for b in published_begins]
    torch.testing.assert_close(aligned[0]["frame"], published[0]["frame"], rtol=0, atol=0)  # same label frames


def test_workers_reproduce_main_process_items_across_epochs(layout):
    dataset = _short(layout)
    sampler = EpochSampler(dataset, seed=0)
    loader = DataLoader(dataset, batch_size=1, sampler=sampler, num_workers=2, persistent_workers=True)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        seen = {batch["path"][0]: batch["audio"][0] for batch in loader}
        expected = {dataset[i]["path"]: dataset[i]["audio"] for i in range(len(dataset))}
        assert seen.keys() == expected.keys()
        for path, audio in seen.items():
            torch.testing.assert_close(audio, expected[path], rtol=0, atol=0)


def test_split_selection_and_csv_metadata(layout, tmp_path):
    validation = MAESTRO(layout, groups=["validation"], sequence_length=SHORT)
    assert [os.path.basename(item["path"]) for item in validation] == ["val_a.wav"]
    both = MAESTRO(layout, groups=["train", "validation"], sequence_length=SHORT)
    assert [p.audio_path.name for p in both.pieces] == ["train_a.wav", "train_b.wav", "train_c.flac", "val_a.wav"]
    # The same layout described only by the .csv (root may also be the maestro-v2.0.0 folder itself).
    csv_only = tmp_path / "maestro-v2.0.0"
    shutil.copytree(layout / "maestro-v2.0.0", csv_only)
    (csv_only / "maestro-v2.0.0.json").unlink()
    from_csv = MAESTRO(csv_only, groups=["train", "validation"], sequence_length=SHORT)
    assert [p.audio_path.name for p in from_csv.pieces] == [p.audio_path.name for p in both.pieces]
    assert [p.n_samples for p in from_csv.pieces] == [p.n_samples for p in both.pieces]


# ---------------------------------------------------------------- caching


def test_resample_and_label_caches_are_built_once(fresh_layout, monkeypatch):
    root, dataset_dir, _ = fresh_layout
    _short(root)
    flac, labels = dataset_dir / "2004" / "train_a.flac", dataset_dir / "2004" / "train_a.tsv.npy"
    assert flac.is_file() and labels.is_file()
    assert not (dataset_dir / "2006").exists() and not list(dataset_dir.glob("2004/*Hz.flac"))
    assert not list(dataset_dir.glob("**/.*.tmp"))  # atomic writes leave no temporary files
    stamps = {path: path.stat().st_mtime_ns for path in dataset_dir.glob("**/*") if path.suffix in (".flac", ".npy")}

    def fail(*args, **kwargs):
        raise AssertionError("resampled again")

    monkeypatch.setattr(audio_io, "resample_to_mono", fail)
    monkeypatch.setattr(maestro, "load_note_table", lambda midi, cache: np.load(cache))  # must hit the cache
    dataset = _short(root)
    assert len(dataset) == 3
    assert stamps == {path: path.stat().st_mtime_ns for path in stamps}


def test_read_only_source_caches_in_cache_folder(fresh_layout, tmp_path_factory, monkeypatch):
    root, dataset_dir, _ = fresh_layout
    cache = tmp_path_factory.mktemp("user_cache")
    monkeypatch.setenv("DIFFVEL_CACHE", str(cache))
    monkeypatch.setattr(audio_io, "_folder_is_writable", lambda folder: False)
    dataset = _short(root)
    assert not (dataset_dir / "2004" / "train_a.flac").exists()
    mirrored = cache / dataset_dir.resolve().relative_to("/") / "2004"
    assert dataset.pieces[0].readable_audio_path == mirrored / "train_a.flac"
    assert (mirrored / "train_a.flac").is_file() and (mirrored / "train_a.tsv.npy").is_file()


def test_explicit_cache_dir(fresh_layout, tmp_path_factory):
    root, dataset_dir, _ = fresh_layout
    cache = tmp_path_factory.mktemp("explicit_cache")
    dataset = MAESTRO(root, groups="validation", sequence_length=SHORT, cache_dir=cache)
    assert dataset.pieces[0].readable_audio_path.is_relative_to(cache)
    assert not list(dataset_dir.glob("**/*.npy")) and not (dataset_dir / "2008" / "val_a.flac").exists()


# ---------------------------------------------------------------- errors and skips


def test_missing_root_metadata_split_and_columns(tmp_path, layout):
    with pytest.raises(MaestroLayoutError, match=r"nowhere: MAESTRO root folder not found"):
        MAESTRO(tmp_path / "nowhere")
    with pytest.raises(MaestroLayoutError, match=r"no maestro-v2\.0\.0/maestro-v2\.0\.0\.json or .*\.csv found"):
        MAESTRO(tmp_path)
    with pytest.raises(ValueError, match=r"unknown split\(s\) \['training'\]"):
        MAESTRO(layout, groups="training")
    dataset_dir = tmp_path / "maestro-v2.0.0"
    dataset_dir.mkdir()
    _write_metadata(dataset_dir, [{"split": "train", "midi_filename": "a.midi", "audio_filename": "a.wav"}], ["json"])
    with pytest.raises(MaestroLayoutError, match=r"metadata lists no recordings for split 'test'"):
        MAESTRO(tmp_path, groups="test")
    (dataset_dir / "maestro-v2.0.0.json").write_text('[{"split": "train", "midi_filename": "a.midi"}]')
    lacks_audio = r"maestro-v2\.0\.0\.json: row 0 lacks column\(s\) \['audio_filename'\]"
    with pytest.raises(MaestroLayoutError, match=lacks_audio):
        MAESTRO(tmp_path)
    (dataset_dir / "maestro-v2.0.0.json").write_text("[{not json")
    with pytest.raises(MaestroLayoutError, match=r"maestro-v2\.0\.0\.json: unreadable metadata"):
        MAESTRO(tmp_path)


def _break_files(dataset_dir, rows):
    """Add 8 unusable train rows; returns {audio name: expected message fragment}."""
    year = dataset_dir / "2004"
    expected = {}

    def add(name, audio_ext="wav", **piece):
        _add_piece(dataset_dir, rows, "train", name, ext=audio_ext, **piece)
        return year / f"{name}.{audio_ext}", year / f"{name}.midi"

    audio, _ = add("missing_audio")
    audio.unlink()
    expected["missing_audio"] = "missing_audio.wav: audio file listed in the metadata is missing"
    audio, _ = add("garbage")
    audio.write_bytes(b"RIFF not a wave file at all" * 20)
    expected["garbage"] = "garbage.wav: not a readable audio file"
    audio, _ = add("cut_wav")
    audio.write_bytes(audio.read_bytes()[:50000])
    expected["cut_wav"] = "cut_wav.wav: truncated WAV"
    audio, _ = add("cut_flac", audio_ext="flac")
    audio.write_bytes(audio.read_bytes()[:40000])
    expected["cut_flac"] = "cut_flac.flac: corrupt or truncated audio"
    add("too_short", duration=0.9)
    expected["too_short"] = "too_short.wav: audio too short, 14400 samples at 16000 Hz for crops of 16384"
    _, midi = add("bad_midi")
    midi.write_bytes(b"MThd\x00\x00\x00\x06nonsense")
    expected["bad_midi"] = "bad_midi.midi: not a readable MIDI file"
    _, midi = add("silent_midi")
    empty = pretty_midi.PrettyMIDI()
    empty.instruments.append(pretty_midi.Instrument(program=0))
    empty.write(str(midi))
    expected["silent_midi"] = "silent_midi.midi: MIDI file has no notes"
    _, midi = add("high_midi")
    _write_midi(midi, [(0.1, 0.5, 109, 64)])
    expected["high_midi"] = "high_midi.midi: MIDI notes [109] are outside the piano range 21..108"
    _write_metadata(dataset_dir, rows)
    return expected


def test_unusable_files_are_skipped_with_one_warning(fresh_layout, caplog):
    root, dataset_dir, rows = fresh_layout
    expected = _break_files(dataset_dir, rows)
    with caplog.at_level(logging.WARNING, logger="utils.data.maestro"):
        dataset = _short(root)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 8 of 11 files" in warnings[0].getMessage()
    assert [p.audio_path.name for p in dataset.pieces] == ["train_a.wav", "train_b.wav", "train_c.flac"]
    reasons = {os.path.basename(name).split(".")[0]: reason for name, reason in dataset.skipped}
    assert reasons.keys() == expected.keys()
    for name, fragment in expected.items():
        assert fragment in reasons[name], (name, reasons[name])
    assert dataset[0]["audio"].shape == (SHORT,)  # the usable files still load


def test_no_usable_file_is_an_error(fresh_layout):
    root, dataset_dir, rows = fresh_layout
    (dataset_dir / "2008" / "val_a.wav").unlink()
    with pytest.raises(MaestroLayoutError, match=r"no usable recording in split\(s\) \['validation'\] \(1 skipped; "
                                                 r"first: .*val_a\.wav: audio file listed in the metadata is missing"):
        MAESTRO(root, groups="validation", sequence_length=SHORT)


def test_download_option_calls_downloader(tmp_path, layout, monkeypatch):
    calls = []

    def fake_download(root):
        calls.append(root)
        shutil.copytree(layout / "maestro-v2.0.0", tmp_path / "maestro-v2.0.0")

    monkeypatch.setattr(maestro, "download_maestro", fake_download)
    assert len(MAESTRO(tmp_path, groups="validation", sequence_length=SHORT, download=True)) == 1
    assert calls == [tmp_path]
    MAESTRO(tmp_path, groups="validation", sequence_length=SHORT, download=True)  # present: no second download
    assert calls == [tmp_path]


# ---------------------------------------------------------------- audio_io directly


def test_read_crop_errors_name_file(tmp_path):
    path = tmp_path / "short.wav"
    soundfile.write(path, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    assert read_crop(path, 100, 1000).shape == (1000,)
    with pytest.raises(AudioFileError, match=r"short\.wav: audio too short for a crop of 16384 samples at sample 0 "
                                             r"\(file has 16000 samples\)"):
        read_crop(path, 0, SHORT)
    loud = tmp_path / "44k.wav"
    soundfile.write(loud, np.zeros(SOURCE_RATE, dtype=np.float32), SOURCE_RATE)
    with pytest.raises(AudioFileError, match=r"44k\.wav: sample rate 44100 Hz, expected 16000 Hz"):
        read_crop(loud, 0, 100)
    with pytest.raises(FileNotFoundError, match=r"absent\.wav: audio file not found"):
        audio_info(tmp_path / "absent.wav")


def test_truncated_16k_flac_is_detected_before_use(tmp_path):
    path = tmp_path / "cut.flac"
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 5 * SAMPLE_RATE).astype(np.float32)
    soundfile.write(path, noise, SAMPLE_RATE, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(AudioFileError, match=r"cut\.flac: (corrupt or truncated audio|truncated audio)"):
        ensure_resampled(path)


def test_hydra_dataset_config_builds_every_split(layout):
    from omegaconf import OmegaConf

    top = OmegaConf.create({"seed": 42, "data_root": str(layout), "download": False, "sequence_length": SHORT,
                            "hop_length": HOP_LENGTH, "sampling_rate": SAMPLE_RATE, "min_midi": 21, "max_midi": 108})
    cfg = OmegaConf.merge(top, {"dataset": OmegaConf.load(CONFIG_FILE)})
    assert cfg.dataset.name == "MAESTRO"
    names = {split: [os.path.basename(item["path"]) for item in MAESTRO(**cfg.dataset[split])]
             for split in ("train", "val", "test")}
    assert names == {"train": ["train_a.wav", "train_b.wav", "train_c.flac"], "val": ["val_a.wav"],
                     "test": ["test_a.wav"]}
