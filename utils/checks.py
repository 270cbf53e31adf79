"""Up-front checks of options and output folders, and one-line errors for the command-line scripts.

Every check runs before a command does any work or creates any folder, and raises a ValueError
(:class:`OptionError`) whose message names the key or path and the problem in one line.
"""
from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path
from typing import Callable, Iterable

from omegaconf import ListConfig

log = logging.getLogger(__name__)


class OptionError(ValueError):
    """An option value or output path that a command refuses before doing any work."""


def is_number(value) -> bool:
    """True for ints and floats (not bools, not strings)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive_int(key: str, value) -> int:
    """``value`` as an int >= 1, or OptionError naming ``key``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise OptionError(f"{key}={value}: must be a positive whole number")
    return value


def finite_number(key: str, value) -> float:
    """``value`` as a finite float, or OptionError naming ``key``."""
    if not is_number(value) or not math.isfinite(value):
        raise OptionError(f"{key}={value}: must be a finite number")
    return float(value)


def positive_number(key: str, value) -> float:
    """``value`` as a finite float > 0, or OptionError naming ``key``."""
    number = finite_number(key, value)
    if number <= 0:
        raise OptionError(f"{key}={value}: must be greater than 0")
    return number


def probability(key: str, value) -> float:
    """``value`` as a finite float within 0..1, or OptionError naming ``key``."""
    number = finite_number(key, value)
    if not 0 <= number <= 1:
        raise OptionError(f"{key}={value}: must be within 0..1")
    return number


def odd_kernel_size(key: str, value) -> int:
    """A convolution kernel size: odd and >= 1 (an even kernel shifts and shortens the output by a frame)."""
    positive_int(key, value)
    if value % 2 == 0:
        raise OptionError(f"{key}={value}: must be odd (an even kernel changes the sequence length)")
    return value


def shift_list(key: str, value) -> list[float]:
    """A list of finite shifts in seconds (a single number is a list of one)."""
    items = list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
    if not items:
        raise OptionError(f"{key}={value}: needs at least one shift in seconds, e.g. [0]")
    shifts = []
    for item in items:
        if not is_number(item) or not math.isfinite(item):
            raise OptionError(f"{key}: {item!r} is not a number of seconds (e.g. {key}=[0,0.5])")
        shifts.append(item)
    if len(set(float(s) for s in shifts)) != len(shifts):
        raise OptionError(f"{key}={list(items)}: the same shift is listed twice")
    return shifts


def check_output_dir(key: str, path: str | os.PathLike) -> Path:
    """Refuse an output folder that is an existing file or that this user cannot write into.

    Nothing is created: the nearest existing folder on the path must be writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OptionError(f"{key}={path}: exists and is not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OptionError(f"{key}={path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OptionError(f"{key}={path}: folder {existing} is not writable")
    return path


def check_output_dirs(pairs: Iterable[tuple[str, str | os.PathLike]]) -> None:
    """:func:`check_output_dir` for each (key, path)."""
    for key, path in pairs:
        check_output_dir(key, path)


# errors that are the input's fault: shown as one line; anything else keeps its traceback (a bug)
USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
INPUT_ERROR_STATUS = 2  # every command's exit status for bad input (argparse's for a bad option, too)


def report_error(error: BaseException) -> int:
    """Print ``error: <message>`` (its first line) to stderr; return INPUT_ERROR_STATUS for ``main`` to return."""
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    print(f"error: {message}", file=sys.stderr)
    return INPUT_ERROR_STATUS


def exit_on_error(function: Callable, *args, **kwargs):
    """Run ``function``; on an input error print ``error: <message>`` (one line) to stderr and exit with
    INPUT_ERROR_STATUS. Set DIFFVEL_TRACEBACK=1 to get the full traceback instead.
    """
    try:
        return function(*args, **kwargs)
    except USER_ERRORS as error:
        if os.environ.get("DIFFVEL_TRACEBACK") == "1":
            raise
        raise SystemExit(report_error(error)) from None


def check_inference_options(cfg) -> list:
    """run_test.py's options and output folders, checked before any work; returns the shifts."""
    from utils.evaluation.protocols import PROTOCOLS
    from utils.precision import PRECISION_CHOICES as PRECISIONS

    positive_int("batch_segments", cfg.batch_segments)
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool):
        raise OptionError(f"seed={cfg.seed}: must be a whole number")
    if cfg.protocol not in PROTOCOLS:
        raise OptionError(f"protocol={cfg.protocol}: must be one of {', '.join(PROTOCOLS)}")
    if cfg.precision not in PRECISIONS:
        raise OptionError(f"precision={cfg.precision}: must be one of {', '.join(PRECISIONS)}")
    shifts = shift_list("unaligned_shift", cfg.unaligned_shift)
    check_output_dirs([("inference_result_path", cfg.inference_result_path), ("pair_pkl_dir", cfg.pair_pkl_dir)])
    return shifts


def check_z_scores(key: str, values) -> list[float]:
    """z-score thresholds: finite, >= 0 (0 = rescale only, as published) and distinct."""
    for value in values:
        if not math.isfinite(value) or value < 0:
            raise OptionError(f"{key} {value:g}: must be a finite number >= 0 (0 = rescale only)")
    if len(set(values)) != len(values):
        raise OptionError(f"{key} {' '.join(f'{v:g}' for v in values)}: a value is listed twice")
    return list(values)


def check_training_options(cfg) -> None:
    """train_spec_roll.py's options and run folder, checked before any run folder is created."""
    positive_number("learning_rate", cfg.learning_rate)
    positive_int("epochs", cfg.epochs)
    odd_kernel_size("model.args.kernel_size", cfg.model.args.kernel_size)
    check_output_dir("log_dir", cfg.log_dir)
    for key in ("save_every_n_steps", "snapshot_every_n_steps"):
        if cfg.get(key) is not None:
            positive_int(key, cfg.get(key))
    for split in ("train", "val"):
        probability(f"dataset.{split}.paper_label_prob", cfg.dataset[split].get("paper_label_prob", 0.0))
    if cfg.get("init_weights") is not None and cfg.get("ckpt_path") is not None:
        raise OptionError(f"init_weights={cfg.init_weights} and ckpt_path={cfg.ckpt_path}: choose one "
                          "(ckpt_path resumes a run; init_weights starts a new one from its weights)")
