"""DiffVel+'s loudness conditioner (model.args.loudness_conditioner, model/loudness.py)."""
import json

import numpy as np
import pytest
import torch

from _estimate_fixtures import reloaded_without
from model import load_diffvel
from model.loudness import loudness_roll
from model.reading import LINES
from model.normalization import log_mel
from utils.evaluation.baselines import FrameLogEnergy, onset_features
from utils.training import export
from utils.training.checkpoint import CheckpointError, load_initial_weights
from utils.training.machinery import build_model

TINY = ["model=DiffVelPlus", "model.args.residual_channels=8", "model.args.residual_layers=2",
        "model.args.kernel_size=3", "model.args.absolute_level=true", "model.args.note_pooling=true"]
FRAMES = 640  # one segment: the FiLM layer reads exactly 640 frames


def waveform() -> torch.Tensor:
    """(1, L): noise bursts of different levels, so every onset has its own energy."""
    rng = np.random.default_rng(0)
    envelope = np.repeat(rng.uniform(0.001, 0.03, FRAMES), 512)[: 512 * (FRAMES - 1)]  # FRAMES frames
    return torch.from_numpy((rng.standard_normal(envelope.size) * envelope).astype(np.float32))[None]


def score(notes) -> torch.Tensor:
    """(1, 176, FRAMES) frame + onset rolls of (key, onset frame, offset frame) notes."""
    rolls = torch.zeros(1, 176, FRAMES)
    for key, start, end in notes:
        rolls[0, key, start:end] = 1
        rolls[0, 88 + key, start] = 1
    return rolls


NOTES = [(10, 2, 9), (10, 12, 20), (40, 5, 30), (40, 30, 34), (87, 600, 640)]  # a re-strike of key 40 at 30


def test_each_note_holds_the_loudness_regressions_reading_on_its_cells(compose):
    model = build_model(compose("spec_roll", TINY + ["model.args.loudness_conditioner=true"]))
    wave = waveform()
    roll = loudness_roll(log_mel(model.mel_power(wave)), score(NOTES))[0]  # (88, T)
    fit = json.loads(open("pretrained/loudness_regression.json").read())
    (slope,), intercept = LINES["onset"]
    assert (round(fit["slope"], 2), round(fit["intercept"], 2)) == (slope, intercept)
    energy = FrameLogEnergy(fit["spec_args"])(wave[0].numpy())  # the regression's own feature
    for key, start, end in NOTES:
        expected = (slope * onset_features(energy, [start])[0] + intercept) / 128
        assert 1 / 128 < expected < 127 / 128  # a reading inside the velocity range, not a clipped one
        # within 0.1 velocity: the roll sums log(power + 1e-6) over the bins, the regression log(power) + 1e-6
        assert torch.allclose(roll[key, start:end], torch.tensor(expected, dtype=torch.float32), atol=0.1 / 128), key
    inside = score(NOTES)[0, :88] > 0
    assert torch.all(roll[~inside] == 0)
    assert roll[40, 5] != roll[40, 30]  # the re-struck note reads its own onset


def test_a_model_with_the_conditioner_starts_exactly_as_its_checkpoint(compose, tmp_path):
    torch.manual_seed(0)
    source = build_model(compose("spec_roll", TINY)).eval()
    for parameter in source.parameters():  # a trained network's stand-in (a fresh one outputs zeros)
        torch.nn.init.normal_(parameter, std=0.3)
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": source.state_dict(), "hyper_parameters": dict(source.hparams)}, path)
    cfg = compose("spec_roll", TINY + ["model.args.loudness_conditioner=true"])
    target = build_model(cfg)
    load_initial_weights(path, target, dict(cfg.model.args))
    target.eval()
    x_t, step = torch.randn(1, 1, FRAMES, 88), torch.tensor([50])
    frame_roll = score(NOTES)[:, :88].transpose(1, 2)[:, None]  # (1, 1, T, 88)
    onset_roll = score(NOTES)[:, 88:].transpose(1, 2)[:, None]
    with torch.no_grad():
        before = source(x_t, waveform(), frame_roll, step, onset_roll=onset_roll)[0]
        after = target(x_t, waveform(), frame_roll, step, onset_roll=onset_roll)[0]
    assert torch.equal(before, after)
    target.train()
    out = target(x_t, waveform(), frame_roll, step, onset_roll=onset_roll)[0]
    out.square().sum().backward()
    assert target.loudness.projections[0].weight.grad.abs().sum() > 0  # the zeros can learn


def test_only_the_zero_initialised_modules_may_be_absent_from_the_checkpoint(compose, tmp_path):
    source = build_model(compose("spec_roll", TINY))
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("score_projections.0.")}
    path = tmp_path / "partial.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": dict(source.hparams)}, path)
    cfg = compose("spec_roll", TINY + ["model.args.loudness_conditioner=true"])
    with pytest.raises(CheckpointError, match=r"partial\.ckpt: parameters do not match the model \(missing "
                                              r"\['score_projections\.0\.weight'"):
        load_initial_weights(path, build_model(cfg), dict(cfg.model.args))


def test_the_conditioner_survives_the_checkpoint_and_old_checkpoints_load_without_it(compose, tmp_path):
    model = build_model(compose("spec_roll", TINY + ["model.args.loudness_conditioner=true"]))
    torch.nn.init.normal_(model.loudness.projections[1].weight)
    path = tmp_path / "c.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    reloaded = load_diffvel(path)
    assert torch.equal(reloaded.loudness.projections[1].weight, model.loudness.projections[1].weight)
    assert reloaded_without(compose, tmp_path / "old.ckpt", "loudness_conditioner").loudness is None


@pytest.mark.parametrize("key", ["loudness_conditioner", "loudness_residual"])
@pytest.mark.parametrize("missing", ["model.args.absolute_level=false", "model.args.score_conditioner=false"])
def test_the_reading_without_the_level_or_the_notes_is_refused_naming_the_key(compose, key, missing):
    overrides = TINY + [f"model.args.{key}=true", missing]
    if missing.endswith("score_conditioner=false"):
        overrides.append("model.args.note_pooling=false")
    with pytest.raises(ValueError, match=rf"model.args.{key}=true needs model.args.score_conditioner="
                                         r"true \(the notes\) and model.args.absolute_level=true \(the level\)"):
        build_model(compose("spec_roll", overrides))


def test_the_loudness_experiment_is_run_h_with_the_conditioner_on_one_gpu(compose):
    loud, hannds = compose("spec_roll", ["experiment=plus_loudness"]), compose("spec_roll", ["experiment=plus_hannds"])
    assert loud.model.args.loudness_conditioner and not hannds.model.args.loudness_conditioner
    assert loud.model.args.brightness_db == 0.0 and loud.gpus == 1 and loud.data_root == "data/synth_gpu_voices"
    loud.model.args.loudness_conditioner = False
    assert loud.model.args == hannds.model.args


def test_the_residual_from_a_zeroed_output_outputs_the_regressions_reading(compose, tmp_path):
    source = build_model(compose("spec_roll", TINY))
    for parameter in source.parameters():  # a trained network's stand-in
        torch.nn.init.normal_(parameter, std=0.3)
    trained, start = tmp_path / "trained.ckpt", tmp_path / "start.ckpt"
    torch.save({"state_dict": source.state_dict(), "hyper_parameters": dict(source.hparams)}, trained)
    assert export.main([str(trained), str(start), "--zero-output"]) == 0
    cfg = compose("spec_roll", TINY + ["model.args.loudness_residual=true"])
    model = build_model(cfg)
    load_initial_weights(start, model, dict(cfg.model.args))
    model.eval()
    frame_roll = score(NOTES)[:, :88].transpose(1, 2)[:, None]  # (1, 1, T, 88)
    onset_roll = score(NOTES)[:, 88:].transpose(1, 2)[:, None]
    with torch.no_grad():
        x0 = model(torch.randn(1, 1, FRAMES, 88), waveform(), frame_roll, torch.tensor([50]), onset_roll=onset_roll)[0]
    reading = loudness_roll(log_mel(model.mel_power(waveform()))[..., :FRAMES], score(NOTES))  # (1, 88, T)
    assert torch.allclose(x0[0, 0].T, reading[0], atol=1e-6)
    assert reading.abs().sum() > 0
    load_initial_weights(trained, model, dict(cfg.model.args))  # the unzeroed network adds its own output
    with torch.no_grad():
        x0 = model(torch.randn(1, 1, FRAMES, 88), waveform(), frame_roll, torch.tensor([50]), onset_roll=onset_roll)[0]
    assert not torch.allclose(x0[0, 0].T, reading[0], atol=1e-3)


def test_zero_output_keeps_every_other_weight_and_refuses_a_file_without_that_layer(tmp_path, capsys):
    state = {"output_projection.weight": torch.ones(3, 2, 1), "output_projection.bias": torch.ones(3),
             "other.weight": torch.ones(2)}
    source, copy = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {}}, source)
    assert export.main([str(source), str(copy), "--zero-output"]) == 0
    written = torch.load(copy, weights_only=True)["state_dict"]
    assert written["output_projection.weight"].abs().sum() == 0 and written["output_projection.bias"].abs().sum() == 0
    assert torch.equal(written["other.weight"], state["other.weight"])
    del state["output_projection.bias"]
    torch.save({"state_dict": state, "hyper_parameters": {}}, source)
    target = tmp_path / "c.ckpt"
    assert export.main([str(source), str(target), "--zero-output"]) == 2
    assert f"{source}: no output_projection.bias to zero (not a DiffVel network)" in capsys.readouterr().err
    assert not target.exists()  # nothing half-written


def test_the_residual_experiment_is_run_n_as_a_correction_of_the_reading(compose):
    residual, bands = compose("spec_roll", ["experiment=plus_residual"]), compose("spec_roll", ["experiment=plus_bands"])
    assert residual.model.args.loudness_residual and not bands.model.args.loudness_residual
    assert residual.log_dir == "runs/residual" and residual.trainer.max_time == "00:01:00:00"
    residual.model.args.loudness_residual = False
    assert residual.model.args == bands.model.args and residual.data_root == bands.data_root
