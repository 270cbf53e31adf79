"""run_test.py: the authors' checkpoint on SMD-style .h5 files; resuming, seeding, batching, both protocols."""
import csv
import logging

import numpy as np
import pytest

import run_test
from utils.evaluation.pairs import load_pairs
from utils.synth.corpus import TINY, write_corpus

# the published run_test.py header (DiffVel_CMMR2023), literally
PUBLISHED_HEADER = ["g_means", "g_stds", "test_h5", "frame_max_error", "std_max_error", "mean_error_correct_detection",
                    "std_error_correct_detection", "average_precision_score", "f1_score", "precision_score",
                    "recall_score", "precision_support", "recall_support", "f1_support"]
MODEL_ARGS = ["model.args.residual_channels=16", "model.args.residual_layers=4", "model.args.kernel_size=9",
              "model.args.spec_dropout=0"]


@pytest.fixture(scope="module")
def h5_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return write_corpus(out, TINY).smd_files[0].parent


@pytest.fixture
def config(compose, reference_dir, h5_root, tmp_path):
    def _config(*overrides):
        return compose("inference", [
            *MODEL_ARGS, "gpus=0", f"comp_modelckpt={reference_dir / 'authors_format_pl164.ckpt'}",
            f"SMD_data_root={h5_root}", f"inference_result_path={tmp_path / 'inference'}",
            f"pair_pkl_dir={tmp_path / 'pairs'}", "task.sampling.steps=3", *overrides,
        ])
    return _config


def _pair_outputs(pair_dir):
    return {p.name.split("_pair_")[0]: [d["velocity_output"] for d in load_pairs(p)[0]]
            for p in sorted(pair_dir.glob("*_pair_*.npy"))}


def test_paper_run_writes_pairs_profiles_and_csv(config, tmp_path, h5_root):
    summary = run_test.run(config())
    n_excerpts = len(list(h5_root.glob("*.h5")))
    assert len(list((tmp_path / "pairs").glob("*_pair_0_*.npy"))) == n_excerpts
    assert len(list((tmp_path / "inference").glob("*_0_*.npy"))) == n_excerpts
    (csv_path,) = (tmp_path / "inference" / "diffvel_baseline").glob("diffvel_base_shift_0-*.csv")
    rows = list(csv.DictReader(open(csv_path)))
    assert list(rows[0]) == PUBLISHED_HEADER
    assert len(rows) == n_excerpts and rows[0]["precision_support"] != ""
    stamp = csv_path.stem.split("-", 1)[1]
    for h5 in h5_root.glob("*.h5"):  # published names: <excerpt>_pair_<shift>_<time>.npy, <excerpt>_<shift>_<time>.npy
        assert (tmp_path / "pairs" / f"{h5.stem}_pair_0_{stamp}.npy").is_file()
        assert (tmp_path / "inference" / f"{h5.stem}_0_{stamp}.npy").is_file()
    profile = np.load(next((tmp_path / "inference").glob("*_0_*.npy")), allow_pickle=True)
    assert {"pitch", "duration", "note_error", "ground truth", "estimation", "classification_check"} <= set(profile[0])
    assert summary[0]["notes"] > 0


def test_existing_outputs_are_reused_unless_overwrite(config, tmp_path, caplog):
    run_test.run(config())
    first = sorted((tmp_path / "pairs").glob("*.npy"))
    with caplog.at_level(logging.INFO, logger="run_test"):
        run_test.run(config())
    assert sorted((tmp_path / "pairs").glob("*.npy")) == first  # nothing sampled again
    assert sum("reusing" in r.getMessage() for r in caplog.records) == len(first)
    run_test.run(config("overwrite=true", "seed=0"))
    assert len(list((tmp_path / "pairs").glob("*.npy"))) >= len(first)


def test_same_seed_same_estimates_and_batching_changes_nothing(config, tmp_path):
    run_test.run(config("batch_segments=1", f"pair_pkl_dir={tmp_path / 'a'}"))
    run_test.run(config("batch_segments=4", f"pair_pkl_dir={tmp_path / 'b'}"))
    run_test.run(config("seed=7", f"pair_pkl_dir={tmp_path / 'c'}"))
    a, b, c = (_pair_outputs(tmp_path / name) for name in "abc")
    assert a.keys() == b.keys() and a
    for name in a:
        for x, y, z in zip(a[name], b[name], c[name]):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
            assert not np.allclose(x, z)


def test_corrected_protocol_pairs_carry_notes(config, tmp_path):
    run_test.run(config("protocol=corrected"))
    pair = next((tmp_path / "pairs" / "corrected").glob("*_pair_0_*.npy"))
    _, targets = load_pairs(pair)
    assert targets[0]["notes"].shape[1] == 4 and targets[0]["velocity_roll"].shape == (1, 640, 88)
    assert targets[0]["score_roll"].shape == (1, 640, 88)
    (csv_path,) = (tmp_path / "inference" / "diffvel_baseline").glob("diffvel_base_corrected_shift_0-*.csv")
    row = next(csv.DictReader(open(csv_path)))
    assert list(row)[-7:] == ["frame_precision", "frame_recall", "frame_f1", "note_recall", "velocity_precision",
                              "velocity_recall", "velocity_f1"]
    assert 0 <= float(row["velocity_f1"]) <= 1 and 0 <= float(row["note_recall"]) <= 1


def test_shifted_score_changes_the_condition_not_the_truth(config, tmp_path):
    run_test.run(config("unaligned_shift=[0,0.5]"))
    by_shift = {}
    for path in (tmp_path / "pairs").glob("*_pair_*.npy"):
        shift = path.name.split("_pair_")[1].split("_")[0]
        by_shift.setdefault(path.name.split("_pair_")[0], {})[shift] = load_pairs(path)
    for shifts in by_shift.values():
        (out0, tgt0), (out5, tgt5) = shifts["0"], shifts["0.5"]
        np.testing.assert_array_equal(tgt0[0]["velocity_roll"], tgt5[0]["velocity_roll"])
        assert not np.allclose(out0[0]["velocity_output"], out5[0]["velocity_output"])


def test_checkpoint_architecture_is_used_with_one_warning(config, tmp_path, caplog):
    """As the published load_from_checkpoint: the config's model.args (15 x 512, k=3) do not matter."""
    with caplog.at_level(logging.WARNING, logger="utils.training.checkpoint"):
        run_test.run(config("model.args.residual_layers=15", "model.args.residual_channels=512",
                            "model.args.kernel_size=3", "model.args.spec_dropout=0.1"))
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "utils.training.checkpoint"]
    for used in ("model.args.residual_channels=16 (config: 512)", "model.args.residual_layers=4 (config: 15)",
                 "model.args.kernel_size=9 (config: 3)", "model.args.spec_dropout=0 (config: 0.1)"):
        assert used in warning
    assert len(list((tmp_path / "pairs").glob("*_pair_0_*.npy"))) > 0


def test_checkpoint_config_check_refuses_a_different_architecture(config):
    with pytest.raises(ValueError, match=r"differs from the config: model.args.residual_layers=4 \(config: 15\)"):
        run_test.run(config("model.args.residual_layers=15", "checkpoint_config_check=true"))


def test_missing_checkpoint_is_named(config, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ckpt: checkpoint file not found"):
        run_test.run(config(f"comp_modelckpt={tmp_path / 'missing.ckpt'}"))


def test_bf16_option_reaches_the_sampler_and_stays_close(config, tmp_path):
    run_test.run(config(f"pair_pkl_dir={tmp_path / 'fp32'}"))
    run_test.run(config("precision=bf16", f"pair_pkl_dir={tmp_path / 'bf16'}"))
    fp32, bf16 = _pair_outputs(tmp_path / "fp32"), _pair_outputs(tmp_path / "bf16")
    for name in fp32:
        for x, y in zip(fp32[name], bf16[name]):
            assert not np.array_equal(x, y)  # the option changed the arithmetic
            np.testing.assert_allclose(x, y, atol=0.02)  # ...by rounding only


def test_unknown_precision_is_named(config):
    with pytest.raises(ValueError, match="precision=fp8"):
        run_test.run(config("precision=fp8"))
