"""utils.data.pack_smd and post_processing_gnoise.py on bad inputs: exit status, one line naming the file or
option, nothing written."""
import os

import numpy as np
import pretty_midi
import pytest
import soundfile

import post_processing_gnoise
from utils.conventions import SAMPLE_RATE
from utils.data.pack_smd import main as pack_main
from utils.evaluation.pairs import save_pairs
from utils.data.smd import read_excerpt

STEM = "Chopin_Op010-03_007_20100611-SMD"


def _write_pair(folder, audio_seconds=5.0, last_onset=23.0):
    """A 16 kHz sine of `audio_seconds` and a MIDI file with notes at 0.5 s, 2 s and `last_onset`."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(audio_seconds * SAMPLE_RATE)) / SAMPLE_RATE
    soundfile.write(folder / f"{STEM}.wav", 0.3 * np.sin(2 * np.pi * 440 * t), SAMPLE_RATE)
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes += [pretty_midi.Note(velocity=70, pitch=60, start=0.5, end=1.0),
                    pretty_midi.Note(velocity=90, pitch=64, start=2.0, end=4.8),
                    pretty_midi.Note(velocity=50, pitch=67, start=last_onset, end=last_onset + 0.5)]
    pm.instruments.append(piano)
    pm.write(str(folder / f"{STEM}.mid"))
    return folder


def _one_error_line(capsys) -> str:
    """The one `error: ...` line on stderr (besides tqdm's progress bars), and no traceback."""
    err = capsys.readouterr().err
    errors = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


# ---------------------------------------------------------------- pack_smd


def test_pack_refuses_audio_shorter_than_midi_and_trims_on_request(tmp_path, capsys):
    src, out = _write_pair(tmp_path / "src"), tmp_path / "out"
    assert pack_main([str(src), str(out)]) == 2
    line = _one_error_line(capsys)
    assert f"{STEM}.wav + {STEM}.mid" in line and "audio lasts 5.00 s but the MIDI 23.50 s" in line
    assert not list(out.glob("*"))  # nothing written
    assert pack_main([str(src), str(out), "--trim-midi"]) == 0
    excerpt = read_excerpt(out / f"{STEM}.h5")
    onsets = [t for t, e in zip(excerpt.midi_event_times, excerpt.midi_events) if "velocity=0" not in e and "note_on" in e]
    np.testing.assert_allclose(onsets, [0.5, 2.0], atol=1e-3)  # the note after the audio is dropped
    assert excerpt.midi_event_times.max() <= 5.0 and not any("note=67" in e for e in excerpt.midi_events)


def test_pack_checks_an_existing_h5_it_would_keep(tmp_path, capsys):
    src, out = _write_pair(tmp_path / "src", last_onset=3.0), tmp_path / "out"
    out.mkdir()
    (out / f"{STEM}.h5").write_bytes(b"corrupt, from a crashed tool")
    assert pack_main([str(src), str(out)]) == 2
    line = _one_error_line(capsys)
    assert f"{STEM}.h5: not an HDF5 file" in line and "--overwrite re-packs it" in line
    assert (out / f"{STEM}.h5").read_bytes() == b"corrupt, from a crashed tool"  # left for the user to see
    assert pack_main([str(src), str(out), "--overwrite"]) == 0
    assert read_excerpt(out / f"{STEM}.h5").duration == 5.0


def test_pack_refuses_an_output_path_that_is_a_file_or_read_only(tmp_path, capsys, monkeypatch):
    src = _write_pair(tmp_path / "src", last_onset=3.0)
    (tmp_path / "taken").write_text("a file")
    assert pack_main([str(src), str(tmp_path / "taken")]) == 2
    assert "OUT_DIR=" in _one_error_line(capsys)
    real_access = os.access  # as root a read-only folder is writable, so the refusal is simulated
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: str(path) != str(tmp_path) and real_access(path, mode))
    assert pack_main([str(src), str(tmp_path / "out")]) == 2
    assert f"folder {tmp_path} is not writable" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- post_processing_gnoise.py


@pytest.fixture
def pair_dir(reference, tmp_path):
    outputs, targets, _ = reference
    folder = tmp_path / "pairs"
    save_pairs(folder / "pieceA_pair_0_2024-01-01_00-00-00.npy", outputs, targets)
    return folder


def _post(pair_dir, out_dir, *extra):
    return post_processing_gnoise.main(["--output_dir", str(out_dir), "--npy_pair_dir", str(pair_dir), "--no_plots", *extra])


@pytest.mark.parametrize("values, match", [
    (["-1"], "--z_scores -1: must be a finite number >= 0"),
    (["nan"], "--z_scores nan: must be a finite number >= 0"),
    (["inf"], "--z_scores inf: must be a finite number >= 0"),
    (["3", "3.0"], "--z_scores 3 3: a value is listed twice"),
])
def test_z_scores_are_validated(pair_dir, tmp_path, capsys, values, match):
    assert _post(pair_dir, tmp_path / "out", "--z_scores", *values) == 2
    assert match in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_nan_pairs_are_refused_before_writing(reference, pair_dir, tmp_path, capsys):
    outputs, targets, _ = reference
    outputs = [dict(o) for o in outputs]
    outputs[2]["velocity_output"] = np.full_like(outputs[2]["velocity_output"], np.nan)
    save_pairs(pair_dir / "pieceZ_pair_0_2024-01-01_00-00-00.npy", outputs, targets)
    assert _post(pair_dir, tmp_path / "out") == 2
    assert "pieceZ_pair_0_2024-01-01_00-00-00.npy: velocity_output of segment 2 is NaN or infinite" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()  # not even the first (finite) excerpt's note CSV


def test_post_processing_output_path_that_is_a_file(pair_dir, tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    assert _post(pair_dir, tmp_path / "taken") == 2
    assert f"--output_dir={tmp_path / 'taken'}: exists and is not a folder" in _one_error_line(capsys)


def test_post_processing_read_only_output_folder(pair_dir, tmp_path, capsys, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: str(path) != str(tmp_path) and real_access(path, mode))
    assert _post(pair_dir, tmp_path / "out") == 2
    assert f"folder {tmp_path} is not writable" in _one_error_line(capsys)
