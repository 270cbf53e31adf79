"""utils/evaluation/paired.py and bench.accuracy --versus-regression: is an MAE really below another's?"""
import numpy as np
import pytest
from _estimate_fixtures import accuracy_table

from bench import accuracy
from utils.evaluation.paired import paired_excerpt_bootstrap


def test_a_uniformly_better_estimator_has_an_interval_below_zero():
    rng = np.random.default_rng(1)
    b = [rng.uniform(5, 15, size=50) for _ in range(8)]
    a = [errors - 2.0 for errors in b]  # 2 lower on every note
    result = paired_excerpt_bootstrap(a, b)
    assert result["difference"] == pytest.approx(-2.0)
    assert result["low"] == pytest.approx(-2.0) and result["high"] == pytest.approx(-2.0)
    assert (result["better"], result["excerpts"]) == (8, 8)


def test_one_lucky_excerpt_does_not_make_the_interval_exclude_zero():
    b = [np.full(100, 10.0) for _ in range(10)]
    a = [np.full(100, 10.0) for _ in range(9)] + [np.full(100, 5.0)]  # better on one recording only
    result = paired_excerpt_bootstrap(a, b)
    assert result["difference"] == pytest.approx(-0.5)
    assert result["high"] == pytest.approx(0.0) and result["low"] < -0.5
    assert result["better"] == 1


def test_notes_are_weighted_equally_and_empty_excerpts_are_skipped():
    result = paired_excerpt_bootstrap([[1.0, 1.0, 1.0], [], [4.0]], [[2.0, 2.0, 2.0], [], [0.0]])
    assert result["difference"] == pytest.approx((3 + 4 - 6 - 0) / 4)
    assert result["excerpts"] == 2 and result["better"] == 1


def test_estimators_on_different_notes_are_refused():
    with pytest.raises(ValueError, match="same notes"):
        paired_excerpt_bootstrap([[1.0, 2.0]], [[1.0]])


def test_bench_versus_column_is_zero_for_the_regression_and_matches_the_mae_gap(compose, corpus, tmp_path):
    header, rows = accuracy_table(compose, corpus, tmp_path, "--versus-regression")
    assert header.split("|")[-2].strip() == accuracy.VERSUS_HEADER
    assert rows["baseline: loudness regression"][7].startswith("+0.00 [+0.00, +0.00] 0/")
    gap = float(rows["tiny"][4]) - float(rows["baseline: loudness regression"][4])
    assert float(rows["tiny"][7].split()[0]) == pytest.approx(gap, abs=0.011)


def test_grouped_excerpts_are_resampled_together():
    b = [np.full(10, 10.0) for _ in range(4)]
    a = [np.full(10, 9.0), np.full(10, 9.0), np.full(10, 11.0), np.full(10, 11.0)]  # piece p better, piece q worse
    by_piece = paired_excerpt_bootstrap(a, b, groups=["p", "p", "q", "q"])
    assert by_piece["groups"] == 2 and by_piece["excerpts"] == 4 and by_piece["difference"] == pytest.approx(0.0)
    # two pieces per draw: both p (-1), one of each (0) or both q (+1), each at least 1 in 4 of the draws
    assert by_piece["low"] == pytest.approx(-1.0) and by_piece["high"] == pytest.approx(1.0)


def test_piece_of_inverts_the_heldout_excerpt_names():
    from bench.heldout_names import excerpt_name, piece_of

    assert piece_of(excerpt_name("Maestro_10", 3)) == "Maestro_10"
    assert piece_of("Synthetic_Study-00_s0_SMD") == "Synthetic_Study-00_s0_SMD"  # not a held-out excerpt


def test_plot_needs_the_intervals(capsys):
    with pytest.raises(SystemExit) as exit_info:
        accuracy.parse_args(["--plot", "v.png"])
    assert exit_info.value.code == 2 and "give --versus-regression too" in capsys.readouterr().err


def test_versus_plot_draws_every_row_but_the_reference(tmp_path):
    from PIL import Image

    from utils.evaluation.report import versus_plot

    def row(method, low, high):
        return {"set": "s", "protocol": "paper", "method": method,
                "versus": {"difference": (low + high) / 2, "low": low, "high": high}}

    short = versus_plot([row("a", -1.0, -0.5), row("regression", 0.0, 0.0)], tmp_path / "one.png")
    tall = versus_plot([row("a", -1.0, -0.5), row("b", -0.2, 0.3), row("c", 0.5, 1.0)], tmp_path / "three.png")
    assert Image.open(short).height < Image.open(tall).height  # one interval drawn, then three
