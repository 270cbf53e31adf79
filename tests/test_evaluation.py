"""Evaluation protocols (paper and corrected) and the summary/plot report."""
import csv
import logging
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support, \
    precision_score, recall_score

from utils.conventions import N_KEYS, VELOCITY_SCALE
from utils.evaluation.metrics import SUMMARY_KEYS, classification_scores, corrected_metrics, evaluate, \
    paper_metrics, paper_note_spans
from utils.evaluation.report import error_by_velocity_bin, format_table, summary_row, summary_table, \
    write_plots, write_summary_csv



def test_paper_metrics_equal_published(reference):
    outputs, targets, expected = reference
    result = paper_metrics(outputs, targets)
    assert set(expected["raw"]) <= set(result)
    for key, value in expected["raw"].items():
        assert result[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key
    assert set(SUMMARY_KEYS) <= set(result)


def test_paper_note_list_equal_published(reference):
    outputs, targets, expected = reference
    notes = paper_metrics(outputs, targets)["notes"]
    assert len(notes) == len(expected["note_list"]) == 382
    for got, want in zip(notes, expected["note_list"]):
        assert (got["pitch"], got["start"], got["end"]) == (want["pitch"], want["start"], want["end"])
        assert got["velocity"] == want["velocity"]
        assert got["estimate"] == pytest.approx(want["estimate"], rel=1e-6)
        assert got["error"] == pytest.approx(abs(want["estimate"] - want["velocity"]), rel=1e-6, abs=1e-9)


def test_paper_metrics_do_not_mutate_inputs(reference):
    outputs, targets, _ = reference
    before = outputs[0]["velocity_output"].copy()
    paper_metrics(outputs, targets)
    np.testing.assert_array_equal(outputs[0]["velocity_output"], before)


@pytest.mark.parametrize("case", ["random", "all_predicted", "none_predicted", "all_true", "none_true"])
def test_classification_scores_match_sklearn(case):
    rng = np.random.default_rng(0)
    truth, predicted = rng.random(500) < 0.2, rng.random(500) < 0.5
    if case == "all_predicted":
        predicted = np.ones(500, bool)
    elif case == "none_predicted":
        predicted = np.zeros(500, bool)
    elif case == "all_true":
        truth = np.ones(500, bool)
    elif case == "none_true":
        truth = np.zeros(500, bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = classification_scores(truth, predicted)
    y, p = truth.astype(float), predicted.astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about the undefined cases it sets to 0
        support = precision_recall_fscore_support(y, p)
        want = {
            "average_precision_score": average_precision_score(y, p),
            "f1_score": f1_score(y, p, average="macro"),
            "precision_score": precision_score(y, p, average="macro"),
            "recall_score": recall_score(y, p, average="macro"),
            "frame_precision": support[0][1], "frame_recall": support[1][1], "frame_f1": support[2][1],
        }
    assert got == pytest.approx(want, rel=1e-12)


def test_classification_scores_single_class():
    # Nothing active anywhere: sklearn gives macro scores of label 0 only; published crashed (IndexError).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = classification_scores(np.zeros(10, bool), np.zeros(10, bool))
    assert got == {"average_precision_score": 0.0, "f1_score": 1.0, "precision_score": 1.0,
                   "recall_score": 1.0, "frame_precision": 0.0, "frame_recall": 0.0, "frame_f1": 0.0}


def test_paper_note_spans_quirks():
    roll = np.zeros((12, N_KEYS))
    roll[0:3, 0] = 70  # touches frame 0: lost
    roll[2:4, 1] = 50  # re-strike with no gap: merged, velocity of the first
    roll[4:6, 1] = 90
    roll[:, 2] = 30  # sounds over the whole piece: published IndexError, here no note
    roll[9:12, 3] = 80  # touches the last frame: lost
    roll[5:7, 4] = 20
    assert paper_note_spans(roll) == [(1, 2, 6, 50.0), (4, 5, 7, 20.0)]


def _segment(n_frames, notes, output_cells):
    """One (output dict, target dict) pair of n_frames frames built from hand-written notes.

    notes: (key, onset, offset, velocity) in segment frames; output_cells: (key, start, end, value).
    """
    velocity = np.zeros((n_frames, N_KEYS), np.float32)
    frame = np.zeros_like(velocity)
    onset = np.zeros_like(velocity)
    for key, start, end, vel in notes:
        velocity[max(start, 0):end, key] = vel
        frame[max(start, 0):end, key] = 1
        if start >= 0:
            onset[start, key] = 1
    output = np.zeros_like(velocity)
    for key, start, end, value in output_cells:
        output[start:end, key] = value
    target = {"velocity_roll": velocity[None], "frame_roll": frame[None], "onset_roll": onset[None],
              "pedal_frame_roll": np.zeros((1, 2 * n_frames), np.float32),
              "notes": np.array([n for n in notes if n[1] >= 0], dtype=np.float32).reshape(-1, 4)}
    return {"velocity_output": output[None]}, target


@pytest.fixture()
def hand_example():
    """Two 8-frame segments whose note errors are known by hand.

    key 10: frame 0, vel 64, estimate 0.5 * 128 = 64 -> error 0
    key 20: vel 50 at 2..4 then re-struck vel 90 at 4..6; estimates 32 and 96 -> errors 18 and 6
    key 30: vel 100 from frame 6 across the boundary to 10; output 1.2 -> 153.6, clipped 127 -> 27
    key 40: vel 40 in segment 1, no output -> estimate clipped to 1, error 39, not detected
    """
    out0, tgt0 = _segment(8, [(10, 0, 3, 64), (20, 2, 4, 50), (20, 4, 6, 90), (30, 6, 10, 100)],
                          [(10, 0, 3, 0.5), (20, 2, 4, 0.25), (20, 4, 6, 0.75), (30, 6, 8, 1.2)])
    out1, tgt1 = _segment(8, [(30, -2, 2, 100), (40, 3, 5, 40)], [(30, 0, 2, 1.2)])
    return [out0, out1], [tgt0, tgt1]


def test_corrected_protocol_hand_example(hand_example):
    outputs, targets = hand_example
    result = evaluate(outputs, targets, protocol="corrected")
    assert result["notes_source"] == "target_notes"
    got = [(n["pitch"], n["start"], n["end"], n["velocity"], n["estimate"], n["error"], n["detected"])
           for n in result["notes"]]
    assert got == [(10, 0, 3, 64, 64.0, 0.0, True), (20, 2, 4, 50, 32.0, 18.0, True),
                   (20, 4, 6, 90, 96.0, 6.0, True), (30, 6, 10, 100, 127.0, 27.0, True),
                   (40, 11, 13, 40, 1.0, 39.0, False)]
    assert result["n_notes"] == 5
    assert result["frame_max_error"] == pytest.approx(18.0)
    assert result["std_max_error"] == pytest.approx(np.std([0, 18, 6, 27, 39]))
    assert result["mean_error_correct_detection"] == pytest.approx(12.75)
    assert result["note_recall"] == pytest.approx(0.8)
    assert result["notes"][3]["raw_estimate"] == pytest.approx(1.2 * VELOCITY_SCALE, rel=1e-6)


def test_corrected_fallback_onset_roll(hand_example, caplog):
    outputs, targets = hand_example
    with_notes = corrected_metrics(outputs, targets)
    for target in targets:
        del target["notes"]
    with caplog.at_level(logging.WARNING):
        fallback = corrected_metrics(outputs, targets)
    assert "deriving the true notes from the onset roll" in caplog.text
    assert fallback["notes_source"] == "onset_roll"
    assert [(n["pitch"], n["start"], n["end"], n["velocity"]) for n in fallback["notes"]] == \
        [(n["pitch"], n["start"], n["end"], n["velocity"]) for n in with_notes["notes"]]
    assert fallback["frame_max_error"] == pytest.approx(with_notes["frame_max_error"])


def test_paper_protocol_on_hand_example(hand_example):
    # Same data, published rules: key 10 (frame 0) is lost and key 20's re-strike merges (vel 50, est 96).
    outputs, targets = hand_example
    result = paper_metrics(outputs, targets)
    got = [(n["pitch"], n["start"], n["end"], n["velocity"], n["estimate"]) for n in result["notes"]]
    assert got == [(20, 2, 6, 50.0, 96.0), (30, 6, 10, 100.0, pytest.approx(153.6, rel=1e-6)),
                   (40, 11, 13, 40.0, 0.0)]
    assert result["frame_max_error"] == pytest.approx((46 + 53.6 + 40) / 3, rel=1e-6)
    assert result["mean_error_correct_detection"] == pytest.approx((46 + 53.6) / 2, rel=1e-6)


def test_corrected_velocity_f1_perfect_estimates(hand_example):
    outputs, targets = hand_example
    for output, target in zip(outputs, targets):
        output["velocity_output"] = target["velocity_roll"] / VELOCITY_SCALE
    result = corrected_metrics(outputs, targets)
    assert result["frame_max_error"] == pytest.approx(0.0, abs=1e-4)
    assert (result["velocity_precision"], result["velocity_recall"], result["velocity_f1"]) == (1.0, 1.0, 1.0)


def test_corrected_velocity_f1_constant_estimate(hand_example):
    # Every estimate 64: mir_eval's fit predicts the mean normalised true velocity (0.48); true
    # velocities 64, 50, 90, 100, 40 normalise to 0.4, 0.17, 0.83, 1, 0: only 0.4 is within 0.1.
    outputs, targets = hand_example
    for output, target in zip(outputs, targets):
        output["velocity_output"] = np.where(target["frame_roll"] > 0, 0.5, 0.0)
    result = corrected_metrics(outputs, targets)
    assert [n["estimate"] for n in result["notes"]] == [64.0] * 5
    assert result["velocity_precision"] == pytest.approx(0.2)
    assert result["velocity_recall"] == pytest.approx(0.2)
    assert result["velocity_f1"] == pytest.approx(0.2)


def test_no_notes_and_empty_estimate_are_defined():
    silent_output, silent_target = _segment(8, [], [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for protocol in ("paper", "corrected"):
            result = evaluate([silent_output], [silent_target], protocol)
            assert result["n_notes"] == 0 and result["notes"] == []
            assert np.isnan(result["frame_max_error"]) and np.isnan(result["mean_error_correct_detection"])
            assert result["frame_recall"] == 0.0 and result["recall_score"] == 1.0
    # Notes but an all-zero estimate: every note undetected, error = its velocity.
    output, target = _segment(8, [(5, 2, 5, 60), (6, 3, 4, 30)], [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = paper_metrics([output], [target])
    assert result["n_notes"] == 2
    assert result["frame_max_error"] == pytest.approx(45.0)
    assert np.isnan(result["mean_error_correct_detection"])
    assert result["frame_precision"] == 0.0 and result["average_precision_score"] == pytest.approx(4 / (8 * N_KEYS))


def test_bad_inputs():
    with pytest.raises(ValueError, match="no segments to evaluate"):
        paper_metrics([], [])
    output, target = _segment(8, [], [])
    with pytest.raises(ValueError, match="unknown protocol 'other'"):
        evaluate([output], [target], "other")
    with pytest.raises(ValueError, match="segment 0: no 'velocity_output'"):
        paper_metrics([{"x": 1}], [target])
    with pytest.raises(ValueError, match=r"velocity_output: expected \(1, frames, 88\) rolls, got shape \(1, 8, 87\)"):
        paper_metrics([{"velocity_output": np.zeros((1, 8, 87))}], [target])
    bad_key = dict(target, notes=np.array([[88, 0, 2, 50]], np.float32))
    with pytest.raises(ValueError, match="segment 0: note key index 88 outside 0..87"):
        corrected_metrics([output], [bad_key])


def test_report_table_csv_and_plots(tmp_path):
    true = [10, 40, 64, 100, 120]
    estimate = [12, 30, 64, 110, 0]
    row = summary_row("paper", "diffvel", true, estimate)
    assert row == pytest.approx({"protocol": "paper", "method": "diffvel", "notes": 5,
                                 "MAE": 28.4, "STD": np.std([2, 10, 0, 10, 120]), "recall": 0.8})
    baseline = {"protocol": "paper", "method": "constant 64", "notes": 5, "MAE": 33.6, "STD": 1.0, "recall": 1.0}
    rows = summary_table([row], [baseline])
    table = format_table(rows).splitlines()
    assert table[0].split() == ["protocol", "method", "notes", "MAE", "STD", "recall"]
    assert table[2].split() == ["paper", "diffvel", "5", "28.40", "45.98", "0.8000"]
    assert table[3].split()[-4:] == ["5", "33.60", "1.00", "1.0000"]
    with pytest.raises(ValueError, match="summary row 'bad': missing columns"):
        summary_table([row], [{"method": "bad"}])

    path = write_summary_csv(tmp_path / "summary.csv", rows)
    with open(path) as fh:
        records = list(csv.DictReader(fh))
    assert [r["method"] for r in records] == ["diffvel", "constant 64"]
    assert float(records[0]["MAE"]) == pytest.approx(28.4)

    bins = error_by_velocity_bin(true, estimate, bin_width=64)
    assert [(b["low"], b["high"], b["notes"]) for b in bins] == [(0, 64, 2), (64, 128, 3)]
    assert bins[1]["MAE"] == pytest.approx(130 / 3)

    plots = write_plots(tmp_path / "chart", "run", true, estimate)
    assert sorted(plots) == ["error_by_velocity", "error_histogram", "velocity_scatter"]
    for plot in plots.values():
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "chart").iterdir()) == [
        "run_error_by_velocity.png", "run_error_histogram.png", "run_velocity_scatter.png"]
    with pytest.raises(ValueError, match="5 true velocities but 4 estimates"):
        summary_row("paper", "x", true, estimate[:4])
