"""Held-out set builder (bench/heldout.py): MIDI filtering, excerpting and .h5 round trip. No network."""
from itertools import pairwise

import numpy as np
import pretty_midi
import pytest
import soundfile

from bench import heldout
from bench.heldout import Excerpt, cut_points, excerpt_midi, note_free_times, piano_only, split_piece
from utils.conventions import SAMPLE_RATE
from utils.data import sdist
from utils.data.smd import read_excerpt
from utils.synth.render import AdditiveRenderer, FluidSynthRenderer, RendererUnavailable
from utils.synth.sampler import SAMPLER_GAIN, SampleSetRenderer
from utils.data.corrected_labels import parse_notes


def _instrument(notes, program=0, is_drum=False, pedal=()):
    """notes: (start, end, pitch, velocity); pedal: (time, value) of CC64."""
    instrument = pretty_midi.Instrument(program=program, is_drum=is_drum)
    instrument.notes = [pretty_midi.Note(v, p, s, e) for s, e, p, v in notes]
    instrument.control_changes = [pretty_midi.ControlChange(64, value, t) for t, value in pedal]
    return instrument


def _midi(*instruments):
    midi = pretty_midi.PrettyMIDI()
    midi.instruments.extend(instruments)
    return midi


def _notes(midi):
    return [(round(n.start, 3), round(n.end, 3), n.pitch, n.velocity) for n in midi.instruments[0].notes]


def test_piano_only_keeps_piano_notes_in_the_88_keys():
    midi = _midi(_instrument([(0, 1, 60, 80), (0, 1, 20, 50), (0.5, 1, 108, 30), (1, 1, 64, 40)], pedal=[(0.2, 127)]),
                 _instrument([(0, 1, 62, 70)], program=40),
                 _instrument([(0, 1, 36, 100)], is_drum=True),
                 _instrument([(2, 3, 21, 90)], program=1))
    kept = piano_only(midi)
    assert len(kept.instruments) == 1 and kept.instruments[0].program == 0
    assert _notes(kept) == [(0, 1, 60, 80), (0.5, 1, 108, 30), (2, 3, 21, 90)]  # no 20, no zero length
    assert [(c.number, c.value) for c in kept.instruments[0].control_changes] == [(64, 127)]


def test_note_free_times_are_gap_midpoints():
    notes = _instrument([(0, 2, 60, 80), (1, 3, 64, 80), (4, 5, 67, 80), (5, 6, 60, 80)]).notes
    np.testing.assert_allclose(note_free_times(notes), [3.5])  # 5 -> 5 touches: no gap


def test_cuts_fall_in_gaps_and_no_note_crosses_them():
    notes = [(t, t + 0.8, 60 + t % 12, 40 + t % 60) for t in range(300)]  # gap of 0.2 s every second
    cuts = cut_points(_instrument(notes).notes, max_span=50.0, min_span=10.0)
    assert cuts[0] == 0.0 and cuts[-1] == pytest.approx(299.8)
    assert all(0 < b - a <= 50.0 + 1e-9 for a, b in pairwise(cuts))
    for cut in cuts[1:-1]:
        assert not any(s < cut < e for s, e, _, _ in notes)


def test_cut_without_gap_falls_back_to_max_span():
    notes = [(0, 100, 40, 60)] + [(t, t + 1.5, 72, 70) for t in range(99)]
    assert cut_points(_instrument(notes).notes, max_span=30.0, min_span=10.0)[:3] == [0.0, 30.0, 60.0]


def test_excerpt_shifts_notes_clips_ends_and_carries_the_pedal():
    midi = piano_only(_midi(_instrument([(1, 2, 60, 80), (9, 12, 62, 90), (11, 13, 64, 100)],
                                        pedal=[(5, 127), (10.5, 0)])))
    part = excerpt_midi(midi, 8.0, 12.0)
    assert _notes(part) == [(1, 4, 62, 90), (3, 4, 64, 100)]
    assert [(c.time, c.value) for c in part.instruments[0].control_changes] == [(0.0, 127), (2.5, 0)]


def test_split_piece_keeps_short_pieces_whole_and_cuts_long_ones(monkeypatch):
    short = piano_only(_midi(_instrument([(t, t + 0.5, 60, 64) for t in range(100)])))
    assert [e.name for e in split_piece("p", short)] == ["p_00"]
    notes = [(t, t + 0.5, 50 + t % 30, 1 + t % 127) for t in range(400)]
    long = piano_only(_midi(_instrument(notes)))
    excerpts = split_piece("q", long)
    assert len(excerpts) == 4 and all(e.midi.get_end_time() <= heldout.MAX_SPAN_SECONDS for e in excerpts)
    assert sum(len(e.midi.instruments[0].notes) for e in excerpts) == len(notes)
    assert len(split_piece("q", long, max_excerpts=2)) == 2
    rest = split_piece("q", long, skip_excerpts=1)  # what --max-excerpts 1 left out
    assert [e.name for e in rest] == [e.name for e in excerpts[1:]] == ["q_01", "q_02", "q_03"]
    assert [e.name for e in split_piece("q", long, max_excerpts=1, skip_excerpts=2)] == ["q_02"]
    with pytest.raises(heldout.HeldoutError, match="no piano notes"):
        split_piece("empty", piano_only(_midi(_instrument([(0, 1, 10, 64)]))))


def _renderer(kind):
    if kind == "additive":
        return AdditiveRenderer(SAMPLE_RATE)
    try:
        return FluidSynthRenderer(SAMPLE_RATE, gain=0.5)
    except RendererUnavailable as error:
        pytest.skip(f"FluidSynth renderer unavailable: {error}")


@pytest.mark.parametrize("kind", ["additive", "fluidsynth"])
def test_written_h5_reads_back_with_the_same_notes(tmp_path, kind):
    notes = [(0.1, 0.6, 21, 12), (0.5, 1.4, 60, 64), (0.5, 1.2, 64, 100), (1.5, 2.5, 108, 127)]
    midi = piano_only(_midi(_instrument(notes, pedal=[(0.0, 127), (2.0, 0)])))
    path = heldout.write_excerpt_h5(Excerpt("Maestro_1_00", "Maestro_1", 0.0, midi), _renderer(kind),
                                    tmp_path / "midi", tmp_path / "smd_h5", gain_db=-3.0)
    excerpt = read_excerpt(path)
    got = parse_notes(excerpt.midi_events, excerpt.midi_event_times, extend_pedal=False)
    np.testing.assert_allclose(got, np.array([(s, e, p, v) for s, e, p, v in notes]), atol=1e-3)
    assert excerpt.duration == pytest.approx(2.5 + 1.0, abs=1e-3)
    assert np.abs(excerpt.waveform).max() > 100  # audible audio
    assert excerpt.attrs["gain_db"] == -3.0 and excerpt.attrs["composer"] == "unidentified"
    assert (tmp_path / "midi" / "Maestro_1_00.mid").is_file()


def test_missing_soundfont_is_a_one_line_error(tmp_path, capsys):
    assert heldout.main(["--out", str(tmp_path), "--soundfont", str(tmp_path / "none.sf2")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "none.sf2: SoundFont not found" in line


def test_failed_download_names_the_package(tmp_path, monkeypatch):
    class Failed:
        returncode, stderr = 1, "ERROR: No matching distribution found for miditok==3.1.0\n"
    monkeypatch.setattr(sdist.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(heldout.HeldoutError, match="cannot download the miditok==3.1.0 sdist"):
        heldout.fetch_sdist(tmp_path)


@pytest.mark.parametrize("flag", ["--max-excerpts", "--skip-excerpts"])
def test_a_negative_excerpt_count_is_refused_before_anything_is_built(flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        heldout.main(["--out", str(tmp_path / "h"), flag, "-1"])
    assert exit_info.value.code == 2 and f"{flag} -1: must be 0 or more" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()


def _sample_folder(folder):
    folder.mkdir()
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for layer, amplitude in ((1, 0.05), (2, 0.2)):
        soundfile.write(folder / f"C4v{layer}.wav", amplitude * np.sin(2 * np.pi * 261.6 * t), SAMPLE_RATE)
    return folder


def test_a_sample_folder_renders_with_the_sampler_at_its_gain_and_is_named_in_the_sources(tmp_path):
    folder = _sample_folder(tmp_path / "salamander")
    renderer = heldout.voice_renderer(folder, -3.0)
    assert isinstance(renderer, SampleSetRenderer) and renderer.gain == pytest.approx(SAMPLER_GAIN * 10 ** (-3 / 20))
    stats = {"pieces": 1, "excerpts": 1, "notes": 4, "vel_min": 1, "vel_max": 9, "vel_mean": 5.0, "vel_std": 1.0,
             "seconds": 60.0}
    text = heldout.sources_markdown([], folder, -3.0, stats)
    digest = heldout.voice_sha256(folder)
    assert f"Sample folder: `{folder}` (sha256 `{digest}`), the sampler" in text and "SAMPLER_GAIN 0.25 -3.0 dB" in text
    soundfile.write(folder / "C4v2.wav", np.zeros(100), SAMPLE_RATE)
    assert heldout.voice_sha256(folder) != digest  # the digest follows the recordings
    path = heldout.write_excerpt_h5(Excerpt("Maestro_1_00", "Maestro_1", 0.0, piano_only(_midi(_instrument(
        [(0.1, 0.6, 60, 100)])))), heldout.voice_renderer(_sample_folder(tmp_path / "s2"), 0.0),
        tmp_path / "midi", tmp_path / "smd_h5")
    assert np.abs(read_excerpt(path).waveform).max() > 100  # audible audio


def _midi_folder(folder, names):
    folder.mkdir()
    for index, name in enumerate(names):
        _midi(_instrument([(0.1, 0.6, 60 + index, 30 + index)])).write(str(folder / name))
    return folder


def test_a_midi_folder_is_split_between_subsets_in_name_order(tmp_path):
    folder = _midi_folder(tmp_path / "val", ["d.mid", "a.mid", "c.midi", "b.mid", "e.mid"])
    halves = [heldout.folder_pieces(folder, (part, 2)) for part in (0, 1)]
    assert [list(h) for h in halves] == [["a.mid", "c.midi", "e.mid"], ["b.mid", "d.mid"]]
    assert list(heldout.folder_pieces(folder)) == ["a.mid", "b.mid", "c.midi", "d.mid", "e.mid"]
    assert heldout.parse_subset("1/3") == (1, 3)
    for bad in ("2/2", "1", "a/2", "-1/2"):
        with pytest.raises(ValueError, match=f"--subset {bad}: expected K/N"):
            heldout.parse_subset(bad)


def test_a_midi_folder_builds_its_excerpts_and_lists_its_files_in_the_sources(tmp_path):
    folder = _midi_folder(tmp_path / "val", ["a.mid", "b.mid", "c.mid"])
    stats = heldout.build(tmp_path / "out", _sample_folder(tmp_path / "piano"), 0.0, midi=folder, subset=(1, 2))
    assert stats["excerpts"] == 1 and stats["notes"] == 1 and stats["vel_min"] == 31  # b.mid only
    excerpt = read_excerpt(tmp_path / "out" / "smd_h5" / "b_00.h5")
    assert excerpt.attrs["source"] == f"folder {folder}" and excerpt.attrs["licence"] == "see SOURCES.md"
    text = (tmp_path / "out" / "SOURCES.md").read_text()
    assert f"| b.mid | `{heldout.sha256_of(folder / 'b.mid')}` |" in text and "a.mid" not in text


def test_a_midi_folder_without_midi_or_a_bad_subset_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    folder = _sample_folder(tmp_path / "piano")
    assert heldout.main(["--out", str(tmp_path / "o"), "--soundfont", str(folder), "--midi", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'empty'}: no .mid or .midi file"
    assert heldout.main(["--out", str(tmp_path / "o"), "--soundfont", str(folder), "--midi", str(folder),
                         "--subset", "3/2"]) == 2
    assert "--subset 3/2: expected K/N" in capsys.readouterr().err
    assert not (tmp_path / "o" / "smd_h5").exists()
