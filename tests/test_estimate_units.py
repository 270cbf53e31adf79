"""The modules of utils/estimate: MIDI reading and rewriting, segments, rules, checks."""
import io

import mido
import numpy as np
import pretty_midi
import pytest
import torch
from _estimate_fixtures import piece_midi

from utils.conventions import FRAMES_PER_SECOND, SEGMENT_FRAMES, SEGMENT_SAMPLES
from utils.estimate import midi_io, segments
from utils.estimate.checks import hit_rate, length_warning
from utils.estimate.midi_io import read_midi, with_velocities
from utils.estimate.pipeline import segment_generator
from utils.estimate.rules import DEFAULT_RULE, RULES, apply_rule, resolve_rule, to_midi_velocity


def save(midi: mido.MidiFile, path):
    midi.save(path)
    return path


def test_type_0_and_1_give_the_same_times_as_pretty_midi(tmp_path):
    type1 = save(piece_midi(8.0), tmp_path / "type1.mid")
    merged = mido.MidiFile(type=0, ticks_per_beat=480)
    merged.tracks.append(mido.merge_tracks(mido.MidiFile(type1).tracks))
    type0 = save(merged, tmp_path / "type0.mid")
    notes1, notes0 = read_midi(type1).notes, read_midi(type0).notes
    key = lambda n: (n.onset_tick, n.channel, n.pitch)  # noqa: E731
    assert [(n.pitch, n.onset, n.offset, n.velocity) for n in sorted(notes1, key=key)] == \
        [(n.pitch, n.onset, n.offset, n.velocity) for n in sorted(notes0, key=key)]
    reference = sorted((n.start, n.end, n.pitch) for i in pretty_midi.PrettyMIDI(str(type1)).instruments for n in i.notes)
    ours = sorted((n.onset, n.offset, n.pitch) for n in notes1)
    assert np.allclose(np.array(ours), np.array(reference), atol=1e-6)  # three tempi, two tempo changes


def _raw_file(track_body: bytes) -> bytes:
    """A type 0 file of one MTrk chunk whose body is given as raw bytes."""
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + (96).to_bytes(2, "big")
    return header + b"MTrk" + len(track_body).to_bytes(4, "big") + track_body


def test_restrike_zero_velocity_note_off_and_byte_exact_rewrite(tmp_path):
    # no running status, a sysex, a re-strike of 60 and a zero-velocity note_on as note-off
    body = (b"\x00\xf0\x03\x7e\x7f\xf7" b"\x00\xb0\x40\x7f" b"\x00\x90\x3c\x40" b"\x60\x90\x3c\x50"
            b"\x60\x90\x3c\x00" b"\x00\x80\x3e\x00" b"\x00\xff\x2f\x00")
    path = tmp_path / "raw.mid"
    path.write_bytes(_raw_file(body))
    score = read_midi(path)
    assert [(n.pitch, n.velocity, n.onset_tick, n.offset_tick) for n in score.notes] == [(60, 64, 0, 96), (60, 80, 96, 192)]
    new = with_velocities(score, {(0, 2): 11, (0, 3): 22})
    diff = [i for i, (a, b) in enumerate(zip(score.data, new)) if a != b]
    assert len(new) == len(score.data) and [new[i] for i in diff] == [11, 22]
    assert mido.MidiFile(file=io.BytesIO(new)).tracks[0][4].velocity == 0  # the note-off stays a note-off


def test_mido_fallback_changes_only_velocities(tmp_path, monkeypatch):
    path = save(piece_midi(6.0), tmp_path / "piece.mid")
    score = read_midi(path)
    monkeypatch.setattr(midi_io, "velocity_offsets", lambda data: None)
    changes = {(n.track, n.index): 127 for n in score.notes}
    tracks = mido.MidiFile(file=io.BytesIO(with_velocities(score, changes))).tracks
    for t, (old, new) in enumerate(zip(score.midi.tracks, tracks)):
        for i, (a, b) in enumerate(zip(old, new)):
            assert b == (a.copy(velocity=127) if (t, i) in changes else a)
    with pytest.raises(ValueError, match="outside 1..127"):
        with_velocities(score, {(1, score.notes[0].index): 0})


def test_segment_starts_and_assignment():
    assert segments.segment_starts(SEGMENT_SAMPLES, 320).tolist() == [0]
    assert segments.segment_starts(16000 * 60, 320).tolist() == [0, 320, 640, 960, 1280]  # 1876 frames
    starts = np.array([0, 320, 640])
    onsets = np.array([10, 300, 500, 700, 1270])
    assert segments.assign_segments(onsets, starts).tolist() == [0, 0, 1, 1, 2]
    chosen = starts[[0, 0, 1, 1, 2]]
    margin = np.minimum(onsets - chosen, chosen + SEGMENT_FRAMES - 1 - onsets)
    assert margin[1:4].min() >= 160 - 1  # inner notes: at least a quarter segment from either edge


def test_sounding_ends_pedal_and_restrike():
    onsets, offsets, pitches = np.array([0.0, 0.5, 1.0]), np.array([0.4, 0.9, 1.2]), np.array([60, 62, 60])
    pedals = np.array([[0.3, 2.0]])
    ends = segments.sounding_ends(onsets, offsets, pitches, pedals)
    assert ends.tolist() == [1.0, 2.0, 2.0]  # pedal-held to 2.0, the first 60 cut at its re-strike


def test_score_rolls_follow_the_training_frames():
    notes = segments.ScoreNotes(onset=np.array([1.0, 2.0, 25.0]), end=np.array([1.001, 3.0, 26.0]), key=np.array([0, 87, 5]))
    frame, onset = segments.score_rolls(notes, start=0)
    first = round(2.0 * FRAMES_PER_SECOND)
    assert frame.shape == (SEGMENT_FRAMES, 88) and frame[:, 0].sum() == 1  # a very short note keeps one frame
    assert frame[first:round(3.0 * FRAMES_PER_SECOND), 87].all() and frame[:, 87].sum() == round(3 * FRAMES_PER_SECOND) - first
    assert onset.sum() == 2 and onset[first, 87] == 1  # the note at 25 s is outside the segment
    assert segments.note_span(notes, 2, start=320) == (round(25 * FRAMES_PER_SECOND) - 320, round(26 * FRAMES_PER_SECOND) - 320)


def test_rules_and_velocity_scale():
    values = np.array([0.5, 0.25, 0.25, 0.25, 0.0, 0.0])
    assert apply_rule("onset", values) == 0.5 and apply_rule("max", values) == 0.5
    assert apply_rule("head", values) == pytest.approx(0.3125) and apply_rule("median", values) == 0.25
    assert [to_midi_velocity(v) for v in (0.0, 0.5, 2.0)] == [1, 64, 127]
    assert DEFAULT_RULE in RULES
    with pytest.raises(ValueError, match="note_rule"):
        apply_rule("mode", values)


def test_config_default_rule_is_the_measured_default(compose):
    assert compose("estimate").note_rule is None and resolve_rule(None) == DEFAULT_RULE


def test_checks_and_seeded_noise():
    peaks = np.zeros(100, bool)
    peaks[[10, 50]] = True
    assert hit_rate(np.array([11, 50, 80]), peaks) == pytest.approx(2 / 3)
    assert hit_rate(np.array([40, 80]), peaks) == 0 and hit_rate(np.array([40, 80]), peaks, lag=-30) == 1
    assert length_warning("x", 60.0, 58.0, 3.0) is None and "+5.0 s" in length_warning("x", 63.0, 58.0, 3.0)
    noise = lambda seed, start: torch.randn(4, generator=segment_generator(seed, start))  # noqa: E731
    assert torch.equal(noise(0, 320), noise(0, 320))
    assert not torch.equal(noise(0, 320), noise(1, 320)) and not torch.equal(noise(0, 0), noise(0, 320))
