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
