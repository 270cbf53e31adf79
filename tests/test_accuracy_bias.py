"""The bias decomposition of errors (utils.evaluation.report.bias_split, bench.accuracy --bias)."""
import numpy as np
import pytest

from _estimate_fixtures import accuracy_table
from bench import accuracy
from utils.evaluation.report import bias_split


def test_an_offset_per_excerpt_is_all_bias_and_no_centred_error():
    true = [[40, 50, 60], [70, 80]]
    split = bias_split(true, [[50, 60, 70], [64, 74]])  # +10 on one recording, -6 on the other
    assert split["bias"] == pytest.approx((3 * 10 - 2 * 6) / 5) and split["centred_MAE"] == pytest.approx(0.0)


def test_note_to_note_errors_stay_after_centring():
    split = bias_split([[50, 50, 50, 50]], [[55, 45, 56, 44]])
    assert split["bias"] == pytest.approx(0.0) and split["centred_MAE"] == pytest.approx(5.5)


def test_mismatched_lists_and_empty_excerpts():
    with pytest.raises(ValueError, match="2 true velocities but 1 estimates"):
        bias_split([[1, 2]], [[1]])
    assert np.isnan(bias_split([[]], [[]])["bias"])


def test_flat_baseline_estimates_are_split_by_excerpt_in_note_order():
    notes = {"a": [{"velocity": 10, "estimate": 0}, {"velocity": 20, "estimate": 0}], "b": [{"velocity": 30, "estimate": 0}]}
    split = accuracy.excerpt_bias(notes, [12, 22, 25])  # a: +2 each, b: -5
    assert split == {"bias": pytest.approx(-1 / 3), "centred_MAE": pytest.approx(0.0),
                     "correlation": pytest.approx(np.corrcoef([10, 20, 30], [12, 22, 25])[0, 1])}


def test_the_correlation_is_over_all_notes_and_undefined_for_a_constant_guess():
    assert bias_split([[10, 20], [30]], [[15, 25], [35]])["correlation"] == pytest.approx(1.0)
    assert bias_split([[10, 20], [30]], [[30, 20], [10]])["correlation"] == pytest.approx(-1.0)
    assert np.isnan(bias_split([[10, 20, 30]], [[50, 50, 50]])["correlation"])


def test_bias_columns_are_added_for_every_row(compose, corpus, tmp_path):
    header, table = accuracy_table(compose, corpus, tmp_path, "--bias")
    assert header.rstrip(" |").endswith("mean error | MAE, excerpt bias removed | correlation")
    assert list(table) == ["tiny", "baseline: training mean", "baseline: loudness regression"]
    rows = list(table.values())
    for row in rows:
        assert row[7][0] in "+-" and np.isfinite(float(row[7])) and float(row[8]) >= 0
    assert rows[1][7] != rows[2][7]  # each baseline's own estimates, not one shared column
    assert rows[1][9] == "n/a" and -1 <= float(rows[2][9]) <= 1  # the training mean is one constant guess
