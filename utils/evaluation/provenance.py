"""What produced a result: content hashes and settings, written as a JSON sidecar beside each result.

run_test.py reuses an earlier pair file only when its sidecar records the same checkpoint content,
sampler settings, seed, protocol, precision, float32 matmul precision, label frame rate, shift and
.h5 content as the current run; anything else is recomputed, with the reason logged.
`<result>.json` sits beside `<result>.npy` or `<result>.csv`, so every number can be traced to its
checkpoint and settings.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from omegaconf import OmegaConf

from utils.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

# the fields that decide a pair file's content (paths and times are recorded but do not decide it)
KEY_FIELDS = ("checkpoint_sha256", "sampling", "seed", "protocol", "precision", "float32_matmul_precision",
              "frames_per_second", "shift", "h5_sha256")
_HASHES: dict[tuple, str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content (memoised per path, size, mtime, ctime and inode)."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def run_settings(cfg) -> dict:
    """The settings of a run_test.py run that decide its outputs, with the checkpoint's content hash."""
    return {
        "checkpoint": str(cfg.comp_modelckpt),
        "checkpoint_sha256": file_sha256(cfg.comp_modelckpt),
        "sampling": OmegaConf.to_container(cfg.task.sampling, resolve=True),
        "seed": cfg.seed,
        "protocol": cfg.protocol,
        "precision": cfg.precision,
        "float32_matmul_precision": cfg.float32_matmul_precision,  # TF32 on NVIDIA GPUs changes numbers
        "frames_per_second": cfg.frames_per_second,
    }


def pair_provenance(settings: dict, h5_path: str | os.PathLike, shift) -> dict:
    """The provenance of one excerpt's pair file: the run settings, the shift and the .h5's content hash."""
    return {**settings, "shift": float(shift), "h5": str(h5_path), "h5_sha256": file_sha256(h5_path)}


def sidecar_path(result: str | os.PathLike) -> Path:
    """`<result stem>.json` beside a result file."""
    return Path(result).with_suffix(".json")


def write_sidecar(result: str | os.PathLike, provenance: dict) -> Path:
    """Write the provenance of `result` beside it (atomically)."""
    return atomic_write_bytes(sidecar_path(result), json.dumps(provenance, indent=1, sort_keys=True).encode())


def read_sidecar(result: str | os.PathLike) -> dict | None:
    """The provenance recorded beside `result`, or None if there is none or it is unreadable."""
    try:
        recorded = json.loads(sidecar_path(result).read_text())
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) else None


def differences(recorded: dict | None, wanted: dict) -> list[str]:
    """The key fields on which `recorded` differs from `wanted` (['no provenance record'] if none)."""
    if recorded is None:
        return ["no provenance record"]
    return [key for key in KEY_FIELDS if recorded.get(key) != wanted.get(key)]


def matching_result(candidates: list[Path], wanted: dict, label: str) -> Path | None:
    """The newest candidate whose sidecar matches `wanted` on every key field; logs why the newest
    candidate is not used when none matches."""
    ordered = sorted(candidates, reverse=True)
    for candidate in ordered:
        if not differences(read_sidecar(candidate), wanted):
            return candidate
    if ordered:
        changed = ", ".join(differences(read_sidecar(ordered[0]), wanted))
        log.info("%s: not reusing %s (%s differs); recomputing", label, ordered[0].name, changed)
    return None
