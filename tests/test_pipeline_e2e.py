"""End to end, as `make demo` runs it, on a tiny corpus: corpus -> train -> run_test -> post-processing -> summary."""
import csv

import numpy as np
import pytest

from utils import demo
from utils.evaluation.protocols import RUN_TEST_COLUMNS, RUN_TEST_HEADER
from utils.evaluation.pairs import load_pairs

# the per-excerpt CSV: the published name and header in the paper protocol, clearer ones in the corrected
RUN_TEST_CSV = {"paper": ("diffvel_base_shift_0-*.csv", RUN_TEST_HEADER, "recall_support"),
                "corrected": ("diffvel_base_corrected_shift_0-*.csv", RUN_TEST_COLUMNS, "frame_recall")}


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert demo.main(["--out", str(out), "--tiny", "--train-steps", "3", "--plus-train-steps", "2",
                      "--sampling", "fast", "--train-override", "val_freq=1"]) == 0
    return out


def _rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_training_wrote_a_checkpoint_and_metrics(demo_out):
    for tag, name in (("diffvel", "ClassifierFreeDiffRoll-L4-C32"), ("diffvel_plus", "DiffVelPlus-L8-C128")):
        runs = list((demo_out / "runs" / tag).glob(f"{name}-*-MAESTRO/version_0"))
        assert len(runs) == 1
        assert (runs[0] / "checkpoints" / "last.ckpt").is_file()
        metrics = _rows(runs[0] / "metrics.csv")
        assert any(row.get("Val/diffusion_loss") for row in metrics)


@pytest.mark.parametrize("protocol", ["paper", "corrected"])
def test_run_test_outputs(demo_out, protocol):
    result_dir = demo_out / "inference" / "diffvel" / protocol
    pattern, header, frame_recall = RUN_TEST_CSV[protocol]
    (csv_path,) = (result_dir / "diffvel_baseline").glob(pattern)
    rows = _rows(csv_path)
    assert list(rows[0])[:len(header)] == list(header)
    assert sorted(r["test_h5"] for r in rows) == sorted(p.name for p in (demo_out / "data" / "smd_h5").glob("*.h5"))
    for row in rows:
        assert 0 <= float(row["frame_max_error"]) <= 128
        assert 0 <= float(row[frame_recall]) <= 1
    assert len(list(result_dir.glob("*_0_*.npy"))) == len(rows)  # one error profile per excerpt
    assert len(list((result_dir / "diffvel_baseline").glob("*.png"))) == 3


@pytest.mark.parametrize("protocol, subdir", [("paper", ""), ("corrected", "corrected")])
def test_pair_files_hold_one_640_frame_estimate_per_segment(demo_out, protocol, subdir):
    pair_files = sorted((demo_out / "pairs" / "diffvel" / subdir).glob("*_pair_0_*.npy"))
    assert len(pair_files) == 2
    outputs, targets = load_pairs(pair_files[0])
    assert len(outputs) == len(targets) >= 1
    for output, target in zip(outputs, targets):
        assert np.asarray(output["velocity_output"]).shape == (1, 640, 88)
        assert np.isfinite(output["velocity_output"]).all()
        assert target["velocity_roll"].shape == (1, 640, 88)
        assert ("notes" in target) == (protocol == "corrected")


def test_postprocessing_outputs(demo_out):
    for protocol in ("paper", "corrected"):
        result_dir = demo_out / "postprocessing" / "diffvel" / protocol / "outputs" / "result"
        (result_csv,) = result_dir.glob("diffvel_film-*.csv")
        rows = _rows(result_csv)
        recalls = {"recall_score", "recall_support"} if protocol == "paper" else {"recall", "frame_recall"}
        assert {"test_h5", "frame_max_error", "std_max_error", "z_score"} | recalls <= set(rows[0])
        assert all(float(r["z_score"]) == 3 for r in rows)
        note_csvs = list((result_dir / "notes").glob("*-z3-*.csv"))
        assert len(note_csvs) == 2
        notes = _rows(note_csvs[0])
        assert notes and all(0 <= float(n["velocity_estimate"]) <= 128 for n in notes)
        assert all(1 <= float(n["velocity_true"]) <= 127 for n in notes)


def test_summary_compares_model_and_baselines_on_the_same_notes(demo_out):
    rows = _rows(demo_out / "summary.csv")
    assert [r["protocol"] for r in rows] == ["paper"] * 6 + ["corrected"] * 6
    assert sum(r["method"].startswith("DiffVel+") for r in rows) == 4
    for protocol in ("paper", "corrected"):
        counts = {int(r["notes"]) for r in rows if r["protocol"] == protocol}
        assert len(counts) == 1 and counts.pop() > 0
    for row in rows:
        assert 0 <= float(row["MAE"]) <= 127 and float(row["STD"]) >= 0
    loudness = [r for r in rows if r["method"] == "baseline: loudness regression"]
    mean = [r for r in rows if r["method"] == "baseline: training mean"]
    # on the synthetic corpus loudness carries velocity: the regression must beat the constant
    assert all(float(a["MAE"]) < float(b["MAE"]) for a, b in zip(loudness, mean))
    assert (demo_out / "summary.md").read_text().startswith("| protocol |")
    assert len(list((demo_out / "plots").glob("*.png"))) == 18
