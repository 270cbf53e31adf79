"""Tests of the quirk ablation (utils/analysis/): every ablation variant on hand-built pair lists whose effect is known."""

import numpy as np
import pytest

from utils.conventions import N_KEYS, SEGMENT_FRAMES
from utils.analysis.quirks_facts import (copied_onsets, paper_post_mae, pedal_flags, remove_noise_strictly_below,
                                         rescale_linear01_float32)
from utils.analysis.quirks_inputs import ExcerptPairs, paper_key_down_roll
from utils.analysis.quirks_variants import VARIANTS, Variant, ablation_rows
from utils.data.smd import paper_segments, write_excerpt
from utils.evaluation.metrics import corrected_metrics, paper_metrics, paper_note_spans
from utils.evaluation.notes import key_down_spans, note_estimates
from utils.evaluation.notes import paper_note_spans as run_note_spans
from utils.evaluation.postprocess import postprocess_metrics
from utils.evaluation.protocols import CORRECTED, PAPER

T = 40  # frames per hand-built segment
BY_NAME = {variant.name: variant for variant in VARIANTS}


def paper_target(velocity, frame=None, pedal=None):
    """A paper-style target dict from a (T, 88) velocity roll; onsets where a run starts or the velocity changes."""
    velocity = np.asarray(velocity, dtype=np.float32)
    previous = np.vstack([np.zeros((1, N_KEYS), np.float32), velocity[:-1]])
    onset = (velocity > 0) & (velocity != previous)
    frame = velocity > 0 if frame is None else frame
    pedal = np.zeros(2 * velocity.shape[0], np.float32) if pedal is None else pedal
    return {"velocity_roll": velocity[None], "frame_roll": np.asarray(frame, np.float32)[None],
            "onset_roll": onset.astype(np.float32)[None], "pedal_frame_roll": np.asarray(pedal, np.float32)[None]}


def with_notes(target, notes):
    """A corrected-style target: the same rolls plus a `notes` (N, 4) array."""
    return {**target, "notes": np.asarray(notes, dtype=np.float64).reshape(-1, 4)}


def output(values):
    return {"velocity_output": np.asarray(values, dtype=np.float32)[None]}


def excerpt_of(outputs, targets, corrected_outputs=None, corrected_targets=None, key_down=None):
    """ExcerptPairs with the paper set and (default: the same outputs, targets with onset-derived notes)."""
    if corrected_targets is None:
        corrected_targets = [with_notes(t, onset_notes(t)) for t in targets]
    pairs = {PAPER: (outputs, targets), CORRECTED: (corrected_outputs or outputs, corrected_targets)}
    return ExcerptPairs("x", "0", pairs, key_down)


def onset_notes(target):
    """(key, onset, offset, velocity) rows of a target's onset roll (offset: end of the velocity value)."""
    velocity, onset = target["velocity_roll"][0], target["onset_roll"][0]
    rows = []
    for frame, key in zip(*np.nonzero(onset)):
        end = frame + 1
        while end < velocity.shape[0] and velocity[end, key] == velocity[frame, key] and not onset[end, key]:
            end += 1
        rows.append((key, frame, end, velocity[frame, key]))
    return rows


def rows_by_name(excerpts, names):
    rows = ablation_rows(excerpts, [BY_NAME[name] for name in names])
    return {row["variant"]: row for row in rows}


def test_run_note_spans_defaults_equal_paper_note_spans():
    rng = np.random.default_rng(0)
    roll = (rng.random((300, N_KEYS)) < 0.3) * rng.integers(1, 128, (300, N_KEYS))  # edges, re-strikes, gaps
    roll[:, 5] = 64  # a key sounding over the whole piece
    assert run_note_spans(roll.astype(np.float64)) == paper_note_spans(roll.astype(np.float64))


def test_restruck_note_counts_once_in_paper_twice_when_split():
    velocity = np.zeros((T, N_KEYS))
    velocity[5:15, 10], velocity[15:25, 10] = 40, 100  # struck again with no silent frame between
    outputs = np.zeros((T, N_KEYS))
    outputs[5:15, 10], outputs[15:25, 10] = 40 / 128, 100 / 128
    rows = rows_by_name([excerpt_of([output(outputs)], [paper_target(velocity)])],
                        ["paper", "1a re-strikes split", "1 notes from MIDI events"])
    paper, split, events = rows["paper"], rows["1a re-strikes split"], rows["1 notes from MIDI events"]
    assert (paper["notes"], split["notes"], events["notes"]) == (1, 2, 2)
    assert paper["MAE raw"] == pytest.approx(60.0)  # one merged note: velocity 40, estimate max 100
    assert split["MAE raw"] == pytest.approx(0.0) and events["MAE raw"] == pytest.approx(0.0)
    # z=3: no silent-cell noise, so rescaling alone maps 100/128 to 1 (estimate 128) and 40/128 to 0.4
    assert paper["MAE z=3"] == pytest.approx(88.0)
    assert split["MAE z=3"] == pytest.approx((abs(51.2 - 40) + 28) / 2)
    assert split["delta MAE raw"] == pytest.approx(-60.0)


def test_note_at_frame_zero_is_dropped_by_paper_and_kept_by_edge_and_event_variants():
    velocity = np.zeros((T, N_KEYS))
    velocity[0:6, 20] = 80  # sounds from the first frame of the piece
    velocity[10:20, 30] = 50
    outputs = np.zeros((T, N_KEYS))
    outputs[0:6, 20], outputs[10:20, 30] = 0.5, 50 / 128
    rows = rows_by_name([excerpt_of([output(outputs)], [paper_target(velocity)])],
                        ["paper", "1b edge notes kept", "1 notes from MIDI events", "corrected"])
    assert rows["paper"]["notes"] == 1 and rows["paper"]["MAE raw"] == pytest.approx(0.0)
    for name in ("1b edge notes kept", "1 notes from MIDI events", "corrected"):
        assert rows[name]["notes"] == 2
        assert rows[name]["MAE raw"] == pytest.approx(16.0 / 2)  # |64 - 80| on the frame-0 note


def test_clipping_lowers_the_error_of_an_estimate_above_127_and_of_an_undetected_note():
    velocity = np.zeros((T, N_KEYS))
    velocity[5:10, 40], velocity[20:30, 50] = 100, 30
    outputs = np.zeros((T, N_KEYS))
    outputs[5:10, 40] = 1.0  # estimate 128 > 127; the note of key 50 gets no output (estimate 0)
    rows = rows_by_name([excerpt_of([output(outputs)], [paper_target(velocity)])], ["paper", "4 estimates clipped"])
    assert rows["paper"]["MAE raw"] == pytest.approx((28 + 30) / 2)
    assert rows["4 estimates clipped"]["MAE raw"] == pytest.approx((27 + 29) / 2)
    assert rows["4 estimates clipped"]["delta MAE raw"] == pytest.approx(-1.0)


def test_onset_value_statistic_reads_the_first_frame_only():
    notes = note_estimates(np.array([[0.5] * N_KEYS, [0.75] * N_KEYS, [0.0] * N_KEYS]), [(3, 0, 3, 64.0)],
                           statistic="onset_value")
    assert notes[0]["estimate"] == pytest.approx(64.0) and notes[0]["error"] == pytest.approx(0.0)
    assert note_estimates(np.array([[0.5] * N_KEYS, [0.75] * N_KEYS]), [(3, 0, 2, 64.0)])[0]["estimate"] == 96.0
    # outputs <= 1e-4 count as 0, as published
    assert note_estimates(np.full((2, N_KEYS), 1e-4), [(0, 0, 2, 10.0)])[0]["estimate"] == 0.0


def test_key_down_spans_cut_the_sustain_tail():
    key_down = np.zeros((30, N_KEYS))
    key_down[10:14, 3] = 70
    key_down[20:30, 4] = 90
    assert key_down_spans([(3, 10, 20, 70.0), (4, 20, 25, 90.0), (5, 2, 8, 1.0)], key_down) == [
        (3, 10, 14, 70.0), (4, 20, 25, 90.0), (5, 2, 3, 1.0)]  # never longer; at least one frame
    velocity = np.zeros((T, N_KEYS))
    velocity[10:20, 3] = 64  # pedal-extended label
    outputs = np.zeros((T, N_KEYS))
    outputs[11, 3], outputs[17, 3] = 0.5, 0.9  # the max lies in the sustain tail
    key_down = np.zeros((T, N_KEYS))
    key_down[10:14, 3] = 64
    rows = rows_by_name([excerpt_of([output(outputs)], [paper_target(velocity)], key_down=key_down)],
                        ["paper", "5b max over key-down span"])
    assert rows["paper"]["MAE raw"] == pytest.approx(0.9 * 128 - 64, abs=1e-4)
    assert rows["5b max over key-down span"]["MAE raw"] == pytest.approx(0.0)


def test_key_down_variant_needs_the_h5_roll():
    velocity = np.zeros((T, N_KEYS))
    velocity[10:20, 3] = 64
    excerpt = excerpt_of([output(np.zeros((T, N_KEYS)))], [paper_target(velocity)])
    rows = ablation_rows([excerpt], [BY_NAME["paper"], BY_NAME["5b max over key-down span"]])
    assert [row["variant"] for row in rows] == ["paper"]  # skipped, with a warning


def test_threshold_on_score_silent_cells_removes_an_output_the_ground_truth_hides():
    velocity = np.zeros((T, N_KEYS))
    velocity[10:20, 5], velocity[5:15, 30] = 64, 127
    score = np.zeros((T, N_KEYS))
    score[16:26, 5], score[5:15, 30] = 1, 1  # the score of key 5 lies 6 frames late
    outputs = np.zeros((T, N_KEYS))
    outputs[12, 5], outputs[18, 5], outputs[8, 30] = 0.8, 0.5, 1.0
    rows = rows_by_name([excerpt_of([output(outputs)], [paper_target(velocity, frame=score)])],
                        ["paper", "3 threshold on score-silent cells"])
    # GT-silent noise is all 0 (no threshold): estimates 102.4 and 128 -> errors 38.4 and 1
    assert rows["paper"]["MAE z=3"] == pytest.approx((38.4 + 1) / 2, abs=1e-4)
    # score-silent noise holds the 0.8: threshold 0.8 zeroes every output <= 0.8, also the 0.5
    assert rows["3 threshold on score-silent cells"]["MAE z=3"] == pytest.approx((64 + 1) / 2)
    assert rows["3 threshold on score-silent cells"]["MAE raw"] == rows["paper"]["MAE raw"]


def realistic_excerpt(seed=1):
    """Two 640-frame segments with noisy outputs; the corrected set has other outputs and shifted labels."""
    rng = np.random.default_rng(seed)

    def segment(shift):
        velocity = np.zeros((SEGMENT_FRAMES, N_KEYS))
        for key in rng.choice(N_KEYS, 12, replace=False):
            for start in range(5 + shift, SEGMENT_FRAMES - 30, 60):
                velocity[start:start + int(rng.integers(5, 40)), key] = rng.integers(1, 128)
        outputs = np.clip(velocity / 128 + rng.normal(0, 0.05, velocity.shape), -0.2, 1.05)
        return velocity, outputs

    paper = [segment(0) for _ in range(2)]
    corrected = [segment(1) for _ in range(2)]
    paper_targets = [paper_target(v) for v, _ in paper]
    corrected_targets = [with_notes(paper_target(v), onset_notes(paper_target(v))) for v, _ in corrected]
    return excerpt_of([output(o) for _, o in paper], paper_targets,
                      [output(o) for _, o in corrected], corrected_targets)


def test_endpoints_equal_the_protocols_and_pair_set_switches_are_wired():
    excerpt = realistic_excerpt()
    paper_outputs, paper_targets = excerpt.pairs[PAPER]
    corrected_outputs, corrected_targets = excerpt.pairs[CORRECTED]
    rows = rows_by_name([excerpt], ["paper", "2a labels at 31.25 fps", "2b outputs from 31.25 fps score",
                                    "2 labels + score at 31.25 fps", "corrected"])
    expected = {
        "paper": (paper_outputs, paper_targets, PAPER),
        "2a labels at 31.25 fps": (paper_outputs, corrected_targets, PAPER),
        "2b outputs from 31.25 fps score": (corrected_outputs, paper_targets, PAPER),
        "2 labels + score at 31.25 fps": (corrected_outputs, corrected_targets, PAPER),
        "corrected": (corrected_outputs, corrected_targets, CORRECTED),
    }
    for name, (outputs, targets, protocol) in expected.items():
        metrics = (paper_metrics if protocol == PAPER else corrected_metrics)(outputs, targets)
        post = postprocess_metrics(outputs, targets, 3.0, protocol)
        assert rows[name]["notes"] == metrics["n_notes"]
        assert rows[name]["MAE raw"] == pytest.approx(metrics["frame_max_error"], rel=1e-12)
        assert rows[name]["STD raw"] == pytest.approx(metrics["std_max_error"], rel=1e-12)
        assert rows[name]["MAE z=3"] == pytest.approx(post["frame_max_error"], rel=1e-12)
        assert rows[name]["STD z=3"] == pytest.approx(post["std_max_error"], rel=1e-12)
    assert paper_post_mae([excerpt]) == pytest.approx(rows["paper"]["MAE z=3"], rel=1e-12)
    assert rows["2b outputs from 31.25 fps score"]["MAE raw"] != rows["paper"]["MAE raw"]


def test_pedal_flags_published_indexing_reads_the_wrong_time():
    pedal_0, pedal_1 = np.zeros(636), np.zeros(636)
    pedal_0[634] = 1  # read by the copied frames 636..639 of segment 0
    pedal_1[60:70] = 1
    targets = [paper_target(np.zeros((SEGMENT_FRAMES, N_KEYS)), pedal=np.concatenate([p, p]))
               for p in (pedal_0, pedal_1)]
    spans = [(1, 700, 710, 50.0), (2, 637, 640, 50.0), (3, 100, 110, 50.0)]
    published, per_segment = pedal_flags(spans, targets)
    assert published.tolist() == [False, False, False]
    assert per_segment.tolist() == [True, True, False]


def test_copied_onsets_count_the_duplicated_strikes():
    velocity = np.zeros((SEGMENT_FRAMES, N_KEYS))
    velocity[633:636, 7] = 90
    velocity[636:640] = velocity[632:636]  # the published 636 -> 640 copy
    assert copied_onsets([paper_target(velocity)]) == 1  # onset at 633 again at 637


def test_rescale_float32_and_strict_threshold():
    segments = [np.array([[0.2, 0.4]], np.float32), np.array([[1.2, 0.6]], np.float32)]
    rescaled = rescale_linear01_float32(segments)
    assert rescaled[0].dtype == np.float32
    np.testing.assert_allclose(np.concatenate(rescaled).ravel(), [0.0, 0.2, 1.0, 0.4], atol=1e-7)
    first, second = np.zeros((2, N_KEYS), np.float32), np.full((2, N_KEYS), 0.3, np.float32)
    first[0, :3] = 0.5, 0.4, 0.6
    cleaned = remove_noise_strictly_below([output(first), output(second)], [0.5, None])
    np.testing.assert_array_equal(cleaned[0][0, :3], np.float32([0.5, 0.0, 0.6]))  # the threshold cell stays
    np.testing.assert_array_equal(cleaned[1], second)  # no threshold: unchanged


def test_paper_key_down_roll_ends_at_the_key_release(tmp_path):
    events = ["control_change channel=0 control=64 value=127 time=0", "note_on channel=0 note=60 velocity=80 time=0",
              "note_on channel=0 note=60 velocity=0 time=0", "control_change channel=0 control=64 value=0 time=0",
              "note_on channel=0 note=72 velocity=50 time=0", "note_on channel=0 note=72 velocity=0 time=0"]
    path = write_excerpt(tmp_path / "p.h5", np.zeros(16000 * 6, np.int16), events, [0.5, 1.0, 2.0, 4.0, 4.5, 5.0], 6.0)
    key_down = paper_key_down_roll(path, 1)  # (640, 88)
    extended = next(paper_segments(path)).target["velocity_roll"][0]
    assert np.flatnonzero(key_down[:, 39]).tolist() == list(range(31, 63))  # 1.0 .. 2.0 s at 31 fps
    assert np.flatnonzero(extended[:, 39]).tolist() == list(range(31, 125))  # to the pedal release at 4.0 s


def test_variants_differ_from_paper_in_exactly_one_field_except_the_corrected_row():
    baseline = Variant("paper", "")
    fields = ("outputs", "labels", "notes", "noise_reference", "clip", "statistic")
    for variant in VARIANTS[1:-1]:
        changed = [f for f in fields if getattr(variant, f) != getattr(baseline, f)]
        allowed = 2 if variant.name.startswith("2 ") else 1  # row 2: labels and score condition together
        assert len(changed) == allowed, (variant.name, changed)
    assert VARIANTS[-1].name == "corrected" and all(getattr(VARIANTS[-1], f) != getattr(baseline, f)
                                                    for f in ("outputs", "labels", "notes", "noise_reference", "clip"))
