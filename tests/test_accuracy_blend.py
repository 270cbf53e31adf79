"""bench.accuracy --blend: each model's estimates blended per note with the loudness regression's."""
import numpy as np
import pytest

from _estimate_fixtures import accuracy_table
from bench import accuracy


def test_the_blend_weighs_each_note_of_the_model_against_the_regression_in_note_order():
    notes = {"a": [{"velocity": 10, "estimate": 40.0}, {"velocity": 20, "estimate": 60.0}],
             "b": [{"velocity": 30, "estimate": 100.0}]}
    assert np.allclose(accuracy.blend_estimates(notes, [20, 40, 50], 0.25), [25.0, 45.0, 62.5])
    assert np.allclose(accuracy.blend_estimates(notes, [20, 40, 50], 1.0), [40.0, 60.0, 100.0])


@pytest.mark.parametrize("weights", [["1.5"], ["0.5", "-0.1"]])
def test_a_weight_outside_0_to_1_is_refused_in_one_line(weights, capsys):
    with pytest.raises(SystemExit) as exit_info:
        accuracy.parse_args(["--blend", *weights])
    assert exit_info.value.code == 2
    assert "every weight must be in [0, 1]" in capsys.readouterr().err.splitlines()[-1]


def test_blend_rows_lie_between_the_model_and_the_regression_at_the_ends(compose, corpus, tmp_path):
    _, rows = accuracy_table(compose, corpus, tmp_path, "--blend", "1", "0", "0.5")
    assert list(rows)[3:] == [f"tiny + loudness regression (w = {w})" for w in ("1", "0", "0.5")]
    mae = {name: float(row[4]) for name, row in rows.items()}
    assert mae["tiny + loudness regression (w = 1)"] == pytest.approx(mae["tiny"], abs=0.006)
    assert mae["tiny + loudness regression (w = 0)"] == pytest.approx(mae["baseline: loudness regression"], abs=0.006)
    assert mae["tiny + loudness regression (w = 0.5)"] <= (mae["tiny"] + mae["baseline: loudness regression"]) / 2 + 0.006
