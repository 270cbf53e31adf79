"""estimate_velocity.py method=loudness: the shipped loudness regression as an estimator
(utils/estimate/loudness.py), its fit file and its bad inputs."""
import json

import numpy as np
import pytest
from _estimate_fixtures import shared_inputs

from utils.conventions import SAMPLE_RATE
from utils.estimate.errors import EstimateError
from utils.estimate.loudness import DEFAULT_FIT, LoudnessRegression, load_fit, save_fit


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, compose):
    return shared_inputs(tmp_path_factory, compose)


def _tones(amplitudes, seconds_apart=1.0):
    """A 440 Hz tone burst of each amplitude, one per `seconds_apart`; returns (waveform, onsets)."""
    t = np.arange(int(0.3 * SAMPLE_RATE)) / SAMPLE_RATE
    waveform = np.zeros(int(len(amplitudes) * seconds_apart * SAMPLE_RATE) + SAMPLE_RATE, dtype=np.float32)
    onsets = np.arange(len(amplitudes)) * seconds_apart + 0.5
    for amplitude, onset in zip(amplitudes, onsets):
        start = int(onset * SAMPLE_RATE)
        waveform[start:start + len(t)] += amplitude * np.sin(2 * np.pi * 440 * t) * np.exp(-t * 8)
    return waveform, onsets


def test_shipped_fit_loads_and_louder_notes_get_higher_velocities():
    fit = load_fit(None)
    assert fit == load_fit(DEFAULT_FIT) and fit.slope > 0 and fit.n_notes > 1000
    waveform, onsets = _tones([0.01, 0.04, 0.16, 0.5])
    velocities = fit.velocities(waveform, onsets)
    assert velocities.dtype == np.int64 and np.all(np.diff(velocities) > 0)
    assert velocities.min() >= 1 and velocities.max() <= 127
    doubled = fit.velocities(waveform * 2, onsets)  # +6 dB: log power + log(4), times the slope
    assert np.allclose((doubled - velocities)[:3], fit.slope * np.log(4), atol=1.01)  # the last one is clipped
    assert doubled[3] == 127


def test_method_loudness_writes_the_fit_velocities_of_every_estimated_note(compose, inputs, tmp_path):
    from estimate_velocity import estimate
    from utils.estimate.audio import read_audio

    cfg = compose("estimate", [f"audio={inputs['mono']}", f"midi={inputs['midi']}", f"out={tmp_path / 'out.mid'}",
                               "method=loudness", "progress=false"])
    (result,) = estimate(cfg)
    estimated = result.estimated
    onsets = np.array([r.note.onset for r in estimated])
    expected = load_fit(None).velocities(read_audio(inputs["mono"]), onsets)
    assert [r.new_velocity for r in estimated] == expected.tolist()
    assert len(set(expected.tolist())) > 5 and (tmp_path / "out.mid").is_file()


@pytest.mark.parametrize("overrides, match", [
    (["method=loud"], "method=loud must be one of diffvel, loudness"),
    (["method=loudness", "ckpt=x.ckpt"], "ckpt=x.ckpt is for method=diffvel"),
    (["method=loudness", "loudness_fit=nowhere.json"], "nowhere.json: loudness fit not found"),
])
def test_bad_method_options_are_one_line_errors_and_write_nothing(compose, inputs, tmp_path, overrides, match):
    from estimate_velocity import estimate

    cfg = compose("estimate", [f"audio={inputs['mono']}", f"midi={inputs['midi']}", f"out={tmp_path / 'out.mid'}",
                               "progress=false", *overrides])
    with pytest.raises(EstimateError, match=match):
        estimate(cfg)
    assert not (tmp_path / "out.mid").exists()


def _write(path, **changes):
    fit = LoudnessRegression(10.0, 70.0, 100, "test", {"sample_rate": SAMPLE_RATE, "hop_length": 512, "n_mels": 229})
    save_fit(fit, path)
    stored = json.loads(path.read_text())
    stored.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        stored.pop(key)
    path.write_text(json.dumps(stored))
    return path


@pytest.mark.parametrize("changes, match", [
    ({"slope": None}, "fit.json: loudness fit lacks slope"),
    ({"intercept": float("nan")}, "fit.json: loudness fit has a non-finite slope or intercept"),
    ({"spec_args": {"sample_rate": 44100, "hop_length": 512}}, "fit.json: loudness fit made at 44100 Hz"),
])
def test_unusable_fit_files_are_refused_naming_the_file(tmp_path, changes, match):
    with pytest.raises(EstimateError, match=match):
        load_fit(_write(tmp_path / "fit.json", **changes))


def test_unreadable_fit_is_refused(tmp_path):
    (tmp_path / "fit.json").write_text("{not json")
    with pytest.raises(EstimateError, match=r"fit\.json: unreadable loudness fit"):
        load_fit(tmp_path / "fit.json")
