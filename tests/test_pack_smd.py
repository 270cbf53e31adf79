"""The SMD packer (utils/data/pack_smd.py): audio + MIDI pairs -> .h5 files the reader accepts."""
import os
import subprocess
import sys

import mido
import numpy as np
import pretty_midi
import pytest
import soundfile

from utils.conventions import SAMPLE_RATE
from utils.data.pack_smd import PackError, main, pack_folder, pack_pair, read_midi_events
from utils.data.smd import paper_segments, read_excerpt

from conftest import REPO_ROOT

STEM = "Chopin_Op010-03_007_20100611-SMD"


def _write_pair(folder, stem=STEM, audio_suffix=".wav", midi_suffix=".mid", seconds=1.5):
    """A 44.1 kHz stereo sine and a pretty_midi file with three notes and a pedal press."""
    folder.mkdir(parents=True, exist_ok=True)
    rate = 44100
    t = np.arange(int(seconds * rate)) / rate
    sine = 0.5 * np.sin(2 * np.pi * 440 * t)
    soundfile.write(folder / f"{stem}{audio_suffix}", np.stack([sine, sine], axis=1), rate)
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0, name="Etude")
    piano.notes += [pretty_midi.Note(velocity=90, pitch=60, start=0.0, end=0.4),
                    pretty_midi.Note(velocity=40, pitch=64, start=0.5, end=0.9),
                    pretty_midi.Note(velocity=110, pitch=67, start=1.0, end=1.3)]
    piano.control_changes += [pretty_midi.ControlChange(64, 100, 0.45), pretty_midi.ControlChange(64, 0, 1.2)]
    pm.instruments.append(piano)
    pm.write(str(folder / f"{stem}{midi_suffix}"))
    return folder / f"{stem}{audio_suffix}", folder / f"{stem}{midi_suffix}"


def test_pack_folder_round_trip(tmp_path):
    _, midi_path = _write_pair(tmp_path / "src")
    outputs = pack_folder(tmp_path / "src", tmp_path / "out")
    assert outputs == [tmp_path / "out" / f"{STEM}.h5"]
    excerpt = read_excerpt(outputs[0])
    assert excerpt.waveform.dtype == np.int16 and len(excerpt.waveform) == int(1.5 * SAMPLE_RATE)
    assert excerpt.duration == 1.5
    t = np.arange(len(excerpt.waveform)) / SAMPLE_RATE  # resampled sine, scaled by 32767
    expected = 0.5 * np.sin(2 * np.pi * 440 * t) * 32767
    assert np.abs(excerpt.waveform[100:-100] - expected[100:-100]).max() < 0.005 * 32767
    midi = mido.MidiFile(str(midi_path))
    assert excerpt.midi_events == [str(message) for message in midi.tracks[1]]
    notes = [(t, e) for t, e in zip(excerpt.midi_event_times, excerpt.midi_events) if "velocity=90" in e]
    assert notes == [(np.float32(0.0), "note_on channel=0 note=60 velocity=90 time=0")]
    onsets = [t for t, e in zip(excerpt.midi_event_times, excerpt.midi_events)
              if e.startswith("note_on") and "velocity=0 " not in e]
    np.testing.assert_allclose(onsets, [0.0, 0.5, 1.0], atol=1e-3)  # 220 ticks/beat rounding
    assert excerpt.attrs["composer"] == "Chopin" and excerpt.attrs["title"] == "Op010-03"
    assert excerpt.attrs["audio_filename"] == f"{STEM}.wav" and excerpt.attrs["midi_filename"] == f"{STEM}.mid"
    segment = next(paper_segments(excerpt))  # the packed file feeds the test protocol
    assert segment.target["velocity_roll"][0, 0, 60 - 21] == 90


def test_packing_piece_midi_reproduces_reference_events(tmp_path, reference_dir):
    labels = np.load(reference_dir / "test_labels.npz")
    events, times, name = read_midi_events(reference_dir / "piece.midi")
    assert events == [e.decode() for e in labels["midi_event"]] and name == "piano"
    soundfile.write(tmp_path / "piece.flac", np.zeros(70 * 16000, np.float32), SAMPLE_RATE)  # 69.4 s of MIDI
    excerpt = read_excerpt(pack_pair(tmp_path / "piece.flac", reference_dir / "piece.midi", tmp_path / "piece.h5"))
    np.testing.assert_array_equal(excerpt.midi_event_times, labels["midi_event_time"])
    assert excerpt.attrs["title"] == "piano" and "composer" not in excerpt.attrs  # from the MIDI track name


def test_tempo_changes_and_type0(tmp_path):
    midi = mido.MidiFile(type=0, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=500000, time=0),
        mido.MetaMessage("set_tempo", tempo=250000, time=480),  # 0.5 s, then twice as fast
        mido.Message("note_on", note=60, velocity=64, time=480),  # 0.5 + 0.25 s
        mido.Message("note_off", note=60, velocity=0, time=960),  # + 0.5 s
    ]))
    midi.save(tmp_path / "t.mid")
    events, times, _ = read_midi_events(tmp_path / "t.mid")
    assert events[2] == "note_on channel=0 note=60 velocity=64 time=480"
    np.testing.assert_allclose(times, [0.0, 0.5, 0.75, 1.25, 1.25])  # mido adds end_of_track


def test_skip_existing_and_overwrite(tmp_path):
    _write_pair(tmp_path / "src")
    out = pack_folder(tmp_path / "src", tmp_path / "out")[0]
    os.utime(out, (1, 1))
    pack_folder(tmp_path / "src", tmp_path / "out")
    assert os.stat(out).st_mtime == 1
    pack_folder(tmp_path / "src", tmp_path / "out", overwrite=True)
    assert os.stat(out).st_mtime > 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [out.name]  # no temp files


def test_pairs_by_stem_across_subfolders_and_suffixes(tmp_path):
    audio, midi = _write_pair(tmp_path / "src" / "wav", stem="Bach_BWV875-01_002_20090916-SMD",
                              audio_suffix=".flac", midi_suffix=".midi")
    (tmp_path / "src" / "midi").mkdir()
    midi.rename(tmp_path / "src" / "midi" / midi.name)
    (tmp_path / "src" / "README.txt").write_text("ignored")
    outputs = pack_folder(tmp_path / "src", tmp_path / "out")
    assert [p.name for p in outputs] == ["Bach_BWV875-01_002_20090916-SMD.h5"]


def test_unpaired_and_corrupt_inputs(tmp_path):
    _write_pair(tmp_path / "src")
    soundfile.write(tmp_path / "src" / "lonely.wav", np.zeros(100), SAMPLE_RATE)
    with pytest.raises(PackError, match=r"unpaired files: lonely.wav \(no MIDI\)"):
        pack_folder(tmp_path / "src", tmp_path / "out")
    (tmp_path / "src" / "lonely.wav").unlink()
    (tmp_path / "src" / "broken.wav").write_bytes(b"RIFF....garbage")
    (tmp_path / "src" / "broken.mid").write_bytes(b"garbage")
    with pytest.raises(PackError, match="broken.wav: cannot read audio"):
        pack_folder(tmp_path / "src", tmp_path / "out")
    audio, _ = _write_pair(tmp_path / "ok")
    with pytest.raises(PackError, match="broken.mid: corrupt MIDI file"):
        pack_pair(audio, tmp_path / "src" / "broken.mid", tmp_path / "x.h5")
    no_notes = mido.MidiFile()
    no_notes.tracks.append(mido.MidiTrack([mido.Message("control_change", control=64, value=0)]))
    no_notes.save(tmp_path / "empty.mid")
    with pytest.raises(PackError, match="empty.mid: no notes"):
        pack_pair(audio, tmp_path / "empty.mid", tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_cli(tmp_path, capsys):
    _write_pair(tmp_path / "src")
    assert main([str(tmp_path / "src"), str(tmp_path / "out")]) == 0
    assert "1 excerpts in" in capsys.readouterr().out
    assert main([str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    assert "nowhere: source folder not found" in capsys.readouterr().err
    result = subprocess.run([sys.executable, "-m", "utils.data.pack_smd", str(tmp_path / "src"), str(tmp_path / "out2")],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out2" / f"{STEM}.h5").is_file()
