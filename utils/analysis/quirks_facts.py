"""Measured facts of the quirk ablation: the quirks that do not move the MAE, and the counts behind it."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from utils.analysis.quirks_inputs import ExcerptPairs
from utils.analysis.quirks_variants import VARIANTS, pooled, variant_notes, variant_spans
from utils.conventions import MIDI_VELOCITY_MAX, PAPER_TEST_FPS, SEGMENT_SAMPLES, SEGMENT_SECONDS, VELOCITY_SCALE
from utils.evaluation.excerpts import noise_check
from utils.evaluation.notes import note_estimates, paper_note_spans
from utils.evaluation.postprocess import DEFAULT_Z_SCORE, remove_noise, rescale_linear01, segment_thresholds
from utils.evaluation.protocols import CORRECTED, PAPER
from utils.evaluation.rolls import concatenate_segments, first_item

PAPER_LABEL_FRAMES = int(round(SEGMENT_SECONDS * PAPER_TEST_FPS)) + 1  # 636 frames before the 640 copy

# The two switches of the post-processing primitives that leave the MAE unchanged (quirks 10 and 15).
remove_noise_strictly_below = partial(remove_noise, strictly_below=True)
rescale_linear01_float32 = partial(rescale_linear01, float32=True)


def pedal_flags(spans: list[tuple[int, int, int, float]], target_dict_list: list[dict]
                ) -> tuple[np.ndarray, np.ndarray]:
    """(published, per-segment) pedal flags of each note span, boolean (n_notes,) each.

    Published `pedal_check`: the concatenated, doubled pedal rolls (n * 1272,) indexed with piece
    frames. Per segment: piece frame -> (segment, frame); frames past the 636 label frames are the
    copied ones and read the frame they copy; the segment's own first 636 pedal values.
    """
    pedal_rolls = [first_item(d["pedal_frame_roll"], "pedal_frame_roll", keyed=False) for d in target_dict_list]
    published_roll = np.concatenate(pedal_rolls)  # (n * 1272,)
    segment_frames = first_item(target_dict_list[0]["velocity_roll"], "velocity_roll").shape[0]
    label_frames = pedal_rolls[0].shape[0] // 2 if pedal_rolls[0].shape[0] > segment_frames else segment_frames
    copied = segment_frames - label_frames  # 4 in the paper pairs
    published, per_segment = [], []
    for _, start, end, _ in spans:
        published.append(published_roll[start:end].sum() > 0)
        frames = np.arange(start, end)
        segments, local = frames // segment_frames, frames % segment_frames
        local = np.where(local >= label_frames, local - copied, local)
        per_segment.append(any(pedal_rolls[s][f] > 0 for s, f in zip(segments, local)))
    return np.array(published, dtype=bool), np.array(per_segment, dtype=bool)


def copied_onsets(target_dict_list: list[dict]) -> int:
    """Onset cells in the copied frames (636..639) of the paper labels: duplicated strikes."""
    total = 0
    for target in target_dict_list:
        onsets = first_item(target["onset_roll"], "onset_roll")  # (640, 88)
        total += int(np.count_nonzero(onsets[PAPER_LABEL_FRAMES:] > 0))
    return total


def paper_post_mae(excerpts: list[ExcerptPairs], z_score: float = DEFAULT_Z_SCORE,
                   remove=remove_noise, rescale=rescale_linear01) -> float:
    """Pooled paper-protocol MAE after noise removal, with the removal or the rescaling step swappable."""
    notes = []
    for excerpt in excerpts:
        outputs, targets = excerpt.pairs[PAPER]
        thresholds = segment_thresholds(outputs, targets, z_score, PAPER)
        rolls = np.concatenate([np.asarray(x, dtype=np.float64) for x in rescale(remove(outputs, thresholds))])
        notes.extend(note_estimates(rolls, paper_note_spans(concatenate_segments(targets, "velocity_roll"))))
    return pooled(notes)["MAE"]


def excerpt_counts(excerpt: ExcerptPairs) -> dict[str, float]:
    """Counts behind the ablation for one excerpt (paper pairs unless said otherwise); all summable."""
    outputs, targets = excerpt.pairs[PAPER]
    velocity = concatenate_segments(targets, "velocity_roll")  # (T, 88)
    onsets = concatenate_segments(targets, "onset_roll")  # (T, 88)
    frame = concatenate_segments(targets, "frame_roll")  # (T, 88)
    estimation = concatenate_segments(outputs, "velocity_output")  # (T, 88)
    spans = paper_note_spans(velocity)
    raw, post = variant_notes(VARIANTS[0], excerpt)
    estimates = np.array([n["estimate"] for n in raw])
    post_estimates = np.array([n["estimate"] for n in post])
    published, per_segment = pedal_flags(spans, targets)
    thresholds = segment_thresholds(outputs, targets, DEFAULT_Z_SCORE, PAPER)
    difference = np.abs(estimation - concatenate_segments(excerpt.pairs[CORRECTED][0], "velocity_output"))
    return {
        "segments": len(targets),
        "merged_restrikes": len(paper_note_spans(velocity, onsets)) - len(spans),
        "dropped_edge_notes": len(paper_note_spans(velocity, keep_edges=True)) - len(spans),
        "whole_piece_keys": int(np.count_nonzero((velocity != 0).all(axis=0))),
        "copied_onsets": copied_onsets(targets),
        "paper_onsets": int(np.count_nonzero(onsets > 0)),
        "corrected_notes": len(variant_spans(VARIANTS[-1], excerpt)),
        "support_cells_differing": int(np.count_nonzero((velocity == 0) != (frame == 0))),
        "cells": velocity.size,
        "estimates_above_127": int(np.count_nonzero(estimates > MIDI_VELOCITY_MAX)),
        "estimates_zero": int(np.count_nonzero(estimates == 0)),
        "post_estimates_above_127": int(np.count_nonzero(post_estimates > MIDI_VELOCITY_MAX)),
        "post_estimates_zero": int(np.count_nonzero(post_estimates == 0)),
        "pedal_flags_published": int(published.sum()),
        "pedal_flags_per_segment": int(per_segment.sum()),
        "pedal_flags_differing": int(np.count_nonzero(published != per_segment)),
        "no_threshold_segments": sum(t is None for t in thresholds),
        "batch_items_above_1": sum(np.shape(d["velocity_output"])[0] != 1 for d in outputs),
        "output_abs_diff_sum": float(difference.sum()) * VELOCITY_SCALE,
        "g_means_frames_sum": float(np.sum(noise_check(outputs)[0])),
        "g_means_keys_sum": float(sum(np.mean(np.asarray(d["velocity_output"])[..., 80:88]) for d in outputs)),
    }


def measured_facts(excerpts: list[ExcerptPairs]) -> dict:
    """`excerpt_counts` summed over the excerpts, plus means and the MAE deltas of quirks 10 and 15."""
    per_excerpt = [excerpt_counts(excerpt) for excerpt in excerpts]
    facts = {key: sum(counts[key] for counts in per_excerpt) for key in per_excerpt[0]}
    facts["excerpts"] = len(excerpts)
    facts["output_mean_abs_diff"] = facts.pop("output_abs_diff_sum") / facts["cells"]
    facts["g_means_frames"] = facts.pop("g_means_frames_sum") / facts["segments"]  # published: frames 80..87
    facts["g_means_keys"] = facts.pop("g_means_keys_sum") / facts["segments"]  # keys 80..87
    paper_mae = paper_post_mae(excerpts)
    facts["delta_mae_float32_rescale"] = paper_post_mae(excerpts, rescale=rescale_linear01_float32) - paper_mae
    facts["delta_mae_strict_threshold"] = paper_post_mae(excerpts, remove=remove_noise_strictly_below) - paper_mae
    return facts


def audio_scale_effect(checkpoint: Path, h5_path: Path) -> float:
    """Max |difference| of the model's normalised log-mel (first segment) between int16/32767 and /32768."""
    import torch

    from model.diffvel import load_diffvel
    from utils.data.smd import INT16_SCALE, PAPER_INT16_SCALE, read_excerpt

    model = load_diffvel(checkpoint, map_location="cpu").eval()
    waveform = read_excerpt(h5_path).waveform[:SEGMENT_SAMPLES].astype(np.float64)  # (<= 327680,)
    with torch.no_grad():
        paper = model.spectrogram(torch.from_numpy((waveform / PAPER_INT16_SCALE).astype(np.float32))[None])
        corrected = model.spectrogram(torch.from_numpy((waveform / INT16_SCALE).astype(np.float32))[None])
    return float((paper - corrected).abs().max())
