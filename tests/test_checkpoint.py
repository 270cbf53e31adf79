"""Checkpoints: the authors' Lightning 1.6.4 file loads safely and strictly; anything unsafe is refused."""
import json
import pickle

import numpy as np
import pytest
import torch

import model as models
from utils.training.checkpoint import CheckpointError, load_checkpoint
from utils.training.machinery import build_model


@pytest.fixture(scope="module")
def sampling_args(reference_dir):
    return json.loads((reference_dir / "model_config.json").read_text())["task"]["sampling"]


def test_authors_checkpoint_loads_with_paper_overrides(reference_dir, sampling_args):
    ckpt = reference_dir / "authors_format_pl164.ckpt"
    model = models.ClassifierFreeDiffRoll.load_from_checkpoint(
        str(ckpt), frame_threshold=0.5, sampling=sampling_args
    )
    published = np.load(reference_dir / "model_state_dict.npz")
    state = model.state_dict()
    assert sorted(state) == sorted(published.files)
    for key in published.files:
        np.testing.assert_array_equal(state[key].numpy(), published[key])
    assert model.hparams["residual_layers"] == 4 and model.hparams["kernel_size"] == 9
    assert model.sampling_args["type"] == "cfdg_ddpm_x0"


def test_authors_checkpoint_hyperparameters_become_plain(reference_dir):
    checkpoint = load_checkpoint(reference_dir / "authors_format_pl164.ckpt")
    hparams = checkpoint["hyper_parameters"]
    assert type(hparams["spec_args"]) is dict and type(hparams["sampling"]) is dict
    assert checkpoint["pytorch-lightning_version"] == "1.6.4"


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_checkpoint_with_foreign_object_is_refused(tmp_path):
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": _Boom()}}, bad)
    with pytest.raises(CheckpointError, match=r"bad\.ckpt: refused to load.*allowlist"):
        load_checkpoint(bad)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.ckpt: checkpoint file not found"):
        load_checkpoint(tmp_path / "nowhere.ckpt")


def test_corrupt_checkpoint_is_named(tmp_path):
    bad = tmp_path / "truncated.ckpt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="truncated.ckpt: corrupt or not a PyTorch checkpoint"):
        load_checkpoint(bad)


def test_plain_pickle_without_state_dict_is_refused(tmp_path):
    bad = tmp_path / "weights.ckpt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(CheckpointError, match="no 'state_dict'"):
        load_checkpoint(bad)


@pytest.mark.parametrize("key, value", [("residual_layers", 15), ("kernel_size", 3)])
def test_config_that_does_not_fit_checkpoint_is_named(reference_dir, key, value):
    config_args = {"residual_layers": 4, "kernel_size": 9, "residual_channels": 16, key: value}
    with pytest.raises(CheckpointError, match=f"checkpoint has {key}=.* config asks for {key}={value}"):
        models.load_diffvel(reference_dir / "authors_format_pl164.ckpt", config_args=config_args)


def test_checkpoint_with_wrong_shapes_is_named(tmp_path, reference_dir):
    checkpoint = load_checkpoint(reference_dir / "authors_format_pl164.ckpt")
    checkpoint["state_dict"]["film_layer.weight"] = torch.zeros(8, 100)
    path = tmp_path / "reshaped.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=r"film_layer.weight has shape \(8, 100\)"):
        models.load_diffvel(path)


def test_our_checkpoint_round_trip_loads_without_allowlist(tmp_path, compose):
    cfg = compose("spec_roll", ["experiment=cpu_small"])
    model = build_model(cfg)
    path = tmp_path / "ours.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    raw = torch.load(path, weights_only=True)  # plain containers only: no allowlist needed
    assert raw["hyper_parameters"]["residual_layers"] == cfg.model.args.residual_layers
    loaded = models.load_diffvel(path, config_args=dict(cfg.model.args))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert pickle.loads(pickle.dumps(dict(loaded.hparams))) == dict(model.hparams)


def test_config_differences_name_each_key_and_the_value_used(caplog):
    from utils.training.checkpoint import config_differences, report_config_differences

    used = {"residual_channels": 24, "residual_layers": 6, "kernel_size": 3, "spec_dropout": 0.0}
    config = {"residual_channels": 512, "residual_layers": 15, "kernel_size": 3, "spec_dropout": 0.1, "extra": 1}
    differences = config_differences(used, config, "ClassifierFreeDiffRoll", "DiffVelPlus")
    assert differences == {"model.name": ("ClassifierFreeDiffRoll", "DiffVelPlus"),
                           "model.args.residual_channels": (512, 24), "model.args.residual_layers": (15, 6),
                           "model.args.spec_dropout": (0.1, 0.0)}
    with caplog.at_level("WARNING", logger="utils.training.checkpoint"):
        report_config_differences("x.ckpt", differences, refuse=False)
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith("x.ckpt: the model is built from the checkpoint's hyperparameters")
    assert "model.name='DiffVelPlus' (config: 'ClassifierFreeDiffRoll')" in message
    assert "model.args.residual_layers=6 (config: 15)" in message
    with pytest.raises(CheckpointError, match=r"x.ckpt: .*model.name='DiffVelPlus'.*residual_channels=24"):
        report_config_differences("x.ckpt", differences, refuse=True)
    # a key that does not shape the network only warns, even with the check on
    report_config_differences("x.ckpt", {"model.args.spec_dropout": (0.1, 0.0)}, refuse=True)
