"""train_spec_roll.py on bad options: one line naming the key, exit status 2, no run folder created."""
import subprocess
import sys

import pytest

from model.layers import ResidualBlockWithFiLM
from utils.checks import OptionError, check_training_options
from utils.training.machinery import build_model

from conftest import REPO_ROOT


@pytest.mark.parametrize("override, match", [
    ("learning_rate=-1", "learning_rate=-1: must be greater than 0"),
    ("learning_rate=nan", "learning_rate=nan: must be a finite number"),
    ("epochs=0", "epochs=0: must be a positive whole number"),
    ("snapshot_every_n_steps=0", "snapshot_every_n_steps=0: must be a positive whole number"),
    ("save_every_n_steps=1.5", "save_every_n_steps=1.5: must be a positive whole number"),
    ("model.args.kernel_size=4", "model.args.kernel_size=4: must be odd"),
    ("init_weights=a.ckpt ckpt_path=b.ckpt", "init_weights=a.ckpt and ckpt_path=b.ckpt: choose one"),
    ("dataset.train.paper_label_prob=1.5", "dataset.train.paper_label_prob=1.5: must be within 0..1"),
    ("+dataset.val.paper_label_prob=-0.1", "dataset.val.paper_label_prob=-0.1: must be within 0..1"),
])
def test_bad_training_options_are_refused(compose, tmp_path, override, match):
    with pytest.raises(OptionError, match=match):
        check_training_options(compose("spec_roll", [f"log_dir={tmp_path / 'runs'}", *override.split()]))
    assert not (tmp_path / "runs").exists()


def test_even_kernel_is_refused_when_the_model_is_built(compose):
    with pytest.raises(ValueError, match="model.args.kernel_size=4: must be odd"):
        ResidualBlockWithFiLM(n_mels=8, residual_channels=4, dilation=2, kernel_size=4)
    cfg = compose("spec_roll", ["experiment=cpu_small", "model.args.kernel_size=6"])
    with pytest.raises(ValueError, match="kernel_size=6: must be odd"):
        build_model(cfg)


def test_log_dir_that_is_a_file_is_refused(compose, tmp_path):
    (tmp_path / "runs").write_text("a file")
    with pytest.raises(OptionError, match="log_dir=.*runs: exists and is not a folder"):
        check_training_options(compose("spec_roll", [f"log_dir={tmp_path / 'runs'}"]))


def test_command_line_refuses_negative_learning_rate_before_creating_a_run_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "train_spec_roll.py", "learning_rate=-1", f"log_dir={tmp_path / 'runs'}",
         f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: learning_rate=-1: must be greater than 0"]
    assert not (tmp_path / "runs").exists()
