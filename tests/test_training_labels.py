"""MAESTRO training labels (utils/data/midi_labels.py) against the published loader's reference outputs."""
import os

import mido
import numpy as np
import pytest

from utils.conventions import SEGMENT_FRAMES, SEGMENT_SAMPLES, VELOCITY_SCALE
from utils.data.midi_labels import MidiLabelError, load_note_table, parse_midi, segment_rolls

ROLL_NAMES = ("onset", "offset", "frame", "velocity")


@pytest.fixture(scope="module")
def reference(reference_dir):
    return np.load(reference_dir / "training_labels.npz")


def test_note_table_equals_reference(reference_dir, reference):
    table = parse_midi(reference_dir / "piece.midi")
    assert table.dtype == np.float64
    np.testing.assert_array_equal(table, reference["tsv"])


@pytest.mark.parametrize("segment", range(4))
def test_segment_rolls_equal_reference(reference_dir, reference, segment):
    begin = int(reference[f"seg{segment}_begin"])
    rolls = segment_rolls(parse_midi(reference_dir / "piece.midi"), begin, int(reference["audio_length"]))
    for name in ROLL_NAMES:
        expected = reference[f"seg{segment}_{name}"]
        assert rolls[name].shape == (SEGMENT_FRAMES, 88) and rolls[name].dtype == np.float32
        np.testing.assert_array_equal(rolls[name], expected, err_msg=f"seg{segment}_{name}")


def _write_midi(path, messages, ticks_per_beat=480):
    """A one-track MIDI file at 120 bpm from (delta_ticks, message) pairs."""
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    track = mido.MidiTrack()
    for delta, message in messages:
        track.append(message.copy(time=delta))
    midi.tracks.append(track)
    midi.save(path)
    return path


def test_pedal_extends_release_and_restrike_ends_note(tmp_path):
    # 480 ticks = 0.5 s. Note 60 released at 0.5 s with the pedal down -> ends at the release (1.5 s).
    # Note 62 released after the pedal is up -> keeps its own end. Note 64 re-struck -> first ends there.
    path = _write_midi(tmp_path / "pedal.mid", [
        (0, mido.Message("note_on", note=60, velocity=70)),
        (240, mido.Message("control_change", control=64, value=100)),
        (240, mido.Message("note_off", note=60, velocity=0)),
        (960, mido.Message("control_change", control=64, value=63)),  # < 64 counts as "up"
        (0, mido.Message("note_on", note=62, velocity=90)),
        (480, mido.Message("note_on", note=62, velocity=0)),
        (0, mido.Message("note_on", note=64, velocity=10)),
        (240, mido.Message("note_on", note=64, velocity=20)),
        (240, mido.Message("note_off", note=64)),
    ])
    expected = [[0.0, 1.5, 60, 70], [1.5, 2.0, 62, 90], [2.0, 2.25, 64, 10], [2.25, 2.5, 64, 20]]
    np.testing.assert_allclose(parse_midi(path), expected, atol=1e-9)


def test_short_note_leaves_only_offset_mark():
    # A note shorter than half a frame: first frame == end frame, so (as published) the offset mark
    # overwrites the onset and no frame/velocity is set.
    rolls = segment_rolls(np.array([[1.0, 1.005, 60, 64], [2.0, 2.5, 61, 32]]), 0, SEGMENT_SAMPLES * 2)
    frame_of = lambda seconds: round(seconds * 31.25)  # noqa: E731 - the 16 kHz / 512 frame rate
    assert rolls["offset"][frame_of(1.0), 60 - 21] == 1 and rolls["onset"][:, 60 - 21].sum() == 0
    assert rolls["frame"][:, 60 - 21].sum() == 0 and rolls["velocity"][:, 60 - 21].sum() == 0
    span = slice(frame_of(2.0), frame_of(2.5))
    assert rolls["onset"][frame_of(2.0), 61 - 21] == 1 and rolls["onset"][:, 61 - 21].sum() == 1
    assert np.all(rolls["velocity"][span, 61 - 21] == np.float32(32 / VELOCITY_SCALE))
    assert rolls["frame"][:, 61 - 21].sum() == frame_of(2.5) - frame_of(2.0)
    assert rolls["offset"][frame_of(2.5), 61 - 21] == 1


def test_note_table_cache(tmp_path, reference_dir, reference):
    midi = tmp_path / "piece.midi"
    midi.write_bytes((reference_dir / "piece.midi").read_bytes())
    cache = tmp_path / "cache" / "piece.tsv.npy"
    np.testing.assert_array_equal(load_note_table(midi, cache), reference["tsv"])
    assert cache.is_file()
    key = np.load(cache)[:1]
    np.save(cache, np.concatenate([key, np.ones((3, 4))]))  # a cache of the same MIDI content is used as is
    np.testing.assert_array_equal(load_note_table(midi, cache), np.ones((3, 4)))
    newer = cache.stat().st_mtime + 10
    os.utime(midi, (newer, newer))  # touched, same content: still the cache
    np.testing.assert_array_equal(load_note_table(midi, cache), np.ones((3, 4)))
    np.save(cache, np.ones((3, 4)))  # a cache without the MIDI's key (older format): rebuilt
    np.testing.assert_array_equal(load_note_table(midi, cache), reference["tsv"])
    assert sorted(p.name for p in cache.parent.iterdir()) == ["piece.tsv.npy"]  # no temp files left


def test_note_table_cache_follows_content_not_mtime(tmp_path, reference_dir):
    """A MIDI replaced by a file with an older modification time gets its own labels, not the cached ones."""
    import mido

    midi, cache = tmp_path / "piece.midi", tmp_path / "piece.tsv.npy"
    midi.write_bytes((reference_dir / "piece.midi").read_bytes())
    first = load_note_table(midi, cache)
    replacement = mido.MidiFile()
    replacement.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=99, time=0),
                                              mido.Message("note_off", note=60, velocity=0, time=480)]))
    replacement.save(midi)
    os.utime(midi, (1, 1))  # 1970: older than the cache
    table = load_note_table(midi, cache)
    assert len(first) > 1 and table.tolist() == [[0.0, 0.5, 60.0, 99.0]]


def test_corrupt_midi_names_file(tmp_path):
    path = tmp_path / "corrupt.midi"
    path.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(MidiLabelError, match=r"corrupt\.midi: not a readable MIDI file"):
        parse_midi(path)


def test_midi_without_notes_names_file(tmp_path):
    path = _write_midi(tmp_path / "pedal_only.mid", [(0, mido.Message("control_change", control=64, value=127)),
                                                   (480, mido.Message("control_change", control=64, value=0))])
    with pytest.raises(MidiLabelError, match=r"pedal_only\.mid: MIDI file has no notes"):
        parse_midi(path)


def test_notes_outside_piano_range_named(tmp_path):
    path = _write_midi(tmp_path / "low.mid", [(0, mido.Message("note_on", note=20, velocity=50)),
                                            (0, mido.Message("note_on", note=109, velocity=50)),
                                            (480, mido.Message("note_off", note=20)),
                                            (0, mido.Message("note_off", note=109))])
    with pytest.raises(MidiLabelError, match=r"low\.mid: MIDI notes \[20, 109\] are outside the piano range 21\.\.108"):
        parse_midi(path)
