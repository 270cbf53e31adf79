"""The variants of the quirk ablation: each switches ONE published quirk of the paper protocol.

A variant is a point in the switch space of the evaluation primitives (utils/evaluation/notes.py
and postprocess.py): which pair set gives the outputs and the labels, the note rule, the noise
reference, clipping and the note statistic. The first variant is the paper protocol and the last
one the corrected protocol, so neither can drift from the ablation (tests/test_quirks.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from utils.analysis.quirks_inputs import ExcerptPairs, QuirksInputError
from utils.evaluation.notes import (EVENTS, KEY_DOWN_MAX, ONSET_VALUE, RUNS, RUNS_EDGES, RUNS_SPLIT, SPAN_MAX,
                                    key_down_spans, note_estimates, true_note_spans)
from utils.evaluation.postprocess import DEFAULT_Z_SCORE, postprocess_outputs
from utils.evaluation.protocols import CORRECTED, PAPER
from utils.evaluation.report import summary_row
from utils.evaluation.rolls import concatenate_segments

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One evaluation setting: which pair set gives outputs and labels, and how notes are scored."""

    name: str
    changes: str
    outputs: str = PAPER  # pair set of the model outputs: paper (31 fps score) or corrected (31.25 fps)
    labels: str = PAPER  # pair set of the ground truth: paper (31 fps + copy) or corrected
    notes: str = RUNS
    noise_reference: str = PAPER  # PAPER: GT velocity roll; CORRECTED: score frame roll
    clip: bool = False
    statistic: str = SPAN_MAX
    informative: bool = False  # part of neither protocol


VARIANTS = (
    Variant("paper", "all published quirks (baseline)"),
    Variant("1a re-strikes split", "GT runs are cut at each onset, so a re-struck note with no silent "
            "frame before it counts as its own note", notes=RUNS_SPLIT),
    Variant("1b edge notes kept", "GT runs touching the first or last frame of the piece are kept",
            notes=RUNS_EDGES),
    Variant("1 notes from MIDI events", "notes from the onset roll (every strike, frame-0 and last-frame "
            "notes) instead of runs of non-zero GT frames", notes=EVENTS),
    Variant("2a labels at 31.25 fps", "ground truth from the corrected pairs (exact 31.25 fps, no 636->640 "
            "copy), outputs still from the paper run", labels=CORRECTED),
    Variant("2b outputs from 31.25 fps score", "outputs from the corrected run (score roll at 31.25 fps, "
            "audio /32768), ground truth still at 31 fps + copy", outputs=CORRECTED),
    Variant("2 labels + score at 31.25 fps", "corrected pairs (labels and score condition) with the paper's "
            "note extraction and statistics", outputs=CORRECTED, labels=CORRECTED),
    Variant("3 threshold on score-silent cells", "z=3 noise threshold chosen on cells where the score "
            "frame roll is 0 instead of the GT velocity roll", noise_reference=CORRECTED),
    Variant("4 estimates clipped", "estimates clipped to 1..127", clip=True),
    Variant("5 value at onset frame", "estimate = output at the onset frame instead of the max over the "
            "pedal-extended span (informative: in neither protocol)", statistic=ONSET_VALUE, informative=True),
    Variant("5b max over key-down span", "max over the span cut at the key release, without the sustain "
            "tail (informative: in neither protocol)", statistic=KEY_DOWN_MAX, informative=True),
    Variant("corrected", "all at once: corrected pairs, MIDI notes, clipping, score-silent threshold",
            outputs=CORRECTED, labels=CORRECTED, notes=EVENTS, noise_reference=CORRECTED, clip=True),
)


def variant_spans(variant: Variant, excerpt: ExcerptPairs) -> list[tuple[int, int, int, float]]:
    """The true notes (key, start, end, velocity) of an excerpt under a variant, in piece frames."""
    outputs, targets = excerpt.pairs[variant.outputs][0], excerpt.pairs[variant.labels][1]
    spans = true_note_spans(outputs, targets, variant.notes)
    if variant.statistic == KEY_DOWN_MAX:
        if excerpt.key_down_roll is None:
            raise QuirksInputError(f"{excerpt.name}: no key-down roll (the excerpt's .h5 file is needed)")
        spans = key_down_spans(spans, excerpt.key_down_roll)
    return spans


def variant_notes(variant: Variant, excerpt: ExcerptPairs, z_score: float = DEFAULT_Z_SCORE
                  ) -> tuple[list[dict], list[dict]]:
    """(raw notes, notes after noise removal at z_score) of one excerpt under a variant."""
    outputs, targets = excerpt.pairs[variant.outputs][0], excerpt.pairs[variant.labels][1]
    if len(outputs) != len(targets):
        raise QuirksInputError(f"{excerpt.name}: {len(outputs)} output segments but {len(targets)} label segments")
    spans = variant_spans(variant, excerpt)
    raw = note_estimates(concatenate_segments(outputs, "velocity_output"), spans, variant.statistic, variant.clip)
    cleaned, _ = postprocess_outputs(outputs, targets, z_score, variant.noise_reference)
    post = note_estimates(concatenate_segments(cleaned, "velocity_output"), spans, variant.statistic, variant.clip)
    return raw, post


def pooled(notes: list[dict]) -> dict:
    """notes, MAE, STD of a pooled note list (report.summary_row)."""
    return summary_row("", "", [n["velocity"] for n in notes], [n["estimate"] for n in notes])


def ablation_rows(excerpts: list[ExcerptPairs], variants=VARIANTS) -> list[dict]:
    """One row per variant (QUIRKS_COLUMNS keys), notes pooled over all excerpts; deltas vs the first variant.

    "z=3" columns: after the noise removal at the published DEFAULT_Z_SCORE (3). A KEY_DOWN_MAX
    variant is skipped, with a warning, when an excerpt has no key-down roll.
    """
    rows = []
    for variant in variants:
        if variant.statistic == KEY_DOWN_MAX and any(e.key_down_roll is None for e in excerpts):
            logger.warning("%s skipped: the .h5 files of the excerpts are needed", variant.name)
            continue
        raw, post = [], []
        for excerpt in excerpts:
            excerpt_raw, excerpt_post = variant_notes(variant, excerpt)
            raw.extend(excerpt_raw)
            post.extend(excerpt_post)
        raw_summary, post_summary = pooled(raw), pooled(post)
        rows.append({"shift": excerpts[0].shift, "variant": variant.name, "what changes": variant.changes,
                     "notes": raw_summary["notes"], "MAE raw": raw_summary["MAE"], "STD raw": raw_summary["STD"],
                     "MAE z=3": post_summary["MAE"], "STD z=3": post_summary["STD"]})
    for row in rows:
        row["delta MAE raw"] = row["MAE raw"] - rows[0]["MAE raw"]
        row["delta MAE z=3"] = row["MAE z=3"] - rows[0]["MAE z=3"]
    return rows
