"""The TiMidity++ renderer (utils/synth/timidity.py) and its use as a corpus voice (a .cfg "SoundFont")."""
import json
import shutil
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile

from utils.synth import corpus as corpus_module
from utils.synth import timidity
from utils.synth.corpus import CorpusConfig, write_corpus
from utils.synth.loudness import main as loudness_main
from utils.synth.loudness import measure_grid, non_monotonic
from utils.synth.render import AdditiveRenderer, RendererUnavailable

RATE = 16000
FREEPATS = Path("/etc/timidity/freepats.cfg")  # Debian packages timidity + freepats (make setup installs them)


@pytest.fixture(scope="module")
def freepats():
    if shutil.which("timidity") is None or not FREEPATS.is_file():
        pytest.skip("timidity or freepats not installed (make system-deps installs both)")
    return timidity.TimidityRenderer(RATE, FREEPATS)


def _one_note(start: float, velocity: int = 90) -> pretty_midi.PrettyMIDI:
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    piano.notes.append(pretty_midi.Note(velocity, 60, start, start + 0.5))
    midi.instruments.append(piano)
    return midi


def test_onsets_stay_where_the_midi_puts_them_and_length_is_the_duration(freepats):
    audio = freepats.render(_one_note(1.25), duration=3.0)
    assert audio.shape == (2, 3 * RATE) and audio.dtype == np.float32
    first = np.argmax(np.abs(audio[0]) > 1e-3) / RATE
    assert 1.25 <= first < 1.27  # leading silence kept (TiMidity++ trims it by default)


def test_loudness_and_brightness_rise_with_velocity(freepats):
    measures = measure_grid(freepats, velocities=(16, 48, 80, 112, 127), pitches=(48, 72), note_seconds=0.3)
    assert non_monotonic(measures) == []
    soft, loud = (next(m for m in measures if m.pitch == 48 and m.velocity == v) for v in (16, 127))
    assert loud.loudness_db - soft.loudness_db > 15.0


def test_missing_program_is_a_one_line_error_naming_the_configuration(monkeypatch):
    monkeypatch.setattr(timidity.shutil, "which", lambda name: None)
    with pytest.raises(RendererUnavailable, match="timidity not found.*freepats.cfg"):
        timidity.TimidityRenderer(RATE, FREEPATS)


def test_a_configuration_whose_piano_cannot_load_is_an_error_not_silence(freepats, tmp_path):
    missing = tmp_path / "missing.cfg"
    missing.write_text("bank 0\n0 no-such-piano.pat\n")
    with pytest.raises(RendererUnavailable, match=r"missing\.cfg: timidity failed on probe \(Couldn't load instrument"):
        timidity.TimidityRenderer(RATE, missing).render(_one_note(0.1), duration=1.0, label="probe")
    broken = tmp_path / "broken.cfg"
    broken.write_text("garbage here\n")
    with pytest.raises(RendererUnavailable, match=r"broken\.cfg: timidity failed on probe \(.*syntax error"):
        timidity.TimidityRenderer(RATE, broken).render(_one_note(0.1), duration=1.0, label="probe")


def test_corpus_renders_a_cfg_voice_with_timidity_and_records_it(freepats, tmp_path):
    config = CorpusConfig(n_train=1, n_val=0, n_test=0, n_smd=0, seconds=25.0, sample_rate=RATE,
                          soundfonts=(str(FREEPATS),))
    write_corpus(tmp_path, config, renderer=AdditiveRenderer(RATE))
    (wav,) = (tmp_path / corpus_module.MAESTRO_FOLDER).rglob("*.wav")
    audio, rate = soundfile.read(str(wav), dtype="float32")
    assert rate == RATE and audio.shape == (25 * RATE,)
    additive = AdditiveRenderer(RATE).render(pretty_midi.PrettyMIDI(str(wav.with_suffix(".midi"))), duration=25.0)
    assert not np.allclose(audio, additive.mean(0), atol=1e-3)  # the piece came from TiMidity++, not the default
    assert json.loads((tmp_path / corpus_module.CONFIG_NAME).read_text())["soundfonts"] == [str(FREEPATS)]


def test_corpus_with_an_unrunnable_voice_fails_before_writing_anything(monkeypatch, tmp_path):
    monkeypatch.setattr(timidity.shutil, "which", lambda name: None)
    config = CorpusConfig(n_train=1, n_val=0, n_test=0, n_smd=0, seconds=25.0, sample_rate=RATE,
                          soundfonts=(str(FREEPATS),))
    if not FREEPATS.is_file():
        pytest.skip("freepats not installed")
    with pytest.raises(RendererUnavailable, match="timidity not found"):
        write_corpus(tmp_path / "out", config, renderer=AdditiveRenderer(RATE))
    assert not any((tmp_path / "out").rglob("*"))


def test_a_piano_rendered_silent_is_an_error(freepats, tmp_path):
    muted = tmp_path / "muted.cfg"
    muted.write_text("dir /usr/share/midi/freepats\nbank 0\n0 Tone_000/000_Acoustic_Grand_Piano.pat amp=0\n")
    with pytest.raises(RendererUnavailable, match=r"muted\.cfg: timidity rendered silence for probe"):
        timidity.TimidityRenderer(RATE, muted).render(_one_note(0.1), duration=1.0, label="probe")


def test_loudness_check_of_one_voice(freepats, capsys, tmp_path):
    code = loudness_main(["--soundfont", str(FREEPATS), "--sample-rate", str(RATE), "--pitches", "60",
                          "--velocities", "20", "60", "100"])
    out = capsys.readouterr().out
    assert code == 0 and f"Renderer: timidity ({FREEPATS})" in out and "with velocity: yes" in out
    assert loudness_main(["--soundfont", str(tmp_path / "none.cfg")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'none.cfg'}: TiMidity++ configuration not found"


def test_a_hung_timidity_is_a_one_line_error(freepats, monkeypatch, tmp_path):
    hung = tmp_path / "timidity"
    hung.write_text("#!/bin/sh\nsleep 30\n")
    hung.chmod(0o755)
    renderer = timidity.TimidityRenderer(RATE, FREEPATS)
    monkeypatch.setattr(renderer, "program", str(hung))
    monkeypatch.setattr(timidity, "TIMEOUT_SECONDS", 0.5)
    with pytest.raises(RendererUnavailable, match=r"freepats\.cfg: timidity did not finish probe within 0.5 s"):
        renderer.render(_one_note(0.1), duration=1.0, label="probe")


def test_a_gain_offset_scales_the_sampler_and_is_refused_for_a_timidity_voice(tmp_path):
    from utils.synth.sampler import SAMPLER_GAIN
    from utils.synth.timidity import voice_renderer

    folder = tmp_path / "piano"
    folder.mkdir()
    soundfile.write(folder / "C4.wav", np.zeros(100, dtype=np.float32), 16000)
    assert voice_renderer(folder, 16000).gain == SAMPLER_GAIN
    assert voice_renderer(folder, 16000, gain_db=-6.0).gain == pytest.approx(SAMPLER_GAIN * 10 ** (-6 / 20))
    with pytest.raises(ValueError, match=r"voice\.cfg: a TiMidity\+\+ voice plays at its fixed volume; gain_db must be 0"):
        voice_renderer(tmp_path / "voice.cfg", 16000, gain_db=-3.0)
