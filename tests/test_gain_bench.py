"""bench.gain (every model and the loudness regression at several recording gains) and bench.levels (crop levels)."""
import numpy as np

from _estimate_fixtures import tiny_checkpoint
from bench import gain
from utils.data.smd import Segment


def test_scaling_multiplies_every_waveform_and_keeps_the_rest():
    segment = Segment(0, 0.0, np.full(4, 0.25, np.float32), {}, np.zeros((640, 88), np.float32))
    louder = gain.scaled({"x": [segment]}, 6.0)["x"][0]
    np.testing.assert_allclose(louder.waveform, 0.25 * 10 ** 0.3, rtol=1e-6)
    assert louder.waveform.dtype == np.float32 and louder.score_roll is segment.score_roll
    assert segment.waveform[0] == np.float32(0.25)  # the input is not changed in place


def test_rows_per_gain_on_the_same_notes_and_the_loudness_regression_follows_the_level(compose, corpus, tmp_path):
    model = tiny_checkpoint(compose, tmp_path / "plus.ckpt")
    table, plot = tmp_path / "gain.md", tmp_path / "gain.png"
    assert gain.main(["--model", f"tiny={model}", "--sets", f"tiny={corpus / 'smd_h5'}", "--baseline-root",
                      str(corpus), "--gains-db", "-6", "0", "6", "--out", str(table), "--plot", str(plot)]) == 0
    lines = [line.split("|") for line in table.read_text().splitlines() if line.startswith("| tiny")]
    assert [(cells[2].strip(), cells[3].strip()) for cells in lines] == [
        (g, m) for g in ("-6", "+0", "+6") for m in ("tiny", gain.LOUDNESS)]
    assert len({cells[4] for cells in lines}) == 1  # every row on the same notes
    loudness_bias = [float(cells[6]) for cells in lines if cells[3].strip() == gain.LOUDNESS]
    assert loudness_bias[0] < loudness_bias[1] < loudness_bias[2]  # louder audio, louder estimates
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_model_is_refused_in_one_line(corpus, tmp_path, capsys):
    missing = tmp_path / "none.ckpt"
    assert gain.main(["--model", f"x={missing}", "--sets", f"tiny={corpus / 'smd_h5'}"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {missing}: not found"


def test_crop_levels_follow_the_gain_and_reach_silence():
    import torchaudio

    from bench import levels
    from utils.demo import spectrogram_args

    mel = torchaudio.transforms.MelSpectrogram(**spectrogram_args())
    tone = np.sin(2 * np.pi * 440 * np.arange(16000 * 45) / 16000).astype(np.float32) * 0.1
    tone[: 16000 * 5] = 0  # a silent start: the first crop reaches the floor
    quiet, loud = levels.crop_levels(tone, mel), levels.crop_levels(tone * 2, mel)
    assert quiet.shape == (2, 3)  # 45 s = 1406 frames: two whole 640-frame crops
    np.testing.assert_allclose(loud[:, 0] - quiet[:, 0], np.log(4.0), atol=1e-4)  # the maximum: power x 4
    assert quiet[0, 1] == np.float32(np.log(1e-6))


def test_levels_of_a_corpus_and_a_missing_split(corpus, capsys):
    from bench import levels

    assert levels.main(["--root", str(corpus)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("| max", "| min"))]
    percentiles = [float(cell) for cell in rows[0].split("|")[3:8]]
    assert percentiles == sorted(percentiles) and len(rows) == 2
    assert levels.main(["--root", str(corpus), "--split", "nosuch"]) == 2
    assert "no 'nosuch' pieces" in capsys.readouterr().err
