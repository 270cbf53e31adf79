"""Synthetic corpus: MIDI generator, renderers (loudness follows velocity), corpus layout."""
import csv
import json
import logging
import sys

import numpy as np
import pytest
import soundfile

from utils.conventions import MAX_MIDI, MIN_MIDI, SEGMENT_SAMPLES, SEGMENT_SECONDS
from utils.synth import corpus as corpus_module
from utils.synth.__main__ import main as synth_main
from utils.synth.corpus import COLUMNS, TINY, CorpusConfig, piece_specs, write_corpus
from utils.synth.loudness import loudness_db, measure_grid, non_monotonic
from utils.synth.performance import PEDAL_CC, TAIL_SECONDS, _beat_durations, generate_performance, midi_bytes
from utils.synth.render import (AdditiveRenderer, FluidSynthRenderer, RendererUnavailable, make_renderer)

RENDER_RATE = 16000


def _fluidsynth_or_skip() -> FluidSynthRenderer:
    try:
        return FluidSynthRenderer(RENDER_RATE)
    except RendererUnavailable as error:
        pytest.skip(f"FluidSynth renderer unavailable: {error}")


@pytest.fixture(scope="module", params=["fluidsynth", "additive"])
def renderer(request):
    return _fluidsynth_or_skip() if request.param == "fluidsynth" else AdditiveRenderer(RENDER_RATE)


# --- MIDI generator ----------------------------------------------------------------------------

def test_same_seed_gives_identical_midi_bytes_and_other_seeds_differ():
    first = midi_bytes(generate_performance(30.0, seed=5).midi)
    assert first == midi_bytes(generate_performance(30.0, seed=5).midi)
    assert first != midi_bytes(generate_performance(30.0, seed=6).midi)


def test_velocities_cover_the_whole_range():
    velocities = np.concatenate([[n.velocity for n in generate_performance(40.0, seed).midi.instruments[0].notes]
                                 for seed in range(6)])
    assert velocities.min() >= 1 and velocities.max() <= 127
    assert velocities.min() <= 12 and velocities.max() >= 120
    histogram, _ = np.histogram(velocities, bins=np.arange(0, 129, 16))
    assert (histogram > 0).all(), f"empty velocity bins: {histogram}"
    assert histogram.max() < 0.4 * velocities.size, f"velocities pile up in one bin: {histogram}"


def test_keys_pedal_and_timing_are_valid():
    seconds = 40.0
    for seed in range(4):
        piano = generate_performance(seconds, seed).midi.instruments[0]
        pitches = [n.pitch for n in piano.notes]
        assert MIN_MIDI <= min(pitches) and max(pitches) <= MAX_MIDI
        assert all(0.0 <= n.start < n.end <= seconds - TAIL_SECONDS + 1e-9 for n in piano.notes)
        pedal = [c for c in piano.control_changes if c.number == PEDAL_CC]
        assert any(c.value >= 64 for c in pedal) and any(c.value < 64 for c in pedal)
        assert pedal[-1].value == 0, "the pedal must be released at the end"
        by_key = {}
        for note in sorted(piano.notes, key=lambda n: n.start):
            assert note.start >= by_key.get(note.pitch, -1.0), f"overlapping notes on key {note.pitch}"
            by_key[note.pitch] = note.end


def test_rubato_warps_the_beat_and_slows_into_phrase_ends():
    steady = _beat_durations(np.random.default_rng(0), 64, 100.0, phrase_ends=[])
    phrased = _beat_durations(np.random.default_rng(0), 64, 100.0, phrase_ends=[16, 32, 48])
    assert 0.02 < steady.std() / steady.mean() < 0.12  # a smooth tempo curve, not a fixed grid
    for end in (16, 32, 48):
        assert phrased[end - 1] > steady[end - 1] * 1.04  # ritardando on the last beat of each phrase


def test_generator_rejects_too_short_performances():
    with pytest.raises(ValueError, match="at least 5 s"):
        generate_performance(2.0, seed=0)


# --- renderers ---------------------------------------------------------------------------------

def test_loudness_and_brightness_rise_with_velocity(renderer):
    measures = measure_grid(renderer, velocities=(16, 48, 80, 112, 127), pitches=(48, 72), note_seconds=0.3)
    assert non_monotonic(measures) == []
    for pitch in (48, 72):
        soft, loud = (next(m for m in measures if m.pitch == pitch and m.velocity == v) for v in (16, 127))
        assert loud.loudness_db - soft.loudness_db > 20.0
        assert loud.centroid_hz > soft.centroid_hz


def test_no_peak_normalisation_softer_midi_gives_softer_audio(renderer):
    loud = generate_performance(8.0, seed=3).midi
    soft = generate_performance(8.0, seed=3).midi
    for note in soft.instruments[0].notes:
        note.velocity = max(1, note.velocity // 2)
    loud_audio, soft_audio = renderer.render(loud, duration=8.0), renderer.render(soft, duration=8.0)
    assert loud_audio.shape == soft_audio.shape == (2, 8 * RENDER_RATE)
    assert loudness_db(loud_audio.ravel()) - loudness_db(soft_audio.ravel()) > 3.0
    assert np.abs(soft_audio).max() < np.abs(loud_audio).max()


def test_auto_falls_back_to_additive_when_the_soundfont_is_missing(monkeypatch, caplog, tmp_path):
    missing = tmp_path / "none.sf2"
    monkeypatch.setenv("DIFFVEL_SOUNDFONT", str(missing))
    with caplog.at_level(logging.WARNING, logger="utils.synth.render"):
        fallback = make_renderer("auto", RENDER_RATE)
    assert isinstance(fallback, AdditiveRenderer)
    assert str(missing) in caplog.text and "falling back" in caplog.text
    with pytest.raises(RendererUnavailable, match="none.sf2"):
        make_renderer("fluidsynth", RENDER_RATE)


def test_auto_falls_back_when_pyfluidsynth_is_missing(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # import fluidsynth -> ImportError
    with caplog.at_level(logging.WARNING, logger="utils.synth.render"):
        assert isinstance(make_renderer("auto", RENDER_RATE), AdditiveRenderer)
    assert "pyfluidsynth" in caplog.text


def test_unknown_renderer_is_rejected():
    with pytest.raises(ValueError, match="'timidity'"):
        make_renderer("timidity")


# --- corpus ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return out, write_corpus(out, TINY)


def test_tiny_corpus_metadata_has_the_maestro_v2_columns_and_splits(tiny_corpus):
    out, summary = tiny_corpus
    dataset = out / "maestro-v2.0.0"
    rows = json.loads((dataset / "maestro-v2.0.0.json").read_text())
    assert isinstance(rows, list) and all(tuple(row) == COLUMNS for row in rows)
    with open(dataset / "maestro-v2.0.0.csv", newline="") as stream:
        reader = csv.DictReader(stream)
        assert tuple(reader.fieldnames) == COLUMNS
        csv_rows = list(reader)
    assert [{k: str(v) for k, v in row.items()} for row in rows] == csv_rows
    splits = [row["split"] for row in rows]
    assert {s: splits.count(s) for s in set(splits)} == {"train": TINY.n_train, "validation": TINY.n_val,
                                                         "test": TINY.n_test}
    assert rows == summary.rows


def test_tiny_corpus_files_are_present_long_enough_and_match_the_generator(tiny_corpus):
    out, _ = tiny_corpus
    dataset = out / "maestro-v2.0.0"
    rows = json.loads((dataset / "maestro-v2.0.0.json").read_text())
    specs = {spec.stem: spec for spec in piece_specs(TINY)}
    for row in rows:
        audio_path, midi_path = dataset / row["audio_filename"], dataset / row["midi_filename"]
        assert audio_path.parent.name == midi_path.parent.name == str(row["year"])
        info = soundfile.info(str(audio_path))
        assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_16")
        assert info.duration == pytest.approx(row["duration"]) and info.duration > SEGMENT_SECONDS + 1.0
        spec = specs[audio_path.stem]
        assert midi_path.read_bytes() == midi_bytes(generate_performance(TINY.seconds, spec.seed).midi)


def test_tiny_corpus_has_smd_h5_test_files(tiny_corpus):
    out, summary = tiny_corpus
    sources = sorted(p.stem for p in (out / "smd_src").glob("*.wav"))
    assert sources == sorted(p.stem for p in (out / "smd_src").glob("*.mid")) and len(sources) == TINY.n_smd
    smd = pytest.importorskip("utils.data.smd", reason="utils.data.smd (SMD reader) is not importable")
    if not summary.smd_files:
        pytest.skip("utils.data.pack_smd is not importable: no .h5 files were packed")
    assert sorted(p.stem for p in (out / "smd_h5").glob("*.h5")) == sources
    excerpt = smd.read_excerpt(summary.smd_files[0])
    assert excerpt.duration == pytest.approx(TINY.smd_seconds) and excerpt.attrs["composer"] == "Synthetic"


def test_rerun_skips_written_pieces_and_refuses_other_settings(tiny_corpus):
    out, _ = tiny_corpus
    wav = next((out / "maestro-v2.0.0").rglob("*.wav"))
    stamp = wav.stat().st_mtime_ns
    again = write_corpus(out, TINY)
    assert (again.rendered, again.skipped) == (0, TINY.n_train + TINY.n_val + TINY.n_test + TINY.n_smd)
    assert wav.stat().st_mtime_ns == stamp


def test_rerun_with_a_different_seed_is_refused(tiny_corpus):
    out, _ = tiny_corpus
    with pytest.raises(ValueError, match=r"synth_config.json: .*seed 0 -> 1"):
        write_corpus(out, CorpusConfig(**{**TINY.__dict__, "seed": 1}))


def test_tiny_corpus_reads_through_the_maestro_loader(tiny_corpus, tmp_path):
    maestro = pytest.importorskip("utils.data.maestro", reason="utils.data.maestro (MAESTRO reader) is not importable")
    out, _ = tiny_corpus
    dataset = maestro.MAESTRO(out, groups="train", cache_dir=tmp_path)
    assert len(dataset) == TINY.n_train and dataset.skipped == []
    item = dataset[0]
    assert item["audio"].shape == (SEGMENT_SAMPLES,)
    assert 0.0 < float(item["velocity"].max()) <= 1.0 and float(item["onset"].sum()) > 10


def test_corpus_options_are_validated(tmp_path):
    with pytest.raises(ValueError, match="seconds=15.0: pieces must last at least"):
        write_corpus(tmp_path, CorpusConfig(seconds=15.0))
    with pytest.raises(ValueError, match="sample_rate=22050"):
        write_corpus(tmp_path, CorpusConfig(sample_rate=22050))


def test_cli_writes_a_16khz_mono_corpus_with_the_additive_renderer(tmp_path, capsys):
    code = synth_main(["--out", str(tmp_path), "--tiny", "--renderer", "additive", "--sample-rate", "16000",
                       "--n-train", "1", "--n-val", "0", "--n-test", "0", "--n-smd", "0"])
    assert code == 0
    assert "{'train': 1, 'validation': 0, 'test': 0}" in capsys.readouterr().out
    (wav,) = (tmp_path / "maestro-v2.0.0").rglob("*.wav")
    info = soundfile.info(str(wav))
    assert (info.samplerate, info.channels) == (16000, 1) and info.duration == pytest.approx(TINY.seconds)
    assert json.loads((tmp_path / corpus_module.CONFIG_NAME).read_text())["renderer"] == "additive"
