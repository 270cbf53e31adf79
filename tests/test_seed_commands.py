"""The paper's instructions, verbatim: paths set in config/inference.yaml, `python run_test.py`, then
`python post_processing_gnoise.py --output_dir ... --pair_pkl_dir ...`, with a checkpoint whose
architecture is not the config's (the authors' Lightning 1.6.4 format: 16 channels, 4 layers, k = 9;
the config says 512 channels, 15 layers, k = 3). Run in a copy of the scripts and configs."""
import csv
import re
import shutil
import subprocess
import sys

import pytest

from utils.synth.corpus import TINY, write_corpus

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
# the published headers, literally (run_test.py and post_process_gnoise.py of DiffVel_CMMR2023)
RUN_TEST_HEADER = ["g_means", "g_stds", "test_h5", "frame_max_error", "std_max_error", "mean_error_correct_detection",
                   "std_error_correct_detection", "average_precision_score", "f1_score", "precision_score",
                   "recall_score", "precision_support", "recall_support", "f1_support"]
POSTPROCESS_HEADER = ["test_h5", "frame_max_error", "std_max_error", "mean_error_correct_detection",
                      "std_error_correct_detection", "recall_score", "recall_support", "z_score"]
COPIED = ("run_test.py", "post_processing_gnoise.py", "post_process_gnoise.py", "config", "model", "task", "utils")


def _set_paths(config_file, paths: dict) -> None:
    """Edit config/inference.yaml as the published README says: one `key: value` line per path."""
    text = config_file.read_text()
    for key, value in paths.items():
        text, count = re.subn(rf"^{key}:.*$", f"{key}: '{value}'", text, flags=re.MULTILINE)
        assert count == 1, key
    config_file.write_text(text)


def _run(args, cwd):
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory, reference_dir):
    """A copy of the project with the four paths set, after `python run_test.py` ran in it."""
    root = tmp_path_factory.mktemp("seed")
    h5_root = write_corpus(root / "corpus", TINY).smd_files[0].parent
    project = root / "project"
    project.mkdir()
    for name in COPIED:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, project / name)
    out = root / "out"
    _set_paths(project / "config" / "inference.yaml", {
        "comp_modelckpt": reference_dir / "authors_format_pl164.ckpt",
        "inference_result_path": f"{out / 'inference_result' / 'Diffvel_originalFilm'}/",  # trailing / as published
        "SMD_data_root": f"{h5_root}/",
        "pair_pkl_dir": out / "pair_pkl",
    })
    result = _run(["run_test.py"], project)
    return project, out, h5_root, result.stdout + result.stderr  # Hydra logs to stdout


def test_run_test_verbatim_takes_the_checkpoint_architecture(seed_run):
    project, out, h5_root, printed = seed_run
    (warning,) = [line for line in printed.splitlines() if "differ from the config" in line]
    for used in ("model.args.residual_channels=16 (config: 512)", "model.args.residual_layers=4 (config: 15)",
                 "model.args.kernel_size=9 (config: 3)"):
        assert used in warning
    (csv_path,) = (out / "inference_result" / "Diffvel_originalFilm" / "diffvel_baseline").glob(
        "diffvel_base_shift_0-*.csv")
    rows = _rows(csv_path)
    assert list(rows[0]) == RUN_TEST_HEADER
    assert sorted(r["test_h5"] for r in rows) == sorted(p.name for p in h5_root.glob("*.h5"))
    stamp = csv_path.stem[len("diffvel_base_shift_0-"):]
    for h5 in h5_root.glob("*.h5"):
        assert (out / "pair_pkl" / f"{h5.stem}_pair_0_{stamp}.npy").is_file()
        assert (out / "inference_result" / "Diffvel_originalFilm" / f"{h5.stem}_0_{stamp}.npy").is_file()


@pytest.mark.parametrize("script, pair_option", [("post_processing_gnoise.py", "--pair_pkl_dir"),
                                                 ("post_process_gnoise.py", "--npy_pair_dir")])
def test_post_processing_verbatim(seed_run, tmp_path, script, pair_option):
    """The published README's command, and the published script's own file and option names."""
    project, out, h5_root, _ = seed_run
    _run([script, "--output_dir", str(tmp_path), pair_option, str(out / "pair_pkl")], project)
    (result_csv,) = (tmp_path / "outputs" / "result").glob("diffvel_film-*.csv")
    rows = _rows(result_csv)
    assert list(rows[0]) == POSTPROCESS_HEADER
    assert sorted(r["test_h5"] for r in rows) == sorted(p.stem for p in h5_root.glob("*.h5"))
    assert all(float(r["z_score"]) == 3 for r in rows)
