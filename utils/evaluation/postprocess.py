"""Gaussian-noise post-processing of DiffVel outputs (the published post_process_gnoise.py).

Per segment, the outputs at "silent" cells are taken as noise; the noise threshold is the
smallest silent-cell output whose z-score exceeds z (default 3). Outputs <= threshold are set to
0, then all outputs of the piece are min-max rescaled to [0, 1] and evaluated.

Paper protocol: silent cells are where the GROUND-TRUTH velocity roll is 0 (the threshold peeks
at the answer). Corrected protocol: silent cells are where the SCORE frame roll (a model input,
`target["frame_roll"]`) is 0. z = 0 means no noise removal, rescaling only (published).
"""
from __future__ import annotations

import logging

import numpy as np

from utils.evaluation.metrics import evaluate
from utils.evaluation.protocols import PAPER, check_protocol
from utils.evaluation.rolls import first_item

logger = logging.getLogger(__name__)

DEFAULT_Z_SCORE = 3.0


def noise_threshold(velocity_output, silent_reference, z_score: float = DEFAULT_Z_SCORE) -> float | None:
    """Smallest output among cells where `silent_reference` == 0 whose z-score exceeds `z_score`.

    velocity_output, silent_reference: (T, 88) (or (1, T, 88)) arrays of the same shape.
    The mean and (population) std of the silent-cell outputs are taken in the outputs' own dtype,
    as published. Returns None when there is no such cell: no silent cell, constant noise
    (std 0), or no outlier. The published code crashed (np.min of an empty list) in these cases.
    """
    outputs = np.asarray(velocity_output)
    reference = np.asarray(silent_reference)
    if outputs.shape != reference.shape:
        raise ValueError(f"outputs {outputs.shape} and reference roll {reference.shape} differ in shape")
    noise = outputs[reference == 0]  # (n_silent,)
    if noise.size == 0:
        return None
    std = np.std(noise)
    if not std > 0:
        return None
    z_values = (noise - np.mean(noise)) / std
    outliers = noise[z_values > z_score]
    if outliers.size == 0:
        return None
    return float(outliers.min())


def segment_thresholds(output_dict_list: list[dict], target_dict_list: list[dict],
                       z_score: float = DEFAULT_Z_SCORE, protocol: str = PAPER) -> list[float | None]:
    """One noise threshold per segment (None where none exists; see `noise_threshold`)."""
    check_protocol(protocol)
    thresholds = []
    for index, (output, target) in enumerate(zip(output_dict_list, target_dict_list)):
        # corrected: the score the model was given (`score_roll`, shifted like the model's input), or
        # the unshifted score frame roll for pairs written without it
        reference_key = "velocity_roll" if protocol == PAPER else ("score_roll" if "score_roll" in target else "frame_roll")
        if reference_key not in target:
            raise ValueError(f"segment {index}: no '{reference_key}' in the target dict")
        outputs = first_item(output["velocity_output"], "velocity_output", dtype=None)  # (T, 88), stored dtype
        reference = first_item(target[reference_key], reference_key, dtype=None)  # (T, 88)
        threshold = noise_threshold(outputs, reference, z_score)
        if threshold is None:
            logger.warning("segment %d: no output above the z=%g noise level, left unchanged", index, z_score)
        thresholds.append(threshold)
    return thresholds


def remove_noise(output_dict_list: list[dict], thresholds: list[float | None],
                 strictly_below: bool = False) -> list[np.ndarray]:
    """Each segment's outputs (T, 88) with values <= its threshold set to 0 (None: unchanged copy).

    Published: `<=`, so the threshold cell itself is removed; `strictly_below` keeps it (`<`, quirk 10).
    """
    cleaned = []
    for output, threshold in zip(output_dict_list, thresholds):
        outputs = first_item(output["velocity_output"], "velocity_output", dtype=None).copy()  # (T, 88)
        if threshold is not None:
            outputs[(outputs < threshold) if strictly_below else (outputs <= threshold)] = 0
        cleaned.append(outputs)
    return cleaned


def rescale_linear01(segment_outputs: list[np.ndarray], float32: bool = False) -> list[np.ndarray]:
    """Min-max rescale all segments jointly to [0, 1] (float64), min and max over the whole piece.

    A constant piece (max == min, where the published code divided by zero) becomes all zeros.
    `float32`: the published arithmetic as numpy 1.x ran it, float32 throughout (quirk 15; no
    constant-piece guard, as published).
    """
    if float32:
        low = np.float32(min(np.min(x) for x in segment_outputs))
        high = np.float32(max(np.max(x) for x in segment_outputs))
        return [((x.astype(np.float32) - low) / (high - low)).astype(np.float32) for x in segment_outputs]
    low = min(float(np.min(x)) for x in segment_outputs)
    high = max(float(np.max(x)) for x in segment_outputs)
    if not high > low:
        logger.warning("constant output (min == max == %g): rescaled to all zeros", low)
        return [np.zeros(x.shape, dtype=np.float64) for x in segment_outputs]
    return [(x.astype(np.float64) - low) / (high - low) for x in segment_outputs]


def postprocess_outputs(output_dict_list: list[dict], target_dict_list: list[dict],
                        z_score: float = DEFAULT_Z_SCORE, protocol: str = PAPER
                        ) -> tuple[list[dict], list[float | None]]:
    """Noise removal + rescaling; returns (new output dicts, per-segment thresholds). Inputs unchanged."""
    if len(output_dict_list) != len(target_dict_list):
        raise ValueError(f"{len(output_dict_list)} output dicts but {len(target_dict_list)} target dicts")
    if len(output_dict_list) == 0:
        raise ValueError("no segments to post-process (empty pair list)")
    if z_score == 0:  # published: z = 0 skips the noise removal
        thresholds = [None] * len(output_dict_list)
    else:
        thresholds = segment_thresholds(output_dict_list, target_dict_list, z_score, protocol)
    rescaled = rescale_linear01(remove_noise(output_dict_list, thresholds))
    return [{"velocity_output": x[None]} for x in rescaled], thresholds  # (1, T, 88) each


def postprocess_metrics(output_dict_list: list[dict], target_dict_list: list[dict],
                        z_score: float = DEFAULT_Z_SCORE, protocol: str = PAPER) -> dict:
    """Post-process one excerpt and evaluate it; the evaluation dict plus `thresholds` and `z_score`."""
    cleaned, thresholds = postprocess_outputs(output_dict_list, target_dict_list, z_score, protocol)
    result = evaluate(cleaned, target_dict_list, protocol)
    result["thresholds"] = thresholds
    result["z_score"] = z_score
    return result

