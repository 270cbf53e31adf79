"""The model of estimate_velocity.py: the shipped checkpoint by default, checked to fit the conventions."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from model.diffvel import load_diffvel
from utils.training.checkpoint import CheckpointError
from utils.conventions import HOP_LENGTH, SAMPLE_RATE
from utils.estimate.blend import PRESETS
from utils.estimate.errors import EstimateError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
PRETRAINED = REPO_ROOT / "pretrained"
DEFAULT_SHIPPED = PRESETS["blend"].checkpoint  # method=diffvel's: the shipped DiffVel+ (blend.PRESETS names each method's)


def pick_device(device: str) -> torch.device:
    """"auto": the GPU when one is present, else the CPU; or exactly the device named."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EstimateError(f"device={device}: no CUDA GPU is available (device=auto uses the CPU then)")
    return torch.device(device)


def checkpoint_path(ckpt, shipped: str = DEFAULT_SHIPPED) -> Path:
    """The checkpoint to load: `ckpt`, or the file `shipped` in PRETRAINED when None."""
    if ckpt is None:
        default = PRETRAINED / shipped
        if not default.is_file():
            raise EstimateError(f"{default}: the shipped checkpoint is missing; pass ckpt=PATH")
        return default
    return Path(str(ckpt))


def _check_fit(path: Path, model) -> None:
    """Refuse a model whose spectrogram does not follow utils/conventions.py; warn for relative outputs."""
    spec = dict(model.hparams.get("spec_args") or {})
    if spec.get("sample_rate", SAMPLE_RATE) != SAMPLE_RATE or spec.get("hop_length", HOP_LENGTH) != HOP_LENGTH:
        raise EstimateError(f"{path}: checkpoint expects {spec.get('sample_rate')} Hz audio with hop "
                            f"{spec.get('hop_length')}, not {SAMPLE_RATE} Hz with hop {HOP_LENGTH}")
    if not getattr(model, "absolute_velocity", False):
        log.warning("%s: a paper-style checkpoint (%s, relative targets): its velocities are relative to the "
                    "loudest note of each 20.48 s segment, not absolute MIDI velocities", path, type(model).__name__)


def load_model(ckpt, device: torch.device, shipped: str = DEFAULT_SHIPPED):
    """The checkpoint's network (`ckpt`, or the shipped file `shipped` when None) in eval mode on `device`;
    EstimateError when missing or unfit."""
    path = checkpoint_path(ckpt, shipped)
    try:
        model = load_diffvel(path, map_location=device)
    except FileNotFoundError:
        raise EstimateError(f"{path}: checkpoint file not found") from None
    except (CheckpointError, TypeError, ValueError, KeyError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        prefix = "" if message.startswith(str(path)) else f"{path}: checkpoint does not fit DiffVel ("
        raise EstimateError(prefix + message + (")" if prefix else "")) from None
    _check_fit(path, model)
    log.info("model %s (%s) on %s", path, type(model).__name__, device)
    return model.eval()
