"""Velocity estimation for whole test excerpts: segments -> batched sampling -> the paper's pair dicts."""
import logging
import zlib
from contextlib import nullcontext

import numpy as np
import torch
from tqdm.auto import tqdm

from utils.data.smd import corrected_segments, paper_segments, read_excerpt
from utils.evaluation.protocols import CORRECTED, PAPER, check_protocol

log = logging.getLogger(__name__)


class NonFiniteOutputError(ValueError):
    """The model produced NaN or infinite velocities (typically a checkpoint with NaN weights)."""


def segment_generator(seed: int, excerpt: str, shift: float, index: int) -> torch.Generator:
    """The noise source of one segment: depends on the run seed and the segment's identity only,
    so results do not change with batch size, excerpt order or a resumed run."""
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}:{excerpt}:{shift}:{index}".encode()))


def check_excerpts(h5_paths, shifts) -> None:
    """Read and check every .h5 before any work; refuse a shift as long as a piece (empty score condition)."""
    for h5_path in h5_paths:
        excerpt = read_excerpt(h5_path)
        for shift in shifts:
            if abs(shift) >= excerpt.duration:
                raise ValueError(f"{h5_path}: unaligned_shift={shift} s is not shorter than the piece "
                                 f"({excerpt.duration:.2f} s): its score condition would be empty")


def load_segments(h5_path, shift: float, protocol: str, frames_per_second: int):
    """The test segments of one excerpt under a protocol (see utils/data/smd.py)."""
    if check_protocol(protocol) == PAPER:
        return list(paper_segments(h5_path, shift=shift, frames_per_second=frames_per_second))
    return list(corrected_segments(h5_path, shift=shift))


def score_clock(model, score_fps: float):
    """The model's `score_clock(score_fps)` context (DiffVelPlus: its loudness reading maps the score's
    frames to the audio's), or nothing for a model that reads no clock (the paper's)."""
    clock = getattr(model, "score_clock", None)
    return nullcontext() if clock is None else clock(score_fps)


def estimate_segments(model, segments, excerpt: str, shift: float, seed: int = 0, batch_segments: int = 8,
                      progress: bool = True, **sampling) -> list[np.ndarray]:
    """Sample the velocity roll of every segment, `batch_segments` at a time.

    Returns one (1, 640, 88) float32 array per segment in the model's [0, 1] scale, as the
    published `evaluation.forward` stores `velocity_output`.
    """
    outputs = []
    batches = range(0, len(segments), max(1, batch_segments))
    for start in tqdm(batches, desc=f"{excerpt} (shift {shift})", disable=not progress, leave=False):
        chunk = segments[start:start + batch_segments]
        waveform = torch.from_numpy(np.stack([s.waveform for s in chunk]))  # (B, 327680)
        score = torch.from_numpy(np.stack([s.score_roll for s in chunk]))  # (B, 640, 88)
        onsets = None if any(s.score_onset is None for s in chunk) else torch.from_numpy(
            np.stack([s.score_onset for s in chunk]))  # (B, 640, 88), read by DiffVelPlus only
        generators = [segment_generator(seed, excerpt, shift, s.index) for s in chunk]
        with score_clock(model, chunk[0].score_fps):  # the loudness reading of DiffVelPlus maps it to the audio's
            roll = model.sample(waveform, score, generator=generators, onset_roll=onsets, **sampling)  # (B, 1, 640, 88)
        bad = [s.index for s, r in zip(chunk, roll) if not torch.isfinite(r).all()]
        if bad:
            raise NonFiniteOutputError(f"{excerpt}: model output is NaN or infinite at segment {bad[0]} "
                                       f"(shift {shift}); the checkpoint's weights are probably not finite")
        outputs.extend(r.float().cpu().numpy() for r in roll)  # each (1, 640, 88)
    return outputs


def pair_dicts(segments, outputs, protocol: str = PAPER):
    """[output_dict_list, target_dict_list] in the published layout: one dict per segment.

    The corrected protocol also stores `score_roll` (1, 640, 88), the (shifted) score the model was
    given, on which its noise threshold is chosen instead of the ground truth.
    """
    output_dicts = [{"velocity_output": out.astype(np.float32)} for out in outputs]
    target_dicts = [dict(seg.target) for seg in segments]
    if protocol == CORRECTED:
        for target, seg in zip(target_dicts, segments):
            target["score_roll"] = seg.score_roll[None].astype(np.float32)
    return output_dicts, target_dicts


def noise_check(output_dicts):
    """The published `noise_check`: mean and std of velocity_output[:, 80:88] per segment.

    Quirk kept: on a (1, 640, 88) array `[:, 80:88]` selects frames 80..87 of all 88 keys, not keys.
    """
    means = [float(np.mean(np.asarray(d["velocity_output"])[:, 80:88])) for d in output_dicts]
    stds = [float(np.std(np.asarray(d["velocity_output"])[:, 80:88])) for d in output_dicts]
    return means, stds
