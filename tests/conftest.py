"""Shared fixtures: the reference outputs of the published code, committed under tests/reference."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REFERENCE_DIR = Path(os.environ.get("DIFFVEL_REFERENCE", Path(__file__).parent / "reference"))
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    assert REFERENCE_DIR.is_dir(), f"reference outputs not found at {REFERENCE_DIR}"
    return REFERENCE_DIR


def load_reference_model(reference_dir: Path):
    """The published small ClassifierFreeDiffRoll of model_config.json with the reference weights, in eval mode."""
    import json

    import numpy as np

    from model import ClassifierFreeDiffRoll

    config = json.loads((reference_dir / "model_config.json").read_text())
    model = ClassifierFreeDiffRoll(**config["model_args"], spec_args=config["spec_args"], **config["task"])
    state = {k: torch.from_numpy(v) for k, v in np.load(reference_dir / "model_state_dict.npz").items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def reference_model(reference_dir):
    """A fresh reference model per test module (tests may switch its mode)."""
    return load_reference_model(reference_dir)


@pytest.fixture(scope="session")
def compose():
    """Compose a real config of config/ with overrides, as the entry scripts do."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    def _compose(config_name: str, overrides=()):
        with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides))

    return _compose


EVAL_TARGET_KEYS = ("onset_roll", "frame_roll", "velocity_roll", "pedal_frame_roll")


@pytest.fixture
def reference(reference_dir):
    """eval_pairs.npz as the published pair lists (fresh copies per test), and eval_expected.json."""
    import json

    import numpy as np

    data = np.load(reference_dir / "eval_pairs.npz")
    outputs = [{"velocity_output": data[f"seg{i}_velocity_output"]} for i in range(4)]
    targets = [{k: data[f"seg{i}_{k}"] for k in EVAL_TARGET_KEYS} for i in range(4)]
    expected = json.loads((reference_dir / "eval_expected.json").read_text())
    return outputs, targets, expected


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """The tiny synthetic corpus (python -m utils.synth --tiny) the training tests run on."""
    root = tmp_path_factory.mktemp("train_script_corpus")
    subprocess.run([sys.executable, "-m", "utils.synth", "--out", str(root), "--tiny"], cwd=REPO_ROOT,
                   check=True, capture_output=True, timeout=240)
    return root


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """A tiny MAESTRO v2.0.0 layout (tests/maestro_layout.py), shared by a test module."""
    from maestro_layout import _build_layout

    root = tmp_path_factory.mktemp("maestro")
    _build_layout(root)
    return root


@pytest.fixture
def fresh_layout(tmp_path):
    """A tiny MAESTRO layout of one's own: (root, dataset folder, metadata rows)."""
    from maestro_layout import _build_layout

    dataset_dir, rows = _build_layout(tmp_path)
    return tmp_path, dataset_dir, rows

