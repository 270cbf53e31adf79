"""utils/data/label_drift.py and MAESTRO(paper_label_prob=...): training labels on the paper's 31 fps test clock."""
import numpy as np
import pytest
import torch

from utils.conventions import HOP_LENGTH, MAX_MIDI, MIN_MIDI, PAPER_TEST_FPS, SAMPLE_RATE, SEGMENT_SAMPLES
from utils.data.label_drift import paper_timed_rolls
from utils.data.midi_labels import parse_midi, segment_rolls
from maestro_layout import SHORT, _short

BEGIN = 3 * HOP_LENGTH + 100  # a crop that does not start on a frame boundary
START = 3 * HOP_LENGTH / SAMPLE_RATE  # time of its first label frame
PIECE = 60 * SAMPLE_RATE


def _rolls(notes, roll_function, length=SEGMENT_SAMPLES):
    return roll_function(np.array(notes, dtype=np.float64), BEGIN, PIECE, length, HOP_LENGTH, SAMPLE_RATE,
                         MIN_MIDI, MAX_MIDI)


def test_a_note_lands_on_its_31fps_frame_not_its_31_25fps_frame():
    notes = [(START + 10.24, START + 11.24, 60, 64)]  # onset, offset (s), pitch, velocity
    paper, aligned = _rolls(notes, paper_timed_rolls), _rolls(notes, segment_rolls)
    key = 60 - MIN_MIDI
    assert np.flatnonzero(paper["onset"][:, key]).tolist() == [round(10.24 * PAPER_TEST_FPS)]  # 317
    assert np.flatnonzero(aligned["onset"][:, key]).tolist() == [round(10.24 * SAMPLE_RATE / HOP_LENGTH)]  # 320
    assert np.flatnonzero(paper["frame"][:, key]).tolist() == list(range(317, 348))
    assert paper["velocity"][330, key] == pytest.approx(64 / 128)


def test_the_last_four_frames_copy_the_four_before_them_like_the_paper_adjustment():
    notes = [(START + 633 / PAPER_TEST_FPS, START + 634.6 / PAPER_TEST_FPS, 50, 90)]
    paper = _rolls(notes, paper_timed_rolls)
    key = 50 - MIN_MIDI
    assert np.flatnonzero(paper["onset"][:, key]).tolist() == [633, 637]  # the copy repeats the onset
    for roll in paper.values():
        np.testing.assert_array_equal(roll[636:640], roll[632:636])


def test_a_short_crop_is_warped_but_not_padded():
    notes = [(START + 29 / PAPER_TEST_FPS, START + 30 / PAPER_TEST_FPS, 40, 30)]
    paper = _rolls(notes, paper_timed_rolls, length=SHORT)
    assert paper["frame"].shape == (SHORT // HOP_LENGTH, 88)
    assert np.flatnonzero(paper["onset"][:, 40 - MIN_MIDI]).tolist() == [29]  # a copy would overwrite it


def test_paper_label_prob_one_labels_every_item_on_the_paper_clock_and_keeps_the_audio(layout):
    aligned, paper = _short(layout), _short(layout, paper_label_prob=1.0)
    for index, piece in enumerate(paper.pieces):
        begin = paper.crop_begin(index)
        assert begin == aligned.crop_begin(index)
        expected = paper_timed_rolls(parse_midi(piece.midi_path), begin, piece.n_samples, SHORT, HOP_LENGTH,
                                     SAMPLE_RATE, MIN_MIDI, MAX_MIDI)
        item, plain = paper[index], aligned[index]
        assert torch.equal(item["audio"], plain["audio"])
        for name, roll in expected.items():
            np.testing.assert_array_equal(item[name].numpy(), roll)


def test_paper_label_prob_draws_per_epoch_and_item_reproducibly(layout):
    dataset = _short(layout, paper_label_prob=0.5, crops_per_epoch=20)
    draws = []
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        draws.append([dataset.paper_timed(index) for index in range(len(dataset))])
    assert 0 < sum(draws[0]) < len(dataset) and draws[0] != draws[1]
    dataset.set_epoch(0)
    assert [dataset.paper_timed(index) for index in range(len(dataset))] == draws[0]
    assert not any(_short(layout).paper_timed(index) for index in range(3))  # default 0: as published


@pytest.mark.parametrize("probability", [-0.1, 1.5])
def test_paper_label_prob_out_of_range_is_refused(layout, probability):
    with pytest.raises(ValueError, match="paper_label_prob"):
        _short(layout, paper_label_prob=probability)
