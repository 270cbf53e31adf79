"""SMD .h5 reader/writer and the two segment protocols (utils/data/smd.py) on a small synthetic excerpt."""
import h5py
import mido
import numpy as np
import pytest

from utils.conventions import SAMPLE_RATE, SEGMENT_FRAMES, SEGMENT_SAMPLES, SEGMENT_SECONDS
from utils.data.smd import (SMDExcerpt, SMDFileError, SMDFileNotFoundError, corrected_segments, list_excerpts,
                       paper_segments, read_excerpt, write_excerpt)

DURATION = 45.0  # three segments; the last one is 64640 samples long, then zero padding


def _note(note, velocity):
    return str(mido.Message("note_on", note=note, velocity=velocity))


EVENTS = [  # (seconds, message)
    (0.0, _note(60, 80)),
    (0.52, _note(60, 0)),
    (1.0, _note(64, 50)),
    (1.25, _note(64, 90)),  # re-strike without a note-off in between
    (1.5, _note(64, 0)),
    (2.0, str(mido.Message("control_change", control=64, value=127))),
    (2.1, _note(72, 100)),
    (2.5, _note(72, 0)),  # extended to the pedal release
    (3.0, str(mido.Message("control_change", control=64, value=0))),
    (20.0, _note(67, 70)),  # crosses the 20.48 s boundary
    (21.0, _note(67, 0)),
    (41.0, _note(48, 60)),
    (41.5, _note(48, 0)),
    (44.0, str(mido.MetaMessage("end_of_track"))),
]


@pytest.fixture(scope="module")
def waveform():
    rng = np.random.default_rng(0)
    return rng.integers(-20000, 20000, int(DURATION * SAMPLE_RATE), dtype=np.int16)


@pytest.fixture(scope="module")
def excerpt_path(tmp_path_factory, waveform):
    path = tmp_path_factory.mktemp("smd") / "Bach_BWV849-01_001_20090916-SMD.h5"
    write_excerpt(path, waveform, [m for _, m in EVENTS], np.array([t for t, _ in EVENTS]), DURATION,
                  composer="Bach", title="BWV849-01")
    return path


def test_round_trip(excerpt_path, waveform):
    excerpt = read_excerpt(excerpt_path)
    assert excerpt.name == "Bach_BWV849-01_001_20090916-SMD"
    np.testing.assert_array_equal(excerpt.waveform, waveform)
    assert excerpt.waveform.dtype == np.int16
    assert excerpt.midi_events == [m for _, m in EVENTS]
    assert excerpt.midi_event_times.dtype == np.float32
    np.testing.assert_array_equal(excerpt.midi_event_times, np.float32([t for t, _ in EVENTS]))
    assert excerpt.duration == DURATION
    assert excerpt.attrs == {"composer": "Bach", "title": "BWV849-01"}
    with h5py.File(excerpt_path) as hf:  # the published layout
        assert hf["midi_event"].dtype == np.dtype("S100")
    assert [p.name for p in excerpt_path.parent.iterdir()] == [excerpt_path.name]  # no temp file left


def test_paper_segments(excerpt_path, waveform):
    segments = list(paper_segments(excerpt_path))
    assert [s.start_time for s in segments] == [0.0, 20.48, 40.96]
    first, _, last = segments
    for name in ("onset_roll", "frame_roll", "velocity_roll"):
        assert first.target[name].shape == (1, SEGMENT_FRAMES, 88) and first.target[name].dtype == np.float32
    for name in ("offset_roll", "mask_roll", "reg_onset_roll"):
        assert first.target[name].shape == (1, 636, 88)
    assert "waveform" not in first.target
    pedal = first.target["pedal_frame_roll"]
    assert pedal.shape == (1, 1272)  # published quirk: doubled, not padded
    np.testing.assert_array_equal(pedal[0, 636:], pedal[0, :636])
    np.testing.assert_array_equal(np.flatnonzero(pedal[0, :636]), np.arange(62, 94))  # 2.0 .. 3.0 s at 31 fps
    # last 4 frames copied: the note crossing 20.48 s sounds to frame 635, so frames 636..639 repeat it
    np.testing.assert_array_equal(first.target["frame_roll"][0, 636:], first.target["frame_roll"][0, 632:636])
    assert first.target["frame_roll"][0, 636:, 67 - 21].tolist() == [1, 1, 1, 1]
    # re-strike: the published pairing keeps only the second strike
    np.testing.assert_array_equal(np.flatnonzero(first.target["onset_roll"][0, :, 64 - 21]), [39])
    # pedal extension (inclusive end frame round(3.0 * 31) = 93)
    np.testing.assert_array_equal(np.flatnonzero(first.target["frame_roll"][0, :, 72 - 21]), np.arange(65, 94))
    assert first.score_roll.shape == (SEGMENT_FRAMES, 88) and first.score_roll.dtype == np.float32
    np.testing.assert_array_equal(first.score_roll, first.target["frame_roll"][0])
    # audio: int16 / 32767, zero padded at the end of the excerpt
    assert first.waveform.shape == (SEGMENT_SAMPLES,) and first.waveform.dtype == np.float32
    np.testing.assert_array_equal(first.waveform, (waveform[:SEGMENT_SAMPLES] / 32767.0).astype(np.float32))
    tail = len(waveform) - 2 * SEGMENT_SAMPLES
    np.testing.assert_array_equal(last.waveform[:tail], (waveform[2 * SEGMENT_SAMPLES:] / 32767.0).astype(np.float32))
    assert not last.waveform[tail:].any()


def test_paper_shift_moves_score_not_target(excerpt_path):
    plain = list(paper_segments(excerpt_path))
    shifted = list(paper_segments(excerpt_path, shift=0.2))
    for a, b in zip(plain, shifted):
        for name in a.target:
            np.testing.assert_array_equal(a.target[name], b.target[name])
        np.testing.assert_array_equal(a.waveform, b.waveform)
    key = 60 - 21  # 0.0 .. 0.52 s: frames 0..16 unshifted, 0..round(0.32 * 31) = 10 shifted
    np.testing.assert_array_equal(np.flatnonzero(plain[0].score_roll[:, key]), np.arange(17))
    np.testing.assert_array_equal(np.flatnonzero(shifted[0].score_roll[:, key]), np.arange(11))


def test_corrected_segments(excerpt_path, waveform):
    segments = list(corrected_segments(excerpt_path))
    assert [s.start_time for s in segments] == [0.0, SEGMENT_SECONDS, 2 * SEGMENT_SECONDS]
    first, second, last = segments
    for name in ("onset_roll", "frame_roll", "velocity_roll", "offset_roll", "mask_roll", "reg_onset_roll"):
        assert first.target[name].shape == (1, SEGMENT_FRAMES, 88), name
    assert first.target["pedal_frame_roll"].shape == (1, SEGMENT_FRAMES)
    # notes at 31.25 fps: a note at t = 0 and both strikes of the re-struck key are kept
    np.testing.assert_array_equal(first.target["notes"], [[39, 0, 16, 80], [43, 31, 39, 50], [43, 39, 47, 90],
                                                          [51, 66, 94, 100], [46, 625, 640, 70]])
    assert len(second.target["notes"]) == 0
    np.testing.assert_array_equal(last.target["notes"], [[27, 1, 17, 60]])
    assert first.target["frame_roll"][0, 625:, 46].all()  # sounds to the segment end
    np.testing.assert_array_equal(first.score_roll, first.target["frame_roll"][0])
    np.testing.assert_array_equal(first.waveform, (waveform[:SEGMENT_SAMPLES] / 32768.0).astype(np.float32))
    shifted = next(corrected_segments(excerpt_path, shift=0.2))
    np.testing.assert_array_equal(shifted.target["frame_roll"], first.target["frame_roll"])
    np.testing.assert_array_equal(np.flatnonzero(shifted.score_roll[:, 39]), np.arange(10))  # round(0.32*31.25)


def test_list_excerpts(tmp_path, excerpt_path):
    for name in ("b.h5", "a.h5", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_excerpts(tmp_path)] == ["a.h5", "b.h5"]
    with pytest.raises(SMDFileNotFoundError, match="SMD folder not found"):
        list_excerpts(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SMDFileNotFoundError, match="no .h5 files"):
        list_excerpts(tmp_path / "empty")


def _h5(path, drop=(), **overrides):
    """Write an .h5 by hand, leaving out datasets/attributes in ``drop``."""
    data = {"waveform": np.zeros(16000, np.int16),
            "midi_event": np.array([_note(60, 80).encode(), _note(60, 0).encode()], dtype="S100"),
            "midi_event_time": np.float32([0.0, 0.5])}
    data.update(overrides)
    with h5py.File(path, "w") as hf:
        for name, value in data.items():
            if name not in drop:
                hf.create_dataset(name, data=value)
        if "duration" not in drop:
            hf.attrs["duration"] = 1.0
    return path


@pytest.mark.parametrize("drop, overrides, message", [
    (("midi_event_time",), {}, "missing dataset 'midi_event_time'"),
    (("duration",), {}, "missing attribute 'duration'"),
    ((), {"waveform": np.zeros(16000, np.float32)}, "waveform must be 1-D int16"),
    ((), {"waveform": np.zeros((2, 8000), np.int16)}, "waveform must be 1-D int16"),
    ((), {"midi_event_time": np.float32([0.0, 0.5, 0.7])}, "2 midi_event but 3 midi_event_time"),
    ((), {"midi_event": np.array([_note(60, 0).encode()] * 2, dtype="S100")}, "no notes"),
    ((), {"midi_event_time": np.float32([0.5, 0.0])}, "non-decreasing"),
])
def test_read_errors(tmp_path, drop, overrides, message):
    path = _h5(tmp_path / "bad.h5", drop, **overrides)
    with pytest.raises(SMDFileError, match=message) as error:
        read_excerpt(path)
    assert str(error.value).startswith(str(path))


def test_read_missing_corrupt_and_truncated(tmp_path, excerpt_path):
    with pytest.raises(SMDFileNotFoundError, match="missing.h5: file not found"):
        read_excerpt(tmp_path / "missing.h5")
    text = tmp_path / "corrupt.h5"
    text.write_text("not hdf5")
    with pytest.raises(SMDFileError, match="corrupt.h5: not an HDF5 file"):
        read_excerpt(text)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(excerpt_path.read_bytes()[:200_000])
    with pytest.raises(SMDFileError, match="truncated.h5: .*truncated"):
        read_excerpt(truncated)


def test_write_refuses_bad_data_and_leaves_nothing(tmp_path):
    events = [_note(60, 80), _note(60, 0)]
    with pytest.raises(SMDFileError, match="out.h5: 2 midi_event but 1 midi_event_time"):
        write_excerpt(tmp_path / "out.h5", np.zeros(10, np.int16), events, [0.0], 1.0)
    with pytest.raises(SMDFileError, match="out.h5: no notes"):
        write_excerpt(tmp_path / "out.h5", np.zeros(10, np.int16), events[1:], [0.0], 1.0)
    with pytest.raises(SMDFileError, match="waveform must be 1-D int16"):
        write_excerpt(tmp_path / "out.h5", np.zeros(10), events, [0.0, 0.5], 1.0)
    assert list(tmp_path.iterdir()) == []


def test_segments_accept_an_excerpt_object():
    excerpt = SMDExcerpt("x", np.ones(SEGMENT_SAMPLES + 1, np.int16), [m for _, m in EVENTS],
                         np.float32([t for t, _ in EVENTS]), (SEGMENT_SAMPLES + 1) / SAMPLE_RATE)
    paper, corrected = list(paper_segments(excerpt)), list(corrected_segments(excerpt))
    assert len(paper) == len(corrected) == 2  # 1 sample past 20.48 s starts a second segment
    assert paper[1].waveform[0] == np.float32(1 / 32767) and not paper[1].waveform[1:].any()
