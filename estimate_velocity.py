"""Velocities for anyone's recording: audio + MIDI of the same performance -> the MIDI with new velocities.

    python estimate_velocity.py audio=rec.wav midi=score.mid out=estimated.mid [ckpt=PATH] [shift=SECONDS]
    python estimate_velocity.py audio_dir=recordings midi_dir=scores out_dir=estimated

Options: config/estimate.yaml; documentation: docs/estimate.md. Bad input ends with one line
`error: <file>: <problem>` on stderr and exit status 2.
"""
import logging
import sys
import time

import hydra
import torch
from omegaconf import DictConfig

from utils.checks import report_error
from utils.conventions import SEGMENT_FRAMES
from utils.estimate.blend import PRESETS, Blend, check_level, check_weight
from utils.estimate.errors import EstimateError
from utils.estimate.files import jobs_from_config
from utils.estimate.loudness import load_fit
from utils.estimate.model_io import DEFAULT_SHIPPED, load_model, pick_device
from utils.estimate.outputs import FileResult, file_line, summary_line
from utils.estimate.pipeline import run_pair
from utils.estimate.rules import resolve_rule

log = logging.getLogger("estimate_velocity")
METHODS = ("diffvel", "loudness", *PRESETS)


def blend_options(cfg: DictConfig) -> tuple[float, str]:
    """(weight, level) of a blend method: blend_weight and blend_level, or the method's preset where null."""
    preset = PRESETS.get(cfg.method, PRESETS["blend"])
    weight = preset.weight if cfg.blend_weight is None else cfg.blend_weight
    level = preset.level if cfg.blend_level is None else cfg.blend_level
    return check_weight(weight), check_level(level)


def _check_options(cfg: DictConfig) -> None:
    if cfg.method not in METHODS:
        raise EstimateError(f"estimate_velocity: method={cfg.method} must be one of {', '.join(METHODS)}")
    if cfg.method == "loudness" and cfg.ckpt is not None:
        raise EstimateError(f"estimate_velocity: ckpt={cfg.ckpt} is for method=diffvel, blend or unheard; "
                            "method=loudness reads loudness_fit")
    blend_options(cfg)
    if not 1 <= int(cfg.hop_frames) <= SEGMENT_FRAMES:
        raise EstimateError(f"estimate_velocity: hop_frames={cfg.hop_frames} must be in 1..{SEGMENT_FRAMES}")
    try:
        log.info("note rule: %s", resolve_rule(cfg.note_rule))
    except ValueError as error:
        raise EstimateError(f"estimate_velocity: {error}") from None


def load_estimator(cfg: DictConfig):
    """The network (method=diffvel), the loudness fit (loudness) or both with their weight and level
    (blend, unheard: each with its own shipped checkpoint when ckpt is null)."""
    if cfg.method == "loudness":
        return load_fit(cfg.loudness_fit)
    shipped = PRESETS[cfg.method].checkpoint if cfg.method in PRESETS else DEFAULT_SHIPPED
    network = load_model(cfg.ckpt, pick_device(str(cfg.device)), shipped)
    if cfg.method in PRESETS:
        return Blend(network, load_fit(cfg.loudness_fit), *blend_options(cfg))
    return network


def estimate(cfg: DictConfig) -> list[FileResult]:
    """Run every pair of the config; returns their results. Raises EstimateError for bad input
    (in folder mode after the other pairs are done)."""
    began = time.perf_counter()
    _check_options(cfg)
    jobs = jobs_from_config(cfg)
    torch.manual_seed(cfg.seed)
    model = load_estimator(cfg)
    results, failures = [], []
    for job in jobs:
        try:
            results.append(run_pair(model, job, cfg))
        except EstimateError as error:
            if len(jobs) == 1:
                raise
            log.error("error: %s", error)
            failures.append(str(error))
        else:
            log.info(file_line(results[-1]))
    if results:
        print(summary_line(results, time.perf_counter() - began))
    if failures:
        raise EstimateError(f"{cfg.out_dir}: {len(failures)} of {len(jobs)} pairs failed; first: {failures[0]}")
    return results


@hydra.main(config_path="config", config_name="estimate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        estimate(cfg)
    except EstimateError as error:
        sys.exit(report_error(error))


if __name__ == "__main__":
    main()
