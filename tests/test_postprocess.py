"""Gaussian-noise post-processing: published numbers, edge cases, and the CLI end to end."""
import csv
import subprocess
import sys
import warnings

import numpy as np
import pytest

import post_processing_gnoise
from utils.conventions import N_KEYS
from utils.evaluation.pairs import save_pairs
from utils.evaluation.protocols import CORRECTED_COLUMNS, NOTE_COLUMNS, POSTPROCESS_COLUMNS
from utils.evaluation.postprocess import noise_threshold, postprocess_metrics, postprocess_outputs, rescale_linear01

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
# the published post_process_gnoise.py (DiffVel_CMMR2023): result header and the folders it creates, literally
PUBLISHED_HEADER = ["test_h5", "frame_max_error", "std_max_error", "mean_error_correct_detection",
                    "std_error_correct_detection", "recall_score", "recall_support", "z_score"]
PUBLISHED_FOLDERS = ["pair_pkl", "error_profile", "noise_visualization", "chart", "result", "maestro"]


def test_thresholds_and_metrics_equal_published(reference):
    outputs, targets, expected = reference
    before = [o["velocity_output"].copy() for o in outputs]
    result = postprocess_metrics(outputs, targets, z_score=3)
    assert result["thresholds"] == pytest.approx(expected["thresholds_z3"], rel=1e-6)
    for key, value in expected["post_z3"].items():
        assert result[key] == pytest.approx(value, rel=1e-6), key
    assert result["z_score"] == 3
    for original, kept in zip(before, outputs):  # the published rm_noise mutated its input; we do not
        np.testing.assert_array_equal(kept["velocity_output"], original)


def test_noise_threshold_by_hand():
    outputs = np.zeros((10, N_KEYS), np.float32)
    outputs[3, 4] = 0.5  # the one outlier among silent cells
    outputs[3, 5] = 0.9  # a larger outlier: the threshold is the smallest one
    outputs[0, 0] = 0.8  # a sounding cell: ignored by the noise statistics
    truth = np.zeros_like(outputs)
    truth[0, 0] = 60
    assert noise_threshold(outputs, truth, 3) == pytest.approx(0.5)
    cleaned, thresholds = postprocess_outputs([{"velocity_output": outputs[None]}],
                                              [{"velocity_roll": truth[None]}], 3)
    assert thresholds == [pytest.approx(0.5)]
    rescaled = cleaned[0]["velocity_output"][0]
    assert rescaled[3, 4] == 0.0 and rescaled[3, 5] == 1.0  # 0.5 <= threshold removed; 0.9 is the max
    assert rescaled[0, 0] == pytest.approx(0.8 / 0.9)


def test_noise_threshold_undefined_cases():
    alternating = np.tile([0.0, 1.0], 5 * N_KEYS).reshape(10, N_KEYS).astype(np.float32)
    silent = np.zeros((10, N_KEYS))
    assert noise_threshold(alternating, silent, 3) is None  # z-scores are +-1: nothing above 3
    assert noise_threshold(alternating, np.ones((10, N_KEYS)), 3) is None  # no silent cell
    assert noise_threshold(np.full((10, N_KEYS), 0.2), silent, 3) is None  # constant noise, std 0
    with pytest.raises(ValueError, match=r"outputs \(10, 88\) and reference roll \(9, 88\) differ"):
        noise_threshold(alternating, silent[:9], 3)


def _pair(n_frames=8, value=0.0, notes=()):
    output = np.full((1, n_frames, N_KEYS), value, np.float32)
    velocity = np.zeros((1, n_frames, N_KEYS), np.float32)
    for key, start, end, vel in notes:
        velocity[0, start:end, key] = vel
    target = {"velocity_roll": velocity, "frame_roll": (velocity > 0).astype(np.float32),
              "onset_roll": np.zeros_like(velocity), "pedal_frame_roll": np.zeros((1, 2 * n_frames), np.float32)}
    return {"velocity_output": output}, target


def test_postprocess_edge_cases_do_not_crash(caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Constant output, no notes: no threshold, rescale gives zeros, nan errors.
        output, target = _pair(value=0.3)
        result = postprocess_metrics([output], [target], 3)
        assert result["thresholds"] == [None]
        assert result["n_notes"] == 0 and np.isnan(result["frame_max_error"])
        assert result["frame_recall"] == 0.0
        # Ground truth sounding everywhere (no zero cell): no threshold, nothing removed.
        output, target = _pair(value=0.3, notes=[(k, 0, 8, 50) for k in range(N_KEYS)])
        output["velocity_output"][0, 2, 7] = 0.6
        cleaned, thresholds = postprocess_outputs([output], [target], 3)
        assert thresholds == [None]
        assert cleaned[0]["velocity_output"][0, 2, 7] == 1.0 and cleaned[0]["velocity_output"][0, 0, 0] == 0.0
    assert "no output above the z=3 noise level" in caplog.text
    assert "constant output" in caplog.text
    with pytest.raises(ValueError, match="no segments to post-process"):
        postprocess_outputs([], [], 3)


def test_z_zero_rescales_only(reference):
    outputs, targets, _ = reference
    cleaned, thresholds = postprocess_outputs(outputs, targets, z_score=0)
    assert thresholds == [None] * 4
    low = min(float(o["velocity_output"].min()) for o in outputs)
    high = max(float(o["velocity_output"].max()) for o in outputs)
    np.testing.assert_allclose(cleaned[1]["velocity_output"],
                               (outputs[1]["velocity_output"].astype(np.float64) - low) / (high - low))
    assert rescale_linear01([np.array([[2.0]]), np.array([[4.0]])])[1][0, 0] == 1.0


def test_corrected_threshold_uses_score_frame_roll():
    output, target = _pair(n_frames=10)
    out = output["velocity_output"][0]
    out[4, 3] = 0.7  # inside a note that is in the ground truth but not in the score
    out[6, 9] = 0.4  # outlier in silence for both
    target["velocity_roll"][0, 4, 3] = 80
    paper = postprocess_outputs([output], [target], 3, "paper")[1][0]
    corrected = postprocess_outputs([output], [target], 3, "corrected")[1][0]
    assert paper == pytest.approx(0.4)  # the ground truth hides cell (4, 3)
    assert corrected == pytest.approx(0.4)  # the score (all zero) does not: 0.4 is still the smallest
    target["frame_roll"][0, 6, 9] = 1  # the score marks (6, 9) as sounding
    assert postprocess_outputs([output], [target], 3, "corrected")[1][0] == pytest.approx(0.7)
    assert postprocess_outputs([output], [target], 3, "paper")[1][0] == pytest.approx(0.4)


def _write_pair_dir(reference, folder):
    """Two excerpts: one written by save_pairs, one the way run_test.py writes (np.save of a list)."""
    outputs, targets, _ = reference
    save_pairs(folder / "pieceA_pair_0_2024-01-01_00-00-00.npy", outputs, targets)
    np.save(folder / "pieceB_pair_0_2024-01-01_00-00-00", [outputs[:2], targets[:2]], allow_pickle=True)


def test_cli_end_to_end(reference, tmp_path, capsys):
    pair_dir = tmp_path / "pairs"
    pair_dir.mkdir()
    _write_pair_dir(reference, pair_dir)
    out_dir = tmp_path / "out"
    status = post_processing_gnoise.main(["--output_dir", str(out_dir), "--npy_pair_dir", str(pair_dir),
                                          "--z_scores", "3", "0", "--name", "run"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "run z=3" in printed and "run z=0" in printed

    result_dir = out_dir / "outputs" / "result"
    [result_csv] = result_dir.glob("run-*.csv")
    with open(result_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == PUBLISHED_HEADER
    assert sorted(p.name for p in (out_dir / "outputs").iterdir()) == sorted(PUBLISHED_FOLDERS)
    assert [(r["test_h5"], float(r["z_score"])) for r in rows] == [
        ("pieceA", 3.0), ("pieceB", 3.0), ("pieceA", 0.0), ("pieceB", 0.0)]

    outputs, targets, expected = reference
    library = {("pieceA", 3.0): postprocess_metrics(outputs, targets, 3),
               ("pieceB", 3.0): postprocess_metrics(outputs[:2], targets[:2], 3),
               ("pieceA", 0.0): postprocess_metrics(outputs, targets, 0)}
    for row in rows[:3]:
        metrics = library[(row["test_h5"], float(row["z_score"]))]
        for column, key in [("frame_max_error", "frame_max_error"), ("std_max_error", "std_max_error"),
                            ("mean_error_correct_detection", "mean_error_correct_detection"),
                            ("std_error_correct_detection", "std_error_correct_detection"),
                            ("recall_score", "recall_score"), ("recall_support", "frame_recall")]:
            assert float(row[column]) == pytest.approx(metrics[key], rel=1e-12), column
    assert float(rows[0]["frame_max_error"]) == pytest.approx(expected["post_z3"]["frame_max_error"], rel=1e-6)

    note_files = sorted(p.name for p in (result_dir / "notes").iterdir())
    assert len(note_files) == 4 and note_files[0].startswith("pieceA-z0-")
    [notes_a3] = (result_dir / "notes").glob("pieceA-z3-*.csv")
    with open(notes_a3) as fh:
        notes = list(csv.DictReader(fh))
    assert list(notes[0]) == list(NOTE_COLUMNS)
    assert len(notes) == 382
    first = library[("pieceA", 3.0)]["notes"][0]
    assert (int(notes[0]["pitch"]), int(notes[0]["onset_frame"]), int(notes[0]["offset_frame"])) == \
        (first["pitch"], first["start"], first["end"])
    assert float(notes[0]["velocity_estimate"]) == pytest.approx(first["estimate"], rel=1e-12)

    [summary_csv] = result_dir.glob("summary-*.csv")
    with open(summary_csv) as fh:
        summary = list(csv.DictReader(fh))
    assert [s["method"] for s in summary] == ["run z=3", "run z=0"]
    pooled = library[("pieceA", 3.0)]["notes"] + library[("pieceB", 3.0)]["notes"]
    assert int(summary[0]["notes"]) == len(pooled)
    assert float(summary[0]["MAE"]) == pytest.approx(np.mean([n["error"] for n in pooled]), rel=1e-9)
    stamp = result_csv.stem[len("run-"):]
    charts = sorted(p.name for p in (out_dir / "outputs" / "chart").glob("run-z3-*.png"))
    assert charts == [f"run-z3-{stamp}_{kind}.png" for kind in ("error_by_velocity", "error_histogram", "velocity_scatter")]


def test_cli_corrected_protocol_and_errors(reference, tmp_path, capsys):
    pair_dir = tmp_path / "pairs"
    pair_dir.mkdir()
    empty = subprocess.run([sys.executable, "post_processing_gnoise.py", "--output_dir", str(tmp_path / "o"),
                            "--pair_pkl_dir", str(pair_dir)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert empty.returncode == 2
    assert empty.stderr.strip().endswith(f"error: {pair_dir}: no pair files (*_pair_*.npy) in this directory")

    outputs, targets, _ = reference
    save_pairs(pair_dir / "pieceA_pair_0_t.npy", outputs[:2], targets[:2])
    status = post_processing_gnoise.main(["--output_dir", str(tmp_path / "o"), "--pair_pkl_dir", str(pair_dir),
                                          "--protocol", "corrected", "--no_plots"])
    assert status == 0
    [result_csv] = (tmp_path / "o" / "outputs" / "result").glob("diffvel_film-*.csv")
    with open(result_csv) as fh:
        [row] = list(csv.DictReader(fh))
    assert list(row) == list(POSTPROCESS_COLUMNS + CORRECTED_COLUMNS)
    expected = postprocess_metrics(outputs[:2], targets[:2], 3, "corrected")
    assert row["protocol"] == "corrected" and float(row["z_score"]) == 3.0
    assert float(row["velocity_f1"]) == pytest.approx(expected["velocity_f1"], rel=1e-12)
    assert float(row["frame_max_error"]) == pytest.approx(expected["frame_max_error"], rel=1e-12)
    assert not list((tmp_path / "o" / "outputs" / "chart").iterdir())

    (pair_dir / "broken_pair_0_t.npy").write_text("not numpy")
    capsys.readouterr()
    assert post_processing_gnoise.main(["--output_dir", str(tmp_path / "o"), "--npy_pair_dir", str(pair_dir)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: broken_pair_0_t.npy: not a .npy file (the magic string is not correct; expected b'\\x93NUMPY', got b'not nu')"


def test_corrected_threshold_uses_the_score_the_model_saw_when_stored():
    """With a shifted score stored as `score_roll`, the silent cells come from it, not from frame_roll."""
    from utils.evaluation.postprocess import segment_thresholds

    rng = np.random.default_rng(0)
    output = rng.normal(0.0, 0.01, (1, 640, 88)).astype(np.float32)
    output[0, 100:110, 40] = 0.9  # the note, where the shifted score says a key is down
    frame_roll = np.zeros((1, 640, 88), np.float32)
    frame_roll[0, 300:310, 40] = 1  # unshifted ground-truth score: elsewhere
    score_roll = np.zeros((1, 640, 88), np.float32)
    score_roll[0, 100:110, 40] = 1
    target = {"frame_roll": frame_roll, "velocity_roll": frame_roll * 60}
    outputs = [{"velocity_output": output}]
    without = segment_thresholds(outputs, [target], 3.0, "corrected")[0]
    with_score = segment_thresholds(outputs, [{**target, "score_roll": score_roll}], 3.0, "corrected")[0]
    silent_in_score = output[score_roll == 0]
    z = (silent_in_score - silent_in_score.mean()) / silent_in_score.std()
    assert with_score == pytest.approx(float(silent_in_score[z > 3].min()))
    # against the unshifted roll the note's cells count as noise and inflate the threshold
    assert without > with_score
