"""Fine-tuning (`init_weights=`) and the corpus's free-velocity option (utils/synth/variety.py)."""
import pretty_midi
import pytest
import torch

from utils.synth import variety
from utils.synth.corpus import CorpusConfig
from utils.training.checkpoint import CheckpointError, load_initial_weights
from utils.training.machinery import build_model

TINY = ["model=DiffVelPlus", "model.args.residual_channels=8", "model.args.residual_layers=2",
        "model.args.kernel_size=3"]


def _built(compose, seed, overrides=()):
    torch.manual_seed(seed)
    cfg = compose("spec_roll", TINY + list(overrides))
    return build_model(cfg), dict(cfg.model.args)


def test_init_weights_copies_every_parameter_of_the_checkpoint(compose, tmp_path):
    source, _ = _built(compose, 0)
    path = tmp_path / "source.ckpt"
    torch.save({"state_dict": source.state_dict(), "hyper_parameters": dict(source.hparams)}, path)
    target, args = _built(compose, 1)
    assert any(not torch.equal(target.state_dict()[key], value) for key, value in source.state_dict().items())
    load_initial_weights(path, target, args)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_init_weights_of_another_architecture_is_refused_naming_file_and_key(compose, tmp_path):
    source, _ = _built(compose, 0)
    path = tmp_path / "wide.ckpt"
    torch.save({"state_dict": source.state_dict(), "hyper_parameters": dict(source.hparams)}, path)
    target, args = _built(compose, 1, ["model.args.residual_channels=16"])
    with pytest.raises(CheckpointError, match=r"wide\.ckpt: checkpoint has residual_channels=8 but the config asks "
                                              r"for residual_channels=16"):
        load_initial_weights(path, target, args)


def _midi(n_notes=400):
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(64, 60 + i % 12, i * 0.1, i * 0.1 + 0.2) for i in range(n_notes)]
    midi.instruments.append(piano)
    return midi


def test_free_velocities_redraw_about_the_fraction_asked_within_the_range_and_repeatably():
    midi, again = _midi(), _midi()
    changed = variety.free_velocities(midi, 0.5, seed=3)
    variety.free_velocities(again, 0.5, seed=3)
    velocities = [n.velocity for n in midi.instruments[0].notes]
    assert 150 < changed < 250  # 400 notes, p = 0.5
    assert velocities == [n.velocity for n in again.instruments[0].notes]
    low, high = variety.FREE_VELOCITY_RANGE
    assert all(low <= v <= high for v in velocities)
    assert len(set(velocities)) > 30  # drawn, not one value


def test_free_velocity_zero_leaves_the_notes_as_generated():
    midi = _midi()
    assert variety.free_velocities(midi, 0.0, seed=3) == 0
    assert {n.velocity for n in midi.instruments[0].notes} == {64}


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_free_velocity_out_of_range_is_refused_in_one_line(value):
    with pytest.raises(ValueError, match=rf"free_velocity={value}: must be within 0\.\.1"):
        CorpusConfig(free_velocity=value).check()
