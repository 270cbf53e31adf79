"""Pair files: the model outputs and ground truth of one excerpt, in the authors' `.npy` format.

A pair file (`<excerpt>_pair_<shift>_<time>.npy`) is what the published `run_test.py` writes with
`np.save(path, [output_dict_list, target_dict_list], allow_pickle=True)`: a pickled numpy object
array of shape (2, n_segments) whose row 0 holds one output dict per segment
(`velocity_output`: (1, 640, 88)) and row 1 one target dict per segment (`velocity_roll`,
`frame_roll`, `onset_roll`: (1, 640, 88), `pedal_frame_roll`: (1, 1272), ...).

`save_pairs` writes that format atomically (the authors' `np.load(allow_pickle=True)` still reads
it). `load_pairs` reads it WITHOUT trusting the pickle: the `.npy` header is parsed here and the
payload goes through an unpickler that only builds numpy arrays, numpy scalars/dtypes and plain
containers; any other global (`os.system`, `builtins.eval`, ...) is refused before it is called.
"""
from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from utils.atomic import atomic_path
from utils.evaluation.protocols import PAIR_MARKER, PAIR_SUFFIX, excerpt_name, is_pair_file_name, pair_run_time, pair_shift

logger = logging.getLogger(__name__)

# Globals a pickled object array of dicts/lists of numeric arrays needs. numpy 1.x wrote
# `numpy.core.*`, numpy 2.x writes `numpy._core.*`: both are accepted and resolved to the
# module the installed numpy has.
_NUMPY_CORE_NAMES = {
    "multiarray": {"_reconstruct", "scalar"},
    "numeric": {"_frombuffer"},
}
_NUMPY_TOP_NAMES = {"ndarray", "dtype"}
_BUILTIN_NAMES = {"set", "frozenset", "bytearray", "complex", "slice"}


class PairFileError(ValueError):
    """A pair file that cannot be read: bad format, truncated, or a forbidden pickle global."""


def _numpy_core_module(submodule: str):
    """Return numpy's core submodule (numpy._core.X on numpy 2, numpy.core.X on numpy 1)."""
    import importlib

    try:
        return importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:  # numpy 1.x
        return importlib.import_module(f"numpy.core.{submodule}")


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy/builtin globals an object array of dicts needs."""

    def __init__(self, file, source_name: str):
        super().__init__(file, encoding="latin1")
        self._source_name = source_name

    def find_class(self, module: str, name: str):
        for prefix in ("numpy._core.", "numpy.core."):
            if module.startswith(prefix):
                submodule = module[len(prefix):]
                if name in _NUMPY_CORE_NAMES.get(submodule, ()):
                    return getattr(_numpy_core_module(submodule), name)
        if module == "numpy" and (name in _NUMPY_TOP_NAMES or _is_numpy_scalar_type(name)):
            return getattr(np, name)
        if module in ("builtins", "__builtin__") and name in _BUILTIN_NAMES:
            return getattr(__import__("builtins"), name)
        raise PairFileError(
            f"{self._source_name}: refused to unpickle forbidden global {module}.{name}"
        )


def _is_numpy_scalar_type(name: str) -> bool:
    """True for numpy scalar type names such as float32, int64, bool_."""
    candidate = getattr(np, name, None)
    return isinstance(candidate, type) and issubclass(candidate, np.generic)


def _read_npy_object_array(path: Path) -> np.ndarray:
    """Parse the `.npy` header of `path` and unpickle its object payload with the restricted unpickler."""
    name = path.name
    with open(path, "rb") as fh:
        try:
            version = npy_format.read_magic(fh)
        except ValueError as exc:
            raise PairFileError(f"{name}: not a .npy file ({exc})") from None
        try:
            if version == (1, 0):
                shape, fortran_order, dtype = npy_format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran_order, dtype = npy_format.read_array_header_2_0(fh)
            else:
                shape, fortran_order, dtype = npy_format._read_array_header(fh, version)
        except (ValueError, SyntaxError, EOFError) as exc:
            raise PairFileError(f"{name}: corrupt .npy header ({exc})") from None
        if not dtype.hasobject:
            raise PairFileError(
                f"{name}: not a pair file (a plain {dtype} array of shape {shape}, "
                "expected a pickled object array [output_dict_list, target_dict_list])"
            )
        try:
            array = _RestrictedUnpickler(fh, name).load()
        except PairFileError:
            raise
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
                IndexError, KeyError, MemoryError) as exc:
            raise PairFileError(f"{name}: truncated or corrupt pickle payload ({exc!r})") from None
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise PairFileError(f"{name}: payload does not match the header shape {shape}")
    return array


def _as_dict_list(row, name: str, which: str) -> list[dict]:
    """Turn one row of the pair array into a list of dicts, checking the element types."""
    items = list(row)
    for item in items:
        if not isinstance(item, dict):
            raise PairFileError(f"{name}: {which} holds a {type(item).__name__}, expected dicts")
    return items


def load_pairs(path: str | os.PathLike) -> tuple[list[dict], list[dict]]:
    """Read a pair file safely and return (output_dict_list, target_dict_list).

    Accepts the authors' files (numpy 1.x, `numpy.core` pickles) and files written by
    `save_pairs`. Raises FileNotFoundError for a missing file and PairFileError (a ValueError)
    naming the file for anything else wrong, including any pickle global outside the allowlist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pair file not found")
    array = _read_npy_object_array(path)
    name = path.name
    if array.ndim == 2 and array.shape[0] == 2:
        rows = (array[0], array[1])
    elif array.ndim == 1 and array.shape[0] == 2:
        rows = (array[0], array[1])  # ragged layout: two lists
    else:
        raise PairFileError(f"{name}: expected [output_dict_list, target_dict_list], got shape {array.shape}")
    outputs = _as_dict_list(rows[0], name, "output_dict_list")
    targets = _as_dict_list(rows[1], name, "target_dict_list")
    if len(outputs) != len(targets):
        raise PairFileError(f"{name}: {len(outputs)} output dicts but {len(targets)} target dicts")
    for index, (output, target) in enumerate(zip(outputs, targets)):
        if "velocity_output" not in output:
            raise PairFileError(f"{name}: output dict {index} has no 'velocity_output'")
        if "velocity_roll" not in target:
            raise PairFileError(f"{name}: target dict {index} has no 'velocity_roll'")
    return outputs, targets


def save_pairs(path: str | os.PathLike, output_dict_list: list[dict], target_dict_list: list[dict]) -> Path:
    """Write [output_dict_list, target_dict_list] in the authors' pair format, atomically.

    The file is a (2, n_segments) numpy object array saved with `np.save(allow_pickle=True)`,
    so `np.load(path, allow_pickle=True)` (the authors' loader) and `load_pairs` both read it.
    `.npy` is appended to `path` if missing, as `np.save` does. Returns the final path.
    """
    path = Path(path)
    if path.suffix != PAIR_SUFFIX:
        path = path.with_name(path.name + PAIR_SUFFIX)
    if len(output_dict_list) != len(target_dict_list):
        raise ValueError(
            f"{path.name}: {len(output_dict_list)} output dicts but {len(target_dict_list)} target dicts"
        )
    pairs = np.empty((2, len(output_dict_list)), dtype=object)
    for index, (output, target) in enumerate(zip(output_dict_list, target_dict_list)):
        pairs[0, index] = output
        pairs[1, index] = target
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        np.save(stream, pairs, allow_pickle=True)
    logger.debug("wrote %d segment pairs to %s", len(output_dict_list), path)
    return path


def list_pair_files(pair_dir: str | os.PathLike) -> list[Path]:
    """Sorted pair files (`*_pair_*.npy`) in `pair_dir`; clear errors for a missing or empty folder."""
    pair_dir = Path(pair_dir)
    if not pair_dir.is_dir():
        raise FileNotFoundError(f"{pair_dir}: pair directory not found")
    files = sorted(p for p in pair_dir.iterdir()
                   if p.is_file() and is_pair_file_name(p.name))
    if not files:
        raise FileNotFoundError(f"{pair_dir}: no pair files (*{PAIR_MARKER}*{PAIR_SUFFIX}) in this directory")
    return files


def latest_pair_files(pair_dir: str | os.PathLike) -> list[Path]:
    """The newest pair file of each excerpt and shift in `pair_dir`, by the run time in its name.

    run_test.py never deletes the pair files of earlier runs (another checkpoint, other settings), so
    a folder can hold several runs; a summary of one model must count each excerpt once.
    """
    newest: dict[tuple[str, str], Path] = {}
    for path in list_pair_files(pair_dir):
        key = (excerpt_name(path), pair_shift(path))
        if key not in newest or pair_run_time(path) > pair_run_time(newest[key]):
            newest[key] = path
    return sorted(newest.values())


def check_finite(path: str | os.PathLike, output_dict_list: list[dict]) -> None:
    """Refuse a pair file whose velocity_output holds NaN or infinity (a model that diverged)."""
    for index, output in enumerate(output_dict_list):
        if not np.all(np.isfinite(np.asarray(output["velocity_output"], dtype=np.float64))):
            raise PairFileError(f"{Path(path).name}: velocity_output of segment {index} is NaN or infinite "
                                "(recompute it with run_test.py overwrite=true and a finite checkpoint)")
