"""bench.timbre: spectral shape of piano voices against a reference voice, and their brightening."""
import numpy as np
import soundfile

from bench import timbre


def _sample_folder(folder, partial_gain: float):
    """A one-sample voice: C4 as a decaying tone with a second partial at `partial_gain`."""
    folder.mkdir()
    t = np.arange(16000) / 16000
    tone = np.exp(-3 * t) * (np.sin(2 * np.pi * 261.63 * t) + partial_gain * np.sin(2 * np.pi * 2093.0 * t))
    soundfile.write(folder / "C4.wav", (0.3 * tone).astype(np.float32), 16000)
    return folder


def _rows(table: str) -> dict:
    lines = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| voice")]
    return {cells[0]: [float(c) for c in cells[1:]] for cells in
            ([c.strip() for c in line.split("|")[1:-1]] for line in lines)}


def test_band_shape_ignores_the_level():
    power = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(timbre.band_shape(power), timbre.band_shape(100 * power))
    assert timbre.band_shape(power).argmax() == 2


def test_a_brighter_voice_shows_up_only_where_it_is_brighter(tmp_path):
    dull = _sample_folder(tmp_path / "dull", 0.05)
    bright = _sample_folder(tmp_path / "bright", 0.5)
    out = tmp_path / "timbre.md"
    hz = timbre.band_hz([20, 60, 100, 130, 160], timbre.spectrogram_args())
    assert hz[0] < 300 < hz[1] < hz[2] < 2093 < hz[4] and all(a < b for a, b in zip(hz, hz[1:]))
    assert timbre.main(["--voice", f"dull={dull}", "--voice", f"bright={bright}", "--voice", f"same={dull}",
                        "--pitches", "60", "--bands", "20", "160", "--out", str(out)]) == 0
    against, brighter = out.read_text().split("Brightening")
    rows = _rows(against)
    assert rows["dull"] == [0.0, 0.0, 0.0] and rows["same"] == [0.0, 0.0, 0.0]
    assert rows["bright"][1] > 10 and abs(rows["bright"][0]) < rows["bright"][1]  # the 2 kHz partial: +20 dB
    assert all(abs(v) < 0.2 for name, values in _rows(brighter).items() for v in values)  # a sampler's gain only


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    assert timbre.main(["--voice", "no-equals-sign"]) == 2
    assert "--voice no-equals-sign: give NAME=PATH" in capsys.readouterr().err
    assert timbre.main(["--voice", f"x={tmp_path}", "--bands", "400"]) == 2
    assert "--bands: each must be in 0..228" in capsys.readouterr().err
    assert timbre.main(["--voice", f"x={tmp_path / 'missing'}"]) == 2
    assert "missing" in capsys.readouterr().err
