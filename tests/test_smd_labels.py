"""SMD test labels (utils/data/target_processor.py) against the published TargetProcessor's outputs."""
import mido
import numpy as np
import pytest

from utils.conventions import FRAMES_PER_SECOND, PAPER_TEST_FPS, SEGMENT_FRAMES, SEGMENT_SECONDS
from utils.data.smd import SMDExcerpt, paper_segments
from utils.data.corrected_labels import parse_notes, render_segment
from utils.data.target_processor import TargetProcessor, regression_roll

ROLLS = ("onset_roll", "offset_roll", "frame_roll", "velocity_roll", "mask_roll", "reg_onset_roll",
         "pedal_frame_roll")


@pytest.fixture(scope="module")
def labels(reference_dir):
    return np.load(reference_dir / "test_labels.npz")


@pytest.fixture(scope="module")
def events(labels):
    return [e.decode() for e in labels["midi_event"]], labels["midi_event_time"]


def test_target_processor_equals_reference(labels, events):
    midi_events, times = events
    processor = TargetProcessor(SEGMENT_SECONDS, PAPER_TEST_FPS)
    assert processor.frames_num == 636
    start_time = 0
    for i in range(4):
        assert start_time == float(labels[f"seg{i}_start"])
        targets, _, _ = processor.process(start_time, times, midi_events, extend_pedal=True)
        for name in ROLLS:
            expected = labels[f"seg{i}_{name}"]
            assert targets[name].shape == expected.shape, (i, name)
            np.testing.assert_array_equal(targets[name], expected, err_msg=f"seg{i} {name}")
        start_time += SEGMENT_SECONDS


def test_labels_need_stored_float32_times(labels, events):
    """The published labels depend on the float32 event times: float64 times change reg_onset_roll."""
    midi_events, times = events
    targets, _, _ = TargetProcessor(SEGMENT_SECONDS, PAPER_TEST_FPS).process(0, times.astype(np.float64), midi_events)
    assert not np.array_equal(targets["reg_onset_roll"], labels["seg0_reg_onset_roll"])


def test_paper_segments_equal_published_eval_pairs(reference_dir, labels, events):
    """The adjusted (640 / 1272 frame) targets equal the ground truth the published protocol evaluated."""
    pairs = np.load(reference_dir / "eval_pairs.npz")
    midi_events, times = events
    excerpt = SMDExcerpt("piece", np.zeros(1_120_000, np.int16), midi_events, times, float(times[-1]))
    segments = list(paper_segments(excerpt))
    assert len(segments) == 4
    for segment in segments:
        for name in ("onset_roll", "frame_roll", "velocity_roll", "pedal_frame_roll"):
            np.testing.assert_array_equal(segment.target[name], pairs[f"seg{segment.index}_{name}"])
        np.testing.assert_array_equal(segment.target["offset_roll"][0], labels[f"seg{segment.index}_offset_roll"])


def test_regression_roll_matches_published_loop():
    """Second half of a gap: distance to the next event, minus the previous event's sub-frame offset."""
    distances = np.ones(12)
    distances[[3, 4, 9]] = [0.01, -0.012, 0.004]
    step = 1 / 31
    expected = np.empty(12)
    for t in range(12):
        if t < 3:
            value = step * (t - 3) - 0.01
        elif t == 3:
            value = step * (t - 4) - 0.01  # adjacent events: midpoint == 3, so t counts to the next one
        elif t < 6:
            value = step * (t - 4) + 0.012
        elif t < 9:
            value = step * (t - 9) + 0.012  # next event's distance, previous event's offset
        else:
            value = step * (t - 9) - 0.004
        expected[t] = 1 - min(abs(value), 0.05) * 20
    np.testing.assert_allclose(regression_roll(distances, 31), expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(regression_roll(np.ones(5), 31), np.zeros(5))


def test_parse_notes_is_audioloader_table_without_merging(reference_dir, events):
    """Corrected notes: the training note table, with same-instant double strikes kept once and
    every pedal-extended end cut at the next strike of its key."""
    midi_events, times = events
    notes = parse_notes(midi_events, times)
    table = np.load(reference_dir / "training_labels.npz")["tsv"]
    later_same_strike = [any(table[j, 2] == row[2] and table[j, 0] == row[0] for j in range(i + 1, len(table)))
                         for i, row in enumerate(table)]
    expected = table[~np.array(later_same_strike)]
    expected = expected[np.lexsort((expected[:, 2], expected[:, 0]))]
    for pitch in np.unique(expected[:, 2]):
        rows = np.flatnonzero(expected[:, 2] == pitch)
        expected[rows[:-1], 1] = np.minimum(expected[rows[:-1], 1], expected[rows[1:], 0])
    assert len(notes) == len(expected) == 487
    np.testing.assert_allclose(notes, expected, rtol=0, atol=1e-5)  # float32 event times


def _message(kind, **fields):
    return str(mido.Message(kind, **fields))


def test_parse_notes_restrike_pedal_and_zero_time():
    rows = [  # (time, message)
        (0.0, _message("note_on", note=60, velocity=80)),
        (0.3, _message("note_on", note=60, velocity=0)),
        (1.0, _message("note_on", note=64, velocity=50)),
        (1.25, _message("note_on", note=64, velocity=90)),  # re-strike, no note-off between
        (1.5, _message("note_off", note=64, velocity=40)),
        (2.0, _message("control_change", control=64, value=100)),
        (2.1, _message("note_on", note=72, velocity=100)),
        (2.2, _message("note_on", note=74, velocity=30)),
        (2.5, _message("note_on", note=72, velocity=0)),  # inside the press: extended to 3.0
        (2.7, _message("note_on", note=74, velocity=0)),
        (2.8, _message("note_on", note=74, velocity=35)),  # cuts the first 74 at its strike
        (2.9, _message("note_on", note=74, velocity=0)),
        (3.0, _message("control_change", control=64, value=10)),
        (4.0, str(mido.MetaMessage("end_of_track"))),
    ]
    times = np.array([t for t, _ in rows], dtype=np.float32)
    notes = parse_notes([m for _, m in rows], times)
    expected = [(0.0, 0.3, 60, 80), (1.0, 1.25, 64, 50), (1.25, 1.5, 64, 90), (2.1, 3.0, 72, 100),
                (2.2, 2.8, 74, 30), (2.8, 3.0, 74, 35)]
    np.testing.assert_allclose(notes, expected, atol=1e-6)
    unextended = parse_notes([m for _, m in rows], times, extend_pedal=False)
    np.testing.assert_allclose(unextended[3], (2.1, 2.5, 72, 100), atol=1e-6)


def test_render_segment_notes_and_rolls():
    notes = np.array([[0.0, 0.3, 60, 80], [1.0, 1.25, 64, 50], [1.25, 1.5, 64, 90],
                      [20.0, 21.0, 67, 70], [5.0, 5.001, 30, 10], [3.0, 4.0, 120, 99]])
    pedals = np.array([[2.0, 3.0]])
    seg0 = render_segment(notes, pedals, 0.0, SEGMENT_FRAMES, FRAMES_PER_SECOND)
    np.testing.assert_array_equal(seg0["notes"], [[39, 0, 9, 80], [43, 31, 39, 50], [43, 39, 47, 90],
                                                  [46, 625, 640, 70], [9, 156, 157, 10]])  # 120 is off the keyboard
    assert seg0["frame_roll"].shape == (SEGMENT_FRAMES, 88)
    np.testing.assert_array_equal(np.flatnonzero(seg0["onset_roll"][:, 43]), [31, 39])
    np.testing.assert_array_equal(seg0["velocity_roll"][31:47, 43], [50] * 8 + [90] * 8)
    assert seg0["velocity_roll"][47, 43] == 0 and seg0["offset_roll"][47, 43] == 1
    assert seg0["frame_roll"][156, 9] == 1 and seg0["frame_roll"][157, 9] == 0  # short note keeps 1 frame
    np.testing.assert_array_equal(np.flatnonzero(seg0["pedal_frame_roll"]), np.arange(62, 94))
    seg1 = render_segment(notes, pedals, SEGMENT_SECONDS, SEGMENT_FRAMES, FRAMES_PER_SECOND)
    assert len(seg1["notes"]) == 0  # the crossing note is evaluated in segment 0 only
    np.testing.assert_array_equal(np.flatnonzero(seg1["frame_roll"][:, 46]), np.arange(16))
    np.testing.assert_array_equal(np.flatnonzero(seg1["mask_roll"][:, 46] == 0), np.arange(16))
    assert seg1["onset_roll"].sum() == 0
