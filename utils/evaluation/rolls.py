"""Reading the stored rolls of pair dicts: item 0 of each segment, concatenated over the piece."""
from __future__ import annotations

import numpy as np

from utils.conventions import N_KEYS


def first_item(value, name: str, keyed: bool = True, dtype=np.float64) -> np.ndarray:
    """The first batch item of a stored roll: (1, T, 88) or (T, 88) -> (T, 88); keyed=False: (1, P) -> (P,).

    The published loop `for nth_frame, _ in enumerate(output_dict)` runs once per KEY of the
    output dict (one key: `velocity_output`), so only item 0 of each segment is ever read.
    dtype=None keeps the stored dtype.
    """
    array = np.asarray(value[0] if isinstance(value, (list, tuple)) else value, dtype=dtype)
    if keyed:
        if array.ndim == 3:
            array = array[0]
        if array.ndim != 2 or array.shape[1] != N_KEYS:
            raise ValueError(f"{name}: expected (1, frames, {N_KEYS}) rolls, got shape {np.shape(value)}")
    else:
        if array.ndim == 2:
            array = array[0]
        if array.ndim != 1:
            raise ValueError(f"{name}: expected a (1, frames) roll, got shape {np.shape(value)}")
    return array


def concatenate_segments(dict_list: list[dict], key: str, keyed: bool = True) -> np.ndarray:
    """Concatenate item 0 of `key` over all segments along time: (n_segments * T, 88), or (n * P,) if not keyed."""
    if len(dict_list) == 0:
        raise ValueError("no segments to evaluate (empty pair list)")
    missing = [i for i, d in enumerate(dict_list) if key not in d]
    if missing:
        raise ValueError(f"segment {missing[0]}: no '{key}' in its dict")
    return np.concatenate([first_item(d[key], key, keyed) for d in dict_list], axis=0)


def mean_std(values) -> tuple[float, float]:
    """Mean and population std of `values`; (nan, nan) for an empty list instead of a warning."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values))
