"""DiffVel+ training-time velocity-dependent brightness (model.args.brightness_db, model/augment.py)."""
import pytest
import torch

from _estimate_fixtures import reloaded_without
from model import load_diffvel
from model.augment import VelocityBrightness
from utils.training.machinery import build_model

TINY = ["model=DiffVelPlus", "model.args.residual_channels=8", "model.args.residual_layers=2",
        "model.args.kernel_size=3", "model.args.absolute_level=true"]


def velocity_roll(frames=12):
    roll = torch.zeros(1, frames, 88)  # (B, T, 88) velocity / 128
    roll[0, 2:5, 10] = 0.75
    roll[0, 3, 40] = 0.25  # quieter than the note sounding with it: the loudest counts
    roll[0, 8:10, 20] = 0.25
    return roll


def test_the_loudness_curve_follows_the_loudest_sounding_note_and_holds_through_silence():
    curve = VelocityBrightness.loudness_curve(velocity_roll(), 14)  # two frames past the roll: padded, held
    expected = torch.tensor([0, 0, .5, .5, .5, .5, .5, .5, -.5, -.5, -.5, -.5, -.5, -.5])
    assert torch.allclose(curve[0], expected)


def test_the_brightness_rises_with_the_mel_bin_and_follows_the_loudness_curve():
    brightness = VelocityBrightness(12.0).train()
    power = torch.ones(1, 229, 12)
    torch.manual_seed(0)
    with brightness.given(velocity_roll()):
        gain_db = 10 * torch.log10(brightness(power))[0]  # (229, 12)
    assert brightness.velocity is None  # the roll is only at hand inside `given`
    assert torch.all(gain_db[0] == 0) and torch.all(gain_db[:, :2] == 0)  # lowest bin, frames before a note
    slope = gain_db[-1, 2] / 0.5
    assert 0 < abs(slope) <= 12.0
    assert torch.allclose(gain_db[-1, 8], -0.5 * slope, atol=1e-4)  # a soft note: the other way
    assert torch.allclose(gain_db[114, 2], slope * 0.5 * 114 / 228, atol=1e-4)  # linear in the bin
    assert torch.equal(brightness(power), power)  # no roll given: unchanged
    with brightness.given(velocity_roll()):
        assert torch.equal(brightness.eval()(power), power)  # inference never re-voices


def test_the_slope_is_drawn_per_item_within_the_bound():
    brightness = VelocityBrightness(12.0).train()
    roll = torch.full((256, 4, 88), 1.0)  # every item at full velocity: the top bin's gain is the slope
    with brightness.given(roll):
        slopes = 10 * torch.log10(brightness(torch.ones(256, 229, 4)))[:, -1, 0]
    assert slopes.abs().max() <= 12.0 + 1e-4 and slopes.min() < -9 and slopes.max() > 9


def test_a_negative_brightness_is_refused(compose):
    with pytest.raises(ValueError, match=r"model.args.brightness_db=-1.0: must be >= 0"):
        build_model(compose("spec_roll", TINY + ["model.args.brightness_db=-1.0"]))


def batch(frames=640):
    generator = torch.Generator().manual_seed(3)
    velocity = torch.zeros(1, frames, 88)
    velocity[0, 100:300, 30] = 0.9
    velocity[0, 350:500, 50] = 0.2
    return {"audio": 0.1 * torch.randn(1, 327680, generator=generator), "velocity": velocity,
            "frame": (velocity > 0).float(), "onset": torch.zeros(1, frames, 88)}


def test_the_training_step_re_voices_with_its_own_velocity_roll(compose, tmp_path):
    model = build_model(compose("spec_roll", TINY + ["model.args.brightness_db=12"])).train()
    plain = build_model(compose("spec_roll", TINY)).train()
    plain.load_state_dict(model.state_dict())
    torch.manual_seed(1)
    _, bright = model.step(batch())
    torch.manual_seed(1)
    _, reference = plain.step(batch())
    assert model.brightness.velocity is None
    changed = (bright["spec"] - reference["spec"]).abs().amax(dim=1)[0]  # (T,)
    assert changed[:100].max() == 0 and changed[150:250].min() > 0  # silent before the first note
    model.eval()
    assert torch.equal(model.step(batch())[1]["spec"], plain.eval().step(batch())[1]["spec"])
    path = tmp_path / "bright.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    assert load_diffvel(path).brightness.max_db == 12.0
    assert reloaded_without(compose, tmp_path / "old.ckpt", "brightness_db").brightness.max_db == 0.0  # checkpoints from before the option

