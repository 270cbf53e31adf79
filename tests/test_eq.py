"""DiffVel+ training-time random EQ (model.args.eq_db, model/augment.py) and experiment=plus_eq."""
import pytest
import torch

from _estimate_fixtures import reloaded_without, tiny_checkpoint
from model import load_diffvel
from model.augment import EQ_POINTS, RandomEq
from utils.training import average
from utils.training.machinery import build_model

TINY = ["model=DiffVelPlus", "model.args.residual_channels=8", "model.args.residual_layers=2",
        "model.args.kernel_size=3", "model.args.absolute_level=true"]


def test_the_eq_is_a_bounded_piecewise_linear_curve_drawn_per_item():
    eq = RandomEq(9.0).train()
    torch.manual_seed(0)
    power = torch.ones(64, 229, 3)
    gain_db = 10 * torch.log10(eq(power))  # (64, 229, 3)
    assert torch.equal(gain_db[..., 0], gain_db[..., 2])  # one curve per item, the same in every frame
    assert gain_db.abs().max() <= 9.0 + 1e-4 and gain_db.abs().max() > 7.0
    assert not torch.allclose(gain_db[0], gain_db[1])
    segment = (229 - 1) / (EQ_POINTS - 1)  # bins between anchors
    second_difference = gain_db[:, 2:, 0] - 2 * gain_db[:, 1:-1, 0] + gain_db[:, :-2, 0]  # (64, 227)
    kinks = (second_difference.abs() > 1e-3).sum(1)  # straight between anchors, bent only near them
    assert kinks.max() <= 2 * (EQ_POINTS - 2) and segment > 20
    assert torch.all(eq(torch.zeros(2, 229, 3)) == 0)  # silence stays silence
    assert torch.equal(eq.eval()(power), power)  # inference never equalises


def test_a_negative_eq_is_refused(compose):
    with pytest.raises(ValueError, match=r"model.args.eq_db=-2: must be >= 0"):
        build_model(compose("spec_roll", TINY + ["model.args.eq_db=-2"]))


def test_the_eq_acts_in_training_only_and_survives_a_checkpoint(compose, tmp_path):
    model = build_model(compose("spec_roll", TINY + ["model.args.eq_db=9"]))
    plain = build_model(compose("spec_roll", TINY)).eval()
    waveform = 0.1 * torch.randn(1, 327680, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(1)
    assert not torch.allclose(model.train().spectrogram(waveform), plain.spectrogram(waveform))
    assert torch.equal(model.eval().spectrogram(waveform), plain.spectrogram(waveform))
    path = tmp_path / "eq.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    assert load_diffvel(path).eq.max_db == 9.0
    assert reloaded_without(compose, tmp_path / "old.ckpt", "eq_db").eq.max_db == 0.0  # checkpoints from before the option: no EQ


@pytest.mark.parametrize("key, value", [("eq_db", 9.0), ("brightness_db", 12.0), ("level_shift_db", 6.0)])
def test_checkpoints_that_differ_only_in_a_training_only_augmentation_average(compose, tmp_path, key, value):
    paths = []
    for i, setting in enumerate([0.0, value]):
        path = tiny_checkpoint(compose, tmp_path / f"s{i}.ckpt")
        checkpoint = torch.load(path, weights_only=False)
        checkpoint["hyper_parameters"][key] = setting
        torch.save(checkpoint, path)
        paths.append(str(path))
    assert average.main([str(tmp_path / "mean.ckpt"), *paths]) == 0


def test_the_eq_experiment_is_run_h_plus_the_eq(compose):
    eq, hannds = compose("spec_roll", ["experiment=plus_eq"]), compose("spec_roll", ["experiment=plus_hannds"])
    assert eq.model.args.eq_db == 9.0 and hannds.model.args.eq_db == 0.0
    assert eq.log_dir == "runs/eq" and hannds.log_dir == "runs/hannds"
    eq.model.args.eq_db = 0.0
    assert eq.model == hannds.model and eq.dataset == hannds.dataset and eq.data_root == hannds.data_root
    assert eq.trainer == hannds.trainer
