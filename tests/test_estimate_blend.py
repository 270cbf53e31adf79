"""estimate_velocity.py method=blend (utils/estimate/blend.py): the network's velocity of each note blended
with the loudness regression's, and bench.note_rule --blend."""
import numpy as np
import pytest
from _estimate_fixtures import estimated_velocities as run, shared_inputs

from bench import note_rule
from utils.estimate.blend import blend_velocities, check_weight
from utils.estimate.errors import EstimateError


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, compose):
    return shared_inputs(tmp_path_factory, compose)


def test_the_blend_rounds_the_weighted_mean_and_stays_a_midi_velocity():
    blended = blend_velocities([100, 10, 127, 1], [60, 30, 127, 1], 0.55)
    assert blended.dtype == np.int64 and blended.tolist() == [82, 19, 127, 1]  # 82.0, 19.0
    assert blend_velocities([100], [60], 1.0).tolist() == [100] and blend_velocities([100], [60], 0.0).tolist() == [60]
    assert blend_velocities([140], [130], 0.5).tolist() == [127]


@pytest.mark.parametrize("weight, match", [(1.5, "blend_weight=1.5 must be in"), (-0.1, "blend_weight=-0.1 must be in"),
                                           ("half", "blend_weight=half must be a number")])
def test_a_weight_outside_0_to_1_is_refused(weight, match):
    with pytest.raises(EstimateError, match=match):
        check_weight(weight)


def test_method_blend_mixes_the_two_methods_note_by_note(compose, inputs, tmp_path):
    network = run(compose, inputs, tmp_path / "net.mid", "method=diffvel")
    loudness = run(compose, inputs, tmp_path / "loud.mid", "method=loudness", "ckpt=null")
    blended = run(compose, inputs, tmp_path / "blend.mid", "method=blend", "blend_weight=0.3")
    assert np.array_equal(blended, blend_velocities(network, loudness, 0.3))
    assert not np.array_equal(network, loudness)  # the two really differ, so the test tells them apart


def test_a_bad_blend_weight_writes_nothing(compose, inputs, tmp_path):
    with pytest.raises(EstimateError, match="blend_weight=2 must be in"):
        run(compose, inputs, tmp_path / "out.mid", "method=blend", "blend_weight=2")
    assert not (tmp_path / "out.mid").exists()


def test_note_rule_blend_needs_a_fit_and_a_weight_in_range(capsys):
    for argv in (["--blend", "0.5"], ["--blend", "1.2", "--loudness-fit", "fit.json"]):
        with pytest.raises(SystemExit):
            note_rule.parse_args(["--ckpt", "x.ckpt", "--h5-root", "h5", *argv])
        assert "needs --loudness-fit and a weight in [0, 1]" in capsys.readouterr().err


class FixedFit:
    """A loudness fit that gives every note of an excerpt the same velocity."""

    def __init__(self, velocity):
        self.velocity = velocity

    def velocities(self, waveform, onsets):
        return np.full(len(onsets), self.velocity)


def test_the_note_rule_blend_row_scores_the_blend_of_the_rule_and_the_fit():
    class Notes:
        onset = np.array([0.5, 1.0])

    excerpts = {"a": (np.zeros(16000), Notes(), np.array([60, 80]))}
    outputs = [np.array([0.5, 0.9]), np.array([0.75, 0.1])]  # the model output over each note
    loudness = note_rule.loudness_velocities(FixedFit(40), excerpts)
    assert loudness.tolist() == [40, 40]
    row = note_rule.blend_row(outputs, loudness, np.array([60, 80]), 0.5, "max")  # max: 115 and 96 -> 78, 68
    assert row["rule"] == "method=blend (w = 0.5, max)" and row["notes"] == 2
    assert row["MAE"] == pytest.approx((abs(78 - 60) + abs(68 - 80)) / 2)
