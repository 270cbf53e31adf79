"""DiffVel+ absolute level (model.args.absolute_level: the log-mel through one fixed map) and the
training-time spectral tilt (model.args.tilt_db, model/augment.py)."""
import math

import pytest
import torch

from _estimate_fixtures import tiny_checkpoint
from model import load_diffvel
from model.augment import SpectralTilt
from model.normalization import LOG_MEL_FLOOR, LOG_MEL_REFERENCE, fixed_level
from utils.training import average
from utils.training.machinery import build_model

TINY = ["model=DiffVelPlus", "model.args.residual_channels=8", "model.args.residual_layers=2",
        "model.args.kernel_size=3"]


def _tone(gain: float) -> torch.Tensor:
    """(1, 327680) a 440 Hz tone over noise, times `gain`."""
    generator = torch.Generator().manual_seed(3)
    t = torch.arange(327680) / 16000
    return gain * (0.3 * torch.sin(2 * math.pi * 440 * t) + 0.01 * torch.randn(327680, generator=generator))[None]


def test_the_fixed_map_sends_silence_to_0_and_the_reference_to_1():
    levels = fixed_level(torch.tensor([LOG_MEL_FLOOR, LOG_MEL_REFERENCE, LOG_MEL_REFERENCE + 1.0]))
    torch.testing.assert_close(levels, torch.tensor([0.0, 1.0, 1.0 + 1 / (LOG_MEL_REFERENCE - LOG_MEL_FLOOR)]))


def test_absolute_level_keeps_a_gain_that_min_max_removes(compose):
    level = build_model(compose("spec_roll", TINY + ["model.args.absolute_level=true"])).eval()
    minmax = build_model(compose("spec_roll", TINY)).eval()
    quiet, loud = _tone(0.5), _tone(1.0)  # +6.02 dB
    loud_cells = level.mel_power(quiet) > 1e-2  # far above the 1e-6 floor
    shift = (level.spectrogram(loud) - level.spectrogram(quiet))[loud_cells]
    expected = math.log(4.0) / (LOG_MEL_REFERENCE - LOG_MEL_FLOOR)  # power x 4
    torch.testing.assert_close(shift, torch.full_like(shift, expected), atol=1e-3, rtol=0)
    assert minmax.spectrogram(loud).amax() == minmax.spectrogram(quiet).amax() == 1.0  # stretched back


def test_the_tilt_is_linear_in_the_mel_bin_bounded_and_drawn_per_item():
    tilt = SpectralTilt(6.0).train()
    torch.manual_seed(0)
    power = torch.ones(64, 229, 3)
    power[:, :, 2] = 0  # a silent frame stays silent
    gain_db = 10 * torch.log10(tilt(power)[:, :, 0])  # (64, 229)
    assert gain_db.abs().max() <= 6.0 + 1e-4 and gain_db[:, 0].std() > 2.0  # a new slope per item
    torch.testing.assert_close(gain_db[:, 114], torch.zeros(64), atol=1e-5, rtol=0)  # the middle bin
    torch.testing.assert_close(gain_db[:, 0], -gain_db[:, -1], atol=1e-4, rtol=0)
    assert torch.all(tilt(power)[:, :, 2] == 0)
    assert torch.equal(tilt.eval()(power), power)  # inference never tilts


def test_a_negative_tilt_is_refused(compose):
    with pytest.raises(ValueError, match=r"model.args.tilt_db=-1: must be >= 0"):
        build_model(compose("spec_roll", TINY + ["model.args.tilt_db=-1"]))


def test_the_tilt_acts_in_training_only(compose):
    model = build_model(compose("spec_roll", TINY + ["model.args.absolute_level=true", "model.args.tilt_db=6"]))
    plain = build_model(compose("spec_roll", TINY + ["model.args.absolute_level=true"])).eval()
    waveform = _tone(1.0)
    torch.manual_seed(1)
    assert not torch.allclose(model.train().spectrogram(waveform), plain.spectrogram(waveform))
    assert torch.equal(model.eval().spectrogram(waveform), plain.spectrogram(waveform))


def test_old_checkpoints_load_with_min_max_and_new_ones_keep_their_level(compose, tmp_path):
    model = build_model(compose("spec_roll", TINY + ["model.args.absolute_level=true", "model.args.tilt_db=6"]))
    path = tmp_path / "level.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    loaded = load_diffvel(path)
    assert loaded.absolute_level and loaded.tilt.max_db == 6.0
    old = tiny_checkpoint(compose, tmp_path / "old.ckpt")
    checkpoint = torch.load(old, weights_only=False)
    checkpoint["hyper_parameters"] = {k: v for k, v in checkpoint["hyper_parameters"].items()
                                      if k not in ("absolute_level", "tilt_db")}
    torch.save(checkpoint, old)
    assert load_diffvel(old).spectrogram(_tone(0.5)).amax() == 1.0  # the paper's min-max


def test_tilt_is_training_only_for_averaging_but_the_level_map_is_not(compose, tmp_path, capsys):
    paths = []
    for i, changes in enumerate([{}, {"tilt_db": 3.0}, {"absolute_level": True}]):
        path = tiny_checkpoint(compose, tmp_path / f"s{i}.ckpt")
        checkpoint = torch.load(path, weights_only=False)
        checkpoint["hyper_parameters"].update(changes)
        torch.save(checkpoint, path)
        paths.append(str(path))
    assert average.main([str(tmp_path / "ok.ckpt"), paths[0], paths[1]]) == 0
    assert average.main([str(tmp_path / "no.ckpt"), paths[0], paths[2]]) == 2
    assert "absolute_level" in capsys.readouterr().err and not (tmp_path / "no.ckpt").exists()


def test_the_level_experiment_adds_only_the_level_map_tilt_snapshots_and_time(compose):
    level, drift = compose("spec_roll", ["experiment=plus_level"]), compose("spec_roll", ["experiment=plus_drift"])
    assert level.model.args.absolute_level is True and level.model.args.tilt_db == 6.0
    assert drift.model.args.absolute_level is False and drift.model.args.tilt_db == 0.0
    level.model.args.absolute_level, level.model.args.tilt_db = False, 0.0
    assert level.model == drift.model and level.dataset == drift.dataset and level.data_root == drift.data_root
    assert level.snapshot_every_n_steps == 200 and level.trainer.max_time == "00:01:15:00"
