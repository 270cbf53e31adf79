"""Real performance MIDI as corpus material (utils/synth/performances.py, --performances)."""
import pretty_midi
import pytest

from utils.conventions import SUSTAIN_CONTROL
from utils.synth.__main__ import main as synth_main
from utils.synth.corpus import CorpusConfig, write_corpus
from utils.synth.performance import LEAD_IN_SECONDS, TAIL_SECONDS
from utils.synth.performances import (PerformanceError, load_performances, performance_window, piano_only,
                                      window)


def performance_midi(path, seconds=60.0, velocity=lambda i: 20 + i % 50, program=0):
    """A 'performance': one note every 0.25 s with varying velocities, pedal down at 1 s and up at 30 s."""
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=program)
    piano.notes = [pretty_midi.Note(velocity(i), 48 + i % 24, 0.25 * i, 0.25 * i + 0.4)
                   for i in range(int(seconds / 0.25) - 2)]
    piano.control_changes = [pretty_midi.ControlChange(SUSTAIN_CONTROL, 127, 1.0),
                             pretty_midi.ControlChange(SUSTAIN_CONTROL, 0, 30.0)]
    midi.instruments.append(piano)
    midi.write(str(path))
    return path


def test_window_keeps_velocities_shifts_onsets_and_carries_the_pedal(tmp_path):
    midi = piano_only(pretty_midi.PrettyMIDI(str(performance_midi(tmp_path / "p.mid"))))
    cut = window(midi, start=10.0, span=5.0)
    notes = cut.instruments[0].notes
    source = [n for n in midi.instruments[0].notes if 10.0 <= n.start < 15.0]
    assert [n.velocity for n in notes] == [n.velocity for n in source] and len(notes) == 20
    assert notes[0].start == pytest.approx(LEAD_IN_SECONDS)
    assert max(n.end for n in notes) <= 5.0 + LEAD_IN_SECONDS + 1e-9  # cut at the window end
    pedal = [(c.time, c.value) for c in cut.instruments[0].control_changes]
    assert pedal[0] == (0.0, 127)  # pressed at 1 s, still down at the window start
    assert pedal[-1] == (pytest.approx(5.0 + LEAD_IN_SECONDS), 0)


def test_windows_are_drawn_from_the_seed_and_long_enough(tmp_path):
    performances = load_performances([performance_midi(tmp_path / "a.mid"), performance_midi(tmp_path / "b.mid")], 20)
    first, again = performance_window(performances, 30.0, 5), performance_window(performances, 30.0, 5)
    assert first.title == again.title and first.title != performance_window(performances, 30.0, 6).title
    last_end = max(n.end for n in first.midi.instruments[0].notes)
    assert last_end <= 30.0 - TAIL_SECONDS + 1e-9


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "performances not found"),
    (lambda d: d, "no .mid or .midi file"),
    (lambda d: (d / "bad.mid").write_bytes(b"not midi") and d / "bad.mid", "unreadable MIDI"),
    (lambda d: performance_midi(d / "organ.mid", program=19), "no piano notes"),
    (lambda d: performance_midi(d / "short.mid", seconds=10), "shorter than one"),
])
def test_unusable_performances_are_one_line_errors_naming_the_file(tmp_path, make, message):
    source = make(tmp_path)
    with pytest.raises(PerformanceError, match=message) as error:
        load_performances([source], 20)
    assert str(source) in str(error.value) and "\n" not in str(error.value)


def test_corpus_mixes_performance_windows_with_real_velocities(tmp_path):
    source = performance_midi(tmp_path / "perf.mid", velocity=lambda i: 77)
    config = CorpusConfig(n_train=6, n_val=0, n_test=0, n_smd=0, seconds=25.0, renderer="additive",
                          sample_rate=16000, performances=(str(source),), performance_fraction=0.5,
                          free_velocity=1.0)
    summary = write_corpus(tmp_path / "corpus", config)
    real = [row for row in summary.rows if row["canonical_title"].startswith("perf from")]
    assert 0 < len(real) < 6  # the seed splits the six pieces
    for row in real:  # free_velocity leaves real performances alone
        midi = pretty_midi.PrettyMIDI(str(summary.dataset_dir / row["midi_filename"]))
        assert {n.velocity for n in midi.instruments[0].notes} == {77}


def test_cli_refuses_half_given_performance_options(tmp_path, capsys):
    assert synth_main(["--out", str(tmp_path / "c"), "--tiny", "--renderer", "additive",
                       "--performance-fraction", "0.5"]) == 2
    assert "performances and performance_fraction go together" in capsys.readouterr().err
    assert synth_main(["--out", str(tmp_path / "c"), "--tiny", "--renderer", "additive", "--performances",
                       str(tmp_path / "none"), "--performance-fraction", "0.5"]) == 2
    assert "performances not found" in capsys.readouterr().err
    assert not (tmp_path / "c" / "maestro-v2.0.0").exists()  # refused before any piece is written
