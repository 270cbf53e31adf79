"""Training crops labelled the way the paper's SMD test labels are (an option beyond the paper).

The paper protocol gives the model a score roll built at 31 frames/s (``PAPER_TEST_FPS``) and padded
from 636 to 640 frames by copying the last 4 (docs/smd.md, quirk 1; docs/evaluation.md, quirk 4),
while the spectrogram runs at 31.25 frames/s. The score therefore leads the sound by up to 4 frames
at the end of a segment. A model trained only on aligned crops has never seen that drift.
:func:`paper_timed_rolls` builds a training crop's labels on that same clock, so a fraction of the
crops (``MAESTRO(paper_label_prob=...)``) teaches the model the drifting score.
"""
from __future__ import annotations

import numpy as np

from utils.conventions import FRAMES_PER_SECOND, PAPER_TEST_FPS, SEGMENT_FRAMES
from utils.data.midi_labels import segment_rolls
from utils.data.smd import ADJUST_COPY_FRAMES

DRIFT_FACTOR = PAPER_TEST_FPS / FRAMES_PER_SECOND  # label time per model time: 0.992


def paper_timed_rolls(notes: np.ndarray, begin: int, audio_length: int, sequence_length: int,
                      hop_length: int, sample_rate: int, min_midi: int, max_midi: int) -> dict[str, np.ndarray]:
    """The labels of :func:`segment_rolls` with notes on the paper's 31 frames/s test clock.

    A note ``t`` seconds after the crop's first label frame lands on frame ``round(t * 31)``, and when
    the crop has the model's 640 frames its last 4 frames are a copy of the 4 before them, like the
    paper's 636 -> 640 adjustment (shorter crops are only warped). Returns the same keys and shapes
    as :func:`segment_rolls`.
    """
    start = (begin // hop_length) * hop_length / sample_rate  # time of the crop's first label frame
    warped = notes.copy()
    warped[:, :2] = start + (notes[:, :2] - start) * DRIFT_FACTOR  # onset, offset seconds
    rolls = segment_rolls(warped, begin, audio_length, sequence_length, hop_length, sample_rate,
                          min_midi, max_midi)  # each (T, 88)
    if len(rolls["frame"]) == SEGMENT_FRAMES:  # a whole model segment, as the paper's test items
        for roll in rolls.values():
            roll[-ADJUST_COPY_FRAMES:] = roll[-2 * ADJUST_COPY_FRAMES:-ADJUST_COPY_FRAMES]
    return rolls
