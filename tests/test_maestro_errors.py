"""utils/data/maestro.py and utils/data/audio_io.py: caches, unusable files, the download option, audio errors."""
import logging
import os
import shutil

import numpy as np
import pretty_midi
import pytest
import soundfile

import utils.data.audio_io as audio_io
import utils.data.maestro as maestro
from utils.data.audio_io import AudioFileError, audio_info, ensure_resampled, read_crop
from utils.conventions import SAMPLE_RATE
from utils.data.maestro import MAESTRO, MaestroLayoutError
from maestro_layout import SHORT, SOURCE_RATE, _add_piece, _short, _write_metadata, _write_midi


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
    monkeypatch.setattr(maestro, "load_note_table", lambda midi, cache: np.load(cache)[1:])  # must hit the cache
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
