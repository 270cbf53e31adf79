"""method=unheard and blend_level=regression (utils/estimate/blend.py; docs/experiments.md, run ZB): the blend of
each recording shifted to the loudness regression's mean, in estimate_velocity.py and bench.accuracy --blend-level."""
import numpy as np
import pytest
from _estimate_fixtures import accuracy_table, estimated_velocities as run, shared_inputs

from bench import accuracy
from estimate_velocity import blend_options
from utils.estimate.blend import PRESETS, at_level, blend_velocities, check_level
from utils.estimate.errors import EstimateError
from utils.estimate.model_io import PRETRAINED
from utils.training.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, compose):
    return shared_inputs(tmp_path_factory, compose)


def test_at_level_keeps_the_shape_and_takes_the_reference_mean():
    shifted = at_level([10.0, 20.0, 60.0], [50.0, 50.0, 80.0])  # mean 30 -> 60
    assert shifted.tolist() == [40.0, 50.0, 90.0]
    assert at_level([], []).size == 0


def test_the_regression_level_moves_the_whole_recording_then_rounds_and_clips():
    # 0.5 x network + 0.5 x loudness = 40, 60, 95 (mean 65); the loudness mean is 70: +5 each
    assert blend_velocities([20, 60, 100], [60, 60, 90], 0.5, "regression").tolist() == [45, 65, 100]
    assert blend_velocities([100, 120], [127, 127], 1.0, "regression").tolist() == [117, 127]  # 117, 137 -> 127
    assert blend_velocities([20, 60, 100], [60, 60, 90], 0.5, "own").tolist() == [40, 60, 95]


def test_each_blend_method_has_its_preset_and_explicit_keys_override_it(compose):
    base = ["audio=a.wav", "midi=a.mid", "out=o.mid"]
    assert blend_options(compose("estimate", base)) == (0.80, "regression")  # the default method=unheard
    assert blend_options(compose("estimate", [*base, "method=blend"])) == (0.55, "own")
    assert blend_options(compose("estimate", [*base, "method=unheard", "blend_weight=0.3", "blend_level=own"])) == (0.3, "own")
    assert PRESETS["unheard"].checkpoint != PRESETS["blend"].checkpoint
    with pytest.raises(EstimateError, match="blend_level=loud must be one of own, regression"):
        check_level("loud")


def test_the_shipped_unheard_network_is_run_zd_at_step_1400():
    args = load_checkpoint(PRETRAINED / PRESETS["unheard"].checkpoint)["hyper_parameters"]
    assert (args["mel_bands"], args["loudness_reading"], args["residual_per_note"]) == (1, "notes", True)


def test_method_unheard_is_the_blend_at_the_regressions_level(compose, inputs, tmp_path):
    network = run(compose, inputs, tmp_path / "net.mid", "method=diffvel")
    loudness = run(compose, inputs, tmp_path / "loud.mid", "method=loudness", "ckpt=null")
    unheard = run(compose, inputs, tmp_path / "unheard.mid", "method=unheard")
    assert np.array_equal(unheard, blend_velocities(network, loudness, 0.8, "regression"))
    assert abs(unheard.mean() - loudness.mean()) < 0.5 + 1e-9  # rounding only (clipping aside)
    assert not np.array_equal(unheard, blend_velocities(network, loudness, 0.8))  # the shift really moved it


def test_a_bad_blend_level_writes_nothing(compose, inputs, tmp_path):
    with pytest.raises(EstimateError, match="blend_level=median must be one of"):
        run(compose, inputs, tmp_path / "out.mid", "method=unheard", "blend_level=median")
    assert not (tmp_path / "out.mid").exists()


def test_bench_blend_level_shifts_each_excerpt_to_the_regressions_mean():
    notes = {"a": [{"velocity": 10, "estimate": 40.0}, {"velocity": 20, "estimate": 60.0}],
             "b": [{"velocity": 30, "estimate": 100.0}]}
    # w = 0.5: a -> 30, 50 (mean 40; regression mean 30), b -> 75 (regression 50)
    assert accuracy.blend_estimates(notes, [20, 40, 50], 0.5, "regression").tolist() == [20.0, 40.0, 50.0]
    assert accuracy.blend_estimates(notes, [20, 40, 50], 0.5).tolist() == [30.0, 50.0, 75.0]


def test_bench_regression_level_rows_carry_the_regressions_mean_error(compose, corpus, tmp_path):
    _, rows = accuracy_table(compose, corpus, tmp_path, "--blend", "0.8", "--blend-level", "regression", "--bias")
    blend = rows["tiny + loudness regression (w = 0.8, regression's level)"]
    assert blend[7] == rows["baseline: loudness regression"][7]  # same mean signed error, excerpt by excerpt
    assert blend[7] != rows["tiny"][7]


def test_bench_gives_each_shipped_network_the_row_of_its_method(tmp_path):
    other = tmp_path / "other.ckpt"
    models = {"plus": PRETRAINED / "diffvel_plus.ckpt", "unheard": PRETRAINED / PRESETS["unheard"].checkpoint,
              "mine": other}
    assert accuracy.shipped_methods(models) == {"plus": "blend", "unheard": "unheard"}


def test_note_rule_blend_row_levels_each_excerpt_on_its_own():
    from bench import note_rule

    outputs = [np.array([v / 128]) for v in (40, 60, 80, 100)]  # the network reads 40, 60 | 80, 100
    loudness, truth = np.array([50, 50, 70, 90]), np.array([40, 60, 70, 90])
    row = note_rule.blend_row(outputs, loudness, truth, 1.0, "max", "regression", sizes=[2, 2])
    # excerpt 1: 40, 60 at the regression's mean 50 stay 40, 60; excerpt 2: 80, 100 at mean 80 -> 70, 90
    assert row["MAE"] == 0.0 and "regression level" in row["rule"]
    pooled = note_rule.blend_row(outputs, loudness, truth, 1.0, "max", "regression")  # mean 70 -> 65: -5 each
    assert pooled["MAE"] == pytest.approx(5.0)
