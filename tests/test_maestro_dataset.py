"""utils/data/maestro.py and utils/data/audio_io.py on a tiny synthetic MAESTRO v2.0.0 layout built in tmp_path."""
import os
import shutil

import numpy as np
import pytest
import soundfile
import torch
from torch.utils.data import DataLoader

from utils.conventions import HOP_LENGTH, SAMPLE_RATE, SEGMENT_FRAMES, SEGMENT_SAMPLES
from utils.data.maestro import MAESTRO
from utils.training.machinery import EpochSampler
from utils.data.midi_labels import parse_midi, segment_rolls
from maestro_layout import CONFIG_FILE, SHORT, _short


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
