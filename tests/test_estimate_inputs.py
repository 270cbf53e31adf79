"""estimate_velocity.py on bad inputs (one-line error naming the file, nothing written, exit status 2),
in folder mode, and with a paper-style checkpoint."""
import logging
import os
import subprocess
import sys

import mido
import numpy as np
import pytest
import soundfile
import torch
from _estimate_fixtures import shared_inputs, tiny_checkpoint
from conftest import REPO_ROOT

from utils.estimate.errors import EstimateError


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, compose):
    return shared_inputs(tmp_path_factory, compose)


@pytest.fixture
def estimate_with(compose, inputs, tmp_path):
    """estimate(cfg) with the piece and tiny model unless overridden; out defaults to tmp_path/out.mid."""
    from estimate_velocity import estimate

    def _run(**keys):
        values = {"audio": inputs["mono"], "midi": inputs["midi"], "out": tmp_path / "out.mid", "ckpt": inputs["ckpt"],
                  "progress": "false", **keys}
        return estimate(compose("estimate", [f"{k}={v}" for k, v in values.items() if v is not None]))

    return _run


def expect_error(run, fragment: str, names, **keys):
    """The run raises one line naming `names` and containing `fragment`; nothing is written."""
    with pytest.raises(EstimateError) as error:
        run(**keys)
    message = str(error.value)
    assert "\n" not in message and fragment in message and str(names) in message, message
    return message


def test_empty_midi(estimate_with, tmp_path):
    empty = tmp_path / "empty.mid"
    midi = mido.MidiFile()
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    midi.save(empty)
    expect_error(estimate_with, "no notes", empty, midi=empty)
    assert not (tmp_path / "out.mid").exists() and not (tmp_path / "out.csv").exists()


def test_corrupt_midi(estimate_with, tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02garbage")
    expect_error(estimate_with, "not a readable MIDI file", bad, midi=bad)


def test_no_notes_in_the_audio_span(estimate_with, inputs, tmp_path):
    expect_error(estimate_with, "no notes start within the audio", inputs["midi"], shift=100)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", ["text", "silent"])
def test_unreadable_or_silent_audio(estimate_with, tmp_path, content):
    audio = tmp_path / "audio.wav"
    if content == "text":
        audio.write_text("not audio")
    else:
        soundfile.write(audio, np.zeros(16000 * 3, np.float32), 16000)
    fragment = "not a readable audio file" if content == "text" else "silent"
    expect_error(estimate_with, fragment, audio, audio=audio)
    assert not (tmp_path / "out.mid").exists()


def test_checkpoints_that_do_not_fit(estimate_with, inputs, tmp_path, monkeypatch):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(os.urandom(256))
    expect_error(estimate_with, "PyTorch checkpoint", garbage, ckpt=garbage)
    checkpoint = torch.load(inputs["ckpt"], weights_only=True)
    checkpoint["state_dict"].pop("film_layer.weight")
    broken = tmp_path / "broken.ckpt"
    torch.save(checkpoint, broken)
    expect_error(estimate_with, "parameters do not match", broken, ckpt=broken)
    checkpoint = torch.load(inputs["ckpt"], weights_only=True)
    checkpoint["hyper_parameters"]["spec_args"]["sample_rate"] = 22050
    other_rate = tmp_path / "rate.ckpt"
    torch.save(checkpoint, other_rate)
    expect_error(estimate_with, "22050 Hz", other_rate, ckpt=other_rate)
    from utils.estimate import model_io

    monkeypatch.setattr(model_io, "PRETRAINED", tmp_path / "pretrained")
    expect_error(estimate_with, "shipped checkpoint is missing", tmp_path / "pretrained" / "diffvel_plus.ckpt",
                 ckpt=None, method="blend")
    expect_error(estimate_with, "shipped checkpoint is missing", tmp_path / "pretrained" / "diffvel_plus_unheard.ckpt",
                 ckpt=None)  # the default method=unheard
    assert not (tmp_path / "out.mid").exists()


def test_out_equal_to_an_input_is_refused(estimate_with, inputs):
    before = inputs["midi"].read_bytes()
    expect_error(estimate_with, "equals an input", inputs["midi"], out=inputs["midi"])
    expect_error(estimate_with, "equals an input", inputs["mono"], out=inputs["mono"].with_suffix(".mid"),
                 csv=inputs["mono"])
    assert inputs["midi"].read_bytes() == before


def test_cli_error_is_one_line_with_status_2(inputs, tmp_path):
    done = subprocess.run(
        [sys.executable, "estimate_velocity.py", f"audio={inputs['mono']}", f"midi={inputs['midi']}",
         f"out={inputs['midi']}", f"ckpt={inputs['ckpt']}", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (f"error: {inputs['midi']}: an output path equals an input; "
                                                     "choose another out (inputs are never overwritten)")
    assert "Traceback" not in done.stderr


def test_folder_without_matching_pairs(estimate_with, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "m").mkdir()
    (tmp_path / "a" / "one.wav").write_bytes(b"")
    (tmp_path / "m" / "two.mid").write_bytes(b"")
    expect_error(estimate_with, "no audio and MIDI files with the same name", tmp_path / "a", audio=None, midi=None,
                 out=None, audio_dir=tmp_path / "a", midi_dir=tmp_path / "m", out_dir=tmp_path / "o")


def test_folder_mode_pairs_by_stem_and_reports_failures(estimate_with, inputs, tmp_path, caplog):
    audio_dir, midi_dir, out_dir = tmp_path / "audio", tmp_path / "midi", tmp_path / "out"
    audio_dir.mkdir(), midi_dir.mkdir()
    for stem in ("one", "two"):
        (audio_dir / f"{stem}.wav").write_bytes(inputs["mono"].read_bytes())
        (midi_dir / f"{stem}.midi").write_bytes(inputs["midi"].read_bytes())
    (audio_dir / "lonely.flac").write_bytes(b"")
    folders = dict(audio=None, midi=None, out=None, audio_dir=audio_dir, midi_dir=midi_dir, out_dir=out_dir)
    caplog.set_level(logging.WARNING)
    results = estimate_with(**folders, plot="true")
    assert sorted(p.name for p in out_dir.iterdir()) == ["one.csv", "one.midi", "one.png", "two.csv", "two.midi", "two.png"]
    assert [r.new_velocity for r in results[0].notes] == [r.new_velocity for r in results[1].notes]
    assert any("lonely.flac: no matching MIDI" in r.getMessage() for r in caplog.records)
    soundfile.write(audio_dir / "two.wav", np.zeros(16000, np.float32), 16000)  # now silent
    message = expect_error(estimate_with, "1 of 2 pairs failed", out_dir, **folders)
    assert "two.wav: the audio is silent" in message
    with pytest.raises(EstimateError, match="in folder mode csv is true or false"):
        estimate_with(**folders, csv=tmp_path / "x.csv")


def test_paper_style_checkpoint_warns_relative(estimate_with, compose, tmp_path, caplog):
    paper = tiny_checkpoint(compose, tmp_path / "paper.ckpt", absolute=False)
    caplog.set_level(logging.WARNING)
    (result,) = estimate_with(ckpt=paper)
    assert len(result.estimated) > 0
    assert any("relative to the loudest note of each 20.48 s segment" in r.getMessage() for r in caplog.records)
