"""DiffVel+ training-time level shift (model.args.level_shift_db/level_shift_rate, model/augment.py)."""
import pytest
import torch

from _estimate_fixtures import reloaded_without
from model.augment import LevelShift
from utils.training.machinery import build_model

TINY = ["model=DiffVelPlus", "model.args.residual_channels=8", "model.args.residual_layers=2",
        "model.args.kernel_size=3", "model.args.absolute_level=true"]


def rolls():
    velocity = torch.zeros(64, 6, 88)  # (B, T, 88) velocity / 128
    velocity[:, 1:3, 40] = 64 / 128
    velocity[:, 4, 50] = 126 / 128  # near the top: clipped at 127 when moved up
    return torch.ones(64, 100), velocity


def test_the_audio_gain_and_the_velocity_shift_go_together():
    shift = LevelShift(6.0, 2.5).train()
    torch.manual_seed(0)
    audio, velocity = shift(*rolls())
    gain_db = 20 * torch.log10(audio[:, 0])  # (64,)
    assert gain_db.abs().max() <= 6.0 + 1e-4 and gain_db.min() < -4 and gain_db.max() > 4
    assert torch.equal(audio, audio[:, :1].expand_as(audio))  # one gain per item
    moved = velocity[:, 1, 40] * 128 - 64  # MIDI units
    assert torch.allclose(moved, 2.5 * gain_db, atol=1e-3)
    assert torch.allclose(velocity[:, 4, 50] * 128, (126 + 2.5 * gain_db).clamp(max=127), atol=1e-3)
    assert torch.all(velocity[:, 0] == 0) and torch.all(velocity[:, 1:3, :40] == 0)  # silence stays silence
    assert all(torch.equal(a, b) for a, b in zip(shift.eval()(*rolls()), rolls()))  # inference: untouched


@pytest.mark.parametrize("key", ["level_shift_db", "level_shift_rate"])
def test_a_negative_setting_is_refused(compose, key):
    with pytest.raises(ValueError, match=rf"model.args.{key}=-1.0: must be >= 0"):
        build_model(compose("spec_roll", TINY + [f"model.args.{key}=-1.0"]))


def test_the_training_step_learns_the_shifted_velocities(compose, tmp_path):
    model = build_model(compose("spec_roll", TINY + ["model.args.level_shift_db=6"])).train()
    velocity = torch.zeros(2, 640, 88)
    velocity[:, 100:200, 30] = 0.5
    batch = {"audio": 0.1 * torch.randn(2, 327680, generator=torch.Generator().manual_seed(1)), "velocity": velocity,
             "frame": (velocity > 0).float(), "onset": torch.zeros(2, 640, 88)}
    torch.manual_seed(3)
    _, tensors = model.step(batch)
    targets = tensors["label_roll"][:, 0, 150, 30] * 128 - 64  # (2,) MIDI units moved
    assert torch.all(targets.abs() > 0) and torch.all(targets.abs() <= 2.7 * 6 + 1e-3) and targets[0] != targets[1]
    assert torch.equal(batch["velocity"], velocity)  # the loader's batch is not changed in place
    assert reloaded_without(compose, tmp_path / "old.ckpt", "level_shift_db").level_shift.max_db == 0.0


def test_the_level_shift_experiment_is_run_h_plus_the_shift(compose):
    shifted, hannds = compose("spec_roll", ["experiment=plus_levelshift"]), compose("spec_roll", ["experiment=plus_hannds"])
    assert shifted.model.args.level_shift_db == 6.0 and hannds.model.args.level_shift_db == 0.0
    shifted.model.args.level_shift_db = 0.0
    assert shifted.model == hannds.model and shifted.data_root == hannds.data_root and shifted.log_dir == "runs/levelshift"
