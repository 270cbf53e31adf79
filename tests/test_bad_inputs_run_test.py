"""run_test.py on bad inputs: one-line errors naming the file or key, nothing written, nothing stale reused."""
import json
import logging
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

import run_test
from utils.checks import exit_on_error
from utils.data.smd import write_excerpt

from conftest import REPO_ROOT

MODEL_ARGS = ["model.args.residual_channels=16", "model.args.residual_layers=4", "model.args.kernel_size=9",
              "model.args.spec_dropout=0"]
NOTES = [(0.5, 60, 80), (1.5, 64, 100), (3.0, 67, 40)]  # (onset s, key, velocity), released 0.4 s later


def _events(notes=NOTES):
    events, times = [], []
    for onset, key, velocity in notes:
        events += [f"note_on channel=0 note={key} velocity={velocity} time=0", f"note_off channel=0 note={key} velocity=0 time=0"]
        times += [onset, onset + 0.4]
    return events, np.array(times)


def _raw_h5(path, audio_seconds, events, times, duration=None):
    """An .h5 written without the writer's checks, as another tool might have written it."""
    with h5py.File(path, "w") as hf:
        hf.create_dataset("waveform", data=np.zeros(int(audio_seconds * 16000), np.int16))
        hf.create_dataset("midi_event", data=np.array(events, dtype="S100"))
        hf.create_dataset("midi_event_time", data=np.asarray(times, np.float32))
        hf.attrs["duration"] = float(duration or audio_seconds)
    return path


@pytest.fixture
def h5_root(tmp_path):
    root = tmp_path / "h5"
    root.mkdir()
    rng = np.random.default_rng(0)
    events, times = _events()
    write_excerpt(root / "piece.h5", (rng.standard_normal(5 * 16000) * 3000).astype(np.int16), events, times, 5.0)
    return root


@pytest.fixture
def config(compose, reference_dir, h5_root, tmp_path):
    def _config(*overrides, ckpt=reference_dir / "authors_format_pl164.ckpt"):
        return compose("inference", [
            *MODEL_ARGS, "gpus=0", f"comp_modelckpt={ckpt}", f"SMD_data_root={h5_root}",
            f"inference_result_path={tmp_path / 'inference'}", f"pair_pkl_dir={tmp_path / 'pairs'}",
            "task.sampling.steps=2", *overrides,
        ])
    return _config


def _refused(config_, match, capsys, tmp_path):
    """exit_on_error(run_test.run): exit status 2, one stderr line matching, no output folder created."""
    with pytest.raises(SystemExit) as stop:
        exit_on_error(run_test.run, config_)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert match in err[0], err[0]
    assert not (tmp_path / "inference").exists() and not (tmp_path / "pairs").exists()
    return err[0]


# ---------------------------------------------------------------- resume keyed on provenance


def _perturbed_checkpoint(reference_dir, path, scale=1.01):
    checkpoint = torch.load(reference_dir / "authors_format_pl164.ckpt", weights_only=False)
    for key, value in checkpoint["state_dict"].items():
        if value.is_floating_point():
            checkpoint["state_dict"][key] = value * scale
    torch.save(checkpoint, path)
    return path


def test_pairs_are_reused_only_for_the_same_checkpoint_settings_and_h5(config, reference_dir, tmp_path, h5_root, caplog):
    pairs = tmp_path / "pairs"
    run_test.run(config())
    (first,) = pairs.glob("*_pair_0_*.npy")
    sidecar = json.loads(first.with_suffix(".json").read_text())
    assert sidecar["seed"] == 0 and len(sidecar["checkpoint_sha256"]) == 64 and len(sidecar["h5_sha256"]) == 64
    (csv_sidecar,) = (tmp_path / "inference" / "diffvel_baseline").glob("diffvel_base_shift_0-*.json")
    assert json.loads(csv_sidecar.read_text())["excerpts"][0]["pair_file"] == str(first)

    other = _perturbed_checkpoint(reference_dir, tmp_path / "other.ckpt")
    with caplog.at_level(logging.INFO):
        run_test.run(config(ckpt=other))
    assert len(list(pairs.glob("*_pair_0_*.npy"))) == 2  # another checkpoint: recomputed, not reused
    assert any("checkpoint_sha256 differs" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        run_test.run(config("seed=1"))
        run_test.run(config("task.sampling.steps=3"))
    assert len(list(pairs.glob("*_pair_0_*.npy"))) == 4  # another seed, another sampler
    assert any("seed differs" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        run_test.run(config("float32_matmul_precision=high"))  # TF32 on a GPU: other numbers
    assert len(list(pairs.glob("*_pair_0_*.npy"))) == 5
    assert any("float32_matmul_precision differs" in r.getMessage() for r in caplog.records)

    events, times = _events(NOTES[:2])  # the .h5 changed under the same name
    write_excerpt(h5_root / "piece.h5", np.full(5 * 16000, 100, np.int16), events, times, 5.0)
    run_test.run(config())
    assert len(list(pairs.glob("*_pair_0_*.npy"))) == 6
    caplog.clear()
    with caplog.at_level(logging.INFO):
        run_test.run(config())  # nothing changed: reused
    assert len(list(pairs.glob("*_pair_0_*.npy"))) == 6
    assert any("reusing" in r.getMessage() for r in caplog.records)


def test_pair_file_without_provenance_is_not_reused(config, tmp_path):
    run_test.run(config())
    (first,) = (tmp_path / "pairs").glob("*_pair_0_*.npy")
    first.with_suffix(".json").unlink()  # an earlier version's pair file (or a half-finished one)
    run_test.run(config())
    assert len(list((tmp_path / "pairs").glob("*_pair_0_*.npy"))) == 2


# ---------------------------------------------------------------- inconsistent .h5 files


def test_audio_shorter_than_midi_is_refused(config, h5_root, capsys, tmp_path):
    events, times = _events(NOTES + [(23.0, 70, 50)])
    _raw_h5(h5_root / "short.h5", 5.0, events, times)
    line = _refused(config(), "audio lasts 5.00 s but the MIDI 23.40 s", capsys, tmp_path)
    assert "short.h5" in line and "--trim-midi" in line


@pytest.mark.parametrize("event, match", [
    ("note_on channel=0 note=62 velocity=300 time=0", "velocity=300 is not a whole number in 0..127"),
    ("note_on channel=0 note=abc velocity=64 time=0", "note=abc is not a whole number in 0..127"),
    ("note_on channel=0 note=62 velocity=-5 time=0", "velocity=-5 is not a whole number"),
])
def test_bad_midi_event_values_are_refused(config, h5_root, capsys, tmp_path, event, match):
    events, times = _events()
    _raw_h5(h5_root / "bad.h5", 5.0, events + [event], np.append(times, 4.0))
    assert "bad.h5: midi_event 6" in _refused(config(), match, capsys, tmp_path)


def test_non_utf8_midi_event_is_refused(config, h5_root, capsys, tmp_path):
    events, times = _events()
    with h5py.File(_raw_h5(h5_root / "latin.h5", 5.0, events, times), "a") as hf:
        hf["midi_event"][1] = b"note_off channel=0 note=60 velocity=0 time=0 \xe9\xff"
    _refused(config(), "latin.h5: midi_event 1 is not UTF-8 text", capsys, tmp_path)


def test_shift_longer_than_the_piece_is_refused(config, capsys, tmp_path):
    _refused(config("unaligned_shift=[0,30]"), "piece.h5: unaligned_shift=30 s is not shorter than the piece (5.00 s)",
             capsys, tmp_path)


# ---------------------------------------------------------------- options and output paths


@pytest.mark.parametrize("override, match", [
    ("unaligned_shift=[abc]", "unaligned_shift: 'abc' is not a number of seconds"),
    ("unaligned_shift=[0,0]", "unaligned_shift=[0, 0]: the same shift is listed twice"),
    ("batch_segments=0", "batch_segments=0: must be a positive whole number"),
    ("protocol=papr", "protocol=papr: must be one of paper, corrected"),
])
def test_bad_options_are_refused_before_any_work(config, capsys, tmp_path, override, match):
    _refused(config(override), match, capsys, tmp_path)


@pytest.mark.parametrize("content", [b"this is a text file, not a checkpoint\n", bytes(range(256)) * 16])
def test_corrupt_checkpoint_is_one_line_without_unsafe_advice(config, capsys, tmp_path, content):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    line = _refused(config(ckpt=bad), "bad.ckpt: corrupt or not a PyTorch checkpoint", capsys, tmp_path)
    assert "weights_only" not in line and "allowlist" not in line


def test_nan_checkpoint_stops_at_the_first_segment_before_writing(config, reference_dir, capsys, tmp_path):
    nan = _perturbed_checkpoint(reference_dir, tmp_path / "nan.ckpt", scale=float("nan"))
    with pytest.raises(SystemExit):
        exit_on_error(run_test.run, config(ckpt=nan))
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]  # (after tqdm's bars)
    assert len(err) == 1 and "nan.ckpt: piece: model output is NaN or infinite at segment 0" in err[0]
    assert not list(tmp_path.glob("pairs/**/*.npy")) and not list(tmp_path.glob("inference/*"))


def test_output_path_that_is_a_file_is_refused(config, capsys, tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    _refused(config(f"inference_result_path={tmp_path / 'taken'}"), "taken: exists and is not a folder", capsys, tmp_path)


def test_read_only_output_folder_is_refused(config, capsys, tmp_path, monkeypatch):
    real_access = os.access  # as root a read-only folder is writable, so the refusal is simulated
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: str(path) != str(tmp_path) and real_access(path, mode))
    _refused(config(), f"inference_result_path={tmp_path / 'inference'}: folder {tmp_path} is not writable",
             capsys, tmp_path)


def test_command_line_error_is_one_line_and_exit_status_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "run_test.py", "gpus=0", "batch_segments=0", f"SMD_data_root={tmp_path}",
         f"inference_result_path={tmp_path / 'inference'}", f"pair_pkl_dir={tmp_path / 'pairs'}",
         f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: batch_segments=0: must be a positive whole number"]
    assert not (tmp_path / "inference").exists()


# ---------------------------------------------------------------- checkpoint_config_check on DiffVel+ options


def test_config_check_refuses_an_output_changing_plus_option_and_warns_on_a_training_only_one(
        config, compose, capsys, tmp_path, caplog):
    from _estimate_fixtures import TINY_OVERRIDES, tiny_checkpoint

    ckpt = tiny_checkpoint(compose, tmp_path / "plus.ckpt")  # mel_bands=0, eq_db=0
    plus = [*TINY_OVERRIDES, "checkpoint_config_check=true"]
    _refused(config(*plus, "model.args.mel_bands=1", ckpt=ckpt), "model.args.mel_bands=0 (config: 1)", capsys, tmp_path)
    with caplog.at_level(logging.WARNING, logger="utils.training.checkpoint"):
        run_test.run(config(*plus, "model.args.eq_db=3", ckpt=ckpt))
    assert any("model.args.eq_db=0.0 (config: 3)" in r.getMessage() for r in caplog.records)
    assert len(list((tmp_path / "pairs").glob("*_pair_0_*.npy"))) == 1
