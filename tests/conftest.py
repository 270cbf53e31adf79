"""Shared fixtures: the reference outputs of the published code, committed under tests/reference."""
import os
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


@pytest.fixture(scope="session")
def compose():
    """Compose a real config of config/ with overrides, as the entry scripts do."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    def _compose(config_name: str, overrides=()):
        with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides))

    return _compose
